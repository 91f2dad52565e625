"""EM and F1 exactly as CMRC 2018's official evaluation script (``cmrc2018_evaluate.py``); shared by
``qa.reader`` training (validation) and ``eval`` (reports), so qa never imports eval.

The official script lower-cases and strips the text, drops its list of punctuation marks, keeps
every Chinese character as its own token and runs ``nltk.word_tokenize`` over the non-Chinese
runs between them. F1 is computed from the longest common *contiguous* run of tokens (its
``find_lcs``), EM compares the punctuation-free strings. nltk is not a dependency of Wenda, so
the word tokenizer used on the non-Chinese runs is a port of nltk's ``NLTKWordTokenizer`` (what
``word_tokenize`` applies to each sentence); the runs between Chinese characters are short, so
the Punkt sentence split ``word_tokenize`` does first makes no practical difference.
"""
from __future__ import annotations

import re
from typing import Iterable

# The official script's punctuation list, verbatim (note: ASCII "," "." "%" are not in it).
SP_CHAR = frozenset([
    "-", ":", "_", "*", "^", "/", "\\", "~", "`", "+", "=",
    "，", "。", "：", "？", "！", "“", "”", "；", "’", "《", "》", "……", "·", "、",
    "「", "」", "（", "）", "－", "～", "『", "』",
])
_CJK = re.compile(r"[\u4e00-\u9fa5]")

# --- port of nltk.tokenize.destructive.NLTKWordTokenizer (nltk 3.8+) ---------------------------
_STARTING_QUOTES = [
    (re.compile(r"([«“‘„]|[`]+)", re.U), r" \1 "),
    (re.compile(r"^\""), r"``"),
    (re.compile(r"(``)"), r" \1 "),
    (re.compile(r"([ \(\[{<])(\"|\'{2})"), r"\1 `` "),
    (re.compile(r"(?i)(\')(?!re|ve|ll|m|t|s|d|n)(\w)\b", re.U), r"\1 \2"),
]
_ENDING_QUOTES = [
    (re.compile(r"([»”’])", re.U), r" \1 "),
    (re.compile(r"''"), " '' "),
    (re.compile(r'"'), " '' "),
    (re.compile(r"([^' ])('[sS]|'[mM]|'[dD]|') "), r"\1 \2 "),
    (re.compile(r"([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) "), r"\1 \2 "),
]
_PUNCTUATION = [
    (re.compile(r'([^\.])(\.)([\]\)}>"\']*)\s*$', re.U), r"\1 \2 \3 "),
    (re.compile(r"([:,])([^\d])"), r" \1 \2"),
    (re.compile(r"([:,])$"), r" \1 "),
    (re.compile(r"\.{2,}", re.U), r" \g<0> "),
    (re.compile(r"[;@#$%&]"), r" \g<0> "),
    (re.compile(r'([^\.])(\.)([\]\)}>"\']*)\s*$'), r"\1 \2\3 "),
    (re.compile(r"[?!]"), r" \g<0> "),
    (re.compile(r"([^'])' "), r"\1 ' "),
    (re.compile(r"[*]", re.U), r" \g<0> "),
]
_PARENS_BRACKETS = (re.compile(r"[\]\[\(\)\{\}\<\>]"), r" \g<0> ")
_DOUBLE_DASHES = (re.compile(r"--"), r" -- ")
_CONTRACTIONS2 = [re.compile(p) for p in (
    r"(?i)\b(can)(?#X)(not)\b", r"(?i)\b(d)(?#X)('ye)\b", r"(?i)\b(gim)(?#X)(me)\b", r"(?i)\b(gon)(?#X)(na)\b",
    r"(?i)\b(got)(?#X)(ta)\b", r"(?i)\b(lem)(?#X)(me)\b", r"(?i)\b(more)(?#X)('n)\b", r"(?i)\b(wan)(?#X)(na)(?=\s)",
)]
_CONTRACTIONS3 = [re.compile(p) for p in (r"(?i) ('t)(?#X)(is)\b", r"(?i) ('t)(?#X)(was)\b")]


def word_tokenize(text: str) -> list[str]:
    """Tokenise a non-Chinese run like ``nltk.word_tokenize`` (Treebank rules)."""
    for regexp, sub in _STARTING_QUOTES:
        text = regexp.sub(sub, text)
    for regexp, sub in _PUNCTUATION:
        text = regexp.sub(sub, text)
    text = _PARENS_BRACKETS[0].sub(_PARENS_BRACKETS[1], text)
    text = _DOUBLE_DASHES[0].sub(_DOUBLE_DASHES[1], text)
    text = " " + text + " "
    for regexp, sub in _ENDING_QUOTES:
        text = regexp.sub(sub, text)
    for regexp in _CONTRACTIONS2:
        text = regexp.sub(r" \1 \2 ", text)
    for regexp in _CONTRACTIONS3:
        text = regexp.sub(r" \1 \2 ", text)
    return text.split()


# --- the official script's functions ------------------------------------------------------------
def mixed_segmentation(in_str: str, rm_punc: bool = False) -> list[str]:
    """Chinese characters one by one, non-Chinese runs through the word tokenizer."""
    in_str = str(in_str).lower().strip()
    segs_out: list[str] = []
    temp_str = ""
    for char in in_str:
        if rm_punc and char in SP_CHAR:
            continue
        if _CJK.search(char) or char in SP_CHAR:
            if temp_str != "":
                segs_out.extend(word_tokenize(temp_str))
                temp_str = ""
            segs_out.append(char)
        else:
            temp_str += char
    if temp_str != "":
        segs_out.extend(word_tokenize(temp_str))
    return segs_out


def remove_punctuation(in_str: str) -> str:
    """Lower-case, strip and drop the official punctuation marks."""
    in_str = str(in_str).lower().strip()
    return "".join(ch for ch in in_str if ch not in SP_CHAR)


def find_lcs(s1: list[str], s2: list[str]) -> tuple[list[str], int]:
    """Longest common contiguous run of tokens and its length (the official ``find_lcs``)."""
    m = [[0] * (len(s2) + 1) for _ in range(len(s1) + 1)]
    mmax = 0
    p = 0
    for i in range(len(s1)):
        for j in range(len(s2)):
            if s1[i] == s2[j]:
                m[i + 1][j + 1] = m[i][j] + 1
                if m[i + 1][j + 1] > mmax:
                    mmax = m[i + 1][j + 1]
                    p = i + 1
    return s1[p - mmax:p], mmax


def cmrc_f1(answers: Iterable[str], prediction: str) -> float:
    """Best F1 of the prediction over the gold answers (0 for an empty prediction or no answers)."""
    answers = list(answers)
    if not prediction or not prediction.strip() or not answers:
        return 0.0
    prediction_segs = mixed_segmentation(prediction, rm_punc=True)
    scores = []
    for ans in answers:
        ans_segs = mixed_segmentation(ans, rm_punc=True)
        _, lcs_len = find_lcs(ans_segs, prediction_segs)
        if lcs_len == 0:
            scores.append(0.0)
            continue
        precision = lcs_len / len(prediction_segs)
        recall = lcs_len / len(ans_segs)
        scores.append(2 * precision * recall / (precision + recall))
    return max(scores)


def cmrc_em(answers: Iterable[str], prediction: str) -> float:
    """1.0 when the prediction equals a gold answer after removing punctuation, else 0.0."""
    if not prediction or not prediction.strip():
        return 0.0
    pred = remove_punctuation(prediction)
    return 1.0 if any(remove_punctuation(a) == pred for a in answers) else 0.0
