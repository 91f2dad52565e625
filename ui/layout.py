"""The page: :func:`build_demo` lays out the components and wires them to the handlers."""
from __future__ import annotations

from typing import Any

import gradio as gr

from index.ingest import SUPPORTED_SUFFIXES
from qa.llm import llm_configured
from qa.service import Service

from .admin import admin_password, read_only
from .handlers import (
    api_ask,
    api_kb_list,
    chat,
    clear_chat,
    kb_choices,
    kb_examples,
    localize,
    set_service,
    toggle_debug,
)
from .i18n import I18N, STYLE_CHOICES, TABLE_HEADERS, toast_title_js, ui_text
from .kb import (
    header_md,
    kb_create,
    kb_delete,
    kb_refresh,
    kb_remove,
    kb_switch,
    kb_upload,
)
from .render import placeholder_sources
from .session import (
    STORAGE_KEY,
    STORAGE_SECRET,
    record_vote,
    restore_chat,
    send_comment,
    turns_changed,
)
from .viewer import SCROLL_JS, VIEW_REQUEST_JS, VIEWER_CSS, VIEWER_JS, view_document

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
.wenda-turn[hidden] { display: none !important; }
.wenda-turn-head { color: var(--body-text-color-subdued); }
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
    // An earlier answer's marker: show that answer's sources (kept hidden in the panel) instead.
    const block = card.closest('.wenda-turn');
    if (block && block.parentElement) {
      block.parentElement.querySelectorAll(':scope > .wenda-turn').forEach(function (b) { b.hidden = (b !== block); });
    }
    if (card.tagName === 'DETAILS') card.open = true;
    document.querySelectorAll('.wenda-card.wenda-active').forEach(function (c) { c.classList.remove('wenda-active'); });
    card.classList.add('wenda-active');
    card.scrollIntoView({behavior: 'smooth', block: 'nearest'});
  }, true);
}
"""

# Confirmation dialogs in the browser's language (the page's i18n does not reach JS).
_ZH = "(navigator.language || '').toLowerCase().startsWith('zh')"
CONFIRM_REMOVE_JS = (f"(k, p) => (k && confirm({_ZH} ? '确定删除这个知识库及其全部文档吗？' : "
                     "'Delete this knowledge base and all its documents?')) ? [k, p] : [null, p]")
CONFIRM_DELETE_JS = (f"(d, k, p) => (d && confirm({_ZH} ? '确定从知识库删除这个文档吗？此操作会删除语料文件。' : "
                     "'Delete this document from the knowledge base? Its corpus file is removed.')) ? [d, k, p] : [null, k, p]")


def _with_i18n(demo: gr.Blocks) -> gr.Blocks:
    """Make ``demo.launch`` pass the page translations unless the caller gives its own."""
    launch = demo.launch

    def launch_with_i18n(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("i18n", I18N)
        return launch(*args, **kwargs)

    demo.launch = launch_with_i18n  # type: ignore[method-assign]
    return demo


def build_demo(svc: Service | None = None, preload: bool = True) -> gr.Blocks:
    """Build the Gradio app.

    Args:
        svc: Knowledge bases and assistants (default: the ``WENDA_HOME`` workspace).
        preload: Start loading the default knowledge base in the background right away.

    Returns:
        The Blocks app, queued; call ``.launch()`` on it (the translations are passed for you).
    """
    service = set_service(svc)
    if preload:
        service.preload()
    default = service.default
    editable = not read_only()

    with gr.Blocks(title="问答 Wenda", fill_width=True, analytics_enabled=False) as demo:
        with gr.Row(equal_height=True):
            with gr.Column(scale=4):
                header = gr.Markdown(header_md(default), elem_id="wenda-header")
                gr.Markdown(ui_text("header_hint"), elem_id="wenda-hint")
            kb_dd = gr.Dropdown(choices=kb_choices(), value=default, label=ui_text("kb_label"), scale=0, min_width=260,
                                elem_id="wenda-kb")
        turns = gr.State([])
        saved = gr.BrowserState(None, storage_key=STORAGE_KEY, secret=STORAGE_SECRET)  # the conversation, per kb
        feedback_target = gr.State(None)  # the turn whose vote a comment is about
        generated_mode = gr.State(False)  # a State, so the /chat API keeps its signature
        with gr.Tabs():
            with gr.Tab(ui_text("tab_chat"), id="chat", elem_id="wenda-tab-chat"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3, min_width=420):
                        chatbot = gr.Chatbot(
                            label=ui_text("chat_label"), height=460, latex_delimiters=[],
                            feedback_options=("Like", "Dislike"),
                            buttons=["copy"], elem_id="wenda-chat", placeholder=ui_text("chat_placeholder"),
                        )
                        with gr.Row():
                            question = gr.Textbox(
                                show_label=False, placeholder=ui_text("question_placeholder"),
                                scale=6, max_lines=4, elem_id="wenda-question", autofocus=True,
                            )
                            send = gr.Button(ui_text("send"), variant="primary", scale=1, min_width=70, elem_id="wenda-send")
                            clear = gr.Button(ui_text("clear"), scale=1, min_width=70, elem_id="wenda-clear")
                        with gr.Row(visible=False, elem_id="wenda-feedback") as comment_row:
                            comment = gr.Textbox(label=ui_text("feedback_label"), max_lines=3, scale=6,
                                                 elem_id="wenda-feedback-comment")
                            comment_send = gr.Button(ui_text("feedback_send"), scale=1, min_width=70, size="sm",
                                                     elem_id="wenda-feedback-send")
                        export = gr.DownloadButton(ui_text("export_btn"), visible=False, size="sm", variant="secondary",
                                                   elem_id="wenda-export")
                        examples = gr.Examples(examples=[[q] for q in kb_examples(default)] or [[""]],
                                               inputs=[question], label=ui_text("examples_label"))
                        with gr.Accordion(ui_text("settings"), open=False):
                            k = gr.Slider(1, 10, value=5, step=1, label=ui_text("k_label"))
                            docs = gr.Dropdown(choices=[], multiselect=True, allow_custom_value=True,
                                               label=ui_text("docs_label"))
                            years = gr.Dropdown(choices=[], multiselect=True, allow_custom_value=True,
                                                label=ui_text("years_label"))
                            style = gr.Radio(STYLE_CHOICES["zh"], value="auto", label=ui_text("style_label"))
                            llm_on = llm_configured()
                            generated = gr.Checkbox(value=False, label=ui_text("llm_label"), interactive=llm_on,
                                                    info=ui_text("llm_on_info" if llm_on else "llm_off_info"),
                                                    elem_id="wenda-generated")
                            debug = gr.Checkbox(value=False, label=ui_text("debug_label"))
                    with gr.Column(scale=2, min_width=320):
                        sources = gr.HTML(
                            value=placeholder_sources(), label=ui_text("sources_label"), css_template=SOURCES_CSS,
                            js_on_load=SOURCES_JS + VIEWER_JS + toast_title_js(), max_height=640, elem_id="wenda-sources", padding=True,
                        )
                debug_table = gr.Dataframe(headers=TABLE_HEADERS["debug"]["zh"], value=[], visible=False,
                                           interactive=False, label=ui_text("debug_table_label"), wrap=True,
                                           column_widths=["4%", "14%", "18%", "7%", "6%", "7%", "6%", "7%", "6%", "7%", "18%"])
                with gr.Column(visible=False, elem_id="wenda-viewer") as viewer_box:  # the document viewer
                    with gr.Row():
                        viewer_download = gr.DownloadButton(ui_text("viewer_download_btn"), visible=False, size="sm",
                                                            elem_id="wenda-viewer-download")
                        viewer_close = gr.Button(ui_text("viewer_close"), size="sm", scale=0, min_width=80,
                                                 elem_id="wenda-viewer-close")
                    viewer = gr.HTML(value="", label=ui_text("viewer_label"), css_template=VIEWER_CSS, max_height=560,
                                     elem_id="wenda-viewer-text", padding=True)
                view_req = gr.Textbox(visible="hidden", elem_id="wenda-view-req")  # filled by a card's link
                view_btn = gr.Button(visible="hidden", elem_id="wenda-view-btn")
            with gr.Tab(ui_text("tab_kb"), id="kb", elem_id="wenda-tab-kb"):
                status = gr.Markdown(ui_text("status_loading"))
                doc_table = gr.Dataframe(headers=TABLE_HEADERS["docs"]["zh"], value=[], interactive=False,
                                         label=ui_text("doc_table_label"), wrap=True)
                gr.Markdown(ui_text("read_only_notice"), visible=not editable, elem_id="wenda-read-only")
                with gr.Column(visible=editable, elem_id="wenda-editing"):
                    password = gr.Textbox(label=ui_text("admin_password"), type="password", value="",
                                          visible=bool(admin_password()), elem_id="wenda-admin-password")
                    with gr.Row(equal_height=False):
                        with gr.Column():
                            upload = gr.File(label=ui_text("upload_label"), file_count="multiple",
                                             file_types=list(SUPPORTED_SUFFIXES), type="filepath",
                                             elem_id="wenda-upload")
                            upload_btn = gr.Button(ui_text("upload_btn"), variant="primary", elem_id="wenda-upload-btn")
                        with gr.Column():
                            delete_dd = gr.Dropdown(choices=[], label=ui_text("delete_dd"), allow_custom_value=True)
                            delete_btn = gr.Button(ui_text("delete_btn"), variant="stop")
                    with gr.Accordion(ui_text("kb_manage"), open=False), gr.Row(equal_height=False):
                        with gr.Column():
                            new_name = gr.Textbox(label=ui_text("new_name"))
                            new_title = gr.Textbox(label=ui_text("new_title"))
                            create_btn = gr.Button(ui_text("create_btn"), variant="primary")
                        with gr.Column():
                            remove_btn = gr.Button(ui_text("remove_btn"), variant="stop")
                kb_message = gr.Markdown(elem_id="wenda-kb-message")

        chat_inputs = [question, turns, k, docs, years, style, generated_mode, kb_dd]
        generated.change(lambda on: bool(on), generated, generated_mode, api_visibility="private", queue=False)
        chat_outputs = [chatbot, sources, debug_table, turns, question]
        question.submit(chat, chat_inputs, chat_outputs, api_name="chat")
        send.click(chat, chat_inputs, chat_outputs, api_visibility="private")
        examples.load_input_event.then(chat, chat_inputs, chat_outputs, api_visibility="private")
        clear.click(clear_chat, None, chat_outputs, api_visibility="private")
        chatbot.clear(clear_chat, None, chat_outputs, api_visibility="private")
        view_btn.click(view_document, [view_req, kb_dd], [viewer, viewer_download, viewer_box], js=VIEW_REQUEST_JS,
                       api_visibility="private").then(None, js=SCROLL_JS)
        viewer_close.click(lambda: gr.Column(visible=False), None, viewer_box, api_visibility="private", queue=False)
        debug.change(toggle_debug, debug, debug_table, api_visibility="private", queue=False)

        kb_views = [doc_table, status, delete_dd, docs, years]
        switch_outputs = [header, examples.dataset, *chat_outputs, *kb_views]
        kb_dd.change(kb_switch, [kb_dd, saved], switch_outputs, api_visibility="private")
        turns.change(turns_changed, [turns, kb_dd, saved], [saved, export], api_visibility="private")
        chatbot.like(record_vote, turns, [turns, comment_row, feedback_target], api_visibility="private")
        for trigger in (comment_send.click, comment.submit):
            trigger(send_comment, [comment, feedback_target, turns], [comment, comment_row], api_visibility="private")
        edit = {"concurrency_limit": 1, "concurrency_id": "kb"}
        create_btn.click(kb_create, [new_name, new_title, password], [kb_message, kb_dd], api_name="kb_create", **edit)
        remove_btn.click(kb_remove, [kb_dd, password], [kb_message, kb_dd], api_name="kb_remove",
                         js=CONFIRM_REMOVE_JS, **edit)
        upload_btn.click(kb_upload, [upload, kb_dd, password], [kb_message, *kb_views, upload], api_name="kb_upload",
                         **edit)
        delete_btn.click(kb_delete, [delete_dd, kb_dd, password], [kb_message, *kb_views], api_name="kb_delete",
                         js=CONFIRM_DELETE_JS, **edit)
        demo.load(kb_refresh, kb_dd, kb_views, api_name="kb_refresh")
        demo.load(localize, kb_dd, [style, debug_table, sources, header, kb_dd], api_visibility="private",
                  queue=False).then(
            restore_chat, [saved, kb_dd], [kb_dd, *chat_outputs], api_visibility="private")
        gr.api(api_ask, api_name="ask")
        gr.api(api_kb_list, api_name="kb_list")

    demo.queue(default_concurrency_limit=4)
    return _with_i18n(demo)
