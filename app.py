"""Wenda (问答) web app: chat with cited sources, knowledge-base management and a JSON API.

Run ``python app.py`` (binds 127.0.0.1; honours GRADIO_SERVER_NAME / GRADIO_SERVER_PORT).
Configuration is read from the environment when the demo is built:

* ``WENDA_HOME``: workspace of knowledge bases (default ``~/.local/share/wenda``; the bundled
  corpora are copied in on first use, nothing is written into the repository)
* ``WENDA_KB``: knowledge base selected at start (default: the first bundled corpus)
* ``WENDA_LLM_URL`` (+ ``WENDA_LLM_MODEL``, ``WENDA_LLM_API_KEY``): OpenAI-compatible server that
  enables the optional generated-answer mode (docs/llm.md); without it the switch is disabled

The handlers below are plain functions over :mod:`qa` and :mod:`index.kb`; :func:`build_demo`
only wires them to the UI. (No ``from __future__ import annotations``: gradio reads the API
function's type hints at runtime.)
"""
import html
import logging
import os
import re
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import gradio as gr

from index.ingest import MAX_FILE_BYTES, SUPPORTED_SUFFIXES, IngestError
from index.kb import KnowledgeBase, safe_filename
from index.textproc import has_cjk
from index.workspace import WorkspaceError, corpus_profile
from qa import Answer, Assistant, QuestionError, validate_question
from qa.assistant import MAX_QUESTION_CHARS
from qa.llm import llm_configured
from qa.service import EmptyKnowledgeBase, Service

log = logging.getLogger("wenda.app")

SEARCHING = "正在检索…"
GENERATING = "正在生成（本地模型，逐句核对原文）…"
LLM_LABEL = "生成式回答（本地大模型组织语言，逐句核对原文）"
LLM_OFF_INFO = "未配置生成服务：设置 WENDA_LLM_URL 后重启应用即可启用（见 docs/llm.md）。"
LLM_ON_INFO = "回答由模型生成，每句都核对过引用原文；未能完全核实的句子会标出“未核实”。"
FLAG_MARK = '<span class="wenda-flag" title="这句话未能在引用段落中完全核实，请对照原文">（未核实）</span>'
LOADING = "正在加载模型和索引（首次启动需要建立索引，可能要一分钟）…"
INTERNAL_ERROR = "抱歉，处理这个问题时出错了。请稍后再试，或换个问法。"
STAGES = {"validating": "校验文件…", "writing": "写入语料库…", "indexing": "更新索引…", "deleting": "删除文件…", "done": "完成"}
DOC_HEADERS = ["文档 ID", "标题", "日期", "段落数", "索引时间"]
DEBUG_HEADERS = ["#", "文档", "章节", "得分", "dense 排名", "dense 分数", "bm25 排名", "bm25 分数", "prf 排名", "prf 分数", "特征"]
STYLE_CHOICES = [("自动", "auto"), ("简短（一句话＋要点）", "short"), ("摘要（最多三句）", "summary")]


# --------------------------------------------------------------------------- configuration
SERVICE: Service | None = None  # set by build_demo


def service() -> Service:
    """The process's knowledge bases and assistants (created on first use)."""
    global SERVICE
    if SERVICE is None:
        SERVICE = Service()
    return SERVICE


def kb_choices() -> list[tuple[str, str]]:
    """(label, name) of every knowledge base, default first."""
    return [(f"{info.title}（{info.name}）" if info.title != info.name else info.name, info.name)
            for info in service().list()]


def kb_examples(kb: str | None) -> list[str]:
    """Example questions of a knowledge base (its corpus manifest's ``examples``)."""
    try:
        return corpus_profile(service().kb(kb).corpus_dir)["examples"]
    except WorkspaceError:
        return []


# --------------------------------------------------------------------------- rendering helpers
_MD_SPECIAL = re.compile(r"([\\`*_\[\]{}#|~$!])")


def md_text(text: str) -> str:
    """Escape text for the chat's markdown: HTML-escaped, markdown punctuation backslash-escaped."""
    return _MD_SPECIAL.sub(r"\\\1", html.escape(str(text), quote=False)).replace("\n", " ")


def esc(text: Any) -> str:
    """HTML-escape anything for the sources panel."""
    return html.escape(str(text if text is not None else ""), quote=True)


def marker(n: int, linked: bool = True) -> str:
    """Citation marker ``[n]``, a link to the source card when ``linked``."""
    if linked:
        return f'<a href="#src-{n}" class="wenda-cite" title="查看来源 {n}">[{n}]</a>'
    return f"\\[{n}\\]"


def friendly_question_error(question: Any) -> str:
    """What is wrong with an unusable question, in the question's language."""
    q = question.strip() if isinstance(question, str) else ""
    english = bool(re.search(r"[A-Za-z]", q)) and not has_cjk(q)
    if not q:
        return "请输入问题，例如：2025年太原新增养老床位多少张？"
    if len(q) > MAX_QUESTION_CHARS:
        if english:
            return f"The question has {len(q)} characters; please keep it under {MAX_QUESTION_CHARS}."
        return f"问题太长（{len(q)} 个字符），请控制在 {MAX_QUESTION_CHARS} 字以内。"
    if english:
        return "The question has no words; please ask in Chinese or English."
    return "问题里没有可识别的文字，请用中文或英文提问。"


def render_answer_md(answer: Answer, linked: bool = True) -> str:
    """The chat message for an answer: follow-up reading, bold short answer, sentence(s) with [n] markers."""
    parts: list[str] = []
    if answer.rewritten_query and answer.rewritten_query.strip() != answer.question.strip():
        parts.append(f"_理解为：{md_text(answer.rewritten_query)}_")
    if answer.not_found:
        parts.append(md_text(answer.message or "资料中没有找到这个问题的答案。"))
        if answer.related:
            parts.append("相关段落见“来源”面板。" if answer.lang == "zh" else "Related passages are shown in the sources panel.")
        return "\n\n".join(parts)
    if answer.short_answer:
        parts.append(f"**{md_text(answer.short_answer)}**")

    def flag(s: Any) -> str:
        return (" " + FLAG_MARK) if getattr(s, "flagged", False) else ""

    if answer.mode == "llm" and answer.summary:
        # Generated prose: sentences in a row, each with its citation (and a mark when unverified).
        parts.append("".join(f"{md_text(s.text)}{marker(s.citation, linked)}{flag(s)}" for s in answer.summary))
    elif answer.summary:
        parts.append("\n".join(f"- {md_text(s.text)} {marker(s.citation, linked)}{flag(s)}" for s in answer.summary))
    elif answer.sentence:
        parts.append(f"{md_text(answer.sentence)} {marker(1, linked)}")
    if answer.message:
        parts.append(f"_{md_text(answer.message)}_")
    return "\n\n".join(parts)


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def highlight(text: str, spans: Sequence[tuple[int, int]], bold: tuple[int, int] | None = None) -> str:
    """HTML of ``text`` with ``spans`` wrapped in <mark> (and ``bold`` in <strong>), everything escaped."""
    n = len(text)
    spans = _merge([(max(0, s), min(n, e)) for s, e in spans if 0 <= s < e])
    bold = bold if bold and 0 <= bold[0] < bold[1] <= n else None
    out, pos = [], 0
    for s, e in spans:
        out.append(esc(text[pos:s]))
        inner = esc(text[s:e])
        if bold and s <= bold[0] and bold[1] <= e:
            inner = (esc(text[s:bold[0]]) + "<strong>" + esc(text[bold[0]:bold[1]]) + "</strong>"
                     + esc(text[bold[1]:e]))
        out.append(f"<mark>{inner}</mark>")
        pos = e
    out.append(esc(text[pos:]))
    return "".join(out)


def _card(card_id: str, label: str, title: str, date: str, section: str, doc_id: str, score: float, body: str) -> str:
    meta = " · ".join(esc(x) for x in (date, section) if x)
    return (
        f'<details class="wenda-card" id="{esc(card_id)}" open>'
        f'<summary><span class="wenda-n">{esc(label)}</span> <span class="wenda-title">{esc(title)}</span></summary>'
        f'<div class="wenda-meta">{meta}</div>'
        f'<div class="wenda-text">{body}</div>'
        f'<div class="wenda-foot"><span>{esc(doc_id)}</span><span>得分 {score:.3f}</span></div>'
        "</details>"
    )


def render_sources(answer: Answer) -> str:
    """The sources panel: one card per cited passage with its supporting span marked, or related passages."""
    if answer.not_found:
        head = f'<div class="wenda-notice">{esc(answer.message or "资料中没有找到这个问题的答案。")}</div>'
        if not answer.related:
            return head
        cards = [
            _card(f"rel-{i}", f"{i}", h.passage.title, h.passage.date, h.passage.section, h.passage.doc_id, h.score,
                  esc(h.passage.text))
            for i, h in enumerate(answer.related, 1)
        ]
        return head + '<div class="wenda-head">相关段落</div>' + "".join(cards)
    cards = []
    for c in answer.citations:
        spans = [(c.start, c.end)]
        for s in answer.summary:
            if s.citation == c.n:
                pos = c.text.find(s.text)
                if pos >= 0:
                    spans.append((pos, pos + len(s.text)))
        bold = None
        if c.n == 1 and answer.short_answer:
            pos = c.text.find(answer.short_answer, c.start, c.end)
            if pos >= 0:
                bold = (pos, pos + len(answer.short_answer))
        cards.append(_card(f"src-{c.n}", f"[{c.n}]", c.title, c.date, c.section, c.doc_id, c.score,
                           highlight(c.text, spans, bold)))
    stats = f"置信度 {answer.confidence:.2f} · 用时 {answer.elapsed_ms:.0f} ms"
    return f'<div class="wenda-head">来源（{len(cards)}）<span class="wenda-stats">{esc(stats)}</span></div>' + "".join(cards)


def placeholder_sources(text: str = "提问后，这里会显示回答引用的原文段落。") -> str:
    return f'<div class="wenda-empty">{esc(text)}</div>'


def debug_rows(answer: Answer) -> list[list[Any]]:
    """One row per retrieval hit: rank, document, section, score, each channel's rank and score, features."""
    rows = []
    for i, h in enumerate(answer.hits, 1):
        section = h.passage.section.split(" › ")[-1] if h.passage.section else ""
        row: list[Any] = [i, h.passage.title, section, round(h.score, 4)]
        for name in ("dense", "bm25", "prf"):
            ch = h.channels.get(name)
            row += [ch.rank if ch else "", round(ch.score, 4) if ch else ""]
        row.append(", ".join(f"{k}={v:.3g}" for k, v in sorted(h.features.items())))
        rows.append(row)
    return rows


def _messages(turns: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Chat messages for the turns; only the latest answer's [n] markers link to the sources panel."""
    messages = []
    for i, t in enumerate(turns):
        messages.append({"role": "user", "content": md_text(t["question"])})
        latest = i == len(turns) - 1
        messages.append({"role": "assistant", "content": t["answer_md"] if latest else t.get("answer_plain", t["answer_md"])})
    return messages


# --------------------------------------------------------------------------- chat handlers
def _ask(assistant: Assistant, q: str, history: list[dict[str, Any]], k: int, docs: list[str] | None,
         years: list[int] | None, style: str, generated: bool) -> Iterator[str | Answer]:
    """The answer (last item); in the generated mode first the text generated so far (strings)."""
    if not generated:
        yield assistant.ask(q, history=history, k=k, docs=docs, years=years, style=style)
        return
    from qa.generate import stream_generate

    for item in stream_generate(assistant, q, history=history, k=k, docs=docs, years=years):
        yield item if isinstance(item, str) else item.answer


def chat(question: str, turns: list[dict[str, Any]] | None, k: float = 5, docs: list[str] | None = None,
         years: list[str] | None = None, style: str = "auto", generated: bool = False,
         kb: str | None = None) -> Iterator[tuple]:
    """Answer a chat question: first a "searching" placeholder, then the answer with its sources.

    With ``generated`` (the settings switch; only when WENDA_LLM_URL is set) the model's text is
    streamed into the chat, then replaced by the checked answer (or the extractive fallback).

    Yields:
        (chat messages, sources HTML, debug rows, turns state, question box value).
    """
    turns = list(turns or [])
    try:
        q = validate_question(question)
    except QuestionError:
        raise gr.Error(friendly_question_error(question)) from None
    waiting = SEARCHING if service().loaded(kb) else LOADING
    pending = turns + [{"question": q, "answer_md": waiting}]
    yield _messages(pending), placeholder_sources(waiting), gr.skip(), turns, ""
    try:
        assistant = service().assistant(kb)
        history = [{"question": t["question"], "rewritten_query": t["rewritten_query"]}
                   for t in turns if t.get("rewritten_query")]
        answer = None
        last = 0.0
        for item in _ask(assistant, q, history, max(1, min(10, int(k or 5))), list(docs or []) or None,
                         [int(y) for y in (years or []) if str(y).strip().isdigit()] or None,
                         style if style in ("auto", "short", "summary") else "auto",
                         bool(generated) and llm_configured()):
            if isinstance(item, str):
                now = time.monotonic()
                if now - last >= 0.25:  # at most 4 updates a second
                    last = now
                    draft = f"_{GENERATING}_\n\n{md_text(item)} ▌"
                    yield _messages(turns + [{"question": q, "answer_md": draft}]), gr.skip(), gr.skip(), turns, ""
            else:
                answer = item
        assert answer is not None
    except (QuestionError, WorkspaceError) as exc:
        message = friendly_question_error(question) if isinstance(exc, QuestionError) else kb_error(exc)
        log.info("question %r not answered: %s", q, exc)
        turns.append({"question": q, "answer_md": md_text(message)})
        yield _messages(turns), placeholder_sources(message), [], turns, ""
        return
    except Exception:
        log.exception("answering %r failed", q)
        turns.append({"question": q, "answer_md": md_text(INTERNAL_ERROR)})
        yield _messages(turns), placeholder_sources(INTERNAL_ERROR), [], turns, ""
        return
    log.info("answered %r (rewritten %r) in %.0f ms, not_found=%s", q, answer.rewritten_query, answer.elapsed_ms,
             answer.not_found)
    turns.append({
        "question": q,
        "rewritten_query": answer.rewritten_query,
        "answer_md": render_answer_md(answer, linked=True),
        "answer_plain": render_answer_md(answer, linked=False),
    })
    yield _messages(turns), render_sources(answer), debug_rows(answer), turns, ""


def clear_chat() -> tuple:
    """Start a new conversation."""
    return [], placeholder_sources(), [], [], ""


def toggle_debug(show: bool) -> Any:
    """Show or hide the debug table."""
    return gr.update(visible=bool(show))


def kb_error(exc: BaseException) -> str:
    """A knowledge-base problem as the user reads it."""
    if isinstance(exc, EmptyKnowledgeBase):
        return "这个知识库还没有文档：请先在“知识库”页上传文档。"
    return f"知识库不可用：{exc}"


def api_ask(question: str, history: list[str] | None = None, k: int = 5, mode: str = "extractive",
            kb: str = "") -> dict[str, Any]:
    """Answer a question from the documents, with cited passages.

    Args:
        question: Chinese or English question (at most 500 characters).
        history: Optional previous questions (or their rewritten queries), oldest first, for follow-ups.
        k: Number of passages considered (1-10).
        mode: "extractive" (default) or "llm" (generated and checked; falls back to extractive with
            a "message" when no LLM server is configured or reachable).
        kb: Knowledge base to ask (default: the app's default one); ``/kb_list`` lists them.

    Returns:
        {"answer", "short_answer", "sentence", "summary", "not_found", "message", "rewritten_query",
        "confidence", "citations": [{"id", "doc", "title", "date", "section", "text", "start", "end", ...}], ...}
    """
    try:
        q = validate_question(question)
    except QuestionError:
        raise gr.Error(friendly_question_error(question)) from None
    try:
        k = max(1, min(10, int(k)))
    except (TypeError, ValueError):
        raise gr.Error("k 必须是 1 到 10 之间的整数。") from None
    try:
        assistant = service().assistant(kb or None)
    except WorkspaceError as exc:
        log.info("API question for knowledge base %r refused: %s", kb, exc)
        raise gr.Error(kb_error(exc)) from None
    try:
        hist = [str(h) for h in (history or [])]
        if mode == "llm":
            from qa.generate import generate_answer

            answer = generate_answer(assistant, q, history=hist, k=k)
        else:
            answer = assistant.ask(q, history=hist, k=k)
    except Exception as exc:
        log.exception("API question %r failed", q)
        raise gr.Error(INTERNAL_ERROR) from exc
    result = answer.to_dict()
    result["message"] = answer.message
    result["kb"] = service().name(kb or None)
    return result


def api_kb_list() -> list[dict[str, Any]]:
    """The knowledge bases: [{"name", "title", "created_at", "seed", "documents", "indexed"}], default first."""
    return [info.to_dict() for info in service().list()]


# --------------------------------------------------------------------------- knowledge-base handlers
def _format_time(iso: str) -> str:
    return iso.replace("T", " ").replace("+00:00", " UTC") if iso else ""


def _doc_rows(kb: KnowledgeBase) -> list[list[Any]]:
    return [[d.doc_id, d.title, d.date, d.passages, _format_time(d.indexed_at)] for d in kb.documents()]


def _status_md(kb: KnowledgeBase) -> str:
    s = kb.status()
    if not s["model"]:
        return "**索引不可用**：还没有建立索引。"
    lines = [
        f"**模型** {md_text(s['model'])}（{s['dim']} 维） · **文档** {s['documents']} · **段落** {s['passages']} · "
        f"**索引类型** {md_text(s['index_type'])} · **构建时间** {md_text(_format_time(s['built_at']))}"
    ]
    for doc, err in s["errors"].items():
        lines.append(f"- 未能读取 {md_text(doc)}：{md_text(err)}")
    return "\n".join(lines)


def _kb_views(kb: KnowledgeBase) -> tuple:
    """(documents table, status, delete dropdown, document filter, year filter) updates."""
    docs = kb.documents()
    doc_choices = [(f"{d.title}（{d.date}）" if d.date else d.title, d.doc_id) for d in docs]
    years = sorted({str(d.year) for d in docs if d.year}, reverse=True)
    return (
        _doc_rows(kb),
        _status_md(kb),
        gr.update(choices=[(f"{d.title} · {d.doc_id}", d.doc_id) for d in docs], value=None),
        gr.update(choices=doc_choices),
        gr.update(choices=years),
    )


def kb_refresh(kb: str | None = None) -> tuple:
    """Current documents, index status and filter choices of a knowledge base."""
    try:
        return _kb_views(service().kb(kb))
    except WorkspaceError as exc:
        return [], md_text(kb_error(exc)), gr.skip(), gr.skip(), gr.skip()
    except Exception:
        log.exception("reading the knowledge base failed")
        return [], "**知识库暂不可用**，请查看服务日志。", gr.skip(), gr.skip(), gr.skip()


def _reload_assistant(kb: str | None) -> str:
    try:
        service().changed(kb)
        return ""
    except Exception as exc:
        log.exception("reloading the index failed")
        return f"\n\n⚠️ 索引已更新，但重新加载失败：{md_text(exc)}"


def _progress_adapter(progress: Any, start: float, span: float) -> Callable[[float, str], None]:
    def report(fraction: float, stage: str) -> None:
        try:
            progress(start + span * fraction, desc=STAGES.get(stage, stage))
        except Exception:  # progress is cosmetic
            pass
    return report


def kb_upload(files: list[str] | str | None, kb: str | None = None, progress: gr.Progress = gr.Progress()) -> tuple:
    """Add uploaded files to the knowledge base and re-index; each failing file is reported and changes nothing.

    Returns:
        (message, documents table, status, delete dropdown, document filter, year filter).
    """
    if not files:
        raise gr.Error("请先选择要上传的文件（.txt .md .pdf .docx）。")
    paths = [files] if isinstance(files, (str, Path)) else list(files)
    kb_name = kb
    try:
        kb = service().kb(kb_name)
    except WorkspaceError as exc:
        raise gr.Error(kb_error(exc)) from None
    known = {d.doc_id for d in kb.documents()}
    lines, failures, changed = [], [], False
    for i, item in enumerate(paths):
        path = Path(getattr(item, "path", None) or getattr(item, "name", None) or str(item))
        name = path.name
        step = _progress_adapter(progress, i / len(paths), 1 / len(paths))
        try:
            doc_id = safe_filename(name)
            size = path.stat().st_size
            if size > MAX_FILE_BYTES:
                raise IngestError(f"{name}: {size / 1e6:.1f} MB is over the {MAX_FILE_BYTES // 2**20} MB limit")
            report = kb.add_file(name, path.read_bytes(), progress=step)
        except (IngestError, ValueError, OSError) as exc:
            log.warning("upload of %s rejected: %s", name, exc)
            reason = str(exc)
            failures.append(reason if reason.startswith(name) else f"{name}: {reason}")
            continue
        except Exception:
            log.exception("upload of %s failed", name)
            failures.append(f"{name}: {INTERNAL_ERROR}")
            continue
        changed = True
        verb = "已更新" if doc_id in known else "已添加"
        lines.append(f"✅ {verb} {md_text(doc_id)}：{report.per_document.get(doc_id, 0)} 个段落"
                     f"（新嵌入 {report.embedded}，复用 {report.reused}，{report.seconds:.1f} 秒）")
        known.add(doc_id)
    if not changed:
        raise gr.Error("上传失败，知识库没有任何改动。\n" + "\n".join(failures))
    for failure in failures:
        gr.Warning(f"上传失败：{failure}")
    message = "\n\n".join(lines + [f"❌ {md_text(f)}" for f in failures]) + _reload_assistant(kb_name)
    return (message, *_kb_views(kb))


def kb_delete(doc_id: str | None, kb: str | None = None, progress: gr.Progress = gr.Progress()) -> tuple:
    """Delete a document from the corpus and the index; its passages leave answers at once.

    Returns:
        (message, documents table, status, delete dropdown, document filter, year filter).
    """
    if not doc_id:
        return ("未删除任何文档：请先在下拉框中选择一个文档。", *(gr.skip(),) * 5)
    name = kb
    try:
        kb = service().kb(name)
    except WorkspaceError as exc:
        raise gr.Error(kb_error(exc)) from None
    try:
        report = kb.delete(str(doc_id), progress=_progress_adapter(progress, 0.0, 1.0))
    except (IngestError, ValueError) as exc:
        raise gr.Error(f"删除失败：{exc}") from exc
    except Exception as exc:
        log.exception("deleting %s failed", doc_id)
        raise gr.Error(f"删除失败：{INTERNAL_ERROR}") from exc
    message = (f"🗑️ 已删除 {md_text(doc_id)}，索引现有 {report.documents} 个文档、{report.passages} 个段落。"
               + _reload_assistant(name))
    return (message, *_kb_views(kb))


def header_md(kb: str | None) -> str:
    """Page heading naming the knowledge base."""
    try:
        info = service().workspace.info(service().name(kb))
        title = info.title
    except WorkspaceError:
        title = str(kb or "")
    return f"## 问答 Wenda · {md_text(title)}\n每个回答都引用原文：点击 [1] [2] 等标记查看出处段落。"


def kb_switch(kb: str | None) -> tuple:
    """Show another knowledge base: heading, examples, a new conversation, its documents and filters."""
    samples = [[q] for q in kb_examples(kb)]
    return (header_md(kb), gr.update(samples=samples), *clear_chat(), *kb_refresh(kb))


def kb_create(name: str, title: str = "") -> tuple:
    """Create an empty knowledge base and select it.

    Returns:
        (message, knowledge-base selector update).
    """
    try:
        info = service().create(name, title)
    except WorkspaceError as exc:
        log.info("knowledge base not created: %s", exc)
        raise gr.Error(str(exc)) from None
    return (f"✅ 已创建知识库 {md_text(info.title)}（{info.name}）：请上传文档。",
            gr.update(choices=kb_choices(), value=info.name))


def kb_remove(kb: str | None) -> tuple:
    """Delete a knowledge base with its documents and index, and select the default one.

    Returns:
        (message, knowledge-base selector update).
    """
    if not kb:
        return "未删除：请先选择一个知识库。", gr.skip()
    try:
        service().delete(kb)
    except WorkspaceError as exc:
        log.info("knowledge base %s not deleted: %s", kb, exc)
        raise gr.Error(str(exc)) from None
    return f"🗑️ 已删除知识库 {md_text(kb)}。", gr.update(choices=kb_choices(), value=service().default)


# --------------------------------------------------------------------------- UI
SOURCES_CSS = """
.wenda-empty, .wenda-notice { color: var(--body-text-color-subdued); padding: 12px 4px; }
.wenda-notice { color: var(--body-text-color); font-weight: 600; }
.wenda-head { font-weight: 600; margin: 6px 2px 8px; display: flex; justify-content: space-between; gap: 8px; }
.wenda-stats { font-weight: 400; font-size: 0.85em; color: var(--body-text-color-subdued); }
.wenda-card { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 8px 10px;
  margin-bottom: 10px; background: var(--background-fill-secondary); transition: box-shadow .3s, border-color .3s; }
.wenda-card summary { cursor: pointer; font-weight: 600; line-height: 1.4; }
.wenda-n { color: var(--color-accent); margin-right: 2px; }
.wenda-meta { font-size: 0.85em; color: var(--body-text-color-subdued); margin: 4px 0 6px; }
.wenda-text { line-height: 1.7; font-size: 0.95em; white-space: pre-line; }
.wenda-text mark { background: #fde68a; color: #111; padding: 0 2px; border-radius: 3px; }
.wenda-foot { display: flex; justify-content: space-between; font-size: 0.8em; color: var(--body-text-color-subdued); margin-top: 6px; }
.wenda-flag { color: #b45309; font-size: 0.9em; }
.wenda-card.wenda-active { border-color: var(--color-accent); box-shadow: 0 0 0 3px var(--color-accent-soft); }
"""

# Installed once per page: [n] markers in the chat scroll to (and open, and highlight) their source card.
SOURCES_JS = """
if (!window.__wendaCites) {
  window.__wendaCites = true;
  document.addEventListener('click', function (ev) {
    const a = ev.target && ev.target.closest ? ev.target.closest('a[href^="#src-"], a[href^="#rel-"]') : null;
    if (!a) return;
    const card = document.getElementById(decodeURIComponent(a.getAttribute('href').slice(1)));
    if (!card) return;
    ev.preventDefault();
    ev.stopPropagation();
    if (card.tagName === 'DETAILS') card.open = true;
    document.querySelectorAll('.wenda-card.wenda-active').forEach(function (c) { c.classList.remove('wenda-active'); });
    card.classList.add('wenda-active');
    card.scrollIntoView({behavior: 'smooth', block: 'nearest'});
  }, true);
}
"""


def build_demo(svc: Service | None = None, preload: bool = True) -> gr.Blocks:
    """Build the Gradio app.

    Args:
        svc: Knowledge bases and assistants (default: the ``WENDA_HOME`` workspace).
        preload: Start loading the default knowledge base in the background right away.

    Returns:
        The Blocks app, queued; call ``.launch()`` on it.
    """
    global SERVICE
    SERVICE = svc or Service()
    if preload:
        SERVICE.preload()
    default = SERVICE.default

    with gr.Blocks(title="问答 Wenda", fill_width=True, analytics_enabled=False) as demo:
        with gr.Row(equal_height=True):
            header = gr.Markdown(header_md(default))
            kb_dd = gr.Dropdown(choices=kb_choices(), value=default, label="知识库", scale=0, min_width=260,
                                elem_id="wenda-kb")
        turns = gr.State([])
        generated_mode = gr.State(False)  # a State, so the /chat API keeps its signature
        with gr.Tabs():
            with gr.Tab("问答", id="chat"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3, min_width=420):
                        chatbot = gr.Chatbot(
                            label="对话", height=460, latex_delimiters=[], feedback_options=None,
                            buttons=["copy"], elem_id="wenda-chat",
                            placeholder="用中文或英文提问，例如：2025年太原新增养老床位多少张？",
                        )
                        with gr.Row():
                            question = gr.Textbox(
                                show_label=False, placeholder="输入问题，按回车发送（最多 500 字）",
                                scale=6, max_lines=4, elem_id="wenda-question", autofocus=True,
                            )
                            send = gr.Button("发送", variant="primary", scale=1, min_width=70, elem_id="wenda-send")
                            clear = gr.Button("清空", scale=1, min_width=70)
                        examples = gr.Examples(examples=[[q] for q in kb_examples(default)] or [[""]],
                                               inputs=[question], label="示例问题（点击即问）")
                        with gr.Accordion("设置", open=False):
                            k = gr.Slider(1, 10, value=5, step=1, label="检索段落数")
                            docs = gr.Dropdown(choices=[], multiselect=True, allow_custom_value=True,
                                               label="只在这些文档中查找（不选＝全部）")
                            years = gr.Dropdown(choices=[], multiselect=True, allow_custom_value=True,
                                                label="只查这些年份的文档（不选＝全部）")
                            style = gr.Radio(STYLE_CHOICES, value="auto", label="回答方式")
                            llm_on = llm_configured()
                            generated = gr.Checkbox(value=False, label=LLM_LABEL, interactive=llm_on,
                                                    info=LLM_ON_INFO if llm_on else LLM_OFF_INFO,
                                                    elem_id="wenda-generated")
                            debug = gr.Checkbox(value=False, label="调试：显示检索结果（各通道排名与得分）")
                    with gr.Column(scale=2, min_width=320):
                        sources = gr.HTML(
                            value=placeholder_sources(), label="来源", css_template=SOURCES_CSS, js_on_load=SOURCES_JS,
                            max_height=640, elem_id="wenda-sources", padding=True,
                        )
                debug_table = gr.Dataframe(headers=DEBUG_HEADERS, value=[], visible=False, interactive=False,
                                           label="检索结果（调试）", wrap=True,
                                           column_widths=["4%", "14%", "18%", "7%", "6%", "7%", "6%", "7%", "6%", "7%", "18%"])
            with gr.Tab("知识库", id="kb"):
                status = gr.Markdown("正在读取索引…")
                doc_table = gr.Dataframe(headers=DOC_HEADERS, value=[], interactive=False, label="已索引的文档", wrap=True)
                with gr.Row(equal_height=False):
                    with gr.Column():
                        upload = gr.File(label="上传文档（.txt .md .pdf .docx，单个不超过 20 MB）", file_count="multiple",
                                         file_types=list(SUPPORTED_SUFFIXES), type="filepath")
                        upload_btn = gr.Button("上传并建立索引", variant="primary")
                    with gr.Column():
                        delete_dd = gr.Dropdown(choices=[], label="选择要删除的文档", allow_custom_value=True)
                        delete_btn = gr.Button("删除文档", variant="stop")
                with gr.Accordion("新建或删除知识库", open=False):
                    with gr.Row(equal_height=False):
                        with gr.Column():
                            new_name = gr.Textbox(label="新知识库名称（小写字母、数字、- 或 _，例如 reports-2025）")
                            new_title = gr.Textbox(label="显示标题（可选）")
                            create_btn = gr.Button("新建知识库", variant="primary")
                        with gr.Column():
                            remove_btn = gr.Button("删除当前知识库（含其全部文档和索引）", variant="stop")
                kb_message = gr.Markdown()

        chat_inputs = [question, turns, k, docs, years, style, generated_mode, kb_dd]
        generated.change(lambda on: bool(on), generated, generated_mode, api_visibility="private", queue=False)
        chat_outputs = [chatbot, sources, debug_table, turns, question]
        question.submit(chat, chat_inputs, chat_outputs, api_name="chat")
        send.click(chat, chat_inputs, chat_outputs, api_visibility="private")
        examples.load_input_event.then(chat, chat_inputs, chat_outputs, api_visibility="private")
        clear.click(clear_chat, None, [chatbot, sources, debug_table, turns, question], api_visibility="private")
        chatbot.clear(clear_chat, None, [chatbot, sources, debug_table, turns, question], api_visibility="private")
        debug.change(toggle_debug, debug, debug_table, api_visibility="private", queue=False)

        kb_views = [doc_table, status, delete_dd, docs, years]
        switch_outputs = [header, examples.dataset, chatbot, sources, debug_table, turns, question, *kb_views]
        kb_dd.change(kb_switch, kb_dd, switch_outputs, api_visibility="private")
        create_btn.click(kb_create, [new_name, new_title], [kb_message, kb_dd], api_name="kb_create",
                         concurrency_limit=1, concurrency_id="kb")
        remove_btn.click(kb_remove, kb_dd, [kb_message, kb_dd], api_name="kb_remove", concurrency_limit=1,
                         concurrency_id="kb", js="(k) => (k && confirm('确定删除这个知识库及其全部文档吗？')) ? k : null")
        upload_btn.click(kb_upload, [upload, kb_dd], [kb_message, *kb_views], api_name="kb_upload",
                         concurrency_limit=1, concurrency_id="kb").then(
            lambda: None, None, upload, api_visibility="private")
        delete_btn.click(kb_delete, [delete_dd, kb_dd], [kb_message, *kb_views], api_name="kb_delete",
                         concurrency_limit=1, concurrency_id="kb",
                         js="(d, k) => (d && confirm('确定从知识库删除这个文档吗？此操作会删除语料文件。')) ? [d, k] : [null, k]")
        demo.load(kb_refresh, kb_dd, kb_views, api_name="kb_refresh")
        gr.api(api_ask, api_name="ask")
        gr.api(api_kb_list, api_name="kb_list")

    demo.queue(default_concurrency_limit=4)
    return demo


def main() -> None:
    """Start the web app (127.0.0.1 unless GRADIO_SERVER_NAME says otherwise)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    demo = build_demo()
    port = os.environ.get("GRADIO_SERVER_PORT")
    demo.launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(port) if port else None,
        max_file_size=MAX_FILE_BYTES,
        footer_links=["api"],
    )


if __name__ == "__main__":
    main()
