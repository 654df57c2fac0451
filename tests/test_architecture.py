"""The package's shape: imports only point down the layers, no cycles, no oversized module.

Layers, bottom to top (docs/architecture.md draws the same map). A module may import
from its own layer's lower-ranked modules and from any lower layer, never from a higher one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import REPO

PACKAGE = REPO / "src" / "weaktag"
MAX_LINES = 600

#: module (or package) -> layer rank; a module's rank is that of its longest listed prefix
LAYERS: dict[str, int] = {
    "weaktag": 0, "weaktag.geometry": 0, "weaktag.files": 0, "weaktag.recipes": 0, "weaktag.stopping": 0,
    "weaktag.errors": 0, "weaktag.settings": 0, "weaktag.batch": 0, "weaktag.version": 0, "weaktag.provenance": 0,
    "weaktag.audio": 1, "weaktag.labels": 1,
    "weaktag.models": 2, "weaktag.postprocess": 2, "weaktag.packing": 2,
    "weaktag.supervision": 3, "weaktag.data": 3, "weaktag.checkpoint": 3, "weaktag.metrics": 3,
    "weaktag.config": 4, "weaktag.card": 4,
    "weaktag.training": 5, "weaktag.inference": 5,
    "weaktag.synth": 3, "weaktag.experiments": 6, "weaktag.hear": 6,
    "weaktag.cli": 7, "weaktag.api": 7,
}
#: the package root may name its facade, weaktag.api: it loads it on first attribute access (PEP 562), so
#: ``import weaktag`` loads nothing else (tests/test_api_examples.py checks that)
LAZY_FACADE = ("weaktag", "weaktag.api")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _rank(module: str) -> int:
    best = max((name for name in LAYERS if module == name or module.startswith(name + ".")), key=len)
    return LAYERS[best]


def _imports(path: Path) -> set[str]:
    """weaktag modules imported by ``path`` (module level and inside functions alike)."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("weaktag")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("weaktag"):
                continue
            for alias in node.names:  # "from . import x" may name a submodule
                candidate = f"{target}.{alias.name}"
                found.add(candidate if _exists(candidate) else target)
    return found


def _exists(module: str) -> bool:
    rel = Path(*module.split(".")[1:])
    return (PACKAGE / rel).with_suffix(".py").exists() or (PACKAGE / rel / "__init__.py").exists()


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_has_a_layer():
    for path in MODULES:
        _rank(_module_name(path))  # raises ValueError (max of nothing) for an unlisted module


@pytest.mark.parametrize("path", MODULES, ids=lambda p: _module_name(p))
def test_imports_point_down(path):
    module = _module_name(path)
    upward = [target for target in _imports(path)
              if _rank(target) > _rank(module) and not module.startswith(target) and (module, target) != LAZY_FACADE]
    assert not upward, f"{module} (layer {_rank(module)}) imports from higher layers: {upward}"


def test_no_import_cycles():
    graph = {_module_name(p): {t for t in _imports(p) if t != _module_name(p)} for p in MODULES}
    # a package's __init__ re-exporting its own submodules is not a cycle with them
    for module, targets in graph.items():
        graph[module] = {t for t in targets if not t.startswith(module + ".")}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(nxt):] + [nxt]))
            if nxt in graph and not state.get(nxt):
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if not state.get(node):
            visit(node)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: _module_name(p))
def test_no_module_is_oversized(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.name}: {lines} lines (split it by concern; limit {MAX_LINES})"


def test_the_tagger_loads_without_training():
    """Deployment imports only what tagging needs: no training schemes, datasets, packs or experiment configs."""
    import subprocess
    import sys

    code = ("import sys, weaktag.inference; "
            "print(' '.join(m for m in sys.modules if m.startswith('weaktag')))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    training_side = [m for m in loaded if m.split(".")[1:2] and m.split(".")[1] in
                     ("supervision", "training", "experiments", "data", "packing", "config", "labels", "synth")]
    assert "weaktag.inference.engine" in loaded
    assert not training_side, f"importing weaktag.inference loads {training_side}"


def test_the_architecture_page_names_every_module():
    """docs/architecture.md draws the tree with a line per module: a new module must be placed on it."""
    page = (PACKAGE.parents[1] / "docs" / "architecture.md").read_text()
    unlisted = [str(p.relative_to(PACKAGE)) for p in MODULES
                if p.parts[len(PACKAGE.parts)] not in ("cli", "recipes") and p.name != "__init__.py"
                and f"  {p.name} " not in page]
    assert not unlisted, f"modules missing from docs/architecture.md's tree: {unlisted}"
