"""Fitted answering parameters and what they were fitted on.

``python -m eval fit`` writes re-ranking weights and the not-found calibration together with their
provenance (``fitted_on``: embedding model id and sha256, the documents of the index the fit ran on
with their sha256, the gold file's name and sha256, and the split) into ``fitted.json`` of the corpus
folder; indexing copies them into the index's profile (:mod:`index.profile`). The assistant uses them only
when they match the index in use: the same model, and every document the fit saw still present
unchanged (documents added since do not invalidate a fit: the questions it was fitted on are still
answered from the same passages). Otherwise it uses the code's defaults and logs a warning.
"""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from index.fileio import atomic_write

log = logging.getLogger(__name__)

FORMAT_VERSION = 2


def fingerprint(manifest: dict[str, Any]) -> dict[str, Any]:
    """What a fit depends on, read from an index manifest: model id/sha256 and per-document sha256."""
    model = manifest.get("model", {}) or {}
    docs = {name: meta.get("sha256") for name, meta in (manifest.get("documents", {}) or {}).items()}
    corpus = hashlib.sha256(json.dumps(sorted(docs.items())).encode("utf-8")).hexdigest()
    return {"model": model.get("id"), "model_sha256": model.get("sha256"), "documents": docs, "corpus_sha256": corpus}


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def mismatch(fitted_on: dict[str, Any], manifest: dict[str, Any]) -> str:
    """Why parameters fitted on ``fitted_on`` do not fit an index with ``manifest`` ("" when they do)."""
    now = fingerprint(manifest)
    if fitted_on.get("model") != now["model"] or fitted_on.get("model_sha256") != now["model_sha256"]:
        return f"fitted with model {fitted_on.get('model')!r}, the index uses {now['model']!r}"
    for name, sha in (fitted_on.get("documents") or {}).items():
        if name not in now["documents"]:
            return f"fitted on document {name!r}, which the index no longer holds"
        if now["documents"][name] != sha:
            return f"document {name!r} changed since the fit"
    if not fitted_on.get("documents"):
        return "the fit records no documents"
    return ""


def load_fitted(manifest: dict[str, Any], data: dict[str, Any] | None, path: str | Path = "") -> dict[str, Any] | None:
    """The fitted parameters ``data`` when they match the index (``manifest``), else None with a warning.

    Args:
        manifest: The index manifest.
        data: The parameters (the index profile's ``fitted``), or None when the collection has none.
        path: Where they came from, for messages.

    Returns:
        ``data`` (``weights``, ``weights_en``, ``calibration``, ``fitted_on``, ``report``) or None.
    """
    path = path or "the index profile"
    if data is None:
        log.info("no fitted parameters in %s: using the defaults", path)
        return None
    fitted_on = data.get("fitted_on")
    if data.get("format_version") != FORMAT_VERSION or not isinstance(fitted_on, dict):
        log.warning("fitted parameters %s carry no provenance: using the defaults (run python -m eval fit)", path)
        return None
    why = mismatch(fitted_on, manifest)
    if why:
        log.warning("fitted parameters %s do not match this index (%s): using the defaults", path, why)
        return None
    return data


def write_fitted(data: dict[str, Any], path: str | Path) -> Path:
    """Write fitted parameters atomically (temp file + rename)."""
    path = Path(path)
    atomic_write(path, (json.dumps({"format_version": FORMAT_VERSION, **data}, ensure_ascii=False, indent=1)
                        + "\n").encode("utf-8"))
    return path
