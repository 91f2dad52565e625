"""PassageStore against a real Milvus server: the PyPI ``milvus`` 2.3.5 standalone (embedded etcd).

The server lives in its own venv (its wheel is not a project dependency)::

    python -m venv ~/.cache/wenda-milvus-server && ~/.cache/wenda-milvus-server/bin/pip install milvus==2.3.5

(or set ``WENDA_MILVUS_SERVER_PY`` to that venv's python). It is started by PID on a free loopback
port, always stopped by that PID (kill -9 is part of the test), and has no sparse vectors (< 2.4).
Its PID and the PID of the process that started it are also written to ``<venv>/server.pid``: a
server left by an interrupted earlier run (its starter is gone; its embedded etcd holds the fixed port
2380, so no second server could start) is killed first; one whose starter still runs is left alone
and the tests fail saying so.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from index.stores import Filter, PassageRecord, StoreError
from index.stores.milvus_store import MilvusPassageStore
from qa.llm_server import _alive  # the same "is this PID running" check the LLM server uses
from tests.test_store_contract import (
    FILTERS,
    MODEL,
    _assert_topk,
    _mask,
    _records,
    _unit,
)

pytestmark = pytest.mark.slow
log = logging.getLogger(__name__)

SERVER_PY = Path(os.environ.get("WENDA_MILVUS_SERVER_PY", "~/.cache/wenda-milvus-server/bin/python")).expanduser()
PID_FILE = SERVER_PY.parent.parent / "server.pid"
# Runs in the server's venv: write the config for DATA_DIR and PORT, extract the binaries once into BIN_BASE.
PREPARE = """
import json, sys, milvus
data_dir, port, bin_base = sys.argv[1], int(sys.argv[2]), sys.argv[3]
cfg = milvus.MilvusServerConfig(data_dir=data_dir, proxy_port=port)
cfg.resolve()
milvus._initialize_data_files(bin_base)
s = cfg.try_bind_port(0); metrics = s.getsockname()[1]; s.close()
print(json.dumps({"bin": bin_base + "/bin", "dir": cfg.base_data_dir, "metrics": metrics}))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _is_milvus(pid: int) -> bool:
    """Whether ``pid`` is a running ``milvus run standalone`` (not a reused PID of something else)."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return len(cmd) >= 3 and cmd[0].endswith(b"/milvus") and cmd[1:3] == [b"run", b"standalone"]


def kill_stale_server() -> None:
    """Kill the server an interrupted earlier run left behind (by the PID it recorded), then forget it.

    Raises:
        RuntimeError: the recorded server's starter is still running (another run is using it).
    """
    try:
        fields = [int(x) for x in PID_FILE.read_text().split()]
    except (OSError, ValueError):
        return
    pid, owner = (fields + [0, 0])[:2]
    if not pid:
        PID_FILE.unlink(missing_ok=True)
        return
    if _is_milvus(pid) and owner and owner != os.getpid() and _alive(owner):
        raise RuntimeError(f"Milvus server pid {pid}, started by the running process {owner}, holds etcd's port 2380; "
                           "wait for that run to finish")
    if _is_milvus(pid):
        log.warning("killing Milvus server pid %d left by an interrupted earlier run", pid)
        os.kill(pid, signal.SIGKILL)
        for _ in range(100):
            if not _is_milvus(pid):
                break
            time.sleep(0.1)
    PID_FILE.unlink(missing_ok=True)


class Server:
    """One ``milvus run standalone`` process on 127.0.0.1, known by its PID."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir, self.port, self.pid = data_dir, _free_port(), None

    @property
    def uri(self) -> str:
        return f"milvus://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90.0) -> float:
        out = subprocess.run([str(SERVER_PY), "-c", PREPARE, str(self.data_dir), str(self.port), str(SERVER_PY.parent.parent / "dist")],
                             check=True, capture_output=True, text=True, timeout=300)
        info = json.loads(out.stdout.strip().splitlines()[-1])
        env = dict(os.environ, DEPLOY_MODE="STANDALONE", METRICS_PORT=str(info["metrics"]), MILVUS_RUN_DIR=info["dir"] + "/run",
                   MILVUSCONF=info["dir"] + "/configs", LD_LIBRARY_PATH=info["bin"] + ":" + os.environ.get("LD_LIBRARY_PATH", ""))
        t0 = time.monotonic()
        with open(Path(info["dir"]) / "logs" / "server.log", "ab") as log:
            proc = subprocess.Popen([info["bin"] + "/milvus", "run", "standalone"], cwd=info["dir"], env=env, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        self.pid, self._proc = proc.pid, proc
        PID_FILE.write_text(f"{proc.pid} {os.getpid()}\n")
        while time.monotonic() - t0 < timeout:
            if proc.poll() is not None:
                raise RuntimeError(f"milvus exited with {proc.returncode}; see {info['dir']}/logs")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{info['metrics']}/healthz", timeout=2) as r:
                    if b"OK" in r.read():
                        return time.monotonic() - t0
            except OSError:
                time.sleep(0.3)
        self.kill()
        raise TimeoutError(f"milvus did not start in {timeout} s")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Stop the server by its PID (SIGKILL by default) and reap it."""
        if self.pid is not None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass
            self._proc.wait(timeout=30)
            self.pid = None
            PID_FILE.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not SERVER_PY.exists():
        pytest.fail(f"no Milvus 2.3.5 server venv at {SERVER_PY}: `make test` creates it (see this module's docstring)")
    try:
        kill_stale_server()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    srv = Server(tmp_path_factory.mktemp("milvus_server"))
    try:
        log.info("milvus 2.3.5 up in %.1f s (pid %d)", srv.start(), srv.pid)
        yield srv
    finally:
        srv.kill()


def _open(server: Server, name: str, **kw) -> MilvusPassageStore:
    return MilvusPassageStore(server.uri, MODEL, name=name, timeout=5, **kw)


def test_dense_search_with_filters_matches_brute_force(server):
    store = _open(server, "dense")
    recs = _records(120)
    store.upsert(recs)
    ids, mat = [r.id for r in recs], np.stack([r.vector for r in recs])
    queries = _unit(np.random.default_rng(5), 3)
    for where in FILTERS:
        res = store.search(queries, 10, where)
        for j, q in enumerate(queries):
            _assert_topk(res.ids[j], res.scores[j], mat @ q, ids, _mask(recs, where), 10)
    with pytest.raises(StoreError, match="2.4"):
        store.lexical_search({1: 1.0}, 5)  # 2.3 has no sparse vectors
    store.close()


def test_strong_consistency_read_after_write(server):
    writer, reader = _open(server, "strong"), None
    writer.upsert(_records(20))
    for i, rec in enumerate(_records(8, seed=9, prefix="fresh")):
        rec.doc_id, rec.year = "fresh-doc", 2030
        writer.upsert([rec])
        # A second client opened after the write, as an app replica reopens the store when it sees the
        # new build: it reads Strong for FRESH_S seconds (one client kept open longer reads Bounded,
        # which on a loaded machine made this test time-dependent).
        if reader is not None:
            reader.close()
        reader = _open(server, "strong")
        assert reader.search(rec.vector, 1, Filter(doc_ids=["fresh-doc"], years=[2030])).ids == [[rec.id]]
        assert reader.count() == 21 + i
    writer.delete(doc_ids=["fresh-doc"])
    assert reader.count() == 20 and reader.search(rec.vector, 1, Filter(doc_ids=["fresh-doc"])).ids == [[]]


def test_bounded_reads_are_stale_right_after_a_write(server):
    """Why the store asks for Strong: 2.3's Bounded reads miss fresh rows (measured 20 of 20)."""
    store = _open(server, "bounded")
    store.upsert(_records(5))
    stale = {"Bounded": 0, "Strong": 0}
    for i, r in enumerate(_records(10, seed=3, prefix="x")):
        store.client.insert(store.version, [{"id": r.id, "doc_id": "d", "year": 1, "tf": {"tf": None}, "dense": r.vector.tolist()}])
        for level in stale:
            rows = store.client.query(store.version, filter="", output_fields=["count(*)"], consistency_level=level)
            stale[level] += rows[0]["count(*)"] != 6 + i
    log.info("stale reads right after an insert, of 10: %s", stale)
    assert stale["Strong"] == 0 and stale["Bounded"] > 0


def test_alias_switch_and_replica_refresh(server):
    store, replica = _open(server, "alias"), None
    store.upsert(_records(10, seed=1, prefix="old"))
    replica = _open(server, "alias")
    staged = store.stage()
    staged.upsert(_records(12, seed=2, prefix="new"))
    store.promote(staged)
    assert store.client.describe_alias("alias")["collection_name"] == store.version
    assert replica.refresh() and replica.version == store.version and replica.count() == 12


def test_data_survives_kill_9(server):
    store = _open(server, "durable")
    recs = _records(30)
    store.upsert(recs)
    before = store.search(recs[4].vector, 5)
    store.close()
    server.kill(signal.SIGKILL)
    log.info("restarted after kill -9 in %.1f s", server.start())
    again = _open(server, "durable")
    assert again.count() == 30 and again.search(recs[4].vector, 5).ids == before.ids
    again.upsert([PassageRecord("after", "d", 2020, recs[0].vector)])
    assert again.count() == 31
