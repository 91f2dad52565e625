"""The workspace (index.workspace): knowledge bases outside the source tree, seeded from the bundled corpus."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from index.workspace import BUNDLED, Workspace, WorkspaceError, check_name, corpus_profile, default_kb_name

ROOT = Path(__file__).resolve().parent.parent


def digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(folder)).encode() + p.read_bytes())
    return h.hexdigest()


def test_bundled_corpus_seeds_the_default_knowledge_base_as_a_copy(tmp_path, monkeypatch):
    monkeypatch.delenv("WENDA_KB", raising=False)
    before = digest(BUNDLED)
    ws = Workspace(tmp_path)
    assert default_kb_name() == "taiyuan" and ws.names()[0] == "taiyuan"
    info = ws.info("taiyuan")
    assert info.documents == 5 and not info.indexed and info.seed.endswith("taiyuan")
    assert info.title == corpus_profile(BUNDLED / "taiyuan")["title"] != ""
    corpus = ws.path("taiyuan") / "corpus"
    assert digest(corpus) == digest(BUNDLED / "taiyuan")
    (corpus / "extra.txt").write_text("新文档。", encoding="utf-8")  # the user's copy changes, the seed does not
    assert digest(BUNDLED) == before
    assert Workspace(tmp_path).info("taiyuan").documents == 6  # reopening does not re-seed


def test_create_list_delete(tmp_path):
    ws = Workspace(tmp_path, seed=False)
    assert ws.names() == []
    info = ws.create("Reports-2025", "年度报告")
    assert info.name == "reports-2025" and info.title == "年度报告" and info.documents == 0
    with pytest.raises(WorkspaceError, match="already exists"):
        ws.create("reports-2025")
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("2024年新建公园3座。", encoding="utf-8")
    (src / ".hidden.txt").write_text("x", encoding="utf-8")
    assert ws.create("parks", seed=src).documents == 1
    assert ws.names() == ["parks", "reports-2025"]
    ws.delete("parks")
    assert ws.names() == ["reports-2025"]
    assert not [p for p in (tmp_path / "kbs").iterdir() if p.name.startswith(".")]  # no temp leftovers
    with pytest.raises(WorkspaceError, match="no knowledge base named 'parks'"):
        ws.path("parks")


def test_default_knowledge_base_cannot_be_deleted(tmp_path, monkeypatch):
    monkeypatch.setenv("WENDA_KB", "main")
    ws = Workspace(tmp_path, seed=False)
    ws.create("main")
    with pytest.raises(WorkspaceError, match="default knowledge base"):
        ws.delete("main")


@pytest.mark.parametrize("bad", ["", "../x", "a b", "-x", "x" * 41, "名字", "a/b"])
def test_bad_names_are_refused(bad):
    with pytest.raises(WorkspaceError, match="not usable"):
        check_name(bad)


def test_cli_lists_and_refuses_unknown(tmp_path, monkeypatch, capsys):
    from index.__main__ import main

    monkeypatch.setenv("WENDA_HOME", str(tmp_path))
    assert main(["kb", "create", "notes", "--title", "Notes"]) == 0
    assert main(["kb", "list"]) == 0
    out = capsys.readouterr().out
    assert "taiyuan" in out and "notes" in out and "Notes" in out
    assert main(["kb", "delete", "nope"]) == 2  # one log line, no traceback
    assert main(["kb", "delete", "notes"]) == 0
    assert "notes" not in Workspace(tmp_path).names()
