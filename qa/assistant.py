"""The Assistant: rewrite → hybrid retrieval → re-ranking → extractive answer with citations."""
from __future__ import annotations

import logging
import math
import os
import re
import threading
import time
from pathlib import Path
from typing import Any, Sequence

from index.builder import MANIFEST, IndexLoadError, LoadedIndex, build_index, default_index_dir, load_index, read_manifest
from index.embed import Embedder
from index.mirror import store_in_sync
from index.profile import PROFILE
from index.stores import Filter
from index.textproc import has_cjk

from .answer import not_found_message
from .answerers import Answerer, AnswerRequest, make_answerer
from .profile import load_fitted
from .rerank import Reranker, RerankWeights, question_type, requested_unit, unit_pattern
from .retrieval import HybridRetriever, RetrievalConfig
from .rewrite import rewrite
from .types import Answer

log = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 500
RELOAD_RETRY_S = 5.0  # a replica that found the index mid-rebuild tries again after this long
CLOSE_OLD_STORE_S = 60.0  # requests still running on a replaced index keep its store this long


class QuestionError(ValueError):
    """The question cannot be answered as given (empty, too long, no words)."""


def validate_question(question: Any) -> str:
    """Return the stripped question or raise QuestionError naming the problem and the fix."""
    if not isinstance(question, str):
        raise QuestionError(f"question must be text, got {type(question).__name__}")
    q = question.strip()
    if not q:
        raise QuestionError("the question is empty: type a question about the documents")
    if len(q) > MAX_QUESTION_CHARS:
        raise QuestionError(f"the question has {len(q)} characters; keep it under {MAX_QUESTION_CHARS}")
    if not any(ch.isalnum() for ch in q):
        raise QuestionError("the question has no words (only symbols or emoji); ask in Chinese or English")
    return q


SMALL_TALK_ZH = "你好！我只回答与已收录文件有关的问题"
SMALL_TALK_EN = "Hello! I answer questions about the indexed documents"


def small_talk_message(lang: str, examples: Sequence[str]) -> str:
    """The prompt a greeting gets, with the knowledge base's own example question when it has one
    in that language (its corpus manifest's ``examples``)."""
    example = next((e for e in examples if has_cjk(e) == (lang == "zh")), "")
    if lang == "zh":
        return f"{SMALL_TALK_ZH}，例如：{example}" if example else f"{SMALL_TALK_ZH}。"
    return f"{SMALL_TALK_EN}, e.g. {example}" if example else f"{SMALL_TALK_EN}."
# Greetings and fillers are not questions: answering "hello" with the nearest passage looks broken.
SMALL_TALK = frozenset("""hello hi hey thanks thank you thank-you ok okay bye goodbye test testing
    你好 您好 嗨 哈喽 谢谢 多谢 再见 在吗 测试 好的""".split()) | {"thank you", "good morning", "早上好", "晚上好"}


def is_small_talk(question: str) -> bool:
    """True for a greeting or filler ("hello", "谢谢") rather than a question."""
    bare = re.sub(r"[\W_]+", " ", question.lower()).strip()
    return bool(bare) and (bare in SMALL_TALK or all(w in SMALL_TALK for w in bare.split()))


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


# Not-found model before any fit: the code's defaults (eval/fit.py starts every fold from these too).
DEFAULT_CALIBRATION: dict[str, float] = {
    "zh_bias": -3.0, "zh_cov": 4.0, "zh_dense": 2.0, "en_bias": -12.0, "en_dense": 15.0, "threshold": 0.5,
}


class Assistant:
    """Question answering over one index directory.

    Use :meth:`load`; the model and index are loaded once and shared by all calls (thread-safe).
    """

    def __init__(self, index: LoadedIndex, embedder: Embedder, weights: RerankWeights | None = None,
                 config: RetrievalConfig | None = None, answerer: str | Answerer | None = None) -> None:
        self.embedder = embedder
        # The answer step is a configuration choice (WENDA_ANSWERER), never the UI's.
        self.answerer = answerer if isinstance(answerer, Answerer) else make_answerer(answerer, embedder)
        self._given_weights = weights
        self.config = config or RetrievalConfig()
        self._lock = threading.RLock()
        self._retry_at = 0.0
        self._set_index(index)

    def _manifest_stamp(self, directory: Path) -> tuple[int, int, int] | None:
        try:
            st = os.stat(directory / MANIFEST)
        except OSError:
            return None
        return st.st_ino, st.st_mtime_ns, st.st_size

    def _set_index(self, index: LoadedIndex) -> None:
        # What the manifest looked like when this index was loaded: refresh() compares a stat with it.
        self._stamp = self._manifest_stamp(index.directory)
        try:
            if read_manifest(index.directory).get("build_id") != index.manifest.get("build_id"):
                self._stamp = None  # rebuilt meanwhile: the next refresh() looks
        except IndexLoadError:
            self._stamp = None
        # Fitted parameters apply only to the model and documents they were fitted on (qa.profile).
        fitted = load_fitted(index.manifest, index.profile.fitted, index.directory / PROFILE)
        self.weights = self._given_weights or RerankWeights.from_fitted(fitted)
        self.calibration = dict(DEFAULT_CALIBRATION, **(fitted or {}).get("calibration", {}))
        self.index = index
        # Example questions of this collection, for prompts (its profile: manifest or headings).
        self.examples = index.profile.examples
        self.retriever = HybridRetriever(index, self.embedder, self.config)
        self.reranker = Reranker(self.retriever, self.weights)

    @classmethod
    def load(cls, index_dir: str | Path | None = None, embedder: Embedder | None = None,
             corpus_dir: str | Path | None = None, build_if_missing: bool = False) -> "Assistant":
        """Load an index directory, building it first if asked.

        With neither ``index_dir`` nor ``corpus_dir``: the workspace's default knowledge base
        (:mod:`index.workspace`), built when it has no index yet.

        Args:
            index_dir: Index directory; default ``data/index/<corpus name>`` for a given corpus.
            embedder: Embedding model; default the offline e5-small.
            corpus_dir: Corpus used when building.
            build_if_missing: Build the index when the directory has none, or mirror it when the
                configured store (``WENDA_STORE``) does not hold it yet.

        Raises:
            index.builder.IndexLoadError: missing/corrupt/mismatched index (with the rebuild command).
        """
        embedder = embedder or Embedder()
        if index_dir is None and corpus_dir is None:
            from index.workspace import Workspace, default_kb_name

            folder = Workspace().path(default_kb_name())
            corpus_dir, index_dir, build_if_missing = folder / "corpus", folder / "index", True
        index_dir = Path(index_dir) if index_dir else default_index_dir(corpus_dir)
        if build_if_missing and corpus_dir is not None:
            if not (index_dir / MANIFEST).exists():
                log.info("no index at %s: building it from %s", index_dir, corpus_dir)
                build_index(corpus_dir, index_dir, embedder)
            elif not store_in_sync(index_dir, read_manifest(index_dir)):
                # WENDA_STORE names a store this index is not mirrored into yet (first start on Milvus).
                log.info("index %s is not in the configured store: mirroring it (nothing is re-embedded)", index_dir)
                build_index(corpus_dir, index_dir, embedder)
        assistant = cls(load_index(index_dir, embedder), embedder)
        assistant.retriever.warm_up()
        assistant.answerer.warm_up()
        return assistant

    def reload(self) -> None:
        """Re-read the index directory (after a rebuild), swapping it in atomically for new requests."""
        index = load_index(self.index.directory, self.embedder)
        with self._lock:
            old = self.index
            self._set_index(index)
        if old.store is not index.store:
            timer = threading.Timer(CLOSE_OLD_STORE_S, old.close)
            timer.daemon = True
            timer.start()

    def refresh(self) -> bool:
        """Reload when another process rebuilt the index since it was loaded; True when it did.

        Replicas share the knowledge-base folder (``WENDA_HOME``): a document uploaded through one
        is answered by the others at their next question. The check is one ``stat`` of the
        manifest; only a changed manifest is read, and only a new ``build_id`` reloads. A reload
        that fails (the other process is still mirroring into the store) keeps the loaded index
        and is retried after a few seconds.
        """
        directory = self.index.directory
        stamp = self._manifest_stamp(directory)
        if stamp == self._stamp or stamp is None or time.monotonic() < self._retry_at:
            return False
        with self._lock:
            if stamp == self._stamp:
                return False
            try:
                if read_manifest(directory).get("build_id") == self.index.manifest.get("build_id"):
                    self._stamp = stamp
                    return False
                self.reload()
            except IndexLoadError as exc:
                log.warning("index %s changed but cannot be loaded yet (%s); still serving the loaded one", directory, exc)
                self._retry_at = time.monotonic() + RELOAD_RETRY_S
                return False
        log.info("index %s was rebuilt by another process: reloaded (%d passages)", directory, len(self.index.passages))
        return True

    @staticmethod
    def _filter(docs: Sequence[str] | None, years: Sequence[int] | None) -> Filter | None:
        """The search filter of the UI's document/year choices (empty choices restrict nothing)."""
        if not docs and not years:
            return None
        return Filter(doc_ids=tuple(docs) if docs else None, years=tuple(int(y) for y in years) if years else None)

    @staticmethod
    def refusal_features(question: str, hits: list) -> dict[str, float]:
        """Evidence-strength signals of the top hits (inputs of the calibrated confidence)."""
        top = hits[0].features
        unit = requested_unit(question)
        unit_missing = 0.0
        if unit:
            pattern = unit_pattern(unit)
            unit_missing = 0.0 if any(pattern.search(h.passage.text) for h in hits[:3]) else 1.0
        # "bm25": the top hit's BM25 score relative to the best BM25 candidate, i.e. whether the
        # lexical channel agrees with the re-ranked choice (held-out refusal 0.45 → 0.70, docs in README).
        # "year": whether the top passage is of the year the question asks about (1 its year, 0.8 a
        # document looking back on it, 0.6 mentioned, -1 another year's document, 0 no year asked).
        return {"coverage": top.get("coverage", 0.0), "dense": top.get("dense", 0.0),
                "bm25": top.get("bm25", 0.0), "unit_missing": unit_missing, "year": top.get("year", 0.0)}

    def confidence(self, features: dict[str, float], same_language: bool) -> float:
        """Probability-like confidence that the top passage answers the question.

        The ``zh_*`` parameters are those of questions in the collection's language (named after the
        bundled collection's), ``en_*`` those of cross-lingual questions.
        """
        c = self.calibration
        if same_language:
            return _sigmoid(c["zh_bias"] + c["zh_cov"] * features.get("coverage", 0.0)
                            + c["zh_dense"] * features.get("dense", 0.0) + c.get("zh_bm25", 0.0) * features.get("bm25", 0.0)
                            + c.get("zh_unit", 0.0) * features.get("unit_missing", 0.0)
                            + c.get("zh_year", 0.0) * features.get("year", 0.0))
        return _sigmoid(c["en_bias"] + c["en_dense"] * features.get("dense", 0.0))

    def retrieve(self, question: str, history: Sequence[Any] | None = None, k: int = 20,
                 docs: Sequence[str] | None = None, years: Sequence[int] | None = None):
        """Rewritten query, query info, question type and re-ranked hits (no answer extraction)."""
        q = validate_question(question)
        rewritten = rewrite(q, history)
        if rewritten != q:
            try:  # history comes from API callers too: an emoji or 5,000-character turn must not slip through
                rewritten = validate_question(rewritten)
            except QuestionError:
                log.info("ignoring history: rewritten query %r is not a usable question", rewritten[:60])
                rewritten = q
        self.refresh()
        with self._lock:
            retriever, reranker = self.retriever, self.reranker
        where = self._filter(docs, years)
        info = retriever.analyze(rewritten)
        qtype = question_type(rewritten)
        hits = retriever.search(rewritten, k=max(k, 20), info=info, where=where)
        hits = reranker.rerank(info, hits, qtype)
        return rewritten, info, qtype, hits[:k], retriever

    def ask(self, question: str, history: Sequence[Any] | None = None, k: int = 5,
            docs: Sequence[str] | None = None, years: Sequence[int] | None = None,
            style: str = "auto") -> Answer:
        """Answer a question from the documents, with citations.

        Args:
            question: Chinese or English question (≤ 500 characters).
            history: Previous turns, oldest first (strings, Answers or {"question", "rewritten_query"} dicts).
            k: Number of passages considered for the answer and returned as hits.
            docs: Restrict to these document ids.
            years: Restrict to documents of these years.
            style: "auto", "short" (sentence + short answer) or "summary" (up to 3 sentences).

        Raises:
            QuestionError: empty, over-long or word-less question.
        """
        if style not in ("auto", "short", "summary"):
            raise ValueError(f"style {style!r} is not one of 'auto', 'short', 'summary'")
        if not isinstance(k, int) or not 1 <= k <= 50:
            raise ValueError(f"k={k!r} must be an integer between 1 and 50")
        t0 = time.perf_counter()
        q = validate_question(question)
        lang = "zh" if has_cjk(q) else "en"
        if is_small_talk(q):
            # Decided before retrieval: a greeting is neither searched nor merged with the history.
            return Answer(question=q, rewritten_query=q, lang=lang, not_found=True,
                          message=small_talk_message(lang, self.examples),
                          elapsed_ms=(time.perf_counter() - t0) * 1000)
        rewritten, info, qtype, hits, retriever = self.retrieve(question, history, k=20, docs=docs, years=years)
        answer = Answer(question=question.strip(), rewritten_query=rewritten, hits=hits[:k], lang=lang)
        if not hits:
            answer.not_found = True
            answer.message = not_found_message(question)
            answer.elapsed_ms = (time.perf_counter() - t0) * 1000
            return answer
        req = AnswerRequest(question=answer.question, rewritten=rewritten, info=info, qtype=qtype, hits=hits,
                            retriever=retriever, k=k, style=style, t0=t0)
        return self.answerer.answer(req, answer, self)
