"""The import graph the layering promises: no cycles, and each layer imports only those below it.

Every import counts, including the ones inside functions (a lazy import is still a
dependency) and under TYPE_CHECKING.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("synthgrad_core", "app")

#: Which parts of app/ each part may import (besides itself, synthgrad_core and the
#: top-level settings). docs/architecture.md draws the same picture.
LAYERS = {
    "app.web": {"app.runs", "app.execution", "app.storage"},
    "app.runs": {"app.execution", "app.storage"},
    "app.execution": set(),
    "app.storage": set(),
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules `name` imports, anywhere in its file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            # `from package import module` imports the module.
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return {m for m in found if m in known and m != name}


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports_of(name, path, set(found)) for name, path in found.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return out


def layer(name: str) -> str | None:
    return next((part for part in LAYERS if name == part or name.startswith(part + ".")), None)


def test_no_import_cycles() -> None:
    assert cycles(graph()) == []


def test_the_cycle_finder_finds_one() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_layers_import_downwards_only() -> None:
    wrong = []
    for name, targets in graph().items():
        if name.startswith("synthgrad_core"):
            wrong += [f"{name} -> {t}" for t in targets if t.startswith("app")]
            continue
        own = layer(name)
        if own is None:
            continue  # app.main, app.cli, app.server, app.settings: the composition root
        for target in targets:
            other = layer(target)
            if other is not None and other != own and other not in LAYERS[own]:
                wrong.append(f"{name} -> {target}")
    assert wrong == []


def test_every_module_of_app_sits_in_a_layer_or_the_root() -> None:
    root = {"app", "app.main", "app.cli", "app.server", "app.settings"}
    loose = [name for name in modules() if name.startswith("app") and layer(name) is None]
    assert sorted(loose) == sorted(root)
