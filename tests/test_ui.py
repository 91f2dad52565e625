"""The web UI's handlers without a server (issue 14): admin password, read-only mode, start-up refusal,
user mistakes shown as messages (no exception, one log line, upload box cleared), interface language."""
from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


class FakeRequest:
    """Just enough of gr.Request for the handlers: the browser's Accept-Language."""

    def __init__(self, lang: str) -> None:
        self.headers = {"accept-language": lang}


@pytest.fixture()
def svc(tmp_path, monkeypatch):
    """A private workspace (the bundled corpus seeded into it, no index) for the handlers."""
    from index.workspace import Workspace
    from qa.service import Service
    from ui import handlers

    service = Service(Workspace(tmp_path / "home"))
    monkeypatch.setattr(handlers, "SERVICE", service)  # restored after the test
    monkeypatch.delenv("WENDA_ADMIN_PASSWORD", raising=False)
    monkeypatch.delenv("WENDA_READ_ONLY", raising=False)
    return service


def wenda_records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "wenda.app"]


# --------------------------------------------------------------------------- admin password
def test_editing_refusal_rules(monkeypatch):
    from ui.admin import editing_refusal

    monkeypatch.delenv("WENDA_READ_ONLY", raising=False)
    monkeypatch.delenv("WENDA_ADMIN_PASSWORD", raising=False)
    assert editing_refusal("", "upload") is None  # no password configured: open (localhost only)
    monkeypatch.setenv("WENDA_ADMIN_PASSWORD", "pä55")
    assert "需要管理员密码" in editing_refusal("", "upload")
    assert "Wrong admin password" in editing_refusal("pass", "upload", "en")
    assert editing_refusal("pä55", "upload") is None
    monkeypatch.setenv("WENDA_READ_ONLY", "1")
    assert "只读模式" in editing_refusal("pä55", "upload")


def test_handlers_refuse_without_password_and_change_nothing(svc, monkeypatch, caplog):
    import app

    monkeypatch.setenv("WENDA_ADMIN_PASSWORD", "s3cret")
    before = [i.name for i in svc.list()]
    caplog.set_level(logging.INFO)
    with pytest.warns(UserWarning, match="管理员密码"):  # gr.Warning outside a request
        message, _ = app.kb_create("newkb", "", "")
    assert "需要管理员密码" in message
    for message, *_ in (app.kb_remove("taiyuan", "nope"), app.kb_delete("x.txt", None, "nope"),
                        app.kb_upload(["/etc/hostname"], None, "")):
        assert "管理员密码" in message
    assert [i.name for i in svc.list()] == before
    refusals = [r for r in wenda_records(caplog) if "refused" in r.getMessage()]
    assert len(refusals) == 4 and all(r.exc_info is None for r in refusals)

    message, _ = app.kb_create("newkb", "New", "s3cret")
    assert "newkb" in message and "newkb" in [i.name for i in svc.list()]
    message, _ = app.kb_remove("newkb", "s3cret")
    assert "已删除" in message and "newkb" not in [i.name for i in svc.list()]


def test_without_password_editing_stays_open(svc):
    import app

    message, _ = app.kb_create("openkb")
    assert "已创建" in message


def test_read_only_mode_hides_editing_and_refuses(svc, monkeypatch):
    import app
    from ui import handlers

    monkeypatch.setenv("WENDA_READ_ONLY", "1")
    monkeypatch.setenv("WENDA_ADMIN_PASSWORD", "s3cret")
    message, _ = app.kb_create("newkb", "", "s3cret")
    assert "只读模式" in message and "newkb" not in [i.name for i in svc.list()]

    monkeypatch.setattr(handlers, "SERVICE", None)  # build_demo replaces it; restored after the test
    demo = app.build_demo(svc, preload=False)
    by_id = {c.get("props", {}).get("elem_id"): c["props"] for c in demo.get_config_file()["components"]}
    assert by_id["wenda-editing"]["visible"] is False
    assert by_id["wenda-read-only"]["visible"] is True


# --------------------------------------------------------------------------- start-up
@pytest.mark.parametrize("name, password, read_only, refused", [
    ("0.0.0.0", "", "", True),
    ("192.0.2.7", "", "0", True),
    ("0.0.0.0", "pw", "", False),
    ("0.0.0.0", "", "1", False),
    ("127.0.0.1", "", "", False),
    ("localhost", "", "", False),
    ("::1", "", "", False),
])
def test_startup_error(monkeypatch, name, password, read_only, refused):
    from ui.admin import startup_error

    monkeypatch.setenv("WENDA_ADMIN_PASSWORD", password)
    monkeypatch.setenv("WENDA_READ_ONLY", read_only)
    assert (startup_error(name) is not None) == refused


def test_main_exits_2_beyond_localhost_and_warns_on_localhost(monkeypatch, caplog):
    import app

    launched = {}

    class FakeDemo:
        def launch(self, **kwargs):
            launched.update(kwargs)

    monkeypatch.setattr(app, "build_demo", FakeDemo)
    monkeypatch.delenv("WENDA_ADMIN_PASSWORD", raising=False)
    monkeypatch.delenv("WENDA_READ_ONLY", raising=False)
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")
    with pytest.raises(SystemExit) as exc:
        app.main()
    assert exc.value.code == 2 and not launched

    caplog.clear()
    monkeypatch.setenv("GRADIO_SERVER_NAME", "127.0.0.1")
    app.main()
    assert launched["server_name"] == "127.0.0.1"
    warnings = [r for r in wenda_records(caplog) if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "WENDA_ADMIN_PASSWORD" in warnings[0].getMessage()


# --------------------------------------------------------------------------- user mistakes
def test_empty_question_keeps_the_conversation_and_logs_one_line(svc, caplog):
    import app

    turns = [{"question": "q", "answer_md": "**a**"}]
    caplog.set_level(logging.INFO)
    with pytest.warns(UserWarning, match="请输入问题"):
        out = list(app.chat("  ", turns))
    assert len(out) == 1
    messages, _, _, state, _ = out[0]
    assert state == turns and [m["content"] for m in messages] == ["q", "**a**"]
    lines = wenda_records(caplog)
    assert len(lines) == 1 and lines[0].exc_info is None


def test_rejected_upload_clears_the_box_and_logs_one_line(svc, embedder, tmp_path, caplog):
    import app

    svc._embedder = embedder
    path = tmp_path / "photo.txt"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(2000) + bytes(range(256)) * 4)
    before = sorted(p.name for p in svc.kb().corpus_dir.iterdir())
    caplog.set_level(logging.INFO)
    with pytest.warns(UserWarning, match="photo.txt"):
        out = app.kb_upload([str(path)])
    assert "上传失败" in out[0] and "looks binary" in out[0]
    assert out[-1] is None  # the upload box is cleared
    assert sorted(p.name for p in svc.kb().corpus_dir.iterdir()) == before
    lines = wenda_records(caplog)
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING and lines[0].exc_info is None

    with pytest.warns(UserWarning):
        out = app.kb_upload(None)
    assert "请先选择" in out[0] and out[-1] is None


@pytest.mark.parametrize("name, data, reason", [
    ("empty.txt", b"", "empty"),
    ("tool.exe", b"MZ\x90\x00", "exe"),
])
def test_empty_and_unsupported_uploads_are_messages(svc, embedder, tmp_path, name, data, reason):
    import app

    svc._embedder = embedder
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.warns(UserWarning, match=re.escape(name)):
        out = app.kb_upload([str(path)])
    assert "上传失败" in out[0] and reason in out[0].lower() and out[-1] is None


def test_bad_knowledge_base_name_is_a_message(svc, caplog):
    import app

    caplog.set_level(logging.INFO)
    with pytest.warns(UserWarning):
        message, _ = app.kb_create("Bad Name/..")
    assert message.startswith("未能新建知识库")
    lines = wenda_records(caplog)
    assert len(lines) == 1 and lines[0].exc_info is None


def test_unexpected_error_logs_traceback_and_shows_friendly_message(svc, monkeypatch, caplog):
    import app

    def broken(*_args, **_kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(svc, "assistant", broken)
    caplog.set_level(logging.INFO)
    *_, last = app.chat("How many beds?", [])
    assert "Sorry, something went wrong" in last[0][-1]["content"]
    assert any(r.exc_info for r in wenda_records(caplog))


# --------------------------------------------------------------------------- language
def test_question_errors_use_the_knowledge_base_examples_and_language(svc):
    import app
    from ui.handlers import kb_examples

    zh_example = next(e for e in kb_examples(None) if re.search(r"[\u4e00-\u9fff]", e))
    assert app.friendly_question_error("") == f"请输入问题，例如：{zh_example}"
    en = app.friendly_question_error("", lang="en")
    assert en.startswith("Please type a question, for example: ") and not re.search(r"[\u4e00-\u9fff]", en)
    svc.create("empty-kb")
    assert app.friendly_question_error("", kb="empty-kb") == "请输入问题。"
    assert app.friendly_question_error("🙂🙂", lang="en") == "The question has no words; please ask in Chinese or English."
    assert "太长" in app.friendly_question_error("问" * 600, lang="en")  # the question's language wins


def test_ui_code_names_no_corpus():
    for path in [ROOT / "app.py", *sorted((ROOT / "ui").glob("*.py"))]:
        assert "太原" not in path.read_text(encoding="utf-8"), path


def test_strings_exist_in_both_languages_and_follow_the_request():
    from ui.i18n import I18N, STRINGS, question_lang, request_lang, tr

    assert set(I18N.translations_dict) == {"zh", "en"}
    assert I18N.translations_dict["zh"].keys() == I18N.translations_dict["en"].keys() == STRINGS.keys()
    assert request_lang(FakeRequest("en-US,en;q=0.9")) == "en"
    assert request_lang(FakeRequest("zh-CN,zh;q=0.9")) == "zh"
    assert request_lang(FakeRequest("fr")) == "en"
    assert request_lang(None) == "zh"  # API clients without the header: the default
    assert question_lang("How many?", "zh") == "en" and question_lang("？？", "en") == "en"
    assert tr("sources_head", "en", n=2) == "Sources (2)"


def test_localize_and_clear_follow_the_browser_language():
    import app

    style, table, placeholder, _, _ = app.localize(None, FakeRequest("en-US"))
    assert ("Automatic", "auto") in style["choices"] and table["headers"][1] == "Document"
    assert "Ask a question" in placeholder
    assert "提问后" in app.clear_chat(FakeRequest("zh-CN"))[1]


def test_heading_and_selector_show_the_title_in_the_interface_language(svc):
    import app
    from index.workspace import corpus_profile

    kb = svc.default
    profile = corpus_profile(svc.kb(kb).corpus_dir)
    assert profile["title"] and profile["title_en"] and profile["title"] != profile["title_en"]
    assert app.header_md(kb, "zh").endswith(app.md_text(profile["title"]))
    assert app.header_md(kb, "en").endswith(app.md_text(profile["title_en"]))
    _, _, _, header, selector = app.localize(kb, FakeRequest("en-US"))
    assert header == app.header_md(kb, "en") and (f"{profile['title_en']} ({kb})", kb) in selector["choices"]
    assert app.localize(kb, FakeRequest("zh-CN"))[3] == app.header_md(kb, "zh")
    svc.create("notes", "我的笔记")  # no title_en: the English page shows its own title
    assert app.header_md("notes", "en").endswith("我的笔记") and ("我的笔记 (notes)", "notes") in app.kb_choices("en")
    assert app.kb_switch("notes", None, FakeRequest("en-US"))[0] == app.header_md("notes", "en")


def test_toast_titles_follow_the_interface_language(svc, monkeypatch):
    import gradio as gr

    import app
    from ui.session import send_comment

    toasts: list[tuple[str, str, str]] = []
    monkeypatch.setattr(gr, "Warning", lambda message, title="Warning", **_: toasts.append(("warning", title, message)))
    monkeypatch.setattr(gr, "Info", lambda message, title="Info", **_: toasts.append(("info", title, message)))
    list(app.chat("  ", [], request=FakeRequest("en-US")))
    list(app.chat("  ", [], request=FakeRequest("zh-CN")))
    app.kb_upload(None, request=FakeRequest("en-US"))
    app.kb_create("Bad Name/..", request=FakeRequest("zh-CN"))
    turns = [{"id": "t1", "question": "q", "answer": None, "vote": "down"}]
    send_comment("too low", 0, turns, FakeRequest("en-US"))
    send_comment("太低", 0, turns, FakeRequest("zh-CN"))
    assert [(kind, title) for kind, title, _ in toasts] == [
        ("warning", "Warning"), ("warning", "注意"), ("warning", "Warning"), ("warning", "注意"),
        ("info", "Info"), ("info", "提示")]
    assert toasts[0][2].startswith("Please type a question") and toasts[1][2].startswith("请输入问题")
