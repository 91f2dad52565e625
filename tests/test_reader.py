"""Extractive reader (qa.reader): smoke training, loading what it wrote, broken weights, and the
shipped weights (qa/models/reader) matching their model card."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qa.reader import DEFAULT_WEIGHTS, REBUILD_COMMAND, Reader, ReaderError

FIXTURE = Path(__file__).parent / "fixtures" / "drcd_tiny"
PASSAGE = "2025年，太原市将新增养老床位2000张。"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """A reader trained for a few steps on ~50 DRCD questions (the CI smoke training)."""
    from qa.reader_train import parse_args, train

    tmp = tmp_path_factory.mktemp("reader")
    args = parse_args(["--data", str(FIXTURE), "--limit", "50", "--epochs", "4", "--batch", "16", "--lr", "3e-4",
                       "--out", str(tmp / "out"), "--work", str(tmp / "work")])
    return train(args), tmp / "out"


def test_smoke_training_lowers_loss(smoke):
    res, out = smoke
    assert len(res.losses) >= 8
    assert np.mean(res.losses[-3:]) < np.mean(res.losses[:3])
    for name in ("reader.safetensors", "reader.json", "MODEL_CARD.md"):
        assert (out / name).is_file()
    assert len(res.epoch_metrics) == 4 and 0 <= res.best_epoch < 4


def test_written_weights_load_and_spans_are_exact_slices(smoke):
    _, out = smoke
    reader = Reader(out / "reader.safetensors")
    assert reader.k == 5  # the default --layers
    other = "太原市2024年共完成城中村改造项目15个，建设保障性住房3万套。"
    spans = reader.read("太原新增养老床位多少张?", [other, PASSAGE])
    assert spans
    texts = [other, PASSAGE]
    for s in spans:
        assert texts[s.passage][s.start:s.end] == s.text and s.margin == pytest.approx(s.score - s.null_score)
    shared = Reader(out / "reader.safetensors", base_model=reader.base)  # the embedder's BERT can be shared
    a, b = reader.read("How many beds?", [PASSAGE])[0], shared.read("How many beds?", [PASSAGE])[0]
    assert shared.base is reader.base and (a.text, a.start, a.end) == (b.text, b.start, b.end)


def test_missing_weights_names_the_command(tmp_path):
    with pytest.raises(ReaderError, match=REBUILD_COMMAND.replace(".", r"\.")):
        Reader(tmp_path / "nope.safetensors")


def test_shipped_weights_match_their_card_and_read():
    import hashlib
    import json

    folder = DEFAULT_WEIGHTS.parent
    meta = json.loads((folder / "reader.json").read_text(encoding="utf-8"))
    digest = hashlib.sha256(DEFAULT_WEIGHTS.read_bytes()).hexdigest()
    assert digest == meta["sha256"] and digest in (folder / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert DEFAULT_WEIGHTS.stat().st_size <= 20 * 2**20
    reader = Reader()  # the shipped file, offline, on the converted e5 weights
    other = "太原市2024年共完成城中村改造项目15个，建设保障性住房3万套。"
    best = reader.read("2025年太原新增养老床位多少张？", [other, PASSAGE])[0]
    assert best.passage == 1 and "2000" in best.text


def test_corrupted_or_truncated_weights_name_the_command(smoke, tmp_path):
    _, out = smoke
    good = (out / "reader.safetensors").read_bytes()
    bad = tmp_path / "reader.safetensors"
    bad.write_bytes(good[:8] + b"\x00garbage" + good[16:1000])
    with pytest.raises(ReaderError, match="python -m qa.reader train"):
        Reader(bad)
    bad.write_bytes(good[: 1 << 16])
    with pytest.raises(ReaderError, match="python -m qa.reader train"):
        Reader(bad)
