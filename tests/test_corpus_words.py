"""Generic code holds no words of one corpus (issue 13): string literals of qa/ and index/ (docstrings
and comments aside, they may cite examples) must not name the bundled collection."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS_WORDS = ("太原", "taiyuan")


def literals_with_corpus_words() -> list[str]:
    found = []
    for path in sorted([*ROOT.glob("qa/**/*.py"), *ROOT.glob("index/**/*.py")]):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                      and node.body and isinstance(node.body[0], ast.Expr)
                      and isinstance(node.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                if any(w in node.value.lower() for w in CORPUS_WORDS):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_no_corpus_words_anywhere_in_generic_code():
    assert literals_with_corpus_words() == []
