"""Imports flow one way: core <- nodes <- remote <- cli (STYLE.md, ARCHITECTURE.md §1).

Checked statically on the source, so a forbidden import fails here even if no
test happens to execute it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "fontus"

#: What each layer may not import (by fontus subpackage, and third-party roots).
FORBIDDEN = {
    "core": {
        "fontus.nodes",
        "fontus.remote",
        "fontus.cli",
        "fontus.testing",
        "fontus.metrics",
        "grpc",
        "google",
    },
    "nodes": {"fontus.remote", "fontus.cli", "fontus.testing", "grpc", "google"},
    "remote": {"fontus.cli", "fontus.testing"},
    "metrics": {"fontus.remote", "fontus.cli", "grpc", "google"},
}


def _imports(path: Path, package: str) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                names.add(".".join([*base, node.module] if node.module else base))
            elif node.module:
                names.add(node.module)
    return names


def _modules(layer: str) -> list[tuple[Path, str]]:
    root = SRC / layer
    paths = (
        [root.with_suffix(".py")]
        if root.with_suffix(".py").exists()
        else sorted(root.rglob("*.py"))
    )
    out = []
    for path in paths:
        if "_wire" in path.parts:
            continue
        rel = path.relative_to(SRC.parent).with_suffix("")
        parts = list(rel.parts)
        package = ".".join(parts if path.name == "__init__.py" else parts[:-1])
        out.append((path, package))
    return out


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_a_layer_imports_nothing_above_it(layer: str) -> None:
    offenders = []
    for path, package in _modules(layer):
        for name in _imports(path, package):
            for banned in FORBIDDEN[layer]:
                if name == banned or name.startswith(banned + "."):
                    offenders.append(f"{path.relative_to(SRC)} imports {name}")
    assert not offenders, "layering broken:\n" + "\n".join(offenders)


def test_the_check_sees_relative_imports() -> None:
    # remote/warp.py imports ..core relatively: the resolver must turn that into fontus.core.
    path = SRC / "remote" / "warp.py"
    assert any(name.startswith("fontus.core") for name in _imports(path, "fontus.remote"))
