"""Structure the project keeps: small functions and modules, no test code in bench/ or scripts/,
and an API document that describes every response."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from radon.complexity import cc_visit

from app.main import create_app
from app.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
MAX_COMPLEXITY = 12
MAX_APP_MODULE_LINES = 350


def sources(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def test_no_function_is_too_complex() -> None:
    too_complex = [
        f"{path.relative_to(ROOT)}:{block.lineno} {block.name} ({block.complexity})"
        for path in sources("synthgrad_core", "app")
        for block in cc_visit(path.read_text())
        if block.complexity > MAX_COMPLEXITY
    ]
    assert too_complex == []


def test_no_server_module_is_too_long() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in sources("app")
        if (n := len(p.read_text().splitlines())) > MAX_APP_MODULE_LINES
    }
    assert long == {}


@pytest.mark.parametrize("folder", ["bench", "scripts"])
def test_bench_and_scripts_do_not_import_the_test_suite(folder: str) -> None:
    paths = sources(folder) + [p for p in (ROOT / folder).iterdir() if p.is_file() and not p.suffix]
    offenders = []
    for path in paths:
        text = path.read_text()
        if path.suffix != ".py" and not text.startswith("#!/usr/bin/env python"):
            continue
        for node in ast.walk(ast.parse(text)):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if re.match(r"tests(\.|$)", n)]
    assert offenders == []


def test_every_api_route_documents_its_response(tmp_path: Path) -> None:
    schema = create_app(Settings(db=str(tmp_path / "o.sqlite3"))).openapi()
    missing = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if not path.startswith("/api/"):
                continue
            ok = {code: r for code, r in operation["responses"].items() if code.startswith("2")}
            documented = any(
                "schema" in media and media["schema"] != {}
                for r in ok.values()
                for media in r.get("content", {}).values()
            )
            if method == "delete":
                documented = "204" in ok
            if not documented:
                missing.append(f"{method.upper()} {path}")
    assert missing == []


def test_the_architecture_page_names_every_module() -> None:
    """docs/architecture.md names each module of the engine, the server and the pages."""
    page = (ROOT / "docs" / "architecture.md").read_text()
    modules = [
        *(p for p in sources("synthgrad_core", "app") if p.name != "__init__.py"),
        *(ROOT / "static" / "js").glob("*.js"),
        *(ROOT / "templates").glob("*.html"),
    ]
    unnamed = sorted(str(p.relative_to(ROOT)) for p in modules if p.name not in page)
    assert unnamed == []


def test_nothing_cites_a_file_the_repo_does_not_have() -> None:
    """Docs, code and tests cite docs/*.md files that exist, and nothing outside the repo."""
    cited = re.compile(r"\b(?:docs|spec)/[\w-]+\.md\b")
    texts = [
        *sources("synthgrad_core", "app", "tests", "bench", "scripts", "support"),
        *(ROOT / "docs").glob("*.md"),
        ROOT / "README.md",
    ]
    missing = sorted(
        f"{path.relative_to(ROOT)}: {name}"
        for path in texts
        for name in set(cited.findall(path.read_text()))
        if not (ROOT / name).exists()
    )
    here = Path(__file__).resolve()
    outside = [
        str(p.relative_to(ROOT)) for p in texts if p != here and "../shared/" in p.read_text()
    ]
    assert missing == [] and outside == []
