"""Saved conversations, Markdown export and answer feedback (issue 14, points 5 and 6), without a server:
turns kept in the browser copy and restored (re-rendered, malformed ones dropped), every answer's markers
linked to its own sources, the export's citations, feedback lines and ``python -m eval feedback``."""
from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from qa import Answer, Citation

PASSAGE = "2025年，太原市将新增养老床位2000张，建成社区食堂100个。"
SENTENCE = "新增养老床位2000张"


def make_answer(question: str = "新增养老床位多少张？", page: int | None = 3) -> Answer:
    start = PASSAGE.index(SENTENCE)
    citation = Citation(n=1, passage_id="p1", doc_id="003_report.pdf", title="政府工作报告", date="2025-01-20",
                        section="二、民生 › 养老", text=PASSAGE, start=start, end=start + len(SENTENCE),
                        doc_start=0, score=0.9, page=page)
    return Answer(question=question, rewritten_query=question, short_answer="2000张", sentence=SENTENCE,
                  citations=[citation], confidence=0.8, lang="zh")


def turn(question: str = "新增养老床位多少张？", kb: str = "demo") -> dict:
    from ui.conversation import new_turn

    version = {"model": {"id": "bge-small", "sha256": "abc"}, "index": {"built_at": "2026-01-01T00:00:00+00:00",
                                                                        "format_version": 7}}
    return new_turn(make_answer(question), kb, version, "zh")


# --------------------------------------------------------------------------- display
def test_every_answer_links_to_its_own_sources():
    from ui.conversation import chat_messages, sources_panel

    turns = [turn("第一问？"), turn("第二问？"), turn("第三问？")]
    msgs = chat_messages(turns)
    assert 'href="#src-1-1"' in msgs[1]["content"] and 'href="#src-2-1"' in msgs[3]["content"]
    assert 'href="#src-1"' in msgs[5]["content"]  # the latest answer keeps the plain ids
    panel = sources_panel(turns, turns[-1]["sources_html"])
    assert panel.count('id="src-1"') == 1 and 'id="src-1-1"' in panel and 'id="src-2-1"' in panel
    assert panel.count(" hidden>") == 2 and "第 1 问的来源：第一问？" in panel


def test_every_earlier_answer_stays_linked_to_its_sources():
    from ui.conversation import chat_messages, message_turn, sources_panel

    turns = [turn(f"第{i}问？") for i in range(1, 15)]
    turns.insert(5, message_turn("你好？", "知识库不可用", "demo", "知识库不可用"))  # no sources: plain
    msgs = chat_messages(turns)
    panel = sources_panel(turns, turns[-1]["sources_html"])
    for t in range(1, len(turns)):
        if t == 6:
            assert "<a " not in msgs[2 * t - 1]["content"] and 'id="src-6-1"' not in panel
            continue
        assert f'href="#src-{t}-1"' in msgs[2 * t - 1]["content"], t
        assert f'id="src-{t}-1"' in panel and f'data-turn="{t}" hidden>' in panel, t
    assert panel.count(" hidden>") == len(turns) - 2 and panel.count('id="src-1"') == 1


# --------------------------------------------------------------------------- browser copy
def test_browser_copy_round_trip_re_renders_and_keeps_votes():
    from ui.conversation import restore_turns, save_state

    turns = [turn("第一问？"), {**turn("第二问？"), "vote": "down"}]
    saved = json.loads(json.dumps(save_state(None, "demo", turns)))  # what the browser gives back
    assert "sources_html" not in json.dumps(saved)
    restored = restore_turns(saved, "demo")
    assert [t["question"] for t in restored] == ["第一问？", "第二问？"]
    assert restored[1]["vote"] == "down" and restored[0]["answer_md"] == turns[0]["answer_md"]
    assert restored[0]["sources_html"] == turns[0]["sources_html"]
    assert restore_turns(saved, "other") == []


def test_browser_copy_keeps_compact_citations_that_still_show_and_locate_the_span():
    from ui.conversation import (
        CONTEXT_CHARS,
        compact_citation,
        new_turn,
        restore_turns,
        save_state,
    )

    long_passage = "前文" * 150 + PASSAGE + "后文" * 150
    start = long_passage.index(SENTENCE)
    answer = make_answer()
    answer.citations[0].text, answer.citations[0].start = long_passage, start
    answer.citations[0].end, answer.citations[0].doc_start = start + len(SENTENCE), 1000
    t = new_turn(answer, "demo", {}, "zh")
    saved = json.loads(json.dumps(save_state(None, "demo", [t])))
    c = saved["kbs"]["demo"][0]["answer"]["citations"][0]
    assert len(c["text"]) == len(SENTENCE) + 2 * CONTEXT_CHARS + 2 and c["text"].startswith("…")
    assert c["text"][c["start"]:c["end"]] == SENTENCE and c["doc_start"] + c["start"] == 1000 + start
    assert {"passage_id", "doc_id", "title", "date", "section", "page"} <= c.keys()
    assert compact_citation(c) == c  # idempotent: a restored turn saved again is unchanged
    restored = restore_turns(saved, "demo")[0]
    assert "<mark>新增养老床位<strong>2000张</strong></mark>" in restored["sources_html"] and 'id="src-1"' in restored["sources_html"]
    assert f'data-start="{1000 + start}" data-end="{1000 + start + len(SENTENCE)}"' in restored["sources_html"]
    assert save_state(None, "demo", [restored])["kbs"]["demo"][0]["answer"] == saved["kbs"]["demo"][0]["answer"]


def test_browser_copy_stays_under_its_size_budget(monkeypatch):
    from ui import conversation

    def size(value) -> int:
        return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())

    one = size(conversation.stored([turn("第0问？")]))
    monkeypatch.setattr(conversation, "MAX_STORED_BYTES", int(4.5 * one))
    saved = conversation.save_state(None, "old", [turn("旧一？"), turn("旧二？")])
    saved = conversation.save_state(saved, "demo", [turn(f"第{i}问？") for i in range(6)])
    assert "old" not in saved["kbs"]  # another knowledge base's turns go first, then the oldest
    assert [t["question"] for t in saved["kbs"]["demo"]] == ["第2问？", "第3问？", "第4问？", "第5问？"]
    assert size(saved) <= 4.5 * one
    monkeypatch.setattr(conversation, "MAX_STORED_BYTES", 10)
    assert len(conversation.save_state(saved, "demo", [turn("a？"), turn("b？")])["kbs"]["demo"]) == 1  # latest kept


def test_tampered_browser_copy_is_escaped_or_dropped():
    from ui.conversation import restore_turns, save_state

    saved = save_state(None, "demo", [turn()])
    item = saved["kbs"]["demo"][0]
    item["question"] = "<img src=x onerror=alert(1)>"
    item["answer"]["citations"][0]["title"] = "<script>alert(1)</script>"
    saved["kbs"]["demo"].append({"question": "ok?", "answer": {"citations": [{"n": "x"}]}})  # malformed
    saved["kbs"]["demo"].append("junk")
    restored = restore_turns(saved, "demo")
    assert len(restored) == 1
    assert "<script>" not in restored[0]["sources_html"] and "&lt;script&gt;" in restored[0]["sources_html"]
    assert restore_turns({"kbs": "nope"}, "demo") == [] and restore_turns(None, "demo") == []


# --------------------------------------------------------------------------- export
def test_markdown_export_has_the_citations():
    from ui.conversation import export_markdown, message_turn

    turns = [turn(), message_turn("你好吗？", "资料中没有找到这个问题的答案。", "demo", "x")]
    text = export_markdown(turns, "太原报告", "2026-12-01 00:00 UTC", "zh")
    assert text.startswith("# 问答 Wenda 对话记录 · 太原报告")
    assert "## 1. 新增养老床位多少张？" in text and "**2000张**" in text and f"{SENTENCE} [1]" in text
    assert "**[1] 政府工作报告** · 2025-01-20 · 二、民生 › 养老 · 第3页 · `003_report.pdf`" in text
    assert f"   > {SENTENCE}" in text
    assert "## 2. 你好吗？" in text and "资料中没有找到" in text
    en = export_markdown([turn()], "Reports", "2026-12-01 00:00 UTC", "en")
    assert "Sources:" in en and "p. 3" in en and "Exported 2026-12-01 00:00 UTC · 1 questions" in en


# --------------------------------------------------------------------------- feedback
def test_feedback_record_and_concurrent_appends(tmp_path):
    from ui.feedback import append_record, build_record, latest_votes, read_feedback

    t = turn()
    rec = build_record(t, "down", "  数字不对  ")
    assert rec["question"] == "新增养老床位多少张？" and rec["rewritten_query"] == "新增养老床位多少张？"
    assert rec["answer"]["short_answer"] == "2000张" and rec["answer"]["sentence"] == SENTENCE
    assert rec["citations"] == [{"n": 1, "doc_id": "003_report.pdf", "title": "政府工作报告",
                                 "section": "二、民生 › 养老", "page": 3, "span": SENTENCE}]
    assert rec["comment"] == "数字不对" and rec["model"]["sha256"] == "abc" and rec["index"]["format_version"] == 7
    with pytest.raises(ValueError):
        build_record(t, "maybe")

    path = tmp_path / "home" / "feedback.jsonl"
    big = build_record(t, "up", "长" * 1500)

    def write(n: int) -> None:
        for _ in range(n):
            append_record(big, path)

    threads = [threading.Thread(target=write, args=(20,)) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    append_record(rec, path)
    with path.open("a", encoding="utf-8") as fh:
        fh.write("not json\n")
    records, bad = read_feedback(path)
    assert len(records) == 81 and bad == 1  # no line torn by a concurrent writer
    merged = latest_votes(records)
    assert len(merged) == 1 and merged[0]["vote"] == "down" and merged[0]["comment"] == "数字不对"


def test_eval_feedback_summary_and_drafts(tmp_path, monkeypatch, capsys):
    from eval.__main__ import main
    from ui.feedback import append_record, build_record

    monkeypatch.setenv("WENDA_HOME", str(tmp_path))
    path = tmp_path / "feedback.jsonl"
    a, b, c = turn("新增养老床位多少张？"), turn("What is the GDP growth rate?", kb="other"), turn("为什么要建食堂？")
    append_record(build_record(a, "down"), path)
    append_record(build_record(a, "down", "应该是2000张以上"), path)
    append_record(build_record(b, "down"), path)
    append_record(build_record(c, "up"), path)
    append_record(build_record(turn("新增养老床位多少张？"), "down"), path)  # the same question again
    assert main(["feedback", "--drafts", str(tmp_path / "drafts.jsonl")]) == 0
    out = capsys.readouterr().out
    assert "👍 1  👎 3" in out and "demo: 👍 1  👎 2" in out and "other: 👍 0  👎 1" in out
    assert "2× [demo] 新增养老床位多少张？  — 应该是2000张以上" in out
    drafts = [json.loads(line) for line in (tmp_path / "drafts.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(drafts) == 2
    d = next(x for x in drafts if x["lang"] == "zh")
    assert d["question"] == "新增养老床位多少张？" and d["type"] == "number" and d["draft"] is True
    assert d["answers"] == [] and d["evidence"] == [] and d["doc"] == []
    assert d["feedback_comment"] == "应该是2000张以上" and d["feedback_cited_docs"] == ["003_report.pdf"]
    assert next(x for x in drafts if x["lang"] == "en")["type"] == "en"

    assert main(["feedback", "--file", str(tmp_path / "missing.jsonl")]) == 2


@pytest.mark.parametrize("question, kind", [
    ("2025年新增养老床位多少张？", "number"), ("太原有哪些重点项目？", "list"), ("为什么要建设社区食堂？", "explain"),
    ("地铁2号线什么时候开通？", "time"), ("谁负责这个项目？", "entity"), ("How many beds?", "en"),
])
def test_guess_type(question, kind):
    from eval.feedback import guess_type

    assert guess_type(question) == kind


# --------------------------------------------------------------------------- handlers
@pytest.fixture()
def svc(tmp_path, monkeypatch):
    """A private workspace (the bundled corpus seeded into it, no index) for the handlers."""
    from index.workspace import Workspace
    from qa.service import Service
    from ui import handlers

    service = Service(Workspace(tmp_path / "home"))
    monkeypatch.setattr(handlers, "SERVICE", service)
    return service


def test_vote_and_comment_handlers_write_lines(svc):
    import gradio as gr

    from ui.feedback import read_feedback
    from ui.session import record_vote, send_comment

    kb = svc.default
    turns = [turn("第一问？", kb), turn("第二问？", kb)]
    new_turns, row, target = record_vote(turns, gr.LikeData(None, {"index": 3, "value": [], "liked": False}))
    assert new_turns[1]["vote"] == "down" and row["visible"] is True and target == 1
    box, row = send_comment("  应为2000张  ", target, new_turns)
    assert box == "" and row["visible"] is False
    records, _ = read_feedback(svc.workspace.home / "feedback.jsonl")
    assert [(r["question"], r["vote"], r["comment"]) for r in records] == [
        ("第二问？", "down", ""), ("第二问？", "down", "应为2000张")]
    assert records[0]["kb"] == kb and records[0]["answer_id"] == turns[1]["id"]

    out = record_vote(turns, gr.LikeData(None, {"index": 5, "value": [], "liked": True}))  # the pending placeholder
    assert all(isinstance(x, dict) and x.get("__type__") == "update" for x in out)
    assert len(read_feedback(svc.workspace.home / "feedback.jsonl")[0]) == 2


def test_turns_change_saves_the_copy_and_exports_markdown(svc):
    from ui.session import restore_chat, turns_changed

    kb = svc.default
    saved, button = turns_changed([turn("第一问？", kb)], kb, None)
    assert saved["kb"] == kb and len(saved["kbs"][kb]) == 1
    assert button["visible"] is True
    text = Path(button["value"]).read_text(encoding="utf-8")
    assert "## 1. 第一问？" in text and f"> {SENTENCE}" in text

    kb_update, chat, sources, _, turns, _ = restore_chat(saved, kb)
    assert kb_update["__type__"] == "update" and "value" not in kb_update  # the kb shown is the saved one
    assert [t["question"] for t in turns] == ["第一问？"] and 'id="src-1"' in sources
    assert chat["feedback_value"] == [None] and chat["value"][0]["content"] == "第一问？"
    assert turns_changed([], kb, saved)[1]["visible"] is False
