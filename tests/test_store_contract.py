"""One contract suite for every PassageStore: the in-process numpy store and embedded milvus-lite.

Truth is brute-force numpy (dense and sparse inner product) and Wenda's own BM25 (``BM25Store`` over
``index.textproc.tokenize``). pymilvus/milvus-lite are imported at module level: missing means FAIL.
"""
from __future__ import annotations

import socket
import time
import uuid

import milvus_lite  # noqa: F401  (the embedded engine must be installed)
import numpy as np
import pytest

from index.stores import (
    BM25Stats,
    BM25Store,
    Filter,
    MemoryPassageStore,
    PassageRecord,
    StoreError,
    open_passage_store,
)
from index.stores.bm25_stats import term_freqs
from index.stores.milvus_store import MilvusPassageStore
from index.textproc import tokenize

DIM = 384
MODEL = "intfloat/multilingual-e5-small"
DOCS = [f"doc-{i}" for i in range(8)] + ['文件"甲"']  # a quote and Chinese in an id: filters must escape them
YEARS = [2019, 2020, 2021, 2022, 2023]
TOL = 1e-4

PASSAGES = [
    "太原市2023年地区生产总值达到5573亿元，同比增长5.5%。",
    "全市新建5G基站2000个，累计达到2.4万个。",
    "太原地铁2号线运营里程23.6公里，日均客流超过20万人次。",
    "汾河生态修复工程完成治理河道长度40公里。",
    "全年空气质量优良天数达到245天，PM2.5平均浓度下降8%。",
    "新增城镇就业人数9.8万人，城镇登记失业率控制在4%以内。",
    "建成保障性租赁住房1.2万套，改造老旧小区300个。",
    "太原武宿国际机场旅客吞吐量突破1500万人次。",
    "全市规模以上工业增加值增长6.1%，高新技术企业超过2000家。",
    "新建改扩建中小学和幼儿园50所，新增学位3万个。",
    "汾河公园延伸段建成开放，新增绿地面积500万平方米。",
    "数字经济核心产业增加值占地区生产总值比重达到8%。",
    "太原市实施城市更新行动，完成背街小巷改造100条。",
    "地铁1号线一期工程全线开通运营，线路长度28.7公里。",
    "全年接待国内游客8000万人次，旅游收入突破1000亿元。",
    "粮食总产量稳定在35万吨以上，建设高标准农田10万亩。",
    "新能源汽车保有量突破20万辆，建成充电桩1.5万个。",
    "城镇居民人均可支配收入增长4.5%，农村居民增长7%。",
    "太原市获评国家森林城市，森林覆盖率达到28%。",
    "完成集中供热管网改造200公里，清洁取暖覆盖率100%。",
    "全市医疗卫生机构床位达到4.2万张，三甲医院达到20家。",
    "社会消费品零售总额增长6%，网络零售额增长15%。",
    "太原综合保税区进出口总额突破100亿元。",
    "建成5G基站和千兆光网，数字政府建设全面推进。",
    "汾河水质稳定达到Ⅲ类，黑臭水体全面消除。",
    "新建城市道路30条，打通断头路15条。",
    "全年引进高校毕业生5万人，人才公寓建成3000套。",
    "太原市地区生产总值增速高于全省平均水平。",
    "开展无废城市建设，工业固体废物综合利用率达到90%。",
    "地铁3号线开工建设，规划线路长度31公里。",
]
QUERIES = ["地铁线路长度", "5G基站", "地区生产总值增长", "汾河治理", "新能源汽车充电桩", "就业 失业率", "太原 2000", "空气质量 PM2.5"]


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _records(n: int = 150, seed: int = 0, prefix: str = "p") -> list[PassageRecord]:
    rng = np.random.default_rng(seed)
    vec = _unit(rng, n)
    out = []
    for i in range(n):
        sent = _unit(rng, int(rng.integers(0, 4)))
        lex = {int(t): float(w) for t, w in zip(rng.choice(60, 5, replace=False), rng.random(5) + 0.01)}
        out.append(PassageRecord(f"{prefix}{i}", DOCS[i % len(DOCS)], YEARS[i % len(YEARS)], vec[i], lexical=lex,
                                 sentence_vectors=sent if len(sent) else None))
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def milvus_db(tmp_path_factory):
    """One milvus-lite database file per module (each test uses its own collection names)."""
    return tmp_path_factory.mktemp("milvus") / "wenda.db"


@pytest.fixture(params=["memory", "milvus"])
def opener(request, tmp_path, milvus_db):
    """``open(model, dim)`` opens (or reopens) this test's store on the parametrised backend."""
    name = "t" + uuid.uuid4().hex[:10]
    opened = []

    def _open(model: str = MODEL, dim: int | None = None):
        if request.param == "memory":
            store = MemoryPassageStore(model, dim, tmp_path)
        else:
            store = MilvusPassageStore(f"milvus:{milvus_db}", model, dim, name=name)
        opened.append(store)
        return store

    _open.kind = request.param
    yield _open
    for s in opened:
        s.close()


def _truth(scores: np.ndarray, ids: list[str], allowed: np.ndarray | None, k: int, positive: bool = False):
    """Brute-force top-k: (scores sorted desc, score of every id)."""
    ok = np.ones(len(ids), bool) if allowed is None else allowed.copy()
    if positive:
        ok &= scores > 0
    top = np.sort(scores[ok])[::-1][:k]
    return top, dict(zip(ids, scores))


def _assert_topk(got_ids: list[str], got_scores: np.ndarray, scores: np.ndarray, ids: list[str],
                 allowed: np.ndarray | None, k: int, positive: bool = False) -> None:
    """Same top-k as brute force, ties aside: equal score lists, each id's score true, nothing clearly better left out."""
    top, by_id = _truth(scores, ids, allowed, k, positive)
    assert len(got_ids) == len(top)
    np.testing.assert_allclose(got_scores, top, atol=TOL, rtol=1e-5)
    allowed_ids = set(ids) if allowed is None else {i for i, a in zip(ids, allowed) if a}
    for i, s in zip(got_ids, got_scores):
        assert i in allowed_ids and abs(by_id[i] - s) <= TOL + 1e-5 * abs(s)
    if len(top):
        must = {i for i in allowed_ids if by_id[i] > top[-1] + TOL and (not positive or by_id[i] > 0)}
        assert must <= set(got_ids)


def _mask(recs: list[PassageRecord], where: Filter | None) -> np.ndarray | None:
    return None if where is None else np.array([where.matches(r.doc_id, r.year) for r in recs])


FILTERS = [None, Filter(doc_ids=["doc-1", "doc-3"]), Filter(years=[2020, 2023]), Filter(doc_ids=['文件"甲"', "doc-2"], years=[2021, 2022])]


def test_upsert_count_delete(opener):
    store = opener()
    recs = _records()
    assert store.count() == 0
    assert store.upsert(recs) == 150 and store.count() == 150
    assert store.upsert(recs[:20]) == 20 and store.count() == 150  # same ids replace
    assert store.delete(ids=["p0", "p1", "nope"]) == 2 and store.count() == 148
    in_doc3 = sum(r.doc_id == "doc-3" for r in recs[2:])
    assert store.delete(doc_ids=["doc-3"]) == in_doc3 and store.count() == 148 - in_doc3
    assert store.delete(doc_ids=["nothing"]) == 0
    res = store.search(recs[0].vector, 150)
    assert {"p0", "p1"}.isdisjoint(res.ids[0]) and not {r.id for r in recs if r.doc_id == "doc-3"} & set(res.ids[0])


@pytest.mark.parametrize("where", FILTERS, ids=["all", "doc", "year", "doc+year"])
def test_search_equals_brute_force(opener, where):
    store = opener()
    recs = _records()
    store.upsert(recs)
    ids = [r.id for r in recs]
    mat = np.stack([r.vector for r in recs])
    queries = _unit(np.random.default_rng(7), 4)
    res = store.search(queries, 10, where)
    assert len(res) == 4
    for j, q in enumerate(queries):
        _assert_topk(res.ids[j], res.scores[j], mat @ q, ids, _mask(recs, where), 10)
    sres = store.sentence_search(queries, 10, where)
    best = np.array([(r.sentence_vectors @ queries.T).max(0) if r.sentence_vectors is not None else np.full(4, -np.inf)
                     for r in recs])
    has = np.array([r.sentence_vectors is not None for r in recs])
    m = _mask(recs, where)
    for j in range(4):
        _assert_topk(sres.ids[j], sres.scores[j], best[:, j], ids, has if m is None else has & m, 10)
    assert store.search(queries, 10, Filter(doc_ids=[])).ids == [[]] * 4


def test_replacing_a_passage_replaces_its_sentences(opener):
    store = opener()
    rng = np.random.default_rng(4)
    vec, old, new = _unit(rng, 1)[0], _unit(rng, 3), _unit(rng, 1)
    store.upsert([PassageRecord("s1", "doc-1", 2020, vec, sentence_vectors=old)])
    assert store.sentence_search(old[2], 1).scores[0][0] == pytest.approx(1.0, abs=TOL)
    store.upsert([PassageRecord("s1", "doc-1", 2020, vec, sentence_vectors=new)])
    assert store.sentence_search(old[2], 1).scores[0][0] == pytest.approx(float(new[0] @ old[2]), abs=TOL)
    store.upsert([PassageRecord("s1", "doc-1", 2020, vec)])
    assert store.sentence_search(old[2], 1).ids == [[]] and store.count() == 1


@pytest.mark.parametrize("where", FILTERS[:3], ids=["all", "doc", "year"])
def test_lexical_search_equals_sparse_inner_product(opener, where):
    store = opener()
    recs = _records()
    store.upsert(recs)
    ids = [r.id for r in recs]
    dense = np.zeros((len(recs), 60), np.float32)
    for i, r in enumerate(recs):
        for t, w in r.lexical.items():
            dense[i, t] = w
    rng = np.random.default_rng(3)
    queries = [{int(t): float(w) for t, w in zip(rng.choice(60, 3, replace=False), rng.random(3) + 0.1)} for _ in range(5)]
    res = store.lexical_search(queries, 10, where)
    for j, q in enumerate(queries):
        qv = np.zeros(60, np.float32)
        qv[list(q)] = list(q.values())
        _assert_topk(res.ids[j], res.scores[j], dense @ qv, ids, _mask(recs, where), 10, positive=True)
    assert store.lexical_search({}, 10).ids == [[]]


def _bm25_records(texts: list[str], start: int = 0) -> list[PassageRecord]:
    vec = _unit(np.random.default_rng(11), len(texts))
    return [PassageRecord(f"z{start + i}", f"doc-{(start + i) % 3}", YEARS[(start + i) % 5], vec[i], tokens=tokenize(t))
            for i, t in enumerate(texts)]


def test_bm25_as_sparse_vectors_reproduces_wenda_bm25(opener):
    store = opener()
    store.upsert(_bm25_records(PASSAGES))
    bm25 = BM25Store()
    bm25.index([tokenize(t) for t in PASSAGES])
    ids = [f"z{i}" for i in range(len(PASSAGES))]
    same = 0
    for text in QUERIES:
        q = tokenize(text)
        res = store.bm25_search(q, 10)
        truth = bm25.scores(q)  # bm25_search reports bm25s' lucene scale (inner product / (k1+1))
        _assert_topk(res.ids[0], res.scores[0], truth, ids, None, 10, positive=True)
        _, rows = bm25.search(q, 10)
        same += [ids[r] for r in rows] == res.ids[0]
    assert same >= len(QUERIES) - 2  # exact order, ties aside: at most a tie swaps


def test_bm25_stats_follow_upsert_and_delete(opener):
    store = opener()
    store.upsert(_bm25_records(PASSAGES))
    store.upsert(_bm25_records(PASSAGES[:5], start=0))  # replacing passages must not count them twice
    assert store.stats.n == len(PASSAGES)
    store.delete(doc_ids=["doc-0"])
    store.delete(ids=["z1"])
    kept = [t for i, t in enumerate(PASSAGES) if i % 3 != 0 and i != 1]
    fresh = BM25Stats()
    for t in kept:
        fresh.add(term_freqs(tokenize(t)))
    assert store.count() == len(kept)
    assert (store.stats.n, store.stats.total_dl) == (fresh.n, fresh.total_dl)
    assert store.stats.avgdl == pytest.approx(fresh.avgdl)
    assert {t: d for t, d in store.stats.df.items() if d} == fresh.df
    reopened = opener()
    assert (reopened.stats.n, reopened.stats.total_dl, reopened.stats.tid) == (fresh.n, fresh.total_dl, store.stats.tid)
    assert {t: d for t, d in reopened.stats.df.items() if d} == fresh.df
    q = tokenize("地铁线路长度")
    assert reopened.stats.query_weights(q) == pytest.approx(fresh.query_weights(q))
    # idf is current; document weights keep the avgdl of their upsert until a rebuild (stage/promote)


def test_stage_and_promote_switch_versions(opener):
    store = opener()
    old, new = _records(40, seed=1, prefix="old"), _records(30, seed=2, prefix="new")
    store.upsert(old)
    staged = store.stage()
    staged.upsert(new)
    assert store.count() == 40 and store.search(new[0].vector, 1).ids[0][0].startswith("old")
    store.promote(staged)
    assert store.count() == 30 and store.search(new[0].vector, 1).ids[0] == ["new0"]
    reopened = opener()
    assert reopened.count() == 30 and reopened.search(new[3].vector, 1).ids[0] == ["new3"]
    if opener.kind == "milvus":
        names = store.client.list_collections()
        assert store.version in names and not any(c.startswith(store.name + "_v1") for c in names)


def test_reopen_keeps_data(opener):
    store = opener()
    recs = _records(60)
    store.upsert(recs + _bm25_records(PASSAGES[:10]))
    before = store.search(recs[5].vector, 5), store.bm25_search(tokenize("地铁"), 5)
    store.close()
    again = opener()
    assert again.count() == 70 and again.dim == DIM
    after = again.search(recs[5].vector, 5), again.bm25_search(tokenize("地铁"), 5)
    for b, a in zip(before, after):
        assert b.ids == a.ids
        np.testing.assert_allclose(b.scores[0], a.scores[0], atol=TOL)


def test_mismatched_model_or_dim_is_a_clear_error(opener):
    store = opener(MODEL)
    store.upsert(_records(5))
    with pytest.raises(StoreError) as e:
        store.upsert([PassageRecord("x", "d", 2020, np.ones(128, np.float32))])
    assert "128" in str(e.value) and "384" in str(e.value)
    for model, dim in (("BAAI/bge-m3", None), (MODEL, 1024)):
        with pytest.raises(StoreError) as e:
            opener(model, dim)
        msg = str(e.value)
        assert "\n" not in msg and MODEL in msg and "rebuild" in msg
        if opener.kind == "milvus":
            assert "milvus:" in msg
    assert opener(MODEL, DIM).count() == 5


def test_unreachable_server_is_a_clear_error():
    uri = f"milvus://127.0.0.1:{_free_port()}"
    with pytest.raises(StoreError) as e:
        MilvusPassageStore(uri, MODEL, timeout=1)
    assert uri in str(e.value) and "\n" not in str(e.value)


def test_open_passage_store_from_configuration(tmp_path, monkeypatch):
    monkeypatch.delenv("WENDA_STORE", raising=False)
    assert isinstance(open_passage_store(), MemoryPassageStore)
    monkeypatch.setenv("WENDA_STORE", f"milvus:{tmp_path / 'sub' / 'x.db'}")
    s = open_passage_store(model=MODEL, name="cfg")
    assert isinstance(s, MilvusPassageStore) and s.lite and s.count() == 0 and (tmp_path / "sub" / "x.db").exists()
    s.close()
    for bad in ("qdrant://x", f"milvus:{tmp_path / 'x.sqlite'}"):
        with pytest.raises(StoreError):
            open_passage_store(bad)


def test_embedded_file_in_use_by_another_process_is_a_clear_error(tmp_path):
    import subprocess
    import sys

    db = tmp_path / "busy.db"
    script = "import sys; from pymilvus import MilvusClient; MilvusClient(sys.argv[1]); print('ready', flush=True); sys.stdin.read()"
    holder = subprocess.Popen([sys.executable, "-c", script, str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(StoreError, match="one process") as e:
            MilvusPassageStore(f"milvus:{db}", MODEL)
        assert str(db) in str(e.value)
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


def test_milvus_reads_strong_after_writes_and_bounded_later(milvus_db):
    """Strong costs ~200 ms per search on a server: only reads soon after this store wrote or opened use it."""
    from index.stores import milvus_store

    store = MilvusPassageStore(f"milvus:{milvus_db}", MODEL, name="t" + uuid.uuid4().hex[:10])
    try:
        records = _records(30)
        store.upsert(records)
        assert store._read_level() == milvus_store.STRONG
        assert store._fresh_until - time.monotonic() <= milvus_store.FRESH_S
        store._fresh_until = time.monotonic() - 1  # as if FRESH_S seconds had passed
        assert store._read_level() == milvus_store.BOUNDED
        got = store.search(np.asarray(records[3].vector, np.float32)[None, :], 1)
        assert got.ids[0] == [records[3].id]  # a Bounded read long after the write sees it
        store.delete(ids=[records[3].id])
        assert store._read_level() == milvus_store.STRONG
        assert records[3].id not in store.search(np.asarray(records[3].vector, np.float32)[None, :], 5).ids[0]
    finally:
        store.close()


def test_milvus_lite_asked_for_hnsw_builds_flat(milvus_db):
    """The builder asks for HNSW above 200k passages; milvus-lite cannot build it and falls back to exact FLAT."""
    store = MilvusPassageStore(f"milvus:{milvus_db}", MODEL, name="t" + uuid.uuid4().hex[:10], index_type="HNSW")
    try:
        assert store.index_type == "FLAT"
        records = _records(20)
        store.upsert(records)
        assert store.search(np.asarray(records[5].vector, np.float32)[None, :], 1).ids[0] == [records[5].id]
    finally:
        store.close()
