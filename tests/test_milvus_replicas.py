"""Two app replicas on one knowledge base with a real Milvus server (the PyPI ``milvus`` 2.3.5 standalone).

Each replica is its own process (an :class:`~qa.service.Service` over the shared ``WENDA_HOME``,
searching ``WENDA_STORE=milvus://127.0.0.1:<port>``), driven over stdin/stdout. A document uploaded
through one is answered by the other without a restart, and a deletion disappears the same way.
Milvus 2.3 has no sparse vectors, so the replicas' BM25 channel runs on the shared catalog's bm25s.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import datetime, timezone

import pytest

from tests.test_milvus_server import server  # noqa: F401  (the module-scoped server fixture)

from .conftest import ROOT

pytestmark = pytest.mark.slow

REPLICA = r"""
import json, logging, sys
logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
from qa.service import Service
from index.stores.local_store import LocalPassageStore
service = Service()
a = service.assistant("reports")
print(json.dumps({"ready": True, "store": type(a.index.store).__name__,
                  "lexical_local": isinstance(a.index.lexical, LocalPassageStore)}), flush=True)
for line in sys.stdin:
    cmd = json.loads(line)
    if cmd["op"] == "ask":
        ans = service.assistant("reports").ask(cmd["q"])
        out = {"short": ans.short_answer, "not_found": ans.not_found, "docs": [c.doc_id for c in ans.citations],
               "passages": len(service.assistant("reports").index.passages)}
    elif cmd["op"] == "add":
        service.kb("reports").add_file(cmd["name"], cmd["text"].encode("utf-8"))
        service.changed("reports")
        out = {"ok": True}
    elif cmd["op"] == "delete":
        service.kb("reports").delete(cmd["doc"])
        service.changed("reports")
        out = {"ok": True}
    print(json.dumps(out, ensure_ascii=False), flush=True)
"""

GARDEN = ("# 星河湾社区花园建设方案\n\n2026年星河湾社区将建成屋顶花园12处，新增社区绿地面积3.5万平方米。\n\n"
          "社区花园由居民议事会负责日常维护，每季度公开维护账目。\n")
QUESTION = "2026年星河湾社区将建成屋顶花园多少处？"


class Replica:
    """One app process; ``call`` sends a JSON command and reads the JSON reply."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", REPLICA], cwd=ROOT, env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        self.hello = self._read()

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"replica pid {self.proc.pid} exited with {self.proc.wait(timeout=30)}")
        return json.loads(line)

    def call(self, **cmd) -> dict:
        self.proc.stdin.write(json.dumps(cmd, ensure_ascii=False) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)


def test_upload_through_one_replica_is_answered_by_the_other(server, tmp_path, built_index, corpus_copy, embedder):  # noqa: F811
    from index.builder import build_index, read_manifest

    home = tmp_path / "home"
    folder = home / "kbs" / "reports"
    shutil.copytree(corpus_copy, folder / "corpus")
    shutil.copytree(built_index, folder / "index")  # the session's vectors: nothing is embedded again
    (folder / "kb.json").write_text(json.dumps({"name": "reports", "title": "reports", "seed": "",
                                                "created_at": datetime.now(timezone.utc).isoformat()}), encoding="utf-8")
    (home / ".seeded").touch()
    env = dict(os.environ, WENDA_HOME=str(home), WENDA_KB="reports", WENDA_STORE=server.uri)
    old = os.environ.get("WENDA_STORE")
    os.environ["WENDA_STORE"] = server.uri
    try:
        build_index(folder / "corpus", folder / "index", embedder, progress=False)  # mirror into the server
    finally:
        if old is None:
            os.environ.pop("WENDA_STORE")
        else:
            os.environ["WENDA_STORE"] = old
    assert read_manifest(folder / "index")["store"]["uri"] == server.uri

    a, b = Replica(env), None
    try:
        b = Replica(env)
        for r in (a, b):
            assert r.hello == {"ready": True, "store": "MilvusPassageStore", "lexical_local": True}
        before = b.call(op="ask", q=QUESTION)
        assert "garden.md" not in before["docs"]

        assert a.call(op="add", name="garden.md", text=GARDEN) == {"ok": True}
        after = b.call(op="ask", q=QUESTION)
        assert after["short"] == "12处" and after["docs"][0] == "garden.md"
        assert after["passages"] == before["passages"] + read_manifest(folder / "index")["documents"]["garden.md"]["passages"]

        assert a.call(op="delete", doc="garden.md") == {"ok": True}
        gone = b.call(op="ask", q=QUESTION)
        assert "garden.md" not in gone["docs"] and gone["passages"] == before["passages"]
    finally:
        for r in (a, b):
            if r is not None:
                r.stop()
