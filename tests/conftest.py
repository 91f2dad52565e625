"""Shared, session-scoped fixtures: one converted model and one index of the bundled corpus per run."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "data" / "corpus" / "taiyuan"
GOLD = ROOT / "data" / "gold" / "taiyuan_gold.jsonl"


@pytest.fixture(scope="session", autouse=True)
def private_workspace(tmp_path_factory):
    """Tests never touch the user's workspace (``WENDA_HOME``): a private one per session."""
    import os

    old = os.environ.get("WENDA_HOME")
    os.environ["WENDA_HOME"] = str(tmp_path_factory.mktemp("wenda_home"))
    yield
    if old is None:
        os.environ.pop("WENDA_HOME", None)
    else:
        os.environ["WENDA_HOME"] = old


@pytest.fixture(scope="session")
def embedder():
    """The default offline embedder (converted once into WENDA_CACHE)."""
    from index.embed import Embedder

    return Embedder()


@pytest.fixture(scope="session")
def corpus_copy(tmp_path_factory) -> Path:
    """A private copy of the bundled corpus (tests must never touch data/)."""
    dst = tmp_path_factory.mktemp("corpus") / "taiyuan"
    shutil.copytree(CORPUS, dst)
    return dst


@pytest.fixture(scope="session")
def built_index(tmp_path_factory, corpus_copy, embedder) -> Path:
    """Index directory of the bundled corpus, built once per session."""
    from index.builder import build_index

    out = tmp_path_factory.mktemp("index") / "taiyuan"
    build_index(corpus_copy, out, embedder, progress=False)
    return out


@pytest.fixture(scope="session")
def assistant(built_index, embedder):
    """An Assistant over the session index."""
    from index.builder import load_index
    from qa import Assistant

    a = Assistant(load_index(built_index, embedder), embedder)
    a.retriever.warm_up()
    return a
