"""
The dashboard's pages under ``/ui``: overview, feedback list, detail, login and logout.

Pages are rendered on the server (Jinja2) from the same store calls as the JSON API:
the overview's figures are `stats` (what ``/v1/stats`` returns for the same filters)
and its time series `series`; the list pages with the cursor of ``/v1/feedback``. Each
page reads the key's project only. Charts are drawn by Chart.js from numbers that the
page also shows in tables, so nothing is lost without JavaScript.
"""

from __future__ import annotations

import asyncio
import difflib
import hashlib
import re
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib.metadata import version
from importlib.resources import files
from typing import Annotated, Any
from urllib.parse import parse_qs, quote, urlencode

import orjson
from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, select_autoescape

from ai_feedback._models import FeedbackItem, FeedbackType
from ai_feedback.exceptions import FeedbackValidationError
from ai_feedback.export._mapping import captured_input, captured_output
from ai_feedback.server.auth import Principal
from ai_feedback.server.body import read_body
from ai_feedback.server.errors import ApiError
from ai_feedback.server.native import encode_cursor
from ai_feedback.server.service import service
from ai_feedback.server.ui.login import (
    COOKIE,
    forget,
    from_other_origin,
    remember,
    viewer,
    visitor,
)
from ai_feedback.server.ui.params import (
    SORTS,
    TYPES,
    WINDOWS,
    BadParameterError,
    ListQuery,
    OverviewQuery,
    decoded_cursor,
    hours_text,
)

__all__ = ["router"]

router = APIRouter(prefix="/ui", include_in_schema=False)

PAGE_SIZE = 50
_STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".md": "text/plain"}
_SECURITY_HEADERS = {
    # Everything comes from this service: no outside host, no inline script.
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}
_MAX_FORM_BYTES = 4096


@cache
def _templates() -> Environment:
    env = Environment(
        loader=PackageLoader("ai_feedback.server.ui", "templates"),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["number"] = _number
    env.filters["hours"] = hours_text
    env.filters["segment"] = _segment
    env.filters["when"] = _when
    return env


@cache
def _assets() -> dict[str, tuple[bytes, str]]:
    """The static files by name, with their ETag (read once)."""
    found = {}
    for entry in files("ai_feedback.server.ui").joinpath("static").iterdir():
        if entry.is_file():
            body = entry.read_bytes()
            found[entry.name] = (body, hashlib.sha256(body).hexdigest()[:16])
    return found


def ui_root(request: Request) -> str:
    """
    Return the dashboard's path as the browser sees it: ``/ui`` after any prefix.
    """
    return _located(request)[0]


def _located(request: Request) -> tuple[str, str]:
    """
    Return the dashboard's path and this page's, URL-encoded, as the browser sees them.

    The dashboard's path is what precedes the part of the request's path that one of its
    own routes (``/ui...``) matches: the prefix the routes were included under, after the
    root path of a proxy (``root_path``, whether or not the server put it in the path).
    """
    scope = request.scope
    root = str(scope.get("root_path", ""))
    path = str(scope.get("path", ""))
    if root and (path == root or path.startswith(root + "/")):
        path = path[len(root) :]
    # The first match from the left: what follows may hold "/ui" too (an item id).
    at = path.find("/ui")
    while at >= 0:
        if any(pattern.match(path[at:]) for pattern in _own_patterns()):
            break
        at = path.find("/ui", at + 1)
    base = root + (path[:at] if at >= 0 else "") + "/ui"
    return quote(base, safe="/"), quote(root + path, safe="/")


@cache
def _own_patterns() -> tuple[re.Pattern[str], ...]:
    # The router's own routes: their patterns never hold the prefix they are included under.
    return tuple(route.path_regex for route in router.routes if isinstance(route, APIRoute))


def _asset_url(root: str, name: str) -> str:
    return f"{root}/static/{name}?v={_assets()[name][1]}"


def _number(value: object, digits: int = 2) -> str:
    """Show a figure: integers as they are, other numbers rounded, None as a dash."""
    if value is None:
        return "-"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return f"{int(value):,}"  # 1,234,567, not 1.23457e+06
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _segment(text: str) -> str:
    """``text`` as one URL path segment: slashes and the rest percent-encoded."""
    return quote(text, safe="")


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _page(
    request: Request,
    template: str,
    *,
    principal: Principal | None,
    status: int = 200,
    **values: Any,  # noqa: ANN401 - template values
) -> HTMLResponse:
    root, here = _located(request)
    html = (
        _templates()
        .get_template(template)
        .render(
            principal=principal,
            # Without keys nobody logs in, so there is nothing to log out of.
            signed_in=request.cookies.get(COOKIE) is not None
            and not service(request).auth.insecure,
            ui=root,
            asset=lambda name: _asset_url(root, name),
            path=here,
            version=version("ai-feedback"),
            **values,
        )
    )
    return HTMLResponse(html, status_code=status, headers=_SECURITY_HEADERS)


def _login_page(request: Request, *, error: str | None = None, status: int = 200) -> HTMLResponse:
    return _page(request, "login.html", principal=None, error=error, status=status)


def _bad_parameter(request: Request, principal: Principal, exc: BadParameterError) -> HTMLResponse:
    return _page(
        request,
        "error.html",
        principal=principal,
        status=422,
        title="Invalid filter",
        message=str(exc),
        field=exc.field,
    )


def _to_login(root: str) -> RedirectResponse:
    return RedirectResponse(f"{root}/login", status_code=303, headers=_SECURITY_HEADERS)


@router.get("/static/{name}")
async def static(name: Annotated[str, Path(max_length=64)]) -> Response:
    """
    Serve a file of the dashboard's front end (cached by browsers for a day).
    """
    found = _assets().get(name)
    if found is None:
        return Response("Not found", status_code=404, media_type="text/plain")
    body, etag = found
    suffix = name[name.rfind(".") :]
    headers = {
        "cache-control": "public, max-age=86400",
        "etag": f'"{etag}"',
        "x-content-type-options": "nosniff",
    }
    return Response(body, media_type=_STATIC_TYPES.get(suffix, "text/plain"), headers=headers)


@router.get("/login")
async def login_form(request: Request) -> Response:
    """
    The login form (or the overview, when the cookie is already good).
    """
    if service(request).auth.insecure or (
        viewer(request) is not None and request.cookies.get(COOKIE)
    ):
        return RedirectResponse(ui_root(request), status_code=303)
    return _login_page(request)


@router.post("/login")
async def login(request: Request) -> Response:
    """
    Check the key of the form; keep it in the cookie and go to the overview, or say why not.
    """
    if from_other_origin(request):
        return _login_page(request, error="This form was sent from another site.", status=403)
    if service(request).auth.insecure:  # everyone is project default: no key to check
        return RedirectResponse(ui_root(request), status_code=303, headers=_SECURITY_HEADERS)
    try:  # bounded in size and time as every body is
        body = await read_body(request, _MAX_FORM_BYTES)
    except ApiError as exc:
        why = "The form is too large." if exc.status == 413 else "The form did not arrive."  # noqa: PLR2004
        refused = _login_page(request, error=why, status=exc.status)
        refused.headers.update(exc.headers)
        return refused
    secret = parse_qs(body.decode("utf-8", "replace")).get("key", [""])[0].strip()
    if not secret:
        return _login_page(request, error="Enter an API key.", status=401)
    auth = service(request).auth
    principal = visitor(request, secret)
    if principal is None:
        try:
            known = auth.principal({"x-api-key": secret})
        except ApiError:
            known = None
        why = (
            "This key lacks the read scope."
            if known is not None and known.token is None
            else "This key is not valid."
        )
        return _login_page(request, error=why, status=401)
    root = ui_root(request)
    response = RedirectResponse(root, status_code=303, headers=_SECURITY_HEADERS)
    remember(response, request, principal, path=root)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    """
    Forget the key and show the login form.
    """
    if from_other_origin(request):
        return _login_page(request, error="This form was sent from another site.", status=403)
    root = ui_root(request)
    response = _to_login(root)
    forget(response, request, path=root)
    return response


@router.get("")
async def overview(request: Request) -> Response:
    """
    Totals, a time series, the rating distribution, counts by type, and a per-model table.
    """
    principal = viewer(request)
    if principal is None:
        return _to_login(ui_root(request))
    try:
        view = OverviewQuery.parse(request.query_params)
    except BadParameterError as exc:
        return _bad_parameter(request, principal, exc)
    store: Any = service(request).store
    filters = {
        "model": view.model,
        "provider": view.provider,
        "owner_id": principal.project,
        "feedback_type": view.type,
    }
    now = datetime.now(UTC)
    stats, points = await asyncio.gather(
        store.stats(window_hours=view.window, **filters),
        store.series(window_hours=view.window, bucket=view.bucket, **filters),
    )
    figures = stats.to_dict()
    by_start = {point.start: point for point in points}
    starts = view.buckets(now)
    # Items dated ahead of this clock count in the window too: their buckets follow.
    starts += sorted(start for start in by_start if start > starts[-1])
    series: list[dict[str, Any]] = [
        {
            "start": start,
            "count": by_start[start].count if start in by_start else 0,
            "average_rating": by_start[start].average_rating if start in by_start else None,
        }
        for start in starts
    ]
    distribution = sorted(
        (figures["rating"]["distribution"] or {}).items(), key=lambda kv: float(kv[0])
    )
    models = sorted(
        figures["by_model"].items(),
        key=lambda kv: _sort_key(kv[0], kv[1], view.sort),
        reverse=view.order == "desc",
    )
    chart = {
        "labels": [_label(row["start"], view.bucket) for row in series],
        "counts": [row["count"] for row in series],
        "averages": [row["average_rating"] for row in series],
        "distribution": {
            "labels": [k for k, _ in distribution],
            "counts": [n for _, n in distribution],
        },
    }
    return _page(
        request,
        "overview.html",
        principal=principal,
        view=view,
        figures=figures,
        window_since=(now - timedelta(hours=view.window)).isoformat(timespec="seconds"),
        series=series,
        distribution=distribution,
        models=models,
        windows=WINDOWS,
        types=TYPES,
        bucket_param=request.query_params.get("bucket", ""),
        sorts=SORTS,
        # "<" escaped: the JSON sits in a <script> element.
        chart_json=orjson.dumps(chart).decode().replace("<", "\\u003c"),
        stats_link=ui_root(request).removesuffix("/ui")
        + "/v1/stats"
        + _query(
            window_hours=hours_text(view.window),
            model=view.model,
            provider=view.provider,
            type=view.type,
        ),
        label=_label,
    )


def _query(**values: str | None) -> str:
    shown = {k: v for k, v in values.items() if v is not None}
    return f"?{urlencode(shown)}" if shown else ""


def _sort_key(name: str, row: dict[str, Any], sort: str) -> tuple[Any, ...]:
    if sort == "model":
        return (name,)
    if sort == "average_rating":
        average = row["average_rating"]
        return (average is not None, average if average is not None else 0.0, name)
    return (row["count"], name)


def _label(start: datetime, bucket: str) -> str:
    return start.strftime("%Y-%m-%d %H:00") if bucket == "hour" else start.strftime("%Y-%m-%d")


@router.get("/feedback")
async def feedback_list(request: Request) -> Response:
    """
    The project's items, newest first, a page at a time (the cursor of ``/v1/feedback``).
    """
    principal = viewer(request)
    if principal is None:
        return _to_login(ui_root(request))
    try:
        view = ListQuery.parse(request.query_params)
        before = decoded_cursor(view.cursor)
    except BadParameterError as exc:
        return _bad_parameter(request, principal, exc)
    store: Any = service(request).store
    items: list[FeedbackItem] = await store.query(
        view.where(principal.project), limit=PAGE_SIZE + 1, before=before
    )
    page = items[:PAGE_SIZE]
    next_link = view.link(cursor=encode_cursor(page[-1])) if len(items) > PAGE_SIZE else None
    return _page(
        request,
        "list.html",
        principal=principal,
        view=view,
        filters=view.filters(),
        rows=[_row(item) for item in page],
        next_link=next_link,
        first_link=view.link() if view.cursor else None,
        types=TYPES,
    )


def _row(item: FeedbackItem) -> dict[str, Any]:
    return {
        "id": item.id,
        "type": item.feedback_type.value,
        "summary": _summary(item),
        "model": item.model,
        "provider": item.provider,
        "trace_id": item.trace_id,
        "created_at": item.created_at,
    }


def _summary(item: FeedbackItem, width: int = 80) -> str:
    value = item.value
    if item.feedback_type is FeedbackType.RATING:
        text = _number(value)
    elif item.feedback_type is FeedbackType.CORRECTION:
        text = f"→ {value.get('corrected', '')}"
    elif item.feedback_type is FeedbackType.LABEL:
        text = str(value.get("label", ""))
    else:
        text = str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


@router.get("/feedback/{item_id:path}")  # an id may hold a slash
async def detail(request: Request, item_id: Annotated[str, Path()]) -> Response:
    """
    One item: its value, context, metadata, captured call, correction diff and raw payload.
    """
    principal = viewer(request)
    if principal is None:
        return _to_login(ui_root(request))
    store: Any = service(request).store
    try:
        item: FeedbackItem | None = await store.get(item_id)
    except FeedbackValidationError:  # not an id any item can have
        item = None
    if item is None or item.owner_id != principal.project:
        return _page(
            request,
            "error.html",
            principal=principal,
            status=404,
            title="Not found",
            message=f"No feedback {item_id!r} in this project.",
            field=None,
        )
    raw = None
    if hasattr(store, "get_raw_payload"):
        raw = await store.get_raw_payload(item.id)
    diff = None
    if item.feedback_type is FeedbackType.CORRECTION:
        original, corrected = (str(item.value.get(k, "")) for k in ("original", "corrected"))
        diff = await asyncio.to_thread(_diff, original, corrected)  # up to tens of ms
    return _page(
        request,
        "detail.html",
        principal=principal,
        item=item,
        value_json=_pretty(item.value),
        context_json=_pretty({k: v for k, v in item.context.items() if k != "captured"}),
        metadata_json=_pretty(item.metadata),
        captured_input=_shown(captured_input(item)),
        captured_output=_shown(captured_output(item)),
        diff=diff,
        raw_json=None if raw is None else _pretty(raw),
    )


def _pretty(value: object) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()


def _shown(value: object) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else _pretty(value)


def _diff(original: str, corrected: str) -> list[tuple[str, str]]:
    """
    The word-level differences of a correction: ("same" | "removed" | "added", text) runs.

    The words both texts start and end with are kept as they are; the rest is compared
    word by word only while it is small (`_DIFF_BUDGET`), since the comparison's time
    grows with the cube of its length on repetitive text: past it, the rest shows as
    removed and added whole.
    """
    # Words and the spaces between them are tokens, so a newline separates words too;
    # only words are marked: changed spacing shows as the corrected text's.
    before, after = _WORDS.findall(original), _WORDS.findall(corrected)
    start, end = _common_ends(before, after)
    middle_before, middle_after = before[start : len(before) - end], after[start : len(after) - end]
    if len(middle_before) * len(middle_after) <= _DIFF_BUDGET:
        opcodes = difflib.SequenceMatcher(
            a=middle_before, b=middle_after, autojunk=False
        ).get_opcodes()
    else:
        opcodes = [("replace", 0, len(middle_before), 0, len(middle_after))]
    runs: list[tuple[str, str]] = []
    if start:
        runs.append(("same", "".join(after[:start])))
    for tag, i1, i2, j1, j2 in opcodes:
        removed, added = "".join(middle_before[i1:i2]), "".join(middle_after[j1:j2])
        if tag == "equal":
            runs.append(("same", added))
            continue
        if removed.strip():
            runs.append(("removed", removed))
        if added.strip():
            runs.append(("added", added))
        elif added:
            runs.append(("same", added))
    if end:
        runs.append(("same", "".join(after[len(after) - end :])))
    return runs


def _common_ends(before: list[str], after: list[str]) -> tuple[int, int]:
    """How many tokens the two lists start with in common, and then end with."""
    shorter = min(len(before), len(after))
    start = 0
    while start < shorter and before[start] == after[start]:
        start += 1
    end = 0
    while end < shorter - start and before[~end] == after[~end]:
        end += 1
    return start, end


_DIFF_BUDGET = 40_000  # token pairs compared word by word: ~200 tokens each, a few ms
_WORDS = re.compile(r"\S+|\s+")
