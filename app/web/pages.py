"""Dashboard pages (Jinja2), the static files, and plotly.js served from the installed package."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markdown_it import MarkdownIt
from markupsafe import Markup

from app.runs.status import ACTIVE, TERMINAL
from app.web.deps import Manager
from app.web.lean_stream import SNAPSHOT_TIMELINES
from app.web.messages import CloseCode
from synthgrad_core.config import (
    DATASET_DEFAULTS,
    FIELD_SPECS,
    FORK_FORM_FIELDS,
    Method,
    TrainConfig,
    io_sizes,
)
from synthgrad_core.presets import expectation
from synthgrad_core.presets import offered as presets_offered
from synthgrad_core.records import json_safe
from synthgrad_core.trainer import HIDDEN_FIELDS, LAYER_FIELDS, LIVE_KNOBS

router = APIRouter(include_in_schema=False)


def asset_dir(name: str) -> Path:
    """`static/` or `templates/`: inside the installed package, else at the source tree's top."""
    package = Path(__file__).resolve().parent.parent  # app/
    packaged = package / name
    if packaged.is_dir():
        return packaged
    return package.parent / name


templates = Jinja2Templates(directory=str(asset_dir("templates")))


def _page_json(value: Any, **options: Any) -> str:
    """What `tojson` embeds in a page: the records' encoding (a diverged run's NaN is null,
    which the browser's JSON.parse accepts; a bare NaN token stops the page loading)."""
    return json.dumps(json_safe(value), allow_nan=False, **options)


templates.env.policies["json.dumps_function"] = _page_json


@lru_cache(maxsize=1)
def plotly_bundle() -> tuple[bytes, bytes, str]:
    """plotly.min.js from the `plotly` package: raw, gzipped, and its ETag."""
    raw = resources.files("plotly").joinpath("package_data/plotly.min.js").read_bytes()
    return raw, gzip.compress(raw, compresslevel=6), hashlib.sha256(raw).hexdigest()[:16]


@router.get("/static/vendor/plotly.min.js")
def plotly_js(request: Request) -> Response:
    raw, packed, etag = plotly_bundle()
    headers = {
        "Cache-Control": "public, max-age=604800",
        "ETag": f'"{etag}"',
        "Vary": "Accept-Encoding",
    }
    if request.headers.get("if-none-match") == f'"{etag}"':
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(packed, media_type="text/javascript", headers=headers)
    return Response(raw, media_type="text/javascript", headers=headers)


def _shown(value: Any) -> Any:
    """A default as the form shows it: widths as "128,64" (none: empty)."""
    return ",".join(map(str, value)) if isinstance(value, tuple) else value


def form_fields() -> list[dict[str, Any]]:
    """What the new-run form shows for each config field (from its FieldSpec)."""
    defaults = TrainConfig()
    return [
        {
            "name": name,
            "label": spec.label,
            "help": spec.help,
            "unit": spec.unit,
            "kind": spec.kind,
            "min": spec.minimum,
            "max": spec.le,
            "bounds": spec.bounds_text(),
            "hint": hint(spec),
            "only": DATASET_ONLY.get(name),
            "choices": spec.choices,
            "default": _shown(getattr(defaults, name)),
            "integer": spec.integer,
            "advanced": spec.advanced,
        }
        for name, spec in FIELD_SPECS.items()
    ]


#: Fields that mean something for one dataset only: the form shows them for it alone.
DATASET_ONLY = {"bits": "addition", "data_path": "mnist"}
#: Upper bounds this large are a technical limit, not advice: the hint leaves them out.
PLAIN_BOUND = 1e6


def hint(spec: Any) -> str:
    """A field's hint in plain words: its help, its unit where neither the help nor the
    label says it, and its bounds as a range ("2 to 32"), without "(addition)" where only
    that dataset shows the field."""
    text = re.sub(r" \((addition|mnist)\)$", "", spec.help)
    said = spec.unit in text or spec.unit == spec.label.lower() or spec.kind == "widths"
    if spec.unit and not said:
        text += f", in {spec.unit}"
    bounds = "" if spec.kind == "widths" else bounds_words(spec)
    return f"{text}; {bounds}" if bounds else text


def bounds_words(spec: Any) -> str:
    """ "2 to 32", "above 0, at most 1", "0 or more" (a huge upper bound is left out)."""
    low = _number(spec.minimum)
    high = _number(spec.le) if spec.le is not None and spec.le < PLAIN_BOUND else None
    if low is None:
        return f"at most {high}" if high is not None else ""
    if spec.gt is not None:
        return f"above {low}" + (f", at most {high}" if high is not None else "")
    return f"{low} to {high}" if high is not None else f"{low} or more"


def _number(value: float | None) -> str | None:
    if value is None:
        return None
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


#: What the browser code needs to know of records and statuses, from where they are defined.
VOCABULARY = {
    "statuses": {
        "terminal": sorted(TERMINAL),
        "active": sorted(ACTIVE),
    },
    "record_keys": {"hidden": list(HIDDEN_FIELDS), "layer": list(LAYER_FIELDS)},
    "close_codes": {code.name: int(code) for code in CloseCode},
    "methods_with_modules": [m.value for m in Method if m.uses_modules],
    "snapshot_timelines": SNAPSHOT_TIMELINES,  # a run's history keeps its last N timelines
}


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    settings = request.app.state.settings
    return templates.TemplateResponse(
        request,
        template,
        {"read_only": settings.read_only, "vocabulary": VOCABULARY, **context},
        status_code=status_code,
    )


@router.get("/", response_class=HTMLResponse)
def runs_page(request: Request, manager: Manager) -> HTMLResponse:
    offered = tuple(manager.admission.datasets())
    fields = [
        {**f, "choices": tuple(c for c in f["choices"] if c in offered)}
        if f["name"] == "dataset"
        else f
        for f in form_fields()
    ]
    return page(
        request,
        "runs.html",
        fields=fields,
        dataset_defaults=dataset_defaults(),
        presets=presets_offered(offered),  # where the server has every dataset they use
    )


def dataset_defaults() -> dict[str, dict[str, Any]]:
    """Each dataset's defaults, as the form shows them (widths as "128,64")."""
    return {
        name: {k: ",".join(map(str, v)) if isinstance(v, tuple) else v for k, v in values.items()}
        for name, values in DATASET_DEFAULTS.items()
    }


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, run_id: str, manager: Manager) -> HTMLResponse:
    run = manager.runs.get(run_id)
    if run is None:
        return page(request, "not_found.html", status_code=404, missing=[run_id])
    inputs, outputs = io_sizes(run.config)
    config = run.config.as_dict()
    fields = form_fields()
    fork_fields = [{**f, "default": config[f["name"]]} for f in fields if f["name"] in FORK_FIELDS]
    knob_fields = [{**f, "default": config[f["name"]]} for f in fields if f["name"] in LIVE_KNOBS]
    return page(
        request,
        "run.html",
        run=run.public(),
        shape={"inputs": inputs, "outputs": outputs},
        family=request.app.state.branches.family(run),
        batch=[
            {"id": other.id, "seed": other.config.seed}
            for other_id in run.batch or []
            if other_id != run.id and (other := manager.runs.get(other_id)) is not None
        ],
        fork_fields=fork_fields,
        knob_fields=knob_fields,
        expect=expectation(run.name, config),
    )


#: What the run page's "Fork from here" dialog offers to change (a subset of what may):
#: the fields marked fork_form in config.py.
FORK_FIELDS = FORK_FORM_FIELDS


#: Most runs one compare page shows.
COMPARE_MAX = 12


@router.get("/compare", response_class=HTMLResponse)
def compare_page(request: Request, manager: Manager, runs: str = "") -> HTMLResponse:
    ids = list(dict.fromkeys(r for r in runs.split(",") if r))[:COMPARE_MAX]
    found = [manager.runs[r].public() for r in ids if r in manager.runs]
    missing = [r for r in ids if r not in manager.runs]
    if not found:
        return page(request, "not_found.html", status_code=404, missing=missing, compare=True)
    return page(request, "compare.html", runs=found, missing=missing)


@router.get("/sweeps/{sweep_id}", response_class=HTMLResponse)
def sweep_page(request: Request, sweep_id: str) -> HTMLResponse:
    sweeps = request.app.state.sweeps
    sweep = sweeps.sweeps.get(sweep_id)
    if sweep is None:
        return page(request, "not_found.html", status_code=404, missing=[sweep_id], kind="sweep")
    # The grid's fields in order: tojson sorts object keys.
    return page(request, "sweep.html", sweep=sweeps.describe(sweep), fields=list(sweep.grid))


@lru_cache(maxsize=1)
def results_text() -> str:
    return (asset_dir("docs") / "results.md").read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def results_html() -> Markup:
    """docs/results.md as HTML (CommonMark with tables; its own HTML is escaped, not run).

    Each table cell carries its column's header (`data-label`), which the phone layout
    shows before the value, so a wide table reads as a card per row on a narrow screen.
    """
    markdown = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = markdown.parse(results_text())
    headers: list[str] = []
    column = 0
    for i, token in enumerate(tokens):
        if token.type == "thead_open":
            headers = []
        elif token.type == "th_open":
            headers.append(tokens[i + 1].content.replace("`", "").replace("*", ""))
        elif token.type == "tr_open":
            column = 0
        elif token.type == "td_open":
            if column < len(headers) and headers[column]:
                token.attrSet("data-label", headers[column])
            column += 1
    html = markdown.renderer.render(tokens, markdown.options, {})
    return Markup(
        html.replace("<table>", '<div class="table-wrap"><table class="doc-table">').replace(
            "</table>", "</table></div>"
        )
    )


@router.get("/results", response_class=HTMLResponse)
def results_page(request: Request) -> HTMLResponse:
    """docs/results.md, what each rule reaches as measured, readable offline."""
    return page(request, "doc.html", html=results_html())


@router.get("/results.md", response_class=PlainTextResponse)
def results_markdown() -> PlainTextResponse:
    return PlainTextResponse(results_text(), media_type="text/markdown; charset=utf-8")


def mount_static(app: Any) -> None:
    app.mount("/static", StaticFiles(directory=str(asset_dir("static"))), name="static")
