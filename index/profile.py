"""The corpus profile: what an index knows about its collection, made at index time (``profile.json``).

Generic code holds no words of one corpus. What is particular to a collection is either mined from its
documents here (domain terms for jieba, years, language, example questions from headings) or stated in
its corpus manifest (``stopwords``, ``title``, ``title_en``, ``examples``, per-document ``covers_year``),
and answering parameters fitted on it (``python -m eval fit``) travel with it as ``fitted.json`` beside
the manifest. The profile records all of it, so a loaded index carries its own tokenisation and
parameters, independent of any other knowledge base in the same process.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

from .textproc import TextProcessor, mine_terms
from .types import Document, Passage

log = logging.getLogger(__name__)

PROFILE = "profile.json"
CORPUS_MANIFEST = "manifest.json"
FITTED_NAME = "fitted.json"  # in a corpus folder: answering parameters fitted on it
_CJK = re.compile(r"[\u3400-\u9fff]")
_LATIN = re.compile(r"[A-Za-z]")


@dataclass
class CorpusProfile:
    """A collection's profile.

    Attributes:
        terms: Domain terms kept whole by its tokenizer (mined from the documents).
        stopwords: Collection words with no topic in it (from the corpus manifest).
        language: "zh", "en" or "mixed" (share of Chinese characters among letters).
        years: Years the documents speak for or look back on.
        title: Collection title (manifest) or "".
        title_en: English title (manifest) or "".
        examples: Example questions (manifest, else made from section headings).
        fitted: Answering parameters fitted on this collection (``fitted.json``), or None.
    """

    terms: list[str] = field(default_factory=list)
    stopwords: list[str] = field(default_factory=list)
    language: str = "zh"
    years: list[int] = field(default_factory=list)
    title: str = ""
    title_en: str = ""
    examples: list[str] = field(default_factory=list)
    fitted: dict[str, Any] | None = None

    def text_processor(self) -> TextProcessor:
        """The tokenizer of this collection's index."""
        return TextProcessor(self.terms, self.stopwords)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CorpusProfile":
        if not isinstance(data, dict) or not isinstance(data.get("terms", []), list):
            raise ValueError("profile is not a JSON object with a list of terms")
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


def read_corpus_manifest(corpus_dir: str | Path) -> dict[str, Any]:
    """The whole corpus manifest (collection fields and ``documents``), {} when absent or unreadable."""
    try:
        data = json.loads((Path(corpus_dir) / CORPUS_MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def read_fitted(corpus_dir: str | Path) -> dict[str, Any] | None:
    """``fitted.json`` of a corpus folder, None when absent; an unreadable one is logged and ignored."""
    path = Path(corpus_dir) / FITTED_NAME
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable %s: %s", path, exc)
        return None
    return data if isinstance(data, dict) else None


def sources_sha256(corpus_dir: str | Path) -> str:
    """sha256 over the collection-level inputs of a profile (manifest and fitted parameters), so an index
    is rebuilt when either changes even if no document did."""
    h = hashlib.sha256()
    for name in (CORPUS_MANIFEST, FITTED_NAME):
        path = Path(corpus_dir) / name
        h.update(name.encode() + b"\0" + (path.read_bytes() if path.is_file() else b"") + b"\0")
    return h.hexdigest()


def manifest_strings(value: Any, limit: int) -> list[str]:
    """The non-blank strings of a manifest list field (at most ``limit``), [] when it is not a list."""
    return [str(v).strip() for v in value if str(v).strip()][:limit] if isinstance(value, list) else []


def detect_language(texts: Iterable[str]) -> str:
    """"zh" when Chinese characters are most letters, "en" when almost none are, else "mixed"."""
    cjk = latin = 0
    for text in texts:
        cjk += len(_CJK.findall(text))
        latin += len(_LATIN.findall(text)) / 5  # about five letters make a word, one character does
    share = cjk / (cjk + latin) if cjk + latin else 1.0
    return "zh" if share >= 0.7 else "en" if share <= 0.1 else "mixed"


def heading_examples(passages: list[Passage], language: str, limit: int = 4) -> list[str]:
    """Questions about the first headings of different documents, for a collection without examples."""
    out: list[str] = []
    seen_docs: set[str] = set()
    for p in passages:
        head = p.section.split(" › ")[-1].strip() if p.section else ""
        if not head or p.doc_id in seen_docs or len(head) > 30:
            continue
        seen_docs.add(p.doc_id)
        out.append(f"What does the collection say about {head}?" if language == "en" else f"关于“{head}”，文件里怎么说？")
        if len(out) >= limit:
            break
    return out


def make_profile(corpus_dir: str | Path, docs: list[Document], passages: list[Passage]) -> CorpusProfile:
    """Mine and gather the profile of a corpus folder at index time."""
    manifest = read_corpus_manifest(corpus_dir)
    language = str(manifest.get("language") or detect_language(d.text for d in docs))
    years = Counter(y for d in docs for y in (d.year, d.covers_year) if y)
    examples = manifest_strings(manifest.get("examples"), 8) or heading_examples(passages, language)
    return CorpusProfile(
        terms=mine_terms(d.text for d in docs),
        stopwords=manifest_strings(manifest.get("stopwords"), 200),
        language=language,
        years=sorted(years),
        title=str(manifest.get("title") or ""),
        title_en=str(manifest.get("title_en") or ""),
        examples=examples,
        fitted=read_fitted(corpus_dir),
    )
