"""Hybrid retrieval: BM25 over jieba tokens + dense passage and sentence search, fused, with time awareness.

Every channel asks the index's :class:`~index.stores.PassageStore` (the in-process FAISS/bm25s files
by default, Milvus with ``WENDA_STORE``) with a :class:`~index.stores.Filter`, and maps the passage
ids it returns to rows of the loaded catalog. English questions over Chinese text get little from
BM25 directly (R@1 ≈ 0.07), so a cross-lingual question rests on the dense passage and sentence
channels. (Pseudo-relevance feedback, key terms of the top dense passages searched with BM25, was
tried and removed: it gained one fit item and let any document among the top dense hits change the
terms of the whole answer, issue 13.)
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from index.builder import LoadedIndex
from index.chunking import passage_sentences
from index.embed import Embedder
from index.stores import Filter, SearchResults
from index.textproc import has_cjk, normalize, years_in

from .types import ChannelScore, Hit

log = logging.getLogger(__name__)

# Extra candidates asked of a store so that passages tied at the cut (overlapping passages share a
# sentence; equal BM25 scores) are chosen by catalog order, not by the engine's internal order.
TIE_MARGIN = 10

# The answer step weighs a question's terms by how many passages hold them, on a fixed scale rather
# than relative to the collection's size: with log(N/df), adding unrelated documents raises every
# weight by the same amount, which reorders feedback terms and near-tied sentences of questions the
# new documents have nothing to do with (issue 13). With a fixed scale a weight changes only when a
# document holding the term is added or deleted.
IDF_SCALE = 1000.0


def idf_weight(df: int) -> float:
    """Weight of a term held by ``df`` passages: ``log(1 + IDF_SCALE / (df + 0.5))``."""
    return float(np.log1p(IDF_SCALE / (df + 0.5)))

_CN_NUM = {"十三五": [2016, 2017, 2018, 2019, 2020], "十四五": [2021, 2022, 2023, 2024, 2025], "十五五": [2026, 2027, 2028, 2029, 2030]}


def question_years(question: str) -> list[int]:
    """Years a question is about: explicit years and plan periods (十四五 → 2021-2025)."""
    years = set(years_in(question))
    return sorted(years)


def same_language(question: str, collection_language: str) -> bool:
    """Whether a question is in its collection's language ("zh", "en"; a "mixed" one takes both)."""
    if collection_language == "mixed":
        return True
    return has_cjk(question) == (collection_language != "en")


def question_periods(question: str) -> list[str]:
    """Five-year-plan names mentioned in the question."""
    q = normalize(question)
    return [p for p in _CN_NUM if p in q] + (["十四五"] if "14th five-year" in q else [])


@dataclass
class RetrievalConfig:
    """Tunable knobs of hybrid retrieval (fitted on the project's own gold set, see README)."""

    candidates: int = 50
    rrf_k: float = 60.0
    w_dense: float = 1.0
    w_bm25: float = 1.0
    w_sent: float = 1.0
    year_boost: float = 0.35
    year_penalty: float = 0.35


@dataclass
class QueryInfo:
    """What retrieval learned about a question (reused by reranking and answering)."""

    text: str
    tokens: list[str]
    has_cjk: bool
    years: list[int]
    periods: list[str]
    vector: np.ndarray | None = None
    # The question is written in the collection's language, so its words can match lexically; a
    # cross-lingual question (English on Chinese documents, or the reverse) relies on dense similarity
    # alone.
    same_language: bool = True
    sentence_sims: SentenceSims | None = None  # cosine of the question to catalog sentences (lazy)


class SentenceSims:
    """Cosine of the question to catalog sentences, computed for the sentences actually asked for.

    The answerers look at the sentences of a few top passages only; a full product over every
    sentence vector would cost O(corpus) per question once the search itself runs in an external
    store.

    Args:
        vectors: (m, dim) sentence vectors of the catalog.
        query: The question's vector.
    """

    def __init__(self, vectors: np.ndarray, query: np.ndarray) -> None:
        self._vectors, self._query = vectors, query
        self._cache: dict[int, float] = {}

    def __getitem__(self, srow: int) -> float:
        v = self._cache.get(srow)
        if v is None:
            v = self._cache[srow] = float(self._vectors[srow] @ self._query)
        return v


class HybridRetriever:
    """Dense passages and sentences + BM25 (same-language questions), fused by reciprocal rank, with a
    year boost.

    Args:
        index: A loaded index directory.
        embedder: The embedder the index was built with.
        config: Fusion weights.
    """

    def __init__(self, index: LoadedIndex, embedder: Embedder, config: RetrievalConfig | None = None) -> None:
        self.index = index
        self.embedder = embedder
        self.config = config or RetrievalConfig()
        self._passage_tokens: list[set[str]] | None = None
        self._idf: dict[str, float] | None = None
        self._passage_norm: list[str] | None = None
        self._sentence_info: dict[int, list[tuple[int, int, frozenset[str], str]]] = {}
        self.unknown_idf = 1.0
        # (passage row, start, end) → sentence row, to look up a sentence's similarity.
        self.row_of = index.row_of
        self.sentence_row = {(int(r), int(s), int(e)): i for i, (r, s, e) in enumerate(index.sentences)}
        self._sent_passage = index.sentences[:, 0].astype(np.int64) if len(index.sentences) else np.zeros(0, np.int64)

    # ---- per-index precomputation (done once, not per request) ----
    @property
    def passage_tokens(self) -> list[set[str]]:
        if self._passage_tokens is None:
            self._passage_tokens = [set(self.index.text.tokenize(p.index_text())) for p in self.index.passages]
        return self._passage_tokens

    @property
    def idf(self) -> dict[str, float]:
        if self._idf is None:
            df: dict[str, int] = {}
            for toks in self.passage_tokens:
                for t in toks:
                    df[t] = df.get(t, 0) + 1
            self._idf = {t: idf_weight(c) for t, c in df.items()}
            # A term the corpus never uses is as informative as the rarest one.
            self.unknown_idf = idf_weight(0)
        return self._idf

    @property
    def passage_norm(self) -> list[str]:
        """Normalised passage texts (with headings) for substring term matching."""
        if self._passage_norm is None:
            self._passage_norm = [normalize(p.index_text()) for p in self.index.passages]
        return self._passage_norm

    def coverage(self, terms: list[str], row: int) -> float:
        """idf-weighted share of ``terms`` found in passage ``row`` (token or substring match)."""
        idf, unk = self.idf, self.unknown_idf
        toks, text = self.passage_tokens[row], self.passage_norm[row]
        total = found = 0.0
        for t in terms:
            w = idf.get(t, unk)
            total += w
            if t in toks or t in text:
                found += w
        return found / total if total else 0.0

    def passage_sentence_info(self, row: int) -> list[tuple[int, int, frozenset[str], str]]:
        """``(start, end, tokens, normalised text)`` of each sentence of passage ``row``, computed once.

        Answer extraction scores the sentences of the top passages on every request; their
        segmentation and jieba tokens depend only on the passage, so they are cached here.
        """
        info = self._sentence_info.get(row)
        if info is None:
            text = self.index.passages[row].text
            info = [(s, e, frozenset(self.index.text.tokenize(text[s:e])), normalize(text[s:e])) for s, e in passage_sentences(text)]
            self._sentence_info[row] = info
        return info

    def warm_up(self, all_sentences_below: int = 20_000) -> None:
        """Load the model and build per-index tables so the first request is not slow.

        Args:
            all_sentences_below: Also tokenise every passage's sentences when the index has fewer
                passages than this (larger indexes fill the cache as passages are used).
        """
        _ = self.idf, self.passage_norm
        self.embedder.encode_queries(["预热 warm up"])
        # jieba's part-of-speech model (names in answers, entities in verification) loads on
        # first import: 0.35 s that the first "who" question would otherwise pay.
        import jieba.posseg as pseg

        pseg.lcut("市人民政府工作")
        if len(self.index.passages) < all_sentences_below:
            for row in range(len(self.index.passages)):
                self.passage_sentence_info(row)

    def analyze(self, question: str) -> QueryInfo:
        """Tokenise and embed a question once."""
        return QueryInfo(
            text=question,
            tokens=self.index.text.tokenize(question),
            has_cjk=has_cjk(question),
            years=question_years(question),
            periods=question_periods(question),
            same_language=same_language(question, self.index.profile.language),
        )

    def _channel(self, res: SearchResults, n: int) -> dict[int, ChannelScore]:
        """The top ``n`` of one store answer (a single query) as catalog rows with ranks.

        Equal scores are ordered by catalog row, so every store ranks tied passages alike; ids the
        catalog lacks are skipped (the store is ahead of this process's catalog until it reloads).
        """
        row_of = self.row_of
        rows = np.fromiter((row_of.get(pid, -1) for pid in res.ids[0]), np.int64, len(res.ids[0]))
        scores = np.asarray(res.scores[0], np.float32)
        if (rows < 0).any():
            log.debug("%d passages are not in the loaded catalog", int((rows < 0).sum()))
            rows, scores = rows[rows >= 0], scores[rows >= 0]
        order = np.lexsort((rows, -scores))[:n]
        return {row: ChannelScore(i + 1, s) for i, (row, s) in enumerate(zip(rows[order].tolist(), scores[order].tolist()))}

    def _dense(self, info: QueryInfo, n: int, where: Filter | None = None) -> dict[int, ChannelScore]:
        if info.vector is None:
            info.vector = self.embedder.encode_queries([info.text])[0]
        return self._channel(self.index.store.search(info.vector[None, :], n + TIE_MARGIN, where), n)

    def _sentences(self, info: QueryInfo, n: int, where: Filter | None) -> dict[int, ChannelScore]:
        """Fine-grained dense channel: passages ranked by their best sentence (exact)."""
        info.sentence_sims = SentenceSims(self.index.sentence_vectors, info.vector)
        return self._channel(self.index.store.sentence_search(info.vector[None, :], n + TIE_MARGIN, where), n)

    def _bm25(self, tokens: list[str], n: int, where: Filter | None) -> dict[int, ChannelScore]:
        return self._channel(self.index.lexical.bm25_search(tokens, n + TIE_MARGIN, where), n)

    def sentence_similarity(self, info: QueryInfo, srow: int) -> float:
        """Cosine of the question to sentence ``srow`` (0 before the sentence channel ran)."""
        return 0.0 if info.sentence_sims is None else info.sentence_sims[srow]

    def search(
        self,
        question: str,
        k: int = 20,
        info: QueryInfo | None = None,
        where: Filter | None = None,
    ) -> list[Hit]:
        """Top-k fused hits.

        Args:
            question: The (rewritten) question.
            k: Number of hits.
            info: A QueryInfo from :meth:`analyze` (computed when absent).
            where: Optional document/year filter, pushed down into every channel (so each still
                returns its top candidates).
        """
        cfg = self.config
        info = info or self.analyze(question)
        n_pass = len(self.index.passages)
        if n_pass == 0 or (where is not None and where.matches_nothing):
            return []
        n = min(cfg.candidates, n_pass)
        channels: dict[str, dict[int, ChannelScore]] = {}

        channels["dense"] = self._dense(info, n, where)

        if len(self._sent_passage):
            channels["sent"] = self._sentences(info, n, where)

        if info.same_language and info.tokens:
            channels["bm25"] = self._bm25(info.tokens, n, where)

        weights = {"dense": cfg.w_dense, "bm25": cfg.w_bm25, "sent": cfg.w_sent}
        fused: dict[int, float] = {}
        for name, hits in channels.items():
            for row, ch in hits.items():
                fused[row] = fused.get(row, 0.0) + weights[name] / (cfg.rrf_k + ch.rank)
        # Normalise so the best possible score (rank 1 everywhere) is 1.
        best = sum(weights[name] for name in channels) / (cfg.rrf_k + 1)
        if best <= 0:
            # Every present channel is switched off (e.g. a BM25-only setup and an English
            # question): fall back to the dense ranking rather than return nothing.
            weights = {**weights, "dense": 1.0}
            fused = {row: 1.0 / (cfg.rrf_k + ch.rank) for row, ch in channels["dense"].items()}
            best = 1.0 / (cfg.rrf_k + 1)
        years = set(info.years)
        out: list[Hit] = []
        for row, score in fused.items():
            p = self.index.passages[row]
            if where is not None and not where.matches(p.doc_id, p.year or 0):
                continue
            s = score / best
            year_feat = 0.0
            if years:
                if p.year in years:
                    year_feat = 1.0
                elif p.covers_year in years:
                    # The document looks back on the asked year (its manifest says so: a report of
                    # 2022 on the results of 2021).
                    year_feat = 0.8
                elif years & set(p.years_mentioned):
                    year_feat = 0.6
                elif p.year is not None:
                    year_feat = -1.0
                s *= 1.0 + (cfg.year_boost * year_feat if year_feat > 0 else cfg.year_penalty * year_feat)
            hit = Hit(passage=p, score=s, channels={name: hits[row] for name, hits in channels.items() if row in hits})
            hit.features["fused"] = score / best
            hit.features["year"] = year_feat
            out.append(hit)
        out.sort(key=lambda h: -h.score)
        return out[:k]
