"""Wenda (问答) web app: chat with cited sources, knowledge-base management and a JSON API.

Run ``python app.py`` (binds 127.0.0.1; honours GRADIO_SERVER_NAME / GRADIO_SERVER_PORT).
Configuration is read from the environment:

* ``WENDA_HOME``: workspace of knowledge bases (default ``~/.local/share/wenda``; the bundled
  corpora are copied in on first use, nothing is written into the repository)
* ``WENDA_KB``: knowledge base selected at start (default: the first bundled corpus)
* ``WENDA_LLM_URL`` (+ ``WENDA_LLM_MODEL``, ``WENDA_LLM_API_KEY``): OpenAI-compatible server that
  enables the optional generated-answer mode (docs/llm.md); without it the switch is disabled
* ``WENDA_ADMIN_PASSWORD``: needed to change knowledge bases (upload, delete, create, remove);
  without it changes are open, and the app listens on localhost only
* ``WENDA_READ_ONLY=1``: no knowledge-base changes at all

The interface lives in :mod:`ui`; this module only wires it up (and re-exports the names that
callers import from ``app``).
"""
import logging
import os
import sys

from index.ingest import MAX_FILE_BYTES
from ui.admin import admin_password, read_only, startup_error
from ui.handlers import (
    api_ask,
    api_kb_list,
    chat,
    clear_chat,
    friendly_question_error,
    kb_choices,
    kb_error,
    kb_examples,
    localize,
    service,
    toggle_debug,
)
from ui.kb import (
    header_md,
    kb_create,
    kb_delete,
    kb_refresh,
    kb_remove,
    kb_switch,
    kb_upload,
)
from ui.layout import build_demo
from ui.render import (
    debug_rows,
    esc,
    highlight,
    marker,
    md_text,
    placeholder_sources,
    render_answer_md,
    render_sources,
)

__all__ = [
    "api_ask", "api_kb_list", "build_demo", "chat", "clear_chat", "debug_rows", "esc", "friendly_question_error",
    "header_md", "highlight", "kb_choices", "kb_create", "kb_delete", "kb_error", "kb_examples", "kb_refresh",
    "kb_remove", "kb_switch", "kb_upload", "localize", "main", "marker", "md_text", "placeholder_sources",
    "render_answer_md", "render_sources", "service", "toggle_debug",
]

log = logging.getLogger("wenda.app")


def main() -> None:
    """Start the web app (127.0.0.1 unless GRADIO_SERVER_NAME says otherwise).

    Exits with code 2 (one error line, nothing loaded) when asked to listen beyond localhost while
    knowledge-base changes are open to anyone (no ``WENDA_ADMIN_PASSWORD``, no ``WENDA_READ_ONLY``).
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    server_name = os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1")
    error = startup_error(server_name)
    if error:
        log.error(error)
        sys.exit(2)
    if not read_only() and not admin_password():
        log.warning("WENDA_ADMIN_PASSWORD is not set: anyone who can reach %s may change the knowledge bases",
                    server_name)
    demo = build_demo()
    port = os.environ.get("GRADIO_SERVER_PORT")
    demo.launch(
        server_name=server_name,
        server_port=int(port) if port else None,
        max_file_size=MAX_FILE_BYTES,
        footer_links=["api"],
    )


if __name__ == "__main__":
    main()
