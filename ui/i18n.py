"""Interface strings in Chinese and English.

Static labels of the page go through Gradio's :class:`gr.I18n` (:data:`I18N`): the browser picks
the language (``navigator.language``; Chinese for ``zh*``, English otherwise). Text the server
writes (status lines, toasts, the sources panel) is looked up with :func:`tr` in the language of the
request (its ``Accept-Language`` header, :func:`request_lang`), and the assistant's own messages in
the language of the question (:func:`question_lang`).
"""
from __future__ import annotations

import json
import re
from typing import Any

import gradio as gr

from index.textproc import has_cjk

LANGS = ("zh", "en")
DEFAULT_LANG = "zh"  # API clients that send no Accept-Language get today's Chinese messages

# key: (中文, English)
STRINGS: dict[str, tuple[str, str]] = {
    # ---- page (static; translated in the browser)
    "kb_label": ("知识库", "Knowledge base"),
    "tab_chat": ("问答", "Ask"),
    "tab_kb": ("知识库", "Knowledge base"),
    "chat_label": ("对话", "Conversation"),
    "chat_placeholder": ("用中文或英文提问，或点击下面的示例问题。", "Ask in Chinese or English, or click an example question below."),
    "question_placeholder": ("输入问题，按回车发送（最多 500 字）", "Type a question and press Enter (at most 500 characters)"),
    "send": ("发送", "Send"),
    "clear": ("清空", "Clear"),
    "examples_label": ("示例问题（点击即问）", "Example questions (click to ask)"),
    "settings": ("设置", "Settings"),
    "k_label": ("检索段落数", "Passages to retrieve"),
    "docs_label": ("只在这些文档中查找（不选＝全部）", "Search only these documents (none = all)"),
    "years_label": ("只查这些年份的文档（不选＝全部）", "Only documents from these years (none = all)"),
    "style_label": ("回答方式", "Answer style"),
    "llm_label": ("生成式回答（本地大模型组织语言，逐句核对原文）",
                  "Generated answer (a local model writes it; every sentence is checked against the sources)"),
    "llm_off_info": ("未配置生成服务：设置 WENDA_LLM_URL 后重启应用即可启用（见 docs/llm.md）。",
                     "No generation server: set WENDA_LLM_URL and restart the app to enable it (docs/llm.md)."),
    "llm_on_info": ("回答由模型生成，每句都核对过引用原文；未能完全核实的句子会标出“未核实”。",
                    "The model writes the answer; each sentence is checked against its source, unverified ones are marked."),
    "debug_label": ("调试：显示检索结果（各通道排名与得分）", "Debug: show retrieval hits (each channel's rank and score)"),
    "sources_label": ("来源", "Sources"),
    "debug_table_label": ("检索结果（调试）", "Retrieval hits (debug)"),
    "header_hint": ("每个回答都引用原文：点击 [1] [2] 等标记查看出处段落。",
                    "Every answer cites the documents: click a marker such as [1] or [2] to see its passage."),
    "status_loading": ("正在读取索引…", "Reading the index…"),
    "doc_table_label": ("已索引的文档", "Indexed documents"),
    "upload_label": ("上传文档（.txt .md .pdf .docx，单个不超过 20 MB）", "Upload documents (.txt .md .pdf .docx, up to 20 MB each)"),
    "upload_btn": ("上传并建立索引", "Upload and index"),
    "delete_dd": ("选择要删除的文档", "Document to delete"),
    "delete_btn": ("删除文档", "Delete document"),
    "kb_manage": ("新建或删除知识库", "Create or delete a knowledge base"),
    "new_name": ("新知识库名称（小写字母、数字、- 或 _，例如 reports-2025）",
                 "New knowledge base name (lower-case letters, digits, - or _, e.g. reports-2025)"),
    "new_title": ("显示标题（可选）", "Display title (optional)"),
    "create_btn": ("新建知识库", "Create knowledge base"),
    "remove_btn": ("删除当前知识库（含其全部文档和索引）", "Delete this knowledge base (all its documents and its index)"),
    "admin_password": ("管理员密码（上传、删除和新建知识库时需要）", "Admin password (needed to upload, delete or create)"),
    "read_only_notice": ("只读模式：可以浏览和提问，不能修改知识库。",
                         "Read-only mode: you can browse and ask, but not change the knowledge bases."),
    # ---- answers and the sources panel (server side)
    "searching": ("正在检索…", "Searching…"),
    "generating": ("正在生成（本地模型，逐句核对原文）…", "Generating (local model, checking every sentence)…"),
    "loading": ("正在加载模型和索引（首次启动需要建立索引，可能要一分钟）…",
                "Loading the model and the index (the first start builds the index, about a minute)…"),
    "internal_error": ("抱歉，处理这个问题时出错了。请稍后再试，或换个问法。",
                       "Sorry, something went wrong with this question. Please try again or rephrase it."),
    "flag": ("（未核实）", "(unverified)"),
    "flag_title": ("这句话未能在引用段落中完全核实，请对照原文", "This sentence could not be fully verified in the cited passage"),
    "not_found": ("资料中没有找到这个问题的答案。", "The documents don't say."),
    "related_note": ("相关段落见“来源”面板。", "Related passages are shown in the sources panel."),
    "understood_as": ("理解为：{q}", "Understood as: {q}"),
    "cite_title": ("查看来源 {n}", "Show source {n}"),
    "score": ("得分 {s:.3f}", "score {s:.3f}"),
    "page": ("第{n}页", "p. {n}"),
    "related_head": ("相关段落", "Related passages"),
    "sources_head": ("来源（{n}）", "Sources ({n})"),
    "stats": ("置信度 {c:.2f} · 用时 {ms:.0f} ms", "confidence {c:.2f} · {ms:.0f} ms"),
    "sources_empty": ("提问后，这里会显示回答引用的原文段落。", "Ask a question: the passages its answer cites appear here."),
    # ---- toast titles
    "toast_warning": ("注意", "Warning"),
    "toast_info": ("提示", "Info"),
    # ---- question mistakes
    "q_empty": ("请输入问题。", "Please type a question."),
    "q_empty_example": ("请输入问题，例如：{example}", "Please type a question, for example: {example}"),
    "q_too_long": ("问题太长（{n} 个字符），请控制在 {max} 字以内。",
                   "The question has {n} characters; please keep it under {max}."),
    "q_no_words": ("问题里没有可识别的文字，请用中文或英文提问。", "The question has no words; please ask in Chinese or English."),
    "k_invalid": ("k 必须是 1 到 10 之间的整数。", "k must be a whole number from 1 to 10."),
    # ---- knowledge bases
    "kb_empty": ("这个知识库还没有文档：请先在“知识库”页上传文档。",
                 "This knowledge base has no documents yet: upload some on the Knowledge base tab first."),
    "kb_unavailable": ("知识库不可用：{e}", "Knowledge base unavailable: {e}"),
    "kb_read_failed": ("**知识库暂不可用**，请查看服务日志。", "**The knowledge base is unavailable**; see the server log."),
    "status_no_index": ("**索引不可用**：还没有建立索引。", "**No index**: the index has not been built yet."),
    "status_line": ("**模型** {model}（{dim} 维） · **文档** {docs} · **段落** {passages} · **索引类型** {type} · **构建时间** {built}",
                    ("**Model** {model} ({dim} dims) · **documents** {docs} · **passages** {passages}"
                     " · **index type** {type} · **built** {built}")),
    "status_unreadable": ("- 未能读取 {doc}：{err}", "- Could not read {doc}: {err}"),
    "reload_failed": ("\n\n⚠️ 索引已更新，但重新加载失败：{e}", "\n\n⚠️ The index was updated but reloading it failed: {e}"),
    "stage_validating": ("校验文件…", "Checking the file…"),
    "stage_writing": ("写入语料库…", "Writing to the corpus…"),
    "stage_indexing": ("更新索引…", "Updating the index…"),
    "stage_deleting": ("删除文件…", "Deleting the file…"),
    "stage_done": ("完成", "Done"),
    "upload_none": ("请先选择要上传的文件（.txt .md .pdf .docx）。", "Choose files to upload first (.txt .md .pdf .docx)."),
    "upload_too_big": ("{name}: {mb:.1f} MB 超过 {limit} MB 的上限", "{name}: {mb:.1f} MB is over the {limit} MB limit"),
    "upload_added": ("✅ 已添加 {doc}：{n} 个段落（新嵌入 {emb}，复用 {reused}，{s:.1f} 秒）",
                     "✅ Added {doc}: {n} passages ({emb} embedded, {reused} reused, {s:.1f} s)"),
    "upload_updated": ("✅ 已更新 {doc}：{n} 个段落（新嵌入 {emb}，复用 {reused}，{s:.1f} 秒）",
                       "✅ Updated {doc}: {n} passages ({emb} embedded, {reused} reused, {s:.1f} s)"),
    "upload_rejected": ("上传失败，知识库没有任何改动。", "Upload failed; the knowledge base is unchanged."),
    "upload_failed": ("上传失败：{reason}", "Upload failed: {reason}"),
    "delete_none": ("未删除任何文档：请先在下拉框中选择一个文档。", "Nothing deleted: choose a document first."),
    "delete_failed": ("删除失败：{e}", "Delete failed: {e}"),
    "deleted": ("🗑️ 已删除 {doc}，索引现有 {docs} 个文档、{passages} 个段落。",
                "🗑️ Deleted {doc}; the index now has {docs} documents and {passages} passages."),
    "kb_created": ("✅ 已创建知识库 {title}（{name}）：请上传文档。", "✅ Created knowledge base {title} ({name}): upload documents now."),
    "kb_not_created": ("未能新建知识库：{e}", "Knowledge base not created: {e}"),
    "kb_remove_none": ("未删除：请先选择一个知识库。", "Nothing deleted: choose a knowledge base first."),
    "kb_removed": ("🗑️ 已删除知识库 {name}。", "🗑️ Deleted knowledge base {name}."),
    "kb_not_removed": ("未能删除知识库：{e}", "Knowledge base not deleted: {e}"),
    # ---- admin
    "need_password": ("需要管理员密码：请在“知识库”页输入管理员密码后再试，知识库没有任何改动。",
                      "An admin password is needed: enter it on the Knowledge base tab and try again. Nothing was changed."),
    "wrong_password": ("管理员密码不正确，知识库没有任何改动。", "Wrong admin password. Nothing was changed."),
    "read_only": ("只读模式（WENDA_READ_ONLY=1）：不能修改知识库。", "Read-only mode (WENDA_READ_ONLY=1): knowledge bases cannot be changed."),
    # ---- saved conversation, export and feedback
    "turn_sources_head": ("第 {t} 问的来源：{q}", "Sources of question {t}: {q}"),
    "export_btn": ("导出对话（Markdown）", "Export conversation (Markdown)"),
    "export_heading": ("问答 Wenda 对话记录 · {title}", "Wenda conversation · {title}"),
    "export_meta": ("导出时间 {time} · 共 {n} 个问题", "Exported {time} · {n} questions"),
    "export_sources": ("来源", "Sources"),
    "feedback_label": ("补充说明（可选）：回答哪里不对？", "Comment (optional): what was wrong with the answer?"),
    "feedback_send": ("提交说明", "Send comment"),
    "feedback_thanks": ("谢谢反馈！", "Thanks for the feedback!"),
    "feedback_comment_saved": ("说明已保存，谢谢！", "Comment saved, thank you!"),
    "feedback_failed": ("反馈未能保存，请稍后再试。", "The feedback could not be saved; please try again later."),
    # ---- document viewer
    "view_link": ("查看全文", "View document"),
    "viewer_label": ("文档全文", "Document"),
    "viewer_close": ("关闭", "Close"),
    "viewer_download": ("下载原文件 {name}", "Download the original file {name}"),
    "viewer_download_btn": ("下载原文件", "Download the original file"),
    "viewer_missing": ("找不到文档 {doc}：它可能已被删除或改名。", "Document {doc} was not found: it may have been deleted or renamed."),
    "viewer_changed": ("该文件在建立索引之后已被修改，引用位置可能已不准确，因此不再标出。重建索引后即可重新标出。",
                       ("The file has changed since it was indexed, so the cited span is not marked (its position "
                        "may be wrong). Rebuild the index to mark it again.")),
}

TABLE_HEADERS: dict[str, dict[str, list[str]]] = {
    "docs": {"zh": ["文档 ID", "标题", "日期", "段落数", "索引时间"],
             "en": ["Document ID", "Title", "Date", "Passages", "Indexed at"]},
    "debug": {"zh": ["#", "文档", "章节", "得分", "dense 排名", "dense 分数", "句子 排名", "句子 分数", "bm25 排名", "bm25 分数", "特征"],
              "en": ["#", "Document", "Section", "Score", "dense rank", "dense score", "sentence rank", "sentence score", "bm25 rank",
                     "bm25 score", "Features"]},
}
STYLE_CHOICES: dict[str, list[tuple[str, str]]] = {
    "zh": [("自动", "auto"), ("简短（一句话＋要点）", "short"), ("摘要（最多三句）", "summary")],
    "en": [("Automatic", "auto"), ("Short (one sentence + key figure)", "short"), ("Summary (up to three sentences)", "summary")],
}

I18N = gr.I18n(zh={k: v[0] for k, v in STRINGS.items()}, en={k: v[1] for k, v in STRINGS.items()})


def norm_lang(lang: str | None) -> str:
    """``"zh"`` or ``"en"`` for any language tag (``zh-CN`` → zh, ``fr`` → en); None → the default."""
    if not lang:
        return DEFAULT_LANG
    return "zh" if lang.strip().lower().startswith("zh") else "en"


def tr(key: str, lang: str | None = None, **fmt: Any) -> str:
    """The string ``key`` in ``lang`` (zh or en), formatted with ``fmt``."""
    text = STRINGS[key][0 if norm_lang(lang) == "zh" else 1]
    return text.format(**fmt) if fmt else text


def ui_text(key: str) -> Any:
    """A static page label, translated in the browser."""
    if key not in STRINGS:
        raise KeyError(key)
    return I18N(key)


def request_lang(request: Any) -> str:
    """Language of a Gradio request: the first ``Accept-Language`` tag (none → the default)."""
    headers = getattr(request, "headers", None)  # None for in-process calls
    header = str(headers.get("accept-language", "") or "") if headers is not None else ""
    first = header.split(",")[0].split(";")[0].strip()
    return norm_lang(first) if first and first != "*" else DEFAULT_LANG


def question_lang(question: Any, fallback: str = DEFAULT_LANG) -> str:
    """zh for a question with Chinese characters, en for one with Latin letters only, else ``fallback``."""
    q = question if isinstance(question, str) else ""
    if has_cjk(q):
        return "zh"
    if re.search(r"[A-Za-z]", q):
        return "en"
    return norm_lang(fallback)


def toast_title_js() -> str:
    """Script run once per page that titles toasts in the page's language.

    The handlers pass ``title=`` (:func:`ui.handlers.warn`), but Gradio 6.31's page ignores it and titles
    a toast with its level ("Warning", "Info"), so on a Chinese page (``navigator.language`` zh*, the rule
    of the page's i18n) the title is replaced by the translation of ``toast_warning`` / ``toast_info``.
    """
    titles = json.dumps({"Warning": tr("toast_warning", "zh"), "Info": tr("toast_info", "zh")}, ensure_ascii=False)
    return f"""
if (!window.__wendaToasts && (navigator.language || '').toLowerCase().startsWith('zh')) {{
  window.__wendaToasts = true;
  const titles = {titles};
  // Svelte fills the title's text node after inserting it: watch text changes too, and edit the node in
  // place (replacing it would detach the node Svelte keeps).
  new MutationObserver(function () {{
    document.querySelectorAll('.toast-title').forEach(function (el) {{
      el.childNodes.forEach(function (n) {{
        const t = n.nodeType === 3 ? titles[n.nodeValue.trim()] : null;
        if (t) n.nodeValue = t + ' ';
      }});
    }});
  }}).observe(document.body, {{childList: true, subtree: true, characterData: true}});
}}
"""
