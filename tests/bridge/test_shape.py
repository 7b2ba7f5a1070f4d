"""The bridge stays readable: no class over 250 lines, no function over 80, a thin service."""

from __future__ import annotations

import ast

import pytest

from tests.bridge.conftest import REPO

BRIDGE = REPO / "bridge"
SOURCES = sorted(BRIDGE.rglob("*.py"))


def spans(kind: type[ast.AST]) -> list[tuple[str, int]]:
    found = []
    for path in SOURCES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, kind):
                assert isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                found.append((f"{path.relative_to(REPO)}:{node.lineno} {node.name}", length))
    return found


@pytest.mark.parametrize(("kind", "limit"), [(ast.ClassDef, 250), (ast.FunctionDef, 80)])
def test_no_class_or_function_in_the_bridge_is_too_long(kind: type[ast.AST], limit: int) -> None:
    too_long = [(where, length) for where, length in spans(kind) if length > limit]
    if kind is ast.FunctionDef:
        too_long += [(w, n) for w, n in spans(ast.AsyncFunctionDef) if n > limit]
    assert not too_long, too_long


def test_the_service_only_wires_the_stages() -> None:
    lines = (BRIDGE / "service.py").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 300


def test_no_engine_feature_is_discovered_with_getattr() -> None:
    """Engines declare what they can do (``Engine.capabilities``); nobody probes for it."""
    for path in (BRIDGE / name for name in ("service.py", "dispatch.py", "pipeline.py")):
        assert "getattr(" not in path.read_text(encoding="utf-8"), path
