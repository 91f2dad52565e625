"""Unicode normalisation of extracted text: look-alike characters become the ordinary ones.

PDF text layers often carry Kangxi radicals (U+2F00–U+2FDF: ``⼀`` for ``一``), CJK radical
supplement forms (U+2E80–U+2EFF: ``⻝`` for ``食``), compatibility ideographs and ligatures (``ﬁ``)
where the page shows ordinary characters; search, display and copy all want the ordinary ones.

What :func:`normalize_text` does, for every format:

* NFC on the whole text (canonical equivalence only: compatibility ideographs, decomposed accents).
* NFKC per character, except for characters whose compatibility form would change how the text
  reads (see :func:`_keep`): full-width punctuation (``，：；（）％`` stay full-width, as Chinese
  text writes them; plain NFKC would turn ``，`` into ``,``), CJK symbols and punctuation
  (``。、「」`` and the ideographic space, which the cleaner handles), circled and parenthesised
  numbers (``①``, ``⑴``, ``㈠``), Roman numerals and fractions (``Ⅴ``, ``½``), letterlike symbols
  (``℃``, ``№``), CJK unit squares (``㎡``), super/subscripts (``m²``), the ellipsis ``…`` and
  other general punctuation, Latin-1 symbols and the small/vertical-form punctuation variants.
  So Kangxi radicals, compatibility ideographs, ligatures, full-width letters and digits
  (``２０２１`` → ``2021``), half-width katakana and exotic spaces are normalised.
* CJK radical supplement characters, which NFKC leaves alone, through :data:`RADICAL_SUPPLEMENT`
  (the Unicode ``EquivalentUnifiedIdeograph`` pairs for the forms that stand for a whole
  character or a common component).
"""
from __future__ import annotations

import unicodedata

# CJK radical supplement form -> equivalent unified ideograph (subset of Unicode's
# EquivalentUnifiedIdeograph.txt: simplified full-character forms and common components).
RADICAL_SUPPLEMENT: dict[str, str] = dict(zip(
    "⺁⺂⺃⺄⺅⺆⺉⺊⺌⺍⺏⺐⺒⺓⺔⺖⺗⺘⺙⺛⺝⺞⺟⺠⺡⺢⺣⺤⺥⺦⺧⺨⺩⺪⺫⺬⺭⺮⺯⺰⺱⺲⺳⺴⺵⺷⺹⺺⺻⺼⺽⺾⺿⻀⻁⻂⻃⻄⻅⻆⻈⻉⻋⻌⻍⻎⻏⻐⻑⻒⻓⻔⻖⻗⻘⻙⻚⻛⻜⻝⻟⻠⻢⻣⻤⻥⻦⻧⻨⻩⻪⻫⻬⻭⻮⻯⻰⻱⻲⻳",
    "厂乛乚乙亻冂刂卜小小尣尢巳幺彑忄心扌攵旡月歺母民氵氺灬爫爫丬牛犭王疋罒示礻竹糹纟罓罒网网罒羊耂肀聿肉臼艹艹艹虎衤覀西见角讠贝车辶辶辶阝钅長镸长门阝雨青韦页风飞食飠饣马骨鬼鱼鸟卤麦黄黾斉齐歯齿竜龙龜亀龟",
    strict=True,
))

# Blocks kept as written (start, end inclusive): NFKC would change how the text reads.
_KEEP_RANGES: tuple[tuple[int, int], ...] = (
    (0x00A0, 0x00FF),  # Latin-1 symbols: ´ ² ½ (the cleaner handles the no-break space)
    (0x2010, 0x205E),  # general punctuation: … ‥ ″ (not the spaces U+2000–U+200A)
    (0x2070, 0x209F),  # super- and subscripts
    (0x2100, 0x218F),  # letterlike symbols and number forms: ℃ № Ⅴ ½
    (0x2460, 0x24FF),  # enclosed alphanumerics: ① ⑴ ⒈
    (0x3000, 0x303F),  # CJK symbols and punctuation (ideographic space included)
    (0x3200, 0x33FF),  # enclosed CJK and CJK compatibility: ㈠ ㊣ ㎡
    (0xFE30, 0xFE6F),  # CJK compatibility forms and small form variants: ︰ ﹐ ﹕
    (0xFF01, 0xFF0F),  # full-width punctuation ！＂＃％（），－．／ (digits follow)
    (0xFF1A, 0xFF20),  # ：；＜＝＞？＠
    (0xFF3B, 0xFF40),  # ［＼］＾＿｀
    (0xFF5B, 0xFF60),  # ｛｜｝～ and white parentheses
    (0xFFE0, 0xFFEE),  # full-width signs ￥ ￡ and half-width symbols
)


def _keep(ch: str) -> bool:
    """True when ``ch`` is written as is even though NFKC would change it."""
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in _KEEP_RANGES)


class _Table(dict):
    """``str.translate`` table filled on demand: each distinct character is looked at once."""

    def __missing__(self, cp: int) -> str | int:
        ch = chr(cp)
        out: str | int = RADICAL_SUPPLEMENT.get(ch, "")
        if not out:
            nfkc = unicodedata.normalize("NFKC", ch)
            out = nfkc if nfkc != ch and not _keep(ch) else cp
        self[cp] = out
        return out


_TABLE = _Table()


def normalize_char(ch: str) -> str:
    """One character as :func:`normalize_text` writes it."""
    out = _TABLE[ord(ch)]
    return out if isinstance(out, str) else chr(out)


def normalize_text(text: str) -> str:
    """Replace look-alike characters by ordinary ones (see the module docstring for what stays).

    Args:
        text: Extracted or decoded text.

    Returns:
        The text with NFC applied, compatibility characters outside the kept blocks NFKC-mapped and
        CJK radical supplement forms replaced by their unified ideographs.
    """
    if text.isascii():
        return text
    return unicodedata.normalize("NFC", text).translate(_TABLE)
