"""Who may change knowledge bases: reading and asking are open, changes need the admin password.

* ``WENDA_ADMIN_PASSWORD``: when set, creating or deleting a knowledge base, uploading and deleting
  documents need it (checked in the handlers, so the API endpoints enforce it too).
* ``WENDA_READ_ONLY=1``: no changes at all (the editing controls are hidden, the handlers refuse).
* Without a password, changes are open, which the app allows on localhost only: :func:`startup_error`
  refuses any other ``GRADIO_SERVER_NAME``.

The environment is read on every call, so a test or an operator can change it without a rebuild.
"""
from __future__ import annotations

import hmac
import logging
import os

from .i18n import tr

log = logging.getLogger("wenda.app")

LOCAL_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})


def read_only() -> bool:
    """Whether ``WENDA_READ_ONLY`` disables every knowledge-base change."""
    return os.environ.get("WENDA_READ_ONLY", "").strip().lower() in ("1", "true", "yes", "on")


def admin_password() -> str:
    """The configured admin password ("" when none is set)."""
    return os.environ.get("WENDA_ADMIN_PASSWORD", "")


def editing_refusal(password: str | None, action: str, lang: str = "zh") -> str | None:
    """Why a knowledge-base change is refused, or None when it may go ahead.

    Args:
        password: The password the user typed (or the API caller sent).
        action: What was asked ("upload", "delete", ...), for the log line.
        lang: Language of the message.

    Returns:
        The message for the user, or None. A refusal is logged as one line.
    """
    if read_only():
        reason = "read-only mode"
        message = tr("read_only", lang)
    else:
        expected = admin_password()
        if not expected:
            return None
        given = str(password or "")
        if hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8")):
            return None
        reason = "wrong admin password" if given else "no admin password"
        message = tr("wrong_password" if given else "need_password", lang)
    log.warning("knowledge-base %s refused: %s", action, reason)
    return message


def startup_error(server_name: str) -> str | None:
    """Why the app must not listen on ``server_name``: editing open to the network, or None."""
    if read_only() or admin_password() or server_name.strip().strip("[]") in LOCAL_NAMES:
        return None
    return (f"refusing to listen on {server_name}: knowledge-base editing is enabled and WENDA_ADMIN_PASSWORD "
            "is not set; set WENDA_ADMIN_PASSWORD, or WENDA_READ_ONLY=1 for a read-only app")
