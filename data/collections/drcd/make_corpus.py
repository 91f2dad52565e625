"""Build the "drcd" test collection from DRCD 1.3 (traditional Chinese Wikipedia paragraphs).

Takes the first N articles (default 300) of DRCD_test.json in file order, converts them to
simplified Chinese with OpenCC t2s and writes one plain UTF-8 text file per article:

    <title>

    <paragraph 1>

    <paragraph 2>
    ...

plus ``corpus/manifest.json``. Deterministic: same input, same bytes out.

    .venv/bin/python data/collections/drcd/make_corpus.py --data ../shared/datasets/drcd

English title glosses for the manifest descriptions come from ``titles_en.tsv`` next to this file.
The gold questions (``gold.jsonl``) were written by hand against the output and are not generated.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import opencc

HERE = Path(__file__).resolve().parent

EXAMPLES = [
    "奥斯陆以前叫什么名字？",
    "关岛立法会现在有多少个议席？",
    "保罗·艾伦的私人游艇叫什么？",
    "How long does the Airport Express take from the airport to Central?",
]


def paragraph_no(pid: str) -> int:
    try:
        return int(pid.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="../shared/datasets/drcd", help="folder with DRCD_test.json")
    p.add_argument("--out", default=str(HERE / "corpus"), help="corpus folder to write")
    p.add_argument("-n", type=int, default=300, help="number of articles (first N of the test file)")
    args = p.parse_args(argv)

    src = Path(args.data) / "DRCD_test.json"
    if not src.is_file():
        print(f"{src} not found", file=sys.stderr)
        return 2
    data = json.loads(src.read_text(encoding="utf-8"))
    cc = opencc.OpenCC("t2s")
    titles_en = dict(
        line.split("\t", 1) for line in (HERE / "titles_en.tsv").read_text(encoding="utf-8").splitlines() if line.strip()
    )

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.txt"):
        old.unlink()
    documents: dict[str, dict] = {}
    total = 0
    for i, art in enumerate(data["data"][: args.n]):
        aid = str(art["id"])
        title = cc.convert(art["title"]).replace("_", " ").strip()
        paras = sorted(art["paragraphs"], key=lambda q: paragraph_no(q["id"]))
        body = [" ".join(cc.convert(q["context"]).split()) for q in paras]
        text = title + "\n\n" + "\n\n".join(b for b in body if b) + "\n"
        name = f"{i:03d}_{aid}.txt"
        (out / name).write_text(text, encoding="utf-8")
        total += len(text.encode("utf-8"))
        en = titles_en.get(aid, "").strip()
        n = len(paras)
        documents[name] = {
            "title": title,
            "kind": "encyclopedia article",
            "source": f"DRCD 1.3 test, article id {aid}",
            "description": f"Chinese Wikipedia article '{en}' ({n} paragraph{'s' if n != 1 else ''} kept by DRCD)"
            if en else f"Chinese Wikipedia article ({n} paragraph{'s' if n != 1 else ''} kept by DRCD)",
        }
    manifest = {
        "name": "drcd",
        "title": "维基百科条目(DRCD 1.3, 简体)",
        "title_en": "Wikipedia articles (DRCD 1.3, simplified Chinese)",
        "examples": EXAMPLES,
        "documents": documents,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {len(documents)} documents ({total / 1e6:.2f} MB) and manifest.json to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
