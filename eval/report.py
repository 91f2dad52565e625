"""Console tables, markdown reports and the per-type bar chart."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from .metrics import MAIN_METRICS, METRIC_KEYS

log = logging.getLogger(__name__)

MAX_MISSES = 250  # the report must show every strict miss of the test split

SHORT_NAMES = {
    "recall@1": "R@1", "recall@5": "R@5", "recall@10": "R@10", "mrr@10": "MRR", "answer_hit": "hit(lenient)",
    "short_answer_hit": "strictHit", "list_recall": "listRec", "confident_wrong_rate": "confWrong",
    "em": "EM", "f1": "F1", "refusal_accuracy": "refuse", "false_refusal_rate": "falseRef",
    "citation_precision": "citeP", "latency_ms_p50": "p50ms", "latency_ms_p95": "p95ms",
}


def fmt(value: Any) -> str:
    """A metric value for display: '—' for None, 3 decimals for rates, integers for counts and ms."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.0f}" if abs(value) >= 10 else f"{value:.3f}"
    return str(value)


def _group_rows(result: dict[str, Any], cols: list[str]) -> list[list[str]]:
    rows = [[t] + [fmt(m.get(c)) for c in cols] for t, m in result.get("by_type", {}).items()]
    rows += [[f"lang {lang}"] + [fmt(m.get(c)) for c in cols] for lang, m in (result.get("by_lang") or {}).items()]
    if result.get("followup"):
        rows.append(["follow-ups"] + [fmt(result["followup"].get(c)) for c in cols])
    return rows


def summary_table(result: dict[str, Any]) -> str:
    """Fixed-width table: one row per type, language and follow-ups, the overall row of the reported
    split, and the overall rows of the other splits (labelled)."""
    cols = [k for k in METRIC_KEYS]
    split = result.get("split", "all")
    heads = [f"[{split}] group"] + [SHORT_NAMES.get(c, c) for c in cols]
    rows = _group_rows(result, cols)
    rows.append(["OVERALL"] + [fmt(result["overall"].get(c)) for c in cols])
    for other, summary in (result.get("splits") or {}).items():
        if other != split:
            rows.append([f"({other} split)"] + [fmt(summary["overall"].get(c)) for c in cols])
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(heads)]
    line = "  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(heads, widths)))
    out = [line, "-" * len(line)]
    for r in rows:
        if r[0] == "OVERALL":
            out.append("-" * len(line))
        if r[0].startswith("(") and not out[-1].startswith("-"):
            out.append("-" * len(line))
        out.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
    return "\n".join(out)


def plot_by_type(result: dict[str, Any], png_path: str | Path, metrics: tuple[str, ...] = MAIN_METRICS,
                 title: str = "") -> Path | None:
    """Grouped bar chart of the main metrics per answerable type (plus overall). None if nothing to plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = {t: m for t, m in result.get("by_type", {}).items() if any(m.get(x) is not None for x in metrics)}
    groups["overall"] = result["overall"]
    if not any(m.get(x) is not None for m in groups.values() for x in metrics):
        return None
    names = list(groups)
    width = 0.8 / len(metrics)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(names) + 2), 4.2))
    for i, metric in enumerate(metrics):
        xs = [j + (i - (len(metrics) - 1) / 2) * width for j in range(len(names))]
        ys = [groups[n].get(metric) or 0.0 for n in names]
        ax.bar(xs, ys, width, label=metric)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels([f"{n}\n(n={groups[n].get('n')})" for n in names], fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("score")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, ncol=len(metrics), loc="upper center", bbox_to_anchor=(0.5, -0.18))
    if title:
        ax.set_title(title)
    fig.tight_layout()
    png_path = Path(png_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png_path, dpi=110)
    plt.close(fig)
    return png_path


def _md_table(heads: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(heads) + " |", "|" + "|".join(["---"] + ["---:"] * (len(heads) - 1)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def write_markdown(result: dict[str, Any], path: str | Path, title: str = "Wenda evaluation") -> Path:
    """Write the markdown report and its chart (``<stem>.png`` beside it); returns the report path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    png = plot_by_type(result, path.with_suffix(".png"), title=title)
    meta = result.get("meta", {})
    parts = [f"# {title}", ""]
    info = [f"{k}: `{meta[k]}`" for k in ("date", "model", "git_commit", "name", "k", "seconds") if meta.get(k) is not None]
    if info:
        parts += ["Run — " + " · ".join(info), ""]
    split = result.get("split", "all")
    splits = result.get("splits") or {}
    parts += [
        "Retrieval hit = a retrieved passage holds an evidence string (or ≥30 consecutive characters of it), "
        "whitespace ignored. **short_answer_hit** (strict) = for figure/name/date questions a whole gold answer "
        "inside the bold short answer (no short answer = miss); for list/explain questions inside the shown "
        "sentence or summary; figures match on number boundaries (`45` never matches inside `12345`). "
        "list_recall = share of a list answer's elements shown. **confident_wrong_rate** = answered (not refused) "
        "and wrong: a short answer holding no gold answer, or any answer to an unanswerable question (over all "
        "items of a group). answer_hit = the old lenient metric (short answer, else sentence/summary), kept for "
        "comparison. EM/F1 = CMRC 2018 official rules on the short answer. refusal_accuracy over unanswerable "
        "(`none`) items; latency is wall time per `ask` in ms.",
        "",
        f"## {split} split" + (" (sealed: scored, never looked at while changing the code)" if split == "test" else ""),
        "",
        _md_table(["metric", "value"], [[k, fmt(result["overall"].get(k))] for k in METRIC_KEYS]),
        "", "### By type, language, follow-ups", "",
        _md_table(["group"] + list(METRIC_KEYS),
                  [r for r in _group_rows(result, list(METRIC_KEYS))]),
        "",
    ]
    others = {k: v for k, v in splits.items() if k != split}
    if others:
        parts += ["## Other splits (labelled; the fit split is what fitting and hand rules may look at)", "",
                  _md_table(["split"] + list(METRIC_KEYS),
                            [[k] + [fmt(v["overall"].get(m)) for m in METRIC_KEYS] for k, v in others.items()]), ""]
    if png is not None:
        parts += [f"![main metrics by type]({png.name})", ""]
    items = [it for it in result.get("items", []) if split == "all" or it.get("split", "all") == split]
    misses = [it for it in items if (it.get("answerable") and not it.get("strict_hit")) or it.get("confident_wrong")]
    if misses:
        shown = misses[:MAX_MISSES]
        note = f" — first {MAX_MISSES} of {len(misses)}" if len(misses) > MAX_MISSES else f" — {len(misses)}"
        parts += [f"## Misses of the {split} split (strict: no whole gold answer shown, or confidently wrong){note}", "",
                  _md_table(["id", "type", "what went wrong", "question", "short answer", "gold"],
                            [[str(it["id"]), str(it["type"]), _why(it), _cell(_question(it)),
                              _cell(it.get("short_answer", "")),
                              _cell(" / ".join(it.get("gold_answers", [])) or "(not in the documents)")]
                             for it in shown]), ""]
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def _cell(text: str, limit: int = 60) -> str:
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _question(item: dict[str, Any]) -> str:
    history = item.get("history") or []
    return (" → ".join(history) + " → " if history else "") + str(item.get("question", ""))


def _why(item: dict[str, Any]) -> str:
    """A short label of what went wrong with one item."""
    if not item.get("answerable"):
        return "answered, should refuse"
    if item.get("not_found"):
        return "refused" + ("" if item.get("first_hit_rank") else ", passage not retrieved")
    if item.get("confident_wrong"):
        return "wrong short answer" if item.get("short_answer") else "wrong sentence"
    if item.get("form") == "short" and not item.get("short_answer"):
        return "no short answer"
    return "answer not shown"
