"""protocol/consensus stays pure: no IO, clock or randomness imports, no floats."""

from __future__ import annotations

import ast
from pathlib import Path

import protocol.consensus

BANNED = {"trio", "libp2p", "plyvel", "structlog", "time", "random", "socket", "os", "threading", "asyncio"}
SOURCES = sorted(Path(protocol.consensus.__file__).parent.glob("*.py"))


def test_sources_found() -> None:
    assert len(SOURCES) >= 10


def test_no_banned_imports_floats_or_true_division() -> None:
    for path in SOURCES:
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                roots = {(node.module or "").split(".")[0]}
            else:
                roots = set()
            assert not roots & BANNED, f"{path.name} imports {roots & BANNED}"
            assert not (isinstance(node, ast.Constant) and isinstance(node.value, float)), f"float in {path.name}"
            assert not isinstance(node, ast.Div), f"true division in {path.name}"
