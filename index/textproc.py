"""Search-side text normalisation and jieba tokenisation that keeps figures and domain terms whole."""
from __future__ import annotations

import logging
import re
import threading
import unicodedata
from collections import ChainMap
from functools import lru_cache
from typing import Iterable

log = logging.getLogger(__name__)

# A figure with its unit stays one token: "2.4万个", "5%", "2000张", "1.3万余个".
NUMBER_RE = re.compile(
    r"\d+(?:[.,]\d+)*\s*(?:%|‰|余?[万亿千百]?余?(?:元|个|张|人|家|所|项|条|公里|千米|米|亩|平方米|吨|台|座|辆|户|套|场|次|倍|名|件|处|栋|间|床|位|天|年|月|日|小时|分钟|千瓦|兆瓦|GW|MW|kW)?)?"
)
# A year: 1000-2099 before 年 ("1949年"), or a bare 19xx/20xx that is neither part of a longer figure nor
# a quantity ("in 2023", not "2000张" or "2000.5").
YEAR_RE = re.compile(r"(?<![\d.,])(1\d{3}|20\d{2})(?=\s*年)|(?<![\d.,])(19\d{2}|20\d{2})(?![\d%‰\u3400-\u9fff]|[.,]\d)")


def years_in(text: str) -> list[int]:
    """Years written in ``text``, in order of appearance (see :data:`YEAR_RE`)."""
    return [int(a or b) for a, b in YEAR_RE.findall(text)]


_CJK_RUN = re.compile(r"[\u3400-\u9fff]+")
_WORD = re.compile(r"[\w\u3400-\u9fff%‰.]+")

# Function words and question words carry no topic; dropping them keeps BM25 on content. Words that are
# empty only within one collection (its place name, its genre: 报告, "report") are the corpus manifest's
# ``stopwords``, held by that index's TextProcessor.
STOPWORDS = frozenset(
    """的 了 和 与 及 或 在 是 为 对 将 把 被 从 向 以 于 等 着 也 都 还 又 就 而 并 其 之 中 上 下 个 这 那 这个 那个 这些 那些
    什么 多少 几 几个 哪些 哪个 哪里 哪 怎么 怎样 如何 为什么 是否 吗 呢 吧 啊 呀 请问 请 我们 我市 你 他 她 它 有 有关 关于
    要 会 能 可以 一个 一些 方面 情况 问题 进行 通过 实现 今年 去年 明年 哪一年 多 少 年
    哪家 哪所 哪条 哪座 哪项 哪位 哪几条 哪几 几所 几条 几项 几家 几个 什么样 怎样才能 一共 多久 时候 什么时候
    文章 一文 作者 提出 认为 希望 准备 据 称 说 来说 由 作 承诺 想 当年 为此 期间
    时期 计划 目标 打算 要求 其中 以及 分别 是否 能否 有没有 没有 哪些方面 主要 指出 表示
    the a an of to in on for and or is are was were be by with what which how many much does do did when where who why
    will would should can could from at as that this these those it its their there about according article""".split()
)

_cc = None


def _opencc():
    global _cc
    if _cc is None:
        import opencc

        _cc = opencc.OpenCC("t2s")
    return _cc


def normalize(text: str) -> str:
    """Fold width (NFKC), case and traditional characters (臺 → 台) for matching; display text is untouched."""
    text = unicodedata.normalize("NFKC", text).lower()
    return _opencc().convert(text)


def mine_terms(texts: Iterable[str], limit: int = 2000) -> list[str]:
    """Domain terms from a corpus: quoted names (“无废城市”), 《titles》, and indicator/project names.

    Args:
        texts: Document texts.
        limit: Maximum number of terms returned.
    """
    counts: dict[str, int] = {}
    pattern = re.compile(
        r"[“\"《]([\u3400-\u9fff\w·]{2,10})[”\"》]"
        r"|([\u3400-\u9fff]{2,8}(?:工程|项目|计划|行动|战略|中心|产业园|开发区|示范区|经济区|公园|大街|线))"
    )
    for text in texts:
        for m in pattern.finditer(text):
            term = normalize(m.group(1) or m.group(2))
            counts[term] = counts.get(term, 0) + 1
    ranked = sorted(counts, key=lambda t: (-counts[t], t))
    return ranked[:limit]


class TextProcessor:
    """Tokenisation for one index: jieba plus that index's mined domain terms, and the function words plus
    the collection's own stopwords dropped. Indexes never share added terms: a term of one knowledge base
    would otherwise change how another one's questions are cut, and no longer match its BM25 postings.

    Args:
        terms: Domain terms kept whole (mined at index time, :func:`mine_terms`).
        stopwords: Collection words that carry no topic in it (the corpus manifest's ``stopwords``).
    """

    def __init__(self, terms: Iterable[str] = (), stopwords: Iterable[str] = ()) -> None:
        self.terms = sorted({t.strip() for t in terms if len(t.strip()) >= 2})
        self.extra_stopwords = sorted({normalize(w).strip() for w in stopwords if w.strip()})
        self.stopwords = STOPWORDS | frozenset(self.extra_stopwords)
        self._jieba = None
        self._lock = threading.Lock()
        self._cached = lru_cache(maxsize=4096)(self._tokens)

    def _tokenizer(self):
        if self._jieba is None:
            with self._lock:
                if self._jieba is None:
                    self._jieba = _overlay_tokenizer(self.terms)
        return self._jieba

    def _words(self, tokens: list[str]) -> list[str]:
        return [t for t in tokens if t.strip() and _WORD.fullmatch(t) and t not in self.stopwords]

    def _tokens(self, text: str, bigrams: bool) -> tuple[str, ...]:
        cut = self._tokenizer().lcut
        out: list[str] = []
        pos = 0
        for m in NUMBER_RE.finditer(text):
            out.extend(self._words(cut(text[pos:m.start()])))
            out.append(re.sub(r"\s+", "", m.group(0)).replace(",", ""))
            pos = m.end()
        out.extend(self._words(cut(text[pos:])))
        if bigrams:
            for run in _CJK_RUN.findall(text):
                out.extend(run[i:i + 2] for i in range(len(run) - 1) if run[i:i + 2] not in self.stopwords)
        return tuple(out)

    def tokenize(self, text: str, bigrams: bool = False) -> list[str]:
        """Tokens for BM25: normalised jieba words, whole figures, no stopwords or punctuation.

        Args:
            text: Any text (query or passage).
            bigrams: Also emit overlapping character bigrams of Chinese runs.
        """
        return list(self._cached(normalize(text), bigrams))

    def cache_clear(self) -> None:
        """Forget cached tokenisations (benchmarks time the cold path)."""
        self._cached.cache_clear()


_base_lock = threading.Lock()


def ensure_jieba() -> None:
    """Load jieba's default dictionary once, quietly (``jieba.posseg`` and every overlay use it)."""
    import jieba

    with _base_lock:
        if not jieba.dt.initialized:
            jieba.setLogLevel(logging.WARNING)
            jieba.dt.initialize()


def _overlay_tokenizer(terms: list[str]):
    """A jieba tokenizer sharing the default dictionary (loaded once, ~70 MB) with ``terms`` added only to
    this instance: its frequency table is a ChainMap whose first map takes the additions."""
    import jieba

    ensure_jieba()
    tk = jieba.Tokenizer()
    tk.FREQ = ChainMap({}, jieba.dt.FREQ)
    tk.total = jieba.dt.total
    tk.initialized = True  # the dictionary is jieba.dt's; initialize() would load a private copy
    for term in terms:
        tk.add_word(term, freq=1000)
    return tk


_DEFAULT = TextProcessor()


def tokenize(text: str, bigrams: bool = False) -> list[str]:
    """:meth:`TextProcessor.tokenize` with function words only and no domain terms (index-free uses)."""
    return _DEFAULT.tokenize(text, bigrams)


def has_cjk(text: str) -> bool:
    """True when the text contains Chinese characters."""
    return bool(_CJK_RUN.search(text))
