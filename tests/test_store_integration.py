"""The index on an external store (``WENDA_STORE=milvus:<file>.db``, embedded milvus-lite) behaves like the default.

Parity on the bundled corpus (every gold question's retriever top 10, and the answers of a sample),
the builder mirroring knowledge-base uploads and deletions into the store incrementally, and the
one-line errors of a store that does not match the catalog. The index is a copy of the session's,
so nothing is embedded twice.
"""
from __future__ import annotations

import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from index import mirror
from index.builder import IndexLoadError, build_index, load_index, read_manifest
from index.kb import KnowledgeBase
from index.stores import Filter
from index.stores.local_store import LocalPassageStore
from index.stores.milvus_store import MilvusPassageStore
from qa import Assistant

from .conftest import GOLD

NEW_DOC = ("# 星河湾社区花园建设方案\n\n"
           "2026年星河湾社区将建成屋顶花园12处，新增社区绿地面积3.5万平方米。\n\n"
           "社区花园由居民议事会负责日常维护，每季度公开维护账目。\n")


@contextmanager
def store_env(spec: str | None):
    """``WENDA_STORE`` set to ``spec`` (unset for None) for the duration of the block."""
    old = os.environ.get(mirror.ENV_STORE)
    if spec is None:
        os.environ.pop(mirror.ENV_STORE, None)
    else:
        os.environ[mirror.ENV_STORE] = spec
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(mirror.ENV_STORE, None)
        else:
            os.environ[mirror.ENV_STORE] = old


@pytest.fixture(scope="module")
def milvus_spec(tmp_path_factory) -> str:
    return f"milvus:{tmp_path_factory.mktemp('milvus_index') / 'x.db'}"


@pytest.fixture(scope="module")
def milvus_index(tmp_path_factory, built_index, corpus_copy, embedder, milvus_spec) -> Path:
    """A copy of the session index, mirrored into milvus-lite by the builder (no re-embedding)."""
    out = tmp_path_factory.mktemp("mirrored") / "taiyuan"
    shutil.copytree(built_index, out)
    with store_env(milvus_spec):
        report = build_index(corpus_copy, out, embedder, progress=False)
    assert not report.unchanged and report.embedded == 0
    return out


@pytest.fixture(scope="module")
def milvus_assistant(milvus_index, embedder, milvus_spec):
    with store_env(milvus_spec):
        a = Assistant(load_index(milvus_index, embedder), embedder)
    assert isinstance(a.index.store, MilvusPassageStore) and a.index.lexical is a.index.store
    return a


def _questions() -> list[str]:
    return [json.loads(line)["question"] for line in GOLD.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_retriever_top10_equal_on_every_gold_question(assistant, milvus_assistant, embedder):
    """Same top 10 per gold question, ties aside: equal fused scores per rank and the same ids above the 10th."""
    questions = _questions()
    vectors = embedder.encode_queries(questions)
    local, remote = assistant.retriever, milvus_assistant.retriever
    assert isinstance(assistant.index.store, LocalPassageStore)
    differ = []
    for q, v in zip(questions, vectors):
        got = []
        for r in (local, remote):
            info = r.analyze(q)
            info.vector = v
            got.append(r.search(q, k=10, info=info))
        a, b = got
        sa, sb = np.array([h.score for h in a]), np.array([h.score for h in b])
        if len(a) != len(b) or not np.allclose(sa, sb, atol=1e-5, rtol=0):
            differ.append(q)
            continue
        tenth = sa[-1] + 1e-5
        if {h.passage.id for h in a if h.score > tenth} != {h.passage.id for h in b if h.score > tenth}:
            differ.append(q)
    assert not differ, f"{len(differ)} of {len(questions)} questions differ, e.g. {differ[:3]}"


def test_same_answers_on_a_sample(assistant, milvus_assistant):
    for q in _questions()[::12]:
        a, b = assistant.ask(q), milvus_assistant.ask(q)
        assert (a.short_answer, a.sentence, a.not_found) == (b.short_answer, b.sentence, b.not_found), q
        assert [c.passage_id for c in a.citations] == [c.passage_id for c in b.citations], q


def test_filters_reach_the_store(milvus_assistant):
    idx = milvus_assistant.index
    doc, year = idx.passages[0].doc_id, idx.passages[0].year
    hits = milvus_assistant.retriever.search("养老服务", k=50, where=Filter(doc_ids=[doc], years=[year]))
    assert hits and all(h.passage.doc_id == doc and h.passage.year == year for h in hits)
    assert milvus_assistant.ask("养老服务", docs=["missing.txt"]).not_found


def test_kb_upload_and_delete_keep_the_store_in_sync(tmp_path, built_index, corpus_copy, embedder, caplog):
    spec = f"milvus:{tmp_path / 'kb.db'}"
    folder = tmp_path / "kbs" / "reports"
    shutil.copytree(corpus_copy, folder / "corpus")
    shutil.copytree(built_index, folder / "index")
    kb = KnowledgeBase(folder / "corpus", folder / "index", embedder)
    with store_env(spec):
        build_index(kb.corpus_dir, kb.index_dir, embedder, progress=False)  # first mirror: a full, staged write
        assistant = Assistant(load_index(kb.index_dir, embedder), embedder)
        store = assistant.index.store
        version, n0 = store.version, store.count()
        assert store.name == "wenda_reports" and n0 == len(assistant.index.passages)

        caplog.set_level("INFO", logger="index.mirror")
        kb.add_file("garden.md", NEW_DOC.encode("utf-8"))
        assert "passages upserted" in caplog.text  # incremental, not a rewrite
        manifest = read_manifest(kb.index_dir)
        added = manifest["documents"]["garden.md"]["passages"]
        assert manifest["store"]["version"] == version and manifest["store"]["count"] == n0 + added
        assert assistant.refresh()  # the manifest changed: reloaded, as a replica would
        assert assistant.index.store.count() == n0 + added
        ans = assistant.ask("2026年星河湾社区将建成屋顶花园多少处？")
        assert ans.short_answer == "12处" and ans.citations[0].doc_id == "garden.md"

        kb.delete("garden.md")
        assert assistant.refresh()
        live = assistant.index.store
        assert live.version == version and live.count() == n0
        hit = live.search(assistant.embedder.encode_queries(["星河湾社区屋顶花园"])[0], 5, Filter(doc_ids=["garden.md"]))
        assert hit.ids == [[]]
        assert all(p.doc_id != "garden.md" for p in assistant.index.passages)


def test_store_that_does_not_match_the_catalog_is_a_one_line_error(milvus_index, milvus_spec, embedder):
    manifest = read_manifest(milvus_index)
    other = dict(manifest, model=dict(manifest["model"], id="BAAI/bge-m3"))
    with store_env(milvus_spec):
        with pytest.raises(mirror.StoreError) as e:
            mirror.open_index_store(milvus_index, other, manifest["passages"])
    msg = str(e.value)
    assert "\n" not in msg and "bge-m3" in msg and "python -m index build" in msg and milvus_spec in msg

    with store_env(milvus_spec):  # a catalog of one passage less than the store holds
        with pytest.raises(mirror.StoreError) as e:
            mirror.open_index_store(milvus_index, manifest, manifest["passages"] - 1)
    assert "\n" not in str(e.value) and f"holds {manifest['passages']} passages" in str(e.value)

    with store_env(None):  # the default store ignores the mirror record
        assert isinstance(load_index(milvus_index, embedder).store, LocalPassageStore)


def test_unreachable_server_is_a_one_line_error(milvus_index, corpus_copy, embedder, tmp_path, monkeypatch):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    uri = f"milvus://127.0.0.1:{port}"
    monkeypatch.setattr(mirror, "CONNECT_TIMEOUT", 1.0)
    copy = tmp_path / "taiyuan"
    shutil.copytree(milvus_index, copy)
    with store_env(uri):
        with pytest.raises(IndexLoadError) as e:
            load_index(copy, embedder)
        assert "\n" not in str(e.value) and uri in str(e.value) and "not mirrored" in str(e.value)
        with pytest.raises(IndexLoadError) as e:
            build_index(corpus_copy, copy, embedder, progress=False)
        assert "\n" not in str(e.value) and uri in str(e.value) and "unreachable" in str(e.value)
        with pytest.raises(IndexLoadError, match="not mirrored"):
            load_index(copy, embedder)  # the catalog was rewritten, its manifest says the mirror is pending


def test_index_info_shows_the_store(milvus_index, milvus_spec, capsys):
    from index.__main__ import main

    with store_env(milvus_spec):
        assert main(["info", str(milvus_index)]) == 0
    out = capsys.readouterr().out
    store_line = next(line for line in out.splitlines() if line.startswith("store"))
    n = read_manifest(milvus_index)["passages"]
    assert "milvus" in store_line and milvus_spec in store_line and "wenda_taiyuan" in store_line and f"{n} passages" in store_line
