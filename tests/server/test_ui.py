"""The dashboard in-process: login, projects kept apart, figures equal /v1/stats, bad input."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from ai_feedback import FeedbackConfig, FeedbackValidationError
from ai_feedback.demo import run as run_demo
from ai_feedback.server import create_app, install
from ai_feedback.server.tokens import TokenClaims, mint
from ai_feedback.server.ui import login
from ai_feedback.server.ui.pages import _diff
from tests.server.conftest import (
    SECRETS,
    TOKEN_SECRET,
    LiveServer,
    key,
    server_config,
    stalled_request,
)
from tests.server.dashboard_data import flatten, payloads, seed

_STAT = re.compile(r'<data data-stat="([^"]+)" value="([^"]*)">')


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[TestClient]:
    """The service with a week of project A's feedback and a little of project B's."""
    with TestClient(create_app(server_config(tmp_path, {"store_raw_payloads": True}))) as client:
        seed(client, "a-all", payloads(120))
        seed(client, "b-all", [{"score": 1, "context": {"model": "secret-model-b"}}])
        yield client


def _login(client: TestClient, name: str) -> None:
    response = client.post("/ui/login", data={"key": SECRETS[name][0]}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/ui"


def _stats_on_page(html: str) -> dict[str, str]:
    return dict(_STAT.findall(html))


def test_pages_need_a_login(seeded: TestClient) -> None:
    """Without the cookie every page redirects to the login form, which shows no data."""
    for path in ("/ui", "/ui/feedback", "/ui/feedback/x"):
        response = seeded.get(path, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == "/ui/login"
    form = seeded.get("/ui/login")
    assert form.status_code == 200
    assert '<label for="key">API key</label>' in form.text
    assert "gpt-4o" not in form.text


@pytest.mark.parametrize("secret", ["wrong", "", SECRETS["a-ingest"][0]])
def test_a_wrong_key_shows_the_form_with_an_error_never_data(
    seeded: TestClient, secret: str
) -> None:
    """A wrong, empty or ingest-only key is 401 with the form and a message, and no cookie."""
    response = seeded.post("/ui/login", data={"key": secret}, follow_redirects=False)
    assert response.status_code == 401
    assert 'role="alert"' in response.text
    assert "set-cookie" not in response.headers
    assert "gpt-4o" not in response.text
    expected = "lacks the read scope" if secret.startswith("afk") else "not valid"
    if secret == "":
        expected = "Enter an API key"
    assert expected in response.text
    seeded.cookies.set("ai_feedback_session", secret or "x")
    assert seeded.get("/ui", follow_redirects=False).status_code == 303


def test_login_sets_a_strict_http_only_cookie_and_logout_clears_it(seeded: TestClient) -> None:
    """The cookie is HttpOnly, SameSite=Strict, Path=/ui; logging out removes it."""
    response = seeded.post("/ui/login", data={"key": SECRETS["a-read"][0]}, follow_redirects=False)
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/ui" in cookie
    assert "Secure" not in cookie  # plain http here; https adds it
    assert seeded.get("/ui").status_code == 200
    assert seeded.get("/ui/login", follow_redirects=False).headers["location"] == "/ui"
    out = seeded.post("/ui/logout", follow_redirects=False)
    assert out.status_code == 303
    assert out.headers["location"] == "/ui/login"
    assert 'ai_feedback_session=""' in out.headers["set-cookie"]
    assert seeded.get("/ui", follow_redirects=False).status_code == 303


def test_the_cookie_is_secure_over_https(tmp_path: Path) -> None:
    """Served over https, the login cookie carries Secure."""
    app = create_app(server_config(tmp_path))
    with TestClient(app, base_url="https://testserver") as client:
        response = client.post(
            "/ui/login", data={"key": SECRETS["a-read"][0]}, follow_redirects=False
        )
    assert "Secure" in response.headers["set-cookie"]


def test_forms_from_another_origin_are_refused(seeded: TestClient) -> None:
    """Login and logout posted from another site's page are 403 (with SameSite, CSRF-proof)."""
    evil = {"origin": "https://evil.example"}
    response = seeded.post("/ui/login", data={"key": SECRETS["a-read"][0]}, headers=evil)
    assert response.status_code == 403
    assert "set-cookie" not in response.headers
    _login(seeded, "a-read")
    assert seeded.post("/ui/logout", headers=evil).status_code == 403
    same = {"origin": "http://testserver"}
    assert seeded.post("/ui/logout", headers=same, follow_redirects=False).status_code == 303


def test_an_oversized_login_form_is_refused(seeded: TestClient) -> None:
    """A login body past 4 KiB is 413 with the form, from its Content-Length or its bytes."""
    response = seeded.post("/ui/login", data={"key": "x" * 5000})
    assert response.status_code == 413
    assert response.headers["connection"] == "close"  # the rest of the body is not read

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while reading
        yield b"key="
        for _ in range(100):
            yield b"x" * 1000

    streamed = seeded.post(
        "/ui/login",
        content=chunks(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert streamed.status_code == 413
    assert "The form is too large." in streamed.text


def test_a_login_form_that_trickles_is_408(tmp_path: Path) -> None:
    """The login form meets the body timeout as every body does: a trickle is 408."""
    config = server_config(tmp_path, body_timeout_seconds=1)
    with LiveServer(create_app(config)) as url:
        head = (
            "POST /ui/login HTTP/1.1\r\nHost: x\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n"
        )
        received, waited = stalled_request(url, head, b"key=", until=b"</html>")
    assert waited < 5
    assert received.startswith(b"HTTP/1.1 408")
    assert b"The form did not arrive." in received


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?window=168",
        "?window=6&model=gpt-4o",
        "?provider=anthropic",
        "?window=0.5",
        "?type=rating",
        "?window=168&type=correction&model=gpt-4o",
    ],
)
def test_every_figure_equals_v1_stats(seeded: TestClient, query: str) -> None:
    """Each number of the overview is the one /v1/stats returns for the same filters."""
    _login(seeded, "a-read")
    page = seeded.get(f"/ui{query}")
    assert page.status_code == 200
    shown = _stats_on_page(page.text)
    params = dict(p.split("=") for p in query.lstrip("?").split("&") if p)
    if "window" in params:
        params["window_hours"] = params.pop("window")
    expected = flatten(seeded.get("/v1/stats", params=params, headers=key("a-read")).json())
    assert shown, "the overview shows no figures"
    for path, value in shown.items():
        want = expected[path]
        assert value == ("" if want is None else str(want)), path
    for path in ("total_count", "average_rating", "rating.count", "by_type.rating"):
        assert path in shown
    distribution = {k for k in expected if k.startswith("rating.distribution.")}
    models = {k for k in expected if k.startswith("by_model.")}
    assert distribution | models <= set(shown)


def test_the_series_adds_up_to_the_total(seeded: TestClient) -> None:
    """The rows of the time series table add up to the total items of the window."""
    _login(seeded, "a-read")
    for query in (
        "",
        "?window=168",
        "?window=168&bucket=hour",
        "?window=24&bucket=day",
        "?window=168&type=text",
    ):
        html = seeded.get(f"/ui{query}").text
        table = html.split('data-testid="series"')[1].split("</table>")[0]
        counts = [int(v) for v in re.findall(r'<data value="(\d+)">', table)]
        total = int(_stats_on_page(html)["total_count"])
        assert sum(counts) == total
    day = seeded.get("/ui?window=168").text.split('data-testid="series"')[1]
    assert len(re.findall(r"<tr><th scope=\"row\">", day.split("</table>")[0])) in (7, 8)


def test_items_dated_ahead_have_their_rows_and_types_link_to_the_window(
    client: TestClient,
) -> None:
    """Items dated after now count in the total and in rows after it; links keep the window."""
    now = datetime.now(UTC)
    ahead = [now + timedelta(minutes=3), now + timedelta(hours=2), now + timedelta(hours=48)]
    items: list[dict[str, Any]] = [{"score": 3, "created_at": t.isoformat()} for t in ahead]
    items.append({"type": "text", "text": "fresh-note"})
    stale = (now - timedelta(hours=30)).isoformat()
    items.append({"type": "text", "text": "stale-note", "created_at": stale})
    client.post("/v1/feedback/batch", json={"items": items}, headers=key("a-all"))
    _login(client, "a-read")
    html = client.get("/ui").text
    table = html.split('data-testid="series"')[1].split("</table>")[0]
    counts = [int(v) for v in re.findall(r'<data value="(\d+)">', table)]
    assert sum(counts) == int(_stats_on_page(html)["total_count"]) == 4
    for window, shown in (("24", {"fresh-note"}), ("168", {"fresh-note", "stale-note"})):
        page = client.get(f"/ui?window={window}").text
        link = re.search(r'href="(/ui/feedback\?type=text[^"]*)"', page)
        assert link is not None
        listed = client.get(link.group(1).replace("&amp;", "&")).text
        assert {note for note in ("fresh-note", "stale-note") if note in listed} == shown


def test_an_item_id_holding_ui_keeps_the_dashboards_links(client: TestClient) -> None:
    """An id such as run/ui does not move the dashboard's root (links, styles, logout)."""
    client.post("/v1/feedback", json={"score": 2, "id": "run/ui"}, headers=key("a-all"))
    _login(client, "a-read")
    page = client.get("/ui/feedback/run%2Fui", follow_redirects=False)
    assert page.status_code == 200
    assert 'href="/ui/static/' in page.text
    assert 'action="/ui/logout"' in page.text


def test_projects_are_kept_apart(seeded: TestClient) -> None:
    """Project A's pages never show project B's items, and B's item is 404 for A."""
    _login(seeded, "b-all")
    b_list = seeded.get("/ui/feedback").text
    [b_id] = re.findall(r'data-id="([^"]+)"', b_list)
    assert "secret-model-b" in seeded.get("/ui").text
    _login(seeded, "a-read")
    assert "secret-model-b" not in seeded.get("/ui").text
    assert b_id not in seeded.get("/ui/feedback").text
    other = seeded.get(f"/ui/feedback/{b_id}")
    assert other.status_code == 404
    assert "secret-model-b" not in other.text
    for bad in ("%00", "x" * 300):  # ids no item can have: not found either
        assert seeded.get(f"/ui/feedback/{bad}").status_code == 404


def test_the_list_pages_with_the_cursor_and_filters(seeded: TestClient) -> None:
    """Pages of 50, newest first, end to end; filters narrow it and stay in the links."""
    _login(seeded, "a-read")
    seen: list[str] = []
    link: str | None = "/ui/feedback"
    while link is not None:
        html = seeded.get(link).text
        seen += re.findall(r'data-id="([^"]+)"', html)
        found = re.search(r'<a href="(/ui/feedback\?[^"]*cursor=[^"]+)" rel="next">', html)
        link = found.group(1).replace("&amp;", "&") if found else None
    assert len(seen) == len(set(seen)) == 120
    api = seeded.get("/v1/feedback", params={"limit": 1000}, headers=key("a-read")).json()
    assert seen == [item["id"] for item in api["items"]]
    corrections = seeded.get("/ui/feedback?type=correction&model=gpt-4o").text
    rows = re.findall(r'data-id="([^"]+)"', corrections)
    assert rows
    assert corrections.count("tag-correction") == len(rows)
    assert 'value="gpt-4o"' in corrections


def test_the_detail_shows_the_captured_call_the_diff_and_the_raw_payload(
    seeded: TestClient,
) -> None:
    """A correction's page shows its diff, the captured input and output, and the raw payload."""
    _login(seeded, "a-read")
    listing = seeded.get("/ui/feedback?type=correction").text
    item_id = re.findall(r'data-id="([^"]+)"', listing)[0]
    html = seeded.get(f"/ui/feedback/{item_id}").text
    assert '<del><span class="sr">removed: </span>Sydney.</del>' in html
    assert '<ins><span class="sr">added: </span>Canberra.</ins>' in html
    assert "What is the capital of Australia?" in html
    assert 'data-testid="raw"' in html


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/ui?window=abc", "window"),
        ("/ui?window=0", "window"),
        ("/ui?window=nan", "window"),
        ("/ui?window=100000", "window"),
        ("/ui?window=8000&bucket=hour", "bucket"),
        ("/ui?bucket=week", "bucket"),
        ("/ui?sort=price", "sort"),
        ("/ui?model=" + "m" * 300, "model"),
        ("/ui?model=a%00b", "model"),
        ("/ui/feedback?type=vote", "type"),
        ("/ui?type=vote", "type"),
        ("/ui/feedback?since=yesterday", "since"),
        ("/ui/feedback?since=2026-11-02T00:00&until=2026-11-01T00:00", "until"),
        ("/ui/feedback?since=0001-01-01T00:00", "since"),
        ("/ui/feedback?until=9999-12-31T23:59:59", "until"),
        ("/ui/feedback?since=2026-01-01T00:00%2B25:00", "since"),
        ("/ui?order=up", "order"),
        ("/ui/feedback?cursor=not-a-cursor", "cursor"),
        ("/ui/feedback?cursor=WyJ4IiwxXQ", "cursor"),
        ("/ui/feedback?cursor=Wy02MjEzNTU5NjgwMDAwMDAwMSwieCJd", "cursor"),  # before year 1
        ("/ui/feedback?cursor=WzAsImFcdTAwMDBiIl0", "cursor"),  # a NUL in its id
    ],
)
def test_bad_parameters_name_the_field(seeded: TestClient, path: str, field: str) -> None:
    """A bad filter is a 422 page naming the parameter, never a 500."""
    _login(seeded, "a-read")
    response = seeded.get(path)
    assert response.status_code == 422
    assert f'data-field="{field}"' in response.text
    assert f"The {field!r} parameter" in response.text.replace("&#39;", "'")


def test_static_files_are_cached_and_pages_are_not(seeded: TestClient) -> None:
    """Assets are cacheable with an ETag; pages are no-store with a self-only CSP."""
    script = seeded.get("/ui/static/chart.umd.min.js")
    assert script.status_code == 200
    assert script.headers["cache-control"] == "public, max-age=86400"
    assert script.headers["etag"]
    assert script.headers["content-type"].startswith("text/javascript")
    assert script.content.startswith(b"/*!\n * Chart.js v4")
    assert seeded.get("/ui/static/nothing.js").status_code == 404
    page = seeded.get("/ui/login")
    assert page.headers["cache-control"] == "no-store"
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "http" not in page.headers["content-security-policy"]
    assert "unsafe-inline" not in page.headers["content-security-policy"]


def test_pages_load_nothing_from_other_hosts(seeded: TestClient) -> None:
    """No page or asset refers to another host (scripts, styles, fonts are served here)."""
    _login(seeded, "a-read")
    item_id = re.findall(r'data-id="([^"]+)"', seeded.get("/ui/feedback").text)[0]
    for path in ("/ui", "/ui/feedback", f"/ui/feedback/{item_id}", "/ui/login"):
        html = seeded.get(path).text
        assert not re.search(r'(src|href)="(https?:)?//', html), path
    for name in ("dashboard.js", "dashboard.css"):
        assert "http" not in seeded.get(f"/ui/static/{name}").text


def test_without_authentication_the_dashboard_shows_project_default(tmp_path: Path) -> None:
    """With --insecure-no-auth the pages need no login and show project 'default'."""
    config = FeedbackConfig(
        store="sqlite",
        database_url=f"sqlite:///{tmp_path / 'open.db'}",
        batch_max_delay_ms=2,
    )
    with TestClient(create_app(config, insecure_no_auth=True)) as client:
        client.post("/v1/feedback", json={"score": 5, "context": {"model": "m"}})
        page = client.get("/ui")
        assert page.status_code == 200
        assert 'data-testid="project">default<' in page.text
        assert _stats_on_page(page.text)["total_count"] == "1"
        assert "Log out" not in page.text


def _session_of(tmp_path: Path, keys: list[dict[str, Any]], secret: str) -> str:
    """Log in with ``secret`` on a service with ``keys``; return the session cookie."""
    with TestClient(create_app(server_config(tmp_path, api_keys=keys))) as client:
        response = client.post("/ui/login", data={"key": secret}, follow_redirects=False)
        assert response.status_code == 303, response.text
        assert client.get("/ui").status_code == 200
        return str(client.cookies["ai_feedback_session"])


def _shows_data(tmp_path: Path, keys: list[dict[str, Any]], session: str, **server: Any) -> bool:
    """Whether a (restarted) service with ``keys`` shows its overview for ``session``."""
    with TestClient(create_app(server_config(tmp_path, api_keys=keys, **server))) as client:
        client.cookies.set("ai_feedback_session", session)
        page = client.get("/ui", follow_redirects=False)
    assert page.status_code in {200, 303}
    return page.status_code == 200


def _key(secret: str, scopes: list[str], key_id: str = "k1") -> dict[str, Any]:
    digest = hashlib.sha256(secret.encode()).hexdigest()
    return {"id": key_id, "secret_sha256": digest, "project": "p", "scopes": scopes}


def test_the_browser_keeps_a_signed_session_never_the_secret(tmp_path: Path) -> None:
    """The cookie is a signed session without the secret; it outlives a restart."""
    keys = [_key("the-secret-of-k1", ["read"])]
    session = _session_of(tmp_path, keys, "the-secret-of-k1")
    assert session.startswith("afs_")
    assert "the-secret-of-k1" not in session
    assert hashlib.sha256(b"the-secret-of-k1").hexdigest() not in session
    assert _shows_data(tmp_path, keys, session)  # nothing kept server-side


def test_the_key_is_checked_on_every_request(tmp_path: Path) -> None:
    """A session whose key was removed, re-keyed or lost read shows the login form again."""
    keys = [_key("old-secret", ["read"])]
    session = _session_of(tmp_path, keys, "old-secret")
    assert _shows_data(tmp_path, keys, session)
    assert not _shows_data(tmp_path, [_key("old-secret", ["read"], key_id="k2")], session)
    assert not _shows_data(tmp_path, [_key("new-secret", ["read"])], session)
    assert not _shows_data(tmp_path, [_key("old-secret", ["ingest"])], session)
    assert _shows_data(tmp_path, [_key("old-secret", ["admin"])], session)


def test_forged_expired_or_foreign_sessions_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tampered, expired, other-secret, raw-secret and browser-token cookies show no data."""
    keys = [_key("old-secret", ["read"])]
    session = _session_of(tmp_path, keys, "old-secret")
    body, _, signature = session.partition(".")
    fields = json.loads(base64.urlsafe_b64decode(body.removeprefix("afs_") + "=="))
    fields["e"] += 365 * 24 * 3600  # a year longer, with the old signature
    forged_body = base64.urlsafe_b64encode(json.dumps(fields).encode()).rstrip(b"=").decode()
    for cookie in (
        f"afs_{forged_body}.{signature}",
        session[:-2] + ("AA" if not session.endswith("AA") else "BB"),
        "old-secret",
        "afs_",
        "afs_x.y.z",
        mint(TOKEN_SECRET, TokenClaims("p", "t", time.time() + 60, "i")),
    ):
        assert not _shows_data(tmp_path, keys, cookie), cookie
    assert not _shows_data(tmp_path, keys, session, token_secret="u" * 40)
    later = time.time() + 8 * 3600 + 1
    monkeypatch.setattr(login, "time", SimpleNamespace(time=lambda: later))
    assert not _shows_data(tmp_path, keys, session)


def test_logging_in_or_out_removes_the_cookie_that_held_a_secret(seeded: TestClient) -> None:
    """The cookie of earlier versions (the raw secret) is deleted at login and at logout."""
    seeded.cookies.set("ai_feedback_key", SECRETS["a-read"][0], path="/ui")
    response = seeded.post("/ui/login", data={"key": SECRETS["a-read"][0]}, follow_redirects=False)
    cleared = response.headers.get_list("set-cookie")
    assert any(c.startswith('ai_feedback_key=""') for c in cleared), cleared
    out = seeded.post("/ui/logout", follow_redirects=False)
    names = [c.split("=")[0] for c in out.headers.get_list("set-cookie")]
    assert sorted(names) == ["ai_feedback_key", "ai_feedback_session"]


def test_without_keys_a_session_left_by_another_service_still_shows_the_pages(
    tmp_path: Path,
) -> None:
    """With --insecure-no-auth, a stale or foreign session cookie does not lock anyone out."""
    keys = [_key("old-secret", ["read"])]
    session = _session_of(tmp_path, keys, "old-secret")
    config = FeedbackConfig(store="memory")
    with TestClient(create_app(config, insecure_no_auth=True)) as client:
        client.cookies.set("ai_feedback_session", session)
        assert client.get("/ui").status_code == 200
        client.cookies.set("ai_feedback_session", "afs_garbage.x")
        page = client.get("/ui")
        assert page.status_code == 200
        assert "Log out" not in page.text  # no login without keys, so nothing to log out of
        login = client.get("/ui/login", follow_redirects=False)
        assert (login.status_code, login.headers["location"]) == (303, "/ui")
        sent = client.post("/ui/login", data={"key": "any"}, follow_redirects=False)
        assert (sent.status_code, sent.headers["location"]) == (303, "/ui")


async def test_the_demo_data_shows_in_a_service_without_keys() -> None:
    """After ai-feedback demo, a service on its file without keys shows its items at /ui."""
    stats = await run_demo()
    config = FeedbackConfig(store="sqlite", database_url="sqlite:///./ai_feedback_demo.db")
    with TestClient(create_app(config, insecure_no_auth=True)) as client:
        page = client.get("/ui")
        listing = client.get("/ui/feedback?type=correction")
    assert page.status_code == 200
    shown = _stats_on_page(page.text)
    assert shown["total_count"] == str(stats["total_count"]) == "7"
    assert shown["average_rating"] == str(stats["average_rating"])
    assert "Canberra" in listing.text


_LINK = re.compile(r'(?:href|src|action)="([^"]+)"')


def _links(html: str) -> set[str]:
    return set(_LINK.findall(html.replace("&amp;", "&"))) - {"#main", "data:,"}


@pytest.mark.parametrize("root_path", ["", "/proxy"])
def test_the_dashboard_follows_the_prefix_it_is_installed_under(
    tmp_path: Path, root_path: str
) -> None:
    """Under install(prefix=...) (and a proxy's root path) links, redirects and cookie follow.

    Every link, form and asset of the login page and of every page behind it points into
    the prefixed dashboard (or its API) and answers 200 when followed; the redirects name
    it, the session cookie is limited to it, and the navigation marks the current page.
    Here the server puts the proxy's root path in the request's path, as the browser
    sent it.
    """
    app = FastAPI()
    install(app, server_config(tmp_path), prefix="/fb")
    ui = f"{root_path}/fb/ui"
    with TestClient(app, root_path=root_path) as client:
        seed(client, "a-all", payloads(12), path=f"{root_path}/fb/v1/feedback/batch")
        assert client.get(f"{root_path}/ui/login").status_code == 404  # only under the prefix
        assert client.get(ui, follow_redirects=False).headers["location"] == f"{ui}/login"
        seen = _links(client.get(f"{ui}/login").text)
        assert seen == {f"{ui}/login", f"{ui}/static/dashboard.css?v={_version(client, ui)}"}
        response = client.post(
            f"{ui}/login", data={"key": SECRETS["a-read"][0]}, follow_redirects=False
        )
        assert response.headers["location"] == ui
        assert f"Path={ui};" in response.headers["set-cookie"] + ";"
        item_id = re.findall(r'data-id="([^"]+)"', client.get(f"{ui}/feedback").text)[0]
        for page in ("", "/feedback", f"/feedback/{item_id}"):
            html = client.get(f"{ui}{page}").text
            for link in _links(html):
                assert link.startswith((ui, f"{root_path}/fb/v1/")), (page, link)
                seen.add(link)
            if page in ("", "/feedback"):
                assert f'<a href="{ui}{page}" aria-current="page">' in html
        paths = {link.split("?")[0] for link in seen}
        expected = {"", "/feedback", "/logout", "/static/dashboard.css", "/static/dashboard.js"}
        assert {ui + page for page in expected} | {f"{root_path}/fb/v1/stats"} <= paths
        for link in seen - {f"{ui}/logout", f"{ui}/login"}:
            assert client.get(link, headers=key("a-read")).status_code == 200, link
        out = client.post(f"{ui}/logout", follow_redirects=False)
        assert out.headers["location"] == f"{ui}/login"
        assert f"Path={ui};" in out.headers["set-cookie"] + ";"
        assert client.get(ui, follow_redirects=False).status_code == 303


def _version(client: TestClient, ui: str) -> str:
    found: list[str] = re.findall(r"dashboard\.css\?v=(\w+)", client.get(f"{ui}/login").text)
    return found[0]


def test_behind_a_proxy_that_strips_its_root_path_links_keep_it(tmp_path: Path) -> None:
    """When the server leaves the proxy's root path out of the path, links still hold it."""
    app = FastAPI()
    install(app, server_config(tmp_path), prefix="/fb")
    ui = "/proxy/fb/ui"
    with TestClient(app, root_path="/proxy") as client:
        assert client.get("/fb/ui", follow_redirects=False).headers["location"] == f"{ui}/login"
        assert f'action="{ui}/login"' in client.get("/fb/ui/login").text
        response = client.post(
            "/fb/ui/login", data={"key": SECRETS["a-read"][0]}, follow_redirects=False
        )
        assert response.headers["location"] == ui
        assert f"Path={ui};" in response.headers["set-cookie"] + ";"
        session = response.cookies[login.COOKIE]
        cookie = {"cookie": f"{login.COOKIE}={session}"}  # the browser would send it
        page = client.get("/fb/ui/feedback", headers=cookie).text
        assert f'<a href="{ui}/feedback" aria-current="page">' in page
        assert all(link.startswith(("/proxy/fb/ui", "/proxy/fb/v1/")) for link in _links(page))


@pytest.mark.parametrize(
    "prefix", ["fb", "/fb/", "//fb", "/fb;x", "/my feedback", "/f\u00e9", "/..", "/fb/{x}", 3]
)
def test_install_refuses_a_prefix_that_is_not_a_path(tmp_path: Path, prefix: Any) -> None:
    """A prefix must be empty or a path like /feedback: the error names the field."""
    with pytest.raises(FeedbackValidationError, match="prefix"):
        install(FastAPI(), server_config(tmp_path), prefix=prefix)


def test_odd_ids_and_names_page_link_and_filter(client: TestClient) -> None:
    """Long ids page on, ids with a slash open, padded names filter, big figures show whole."""
    long_ids = [f"{i:03d}" + "😀" * 253 for i in range(60)]  # 256 characters, 4 bytes each
    items = [{"id": i, "score": 1, "trace_id": "longid"} for i in long_ids]
    assert (
        client.post("/v1/feedback/batch", json={"items": items}, headers=key("a-all")).status_code
        == 207
    )
    for body in (
        {"id": "a/b", "score": 2, "trace_id": "special"},
        {"score": 1234567, "context": {"model": "  padded  "}},
        {"score": 1234567, "context": {"model": "  padded  "}},
    ):
        assert client.post("/v1/feedback", json=body, headers=key("a-all")).status_code == 202
    for refused in (".", ".."):
        answer = client.post("/v1/feedback", json={"id": refused, "score": 1}, headers=key("a-all"))
        assert (answer.status_code, answer.json()["field"]) == (422, "id")
    _login(client, "a-read")
    first = client.get("/ui/feedback?trace_id=longid").text
    older = re.search(r'<a href="(/ui/feedback\?[^"]*cursor=[^"]+)" rel="next">', first)
    assert older is not None
    second = client.get(older.group(1).replace("&amp;", "&"))
    assert second.status_code == 200, second.text
    assert len(re.findall(r'data-id="([^"]+)"', second.text)) == 10
    first_page: dict[str, str | int] = {"trace_id": "longid", "limit": 10}
    page = client.get("/v1/feedback", params=first_page, headers=key("a-read")).json()
    cursor = {**first_page, "cursor": page["next_cursor"]}
    assert client.get("/v1/feedback", params=cursor, headers=key("a-read")).status_code == 200
    special = client.get("/ui/feedback?trace_id=special").text
    assert 'href="/ui/feedback/a%2Fb"' in special
    assert client.get("/ui/feedback/a%2Fb").status_code == 200
    assert client.get("/v1/feedback/a%2Fb", headers=key("a-read")).json()["id"] == "a/b"
    padded = client.get("/ui/feedback", params={"model": "  padded  "}).text
    assert len(re.findall(r'data-id="([^"]+)"', padded)) == 2
    overview = client.get("/ui", params={"model": "  padded  ", "window": "0.125"}).text
    shown = _stats_on_page(overview)
    assert shown["total_count"] == "2"
    assert ">1,234,567<" in overview.replace("</data>", "<")
    assert '<option value="0.125" selected>' in overview
    assert "The last 0.125 hours" in overview
    assert "window_hours=0.125" in overview


@pytest.mark.parametrize(
    ("original", "corrected", "removed", "added"),
    [
        ("Sydney\nThanks for asking", "Canberra\nThanks for asking", ["Sydney"], ["Canberra"]),
        ("", "Canberra", [], ["Canberra"]),
        ("a  b", "a b", [], []),
    ],
)
def test_the_correction_diff_marks_words_only(
    client: TestClient, original: str, corrected: str, removed: list[str], added: list[str]
) -> None:
    """Words around a newline are words; spacing alone is no change; nothing empty is marked."""
    body = {"type": "correction", "original": original, "corrected": corrected}
    item_id = client.post("/v1/feedback", json=body, headers=key("a-all")).json()["id"]
    _login(client, "a-read")
    html = client.get(f"/ui/feedback/{item_id}").text
    sr_removed, sr_added = '<span class="sr">removed: </span>', '<span class="sr">added: </span>'
    assert re.findall(f"<del>{sr_removed}(.*?)</del>", html, re.DOTALL) == removed
    assert re.findall(f"<ins>{sr_added}(.*?)</ins>", html, re.DOTALL) == added


def test_a_long_correction_is_compared_word_by_word_only_between_its_common_ends() -> None:
    """
    Past a budget the changed middle of a correction shows whole.

    Word-by-word comparison of repetitive text takes time growing with the cube of its
    length: minutes at 10,000 characters, on the event loop of the whole service.
    """
    original, corrected = "a " * 5_000, "b a " * 2_500
    framed = (f"Dear team, {original}", f"Dear team, {corrected}")
    for before, after in ((original, corrected), framed):
        runs = _diff(before, after)
        kinds = [kind for kind, _ in runs]
        assert kinds[-3:] == ["removed", "added", "same"]  # one run each, not word by word
        assert "".join(text for kind, text in runs if kind != "removed") == after
        assert "".join(text for kind, text in runs if kind != "added") == before
    assert _diff(*framed)[0] == ("same", "Dear team, ")
