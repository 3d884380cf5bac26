"""The built wheel ships the pages: templates, static files and the digits data.

Builds the wheel from this checkout, installs it (without dependencies) into a
folder outside the source tree, and serves the dashboard from that copy alone.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest

from support.live import server_process

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(tmp / "dist"),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = (tmp / "dist").glob("synthgrad-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "app/templates/run.html",
        "app/static/js/live-chart.js",
        "app/static/js/run-page.js",
        "app/static/app.css",
        "synthgrad_core/data/digits.npz",
        "app/docs/results.md",
    ):
        assert required in names, f"{required} missing from {wheel.name}"
    site = tmp / "site"
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(site),
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr
    return site


def test_the_installed_package_serves_every_page(installed: Path, tmp_path: Path) -> None:
    env = {"PYTHONPATH": str(installed), "SYNTHGRAD_ADMIN_TOKEN": ""}
    where = subprocess.run(
        [
            sys.executable,
            "-c",
            "import app, synthgrad_core; print(app.__file__, synthgrad_core.__file__)",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, **env},
        check=True,
    ).stdout.split()
    assert all(path.startswith(str(installed)) for path in where), where

    with server_process(str(tmp_path / "w.db"), env=env, cwd=str(tmp_path)) as (url, _):
        created = httpx.post(
            f"{url}/api/runs", json={"config": {"dataset": "digits", "epochs": 1}}, timeout=10
        )
        assert created.status_code == 201, created.text  # the digits data shipped too
        run_id = created.json()["id"]
        for path, marker in (
            ("/", "new-run"),
            (f"/runs/{run_id}", "charts"),
            (f"/compare?runs={run_id}", "compare"),
            ("/static/js/live-chart.js", "class LiveChart"),
            ("/static/js/network-diagram.js", "class NetworkDiagram"),
            ("/static/app.css", "--fg"),
            ("/static/vendor/plotly.min.js", "plotly"),
            ("/results", "What each rule reaches"),
        ):
            response = httpx.get(f"{url}{path}", timeout=10)
            assert response.status_code == 200, path
            assert marker in response.text, path
