"""End-to-end tests of the web app's handlers through gradio_client, on a private corpus and index copy."""
from __future__ import annotations

import json
import re
import shutil
import socket
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "data" / "corpus" / "taiyuan"
GOLD_Q = "2025年太原新增养老床位多少张？"
GOLD_DOC = "003_7da918cca5064f34.txt"
FACT_TEXT = (
    "# 太原市星河湖水晶博物馆建设情况\n\n"
    "2025年，太原市在星河湖畔开工建设水晶博物馆，总投资3.7亿元，建筑面积2.6万平方米，计划于2026年10月建成开馆。\n\n"
    "博物馆将展出来自全国各地的水晶标本1200余件。\n"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(workdir: Path, built_index: Path, embedder) -> tuple[Any, str, Path, Path]:
    """Launch the app in-process on a free port over a private workspace (the bundled corpus seeded
    into it, the session index copied beside it so nothing is re-embedded).

    Returns:
        (demo, url, corpus dir, index dir) of the default knowledge base.
    """
    import app
    from index.workspace import Workspace
    from qa.service import Service

    ws = Workspace(workdir / "home")
    folder = ws.path("taiyuan")
    shutil.copytree(built_index, folder / "index")
    svc = Service(ws, embedder)
    demo = app.build_demo(svc, preload=False)
    svc.assistant()  # load before the first request
    _, url, _ = demo.launch(prevent_thread_lock=True, server_port=free_port(), quiet=True)
    return demo, url, folder / "corpus", folder / "index"


@pytest.fixture(scope="module")
def server(tmp_path_factory, built_index, embedder):
    demo, url, corpus, index_dir = start_app(tmp_path_factory.mktemp("app"), built_index, embedder)
    yield {"url": url, "corpus": corpus, "index": index_dir}
    demo.close()


@pytest.fixture()
def client(server):
    from gradio_client import Client

    return Client(server["url"], verbose=False)


def message_text(message: dict) -> str:
    """Text of a chat message whatever its content format."""
    content = message.get("content")
    if isinstance(content, list):
        return "".join(c.get("text", "") if isinstance(c, dict) else str(c) for c in content)
    return str(content)


def chat(client, question: str, k: int = 5, docs: list[str] | None = None, years: list[str] | None = None,
         style: str = "auto") -> tuple[list[dict], str, Any]:
    """(messages, sources html, debug table) after asking through the chat handler."""
    out = client.predict(question, k, docs or [], years or [], style, api_name="/chat")
    messages, sources, table = out[0], out[1], out[2]
    return messages, sources, table


def corpus_files(corpus: Path) -> list[str]:
    return sorted(p.name for p in corpus.iterdir())


# --------------------------------------------------------------------------- API
def test_ask_api_returns_documented_dict(client):
    r = client.predict(GOLD_Q, api_name="/ask")
    json.dumps(r)  # JSON-serialisable
    for key in ("answer", "short_answer", "sentence", "summary", "not_found", "rewritten_query", "citations"):
        assert key in r
    assert r["not_found"] is False
    assert "2000张" in r["short_answer"]
    c = r["citations"][0]
    for key in ("id", "doc", "title", "date", "section", "text", "start", "end"):
        assert key in c
    assert c["doc"] == GOLD_DOC
    assert c["text"][c["start"]:c["end"]] == r["sentence"]
    assert "[1]" in r["answer"]


def test_ask_api_follow_up_history(client):
    r = client.predict("那2022年呢？", [GOLD_Q], 5, api_name="/ask")
    assert r["rewritten_query"].startswith("2022年")


@pytest.mark.parametrize("question, expected", [
    ("", "请输入问题，例如：2025年太原新增养老床位多少张？"),  # the knowledge base's own example
    ("   ", "请输入问题"),
    ("太原" * 300, "太长"),
    ("？？！！", "没有可识别的文字"),
    ("why " * 200, "The question has 799 characters"),
])
def test_unusable_questions_give_friendly_errors(client, question, expected):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match=expected):
        client.predict(question, api_name="/ask")
    # The chat shows a toast and leaves the conversation as it was: no error.
    messages, _, _ = chat(client, question)
    assert messages == []


# --------------------------------------------------------------------------- chat
def test_chat_answer_has_bold_short_answer_linked_markers_and_marked_sources(client):
    messages, sources, table = chat(client, GOLD_Q)
    answer = message_text(messages[-1])
    assert "**2000张**" in answer
    assert '<a href="#src-1"' in answer
    assert 'id="src-1"' in sources and "<mark>" in sources
    assert "2025年太原市政府工作报告要点" in sources
    rows = table["data"] if isinstance(table, dict) else table
    assert rows and len(rows[0]) == 11  # debug table: channels' ranks and scores


def test_chat_follow_up_is_rewritten_and_shown(client):
    chat(client, GOLD_Q)
    messages, sources, _ = chat(client, "那2022年呢？")
    assert len(messages) == 4
    latest = message_text(messages[-1])
    assert "理解为：2022年太原新增养老床位多少张？" in latest
    # the older answer's markers link to its own sources, kept (hidden) in the panel
    assert '<a href="#src-1-1"' in message_text(messages[1]) and 'id="src-1-1"' in sources
    assert 'id="src-1"' in sources or 'id="rel-1"' in sources


def test_chat_english_question_is_answered_the_same_way(client):
    messages, sources, _ = chat(client, "How many new elderly-care beds will Taiyuan add in 2025?")
    reply = message_text(messages[-1])
    # Plumbing only: answer quality for English questions belongs to qa/ and eval/.
    assert '<a href="#src-1"' in reply or "The documents don't say" in reply or "A related passage was found" in reply
    assert 'class="wenda-card"' in sources


def test_chat_settings_restrict_documents_and_years(client):
    _, sources, _ = chat(client, "地区生产总值增长多少？", years=["2021"])
    assert "wenda-card" in sources
    for doc in ("000_3fb2685dc506a497.txt", "003_7da918cca5064f34.txt", "004_dcf08f31ebd92ceb.txt"):
        assert doc not in sources
    _, sources, _ = chat(client, "地区生产总值增长多少？", docs=[GOLD_DOC], k=3, style="summary")
    sources = sources.split('" hidden>', 1)[0]  # the latest answer's sources (earlier answers' follow, hidden)
    docs_shown = {d for d in ("000_3fb2685dc506a497.txt", "001_235c536e8061af74.txt", "002_48b335a43732d2b5.txt",
                              "003_7da918cca5064f34.txt", "004_dcf08f31ebd92ceb.txt") if d in sources}
    assert docs_shown <= {GOLD_DOC}


def test_html_is_escaped():
    import app
    from index.types import Passage
    from qa.types import Answer, Citation, Hit

    evil = '<img src=x onerror="alert(1)">'
    text = f"前文{evil}新增养老床位2000张。后文"
    start = text.index("新增")
    cit = Citation(1, "p1", "d<1>.txt", f"标题{evil}", "2025", f"章节{evil}", text, start, start + 12, 0, 1.0)
    answer = Answer(question=f"{evil}？", rewritten_query=f"{evil}？", short_answer="2000张", sentence=text[start:start + 12],
                    citations=[cit])
    html_out = app.render_sources(answer)
    assert "<img" not in html_out and "&lt;img" in html_out
    assert "<mark>新增养老床位<strong>2000张</strong>。</mark>" in html_out
    assert "<img" not in app.render_answer_md(answer)
    passage = Passage("p2", "d.txt", evil, "2025", 2025, evil, evil, 0, len(evil), 0)
    refused = Answer(question="q", rewritten_query="q", not_found=True, message="没有找到", related=[Hit(passage, 0.5)])
    assert "<img" not in app.render_sources(refused) and 'id="rel-1"' in app.render_sources(refused)


def test_chat_escapes_question(client):
    messages, _, _ = chat(client, "<script>alert(1)</script>太原新增养老床位多少张？")
    assert "<script>" not in message_text(messages[0])


# --------------------------------------------------------------------------- knowledge base
def test_kb_refresh_lists_documents_and_status(client):
    table, status, *_ = client.predict(api_name="/kb_refresh")
    rows = table["data"] if isinstance(table, dict) else table
    assert {r[0] for r in rows} >= {GOLD_DOC}
    assert any(r[1] == "2025年太原市政府工作报告要点" and r[3] > 0 and r[4] for r in rows)
    assert "段落" in status and "e5" in status


def test_kb_upload_gbk_file_is_cited_then_delete_removes_it(client, server, tmp_path):
    from gradio_client import handle_file

    path = tmp_path / "xinghe_museum.txt"
    path.write_bytes(FACT_TEXT.encode("gbk"))
    message, table, *_ = client.predict([handle_file(str(path))], api_name="/kb_upload")
    assert "已添加" in message and "xinghe\\_museum.txt" in message  # markdown-escaped
    assert (server["corpus"] / "xinghe_museum.txt").read_bytes() == path.read_bytes()
    rows = table["data"] if isinstance(table, dict) else table
    assert any(r[0] == "xinghe_museum.txt" and r[1] == "太原市星河湖水晶博物馆建设情况" for r in rows)

    r = client.predict("星河湖水晶博物馆总投资多少？", api_name="/ask")
    assert not r["not_found"]
    assert r["citations"][0]["doc"] == "xinghe_museum.txt"
    assert "3.7亿元" in r["short_answer"]

    message, table, *_ = client.predict("xinghe_museum.txt", api_name="/kb_delete")
    assert "已删除" in message
    assert not (server["corpus"] / "xinghe_museum.txt").exists()
    rows = table["data"] if isinstance(table, dict) else table
    assert all(r[0] != "xinghe_museum.txt" for r in rows)
    r = client.predict("星河湖水晶博物馆总投资多少？", api_name="/ask")
    assert all(c["doc"] != "xinghe_museum.txt" for c in r["citations"])
    assert all(h["doc"] != "xinghe_museum.txt" for h in r["related"])


def test_kb_bad_upload_reports_why_and_changes_nothing(client, server, tmp_path):
    from gradio_client import handle_file
    
    before_files = corpus_files(server["corpus"])
    before_manifest = (server["index"] / "manifest.json").read_text(encoding="utf-8")
    before_table = client.predict(api_name="/kb_refresh")[0]
    path = tmp_path / "photo.txt"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(2000) + bytes(range(256)) * 4)
    out = client.predict([handle_file(str(path))], api_name="/kb_upload")  # a message, not an error
    assert re.search(r"(?s)上传失败.*photo.txt: looks binary", out[0])
    assert out[-1] in (None, [])  # the upload box is cleared
    assert corpus_files(server["corpus"]) == before_files
    assert (server["index"] / "manifest.json").read_text(encoding="utf-8") == before_manifest
    assert client.predict(api_name="/kb_refresh")[0] == before_table


def test_kb_delete_unknown_document_is_refused_with_a_message(client):
    assert "删除失败" in client.predict("no_such_doc.txt", api_name="/kb_delete")[0]
    assert "删除失败" in client.predict("../taiyuan/manifest.json", api_name="/kb_delete")[0]


def test_kb_path_traversal_name_stays_inside_corpus(server):
    import app
    from index.kb import safe_filename

    kb = app.service().kb()
    report = kb.add_file("../../evil.txt", "# 测试文档\n\n这是一份用于测试文件名清理的文档，内容无关紧要。\n".encode())
    try:
        assert "evil.txt" in report.per_document
        assert (server["corpus"] / "evil.txt").is_file()
        assert not (server["corpus"].parent / "evil.txt").exists()
        assert not (server["corpus"].parent.parent / "evil.txt").exists()
    finally:
        kb.delete("evil.txt")
    assert not (server["corpus"] / "evil.txt").exists()
    assert safe_filename("..\\..\\x.md") == "x.md"
    assert safe_filename("/etc/.hidden.TXT") == "hidden.txt"
    for bad in ("", "..", "run.exe", "notes"):
        with pytest.raises(ValueError):
            safe_filename(bad)
    with pytest.raises(ValueError):
        kb.delete("../../etc/passwd.txt")


def test_second_knowledge_base_create_upload_ask_switch_delete(client, server, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    repo_before = corpus_files(CORPUS), (CORPUS / "manifest.json").read_bytes()
    message, _ = client.predict("museums", "博物馆资料", api_name="/kb_create")
    assert "museums" in message
    names = [kb["name"] for kb in client.predict(api_name="/kb_list")]
    assert names[0] == "taiyuan" and "museums" in names
    with pytest.raises(AppError, match="还没有文档"):
        client.predict("星河湖水晶博物馆总投资多少？", [], 5, "extractive", "museums", api_name="/ask")

    path = tmp_path / "xinghe_museum.txt"
    path.write_text(FACT_TEXT, encoding="utf-8")
    message, *_ = client.predict([handle_file(str(path))], "museums", api_name="/kb_upload")
    assert "已添加" in message
    assert not (server["corpus"] / "xinghe_museum.txt").exists()  # not in the default knowledge base
    r = client.predict("星河湖水晶博物馆总投资多少？", [], 5, "extractive", "museums", api_name="/ask")
    assert r["kb"] == "museums" and "3.7亿元" in r["short_answer"]
    assert {c["doc"] for c in r["citations"]} == {"xinghe_museum.txt"}

    r = client.predict(GOLD_Q, api_name="/ask")  # the default knowledge base is unaffected
    assert r["kb"] == "taiyuan" and "2000张" in r["short_answer"]
    assert all(c["doc"] != "xinghe_museum.txt" for c in r["citations"] + r["related"])

    message, _ = client.predict("taiyuan", api_name="/kb_remove")
    assert "未能删除知识库" in message and "default knowledge base" in message
    message, _ = client.predict("museums", api_name="/kb_remove")
    assert "已删除" in message
    with pytest.raises(AppError, match="no knowledge base named 'museums'"):
        client.predict("星河湖水晶博物馆总投资多少？", [], 5, "extractive", "museums", api_name="/ask")
    assert (corpus_files(CORPUS), (CORPUS / "manifest.json").read_bytes()) == repo_before  # repository untouched


# --------------------------------------------------------------------------- admin password (issue 14, point 7)
def test_kb_changes_through_the_api_need_the_admin_password(client, server, tmp_path, monkeypatch):
    from gradio_client import handle_file

    monkeypatch.setenv("WENDA_ADMIN_PASSWORD", "s3cret-pw")
    before = corpus_files(server["corpus"]), (server["index"] / "manifest.json").read_bytes()
    names_before = [kb["name"] for kb in client.predict(api_name="/kb_list")]
    path = tmp_path / "xinghe_museum.txt"
    path.write_text(FACT_TEXT, encoding="utf-8")

    message, *_ = client.predict(GOLD_DOC, api_name="/kb_delete")  # no password
    assert "需要管理员密码" in message
    message, *_ = client.predict(GOLD_DOC, "taiyuan", "wrong", api_name="/kb_delete")
    assert "管理员密码不正确" in message
    message, *_ = client.predict([handle_file(str(path))], api_name="/kb_upload")
    assert "需要管理员密码" in message
    message, _ = client.predict("intruders", "", api_name="/kb_create")
    assert "需要管理员密码" in message
    message, _ = client.predict("taiyuan", api_name="/kb_remove")
    assert "需要管理员密码" in message
    assert (corpus_files(server["corpus"]), (server["index"] / "manifest.json").read_bytes()) == before
    assert [kb["name"] for kb in client.predict(api_name="/kb_list")] == names_before
    assert client.predict(GOLD_Q, api_name="/ask")["short_answer"]  # asking stays open

    message, *_ = client.predict([handle_file(str(path))], "taiyuan", "s3cret-pw", api_name="/kb_upload")
    assert "已添加" in message and (server["corpus"] / "xinghe_museum.txt").exists()
    message, *_ = client.predict("xinghe_museum.txt", "taiyuan", "s3cret-pw", api_name="/kb_delete")
    assert "已删除" in message and not (server["corpus"] / "xinghe_museum.txt").exists()


def test_read_only_mode_refuses_changes_through_the_api(client, server, monkeypatch):
    monkeypatch.setenv("WENDA_READ_ONLY", "1")
    monkeypatch.setenv("WENDA_ADMIN_PASSWORD", "s3cret-pw")
    message, *_ = client.predict(GOLD_DOC, "taiyuan", "s3cret-pw", api_name="/kb_delete")
    assert "只读模式" in message and (server["corpus"] / GOLD_DOC).exists()


def test_app_refuses_to_listen_beyond_localhost_without_password(tmp_path):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("WENDA_ADMIN_PASSWORD", "WENDA_READ_ONLY")}
    env.update(GRADIO_SERVER_NAME="0.0.0.0", WENDA_HOME=str(tmp_path / "home"))
    proc = subprocess.run([sys.executable, str(ROOT / "app.py")], check=False, env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "WENDA_ADMIN_PASSWORD" in lines[0] and "0.0.0.0" in lines[0], proc.stderr
    assert not (tmp_path / "home").exists()  # refused before anything was loaded
