"""
The dashboard in a real browser: Playwright drives Debian's Chromium against a live server.

The test command installs Chromium (``/usr/bin/chromium``); Playwright's own browser
downloads are never used. Screenshots go to ``test-output/dashboard/``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

from ai_feedback.server import create_app
from tests.server.conftest import SECRETS, LiveServer, key, server_config
from tests.server.dashboard_data import flatten, payloads, seed

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[2] / "test-output" / "dashboard"

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A live server with a week of project A's feedback and one item of project B."""
    folder = tmp_path_factory.mktemp("dashboard")
    app = create_app(server_config(folder, {"store_raw_payloads": True}))
    with LiveServer(app) as url, httpx.Client(base_url=url) as client:
        seed(client, "a-all", payloads(240))
        seed(client, "b-all", [{"score": 1, "context": {"model": "secret-model-b"}}])
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless."""
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: ./scripts/test installs it (apt-get install chromium)")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
        )
        yield launched
        launched.close()


class _Watched:
    """A page with every console error, page error and request recorded."""

    def __init__(self, browser: Browser, base: str, **options: Any) -> None:
        self.context = browser.new_context(
            base_url=base, viewport={"width": 1280, "height": 900}, **options
        )
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on("request", lambda request: self.requests.append(request.url))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def watched(browser: Browser, site: str) -> Iterator[_Watched]:
    """A fresh browser context (no cookie) on the live site."""
    page = _Watched(browser, site)
    yield page
    page.close()


def _log_in(page: Page, name: str) -> None:
    page.goto("/ui")
    expect(page).to_have_url("/ui/login".join(page.url.split("/ui/login")[:1]) + "/ui/login")
    page.get_by_label("API key").fill(SECRETS[name][0])
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()


def _figures(page: Page) -> dict[str, str | None]:
    shown: dict[str, str | None] = page.eval_on_selector_all(
        "data[data-stat]",
        "els => Object.fromEntries(els.map(e => [e.dataset.stat, e.getAttribute('value')]))",
    )
    return shown


def _assert_matches_api(page: Page, site: str, params: dict[str, str]) -> None:
    api = httpx.get(f"{site}/v1/stats", params=params, headers=key("a-read")).json()
    expected = flatten(api)
    shown = _figures(page)
    assert shown
    for path, value in shown.items():
        assert value == ("" if expected[path] is None else str(expected[path])), path


def test_a_wrong_key_shows_the_login_form_with_an_error(watched: _Watched) -> None:
    """A wrong key leaves the browser on the login form with an error, and no data."""
    page = watched.page
    page.goto("/ui")
    assert page.url.endswith("/ui/login")
    page.screenshot(path=SHOTS / "login.png")
    page.get_by_label("API key").fill("not-a-key")
    with page.expect_response(lambda r: r.url.endswith("/ui/login")) as answer:
        page.get_by_role("button", name="Log in").click()
    assert answer.value.status == 401
    expect(page.get_by_role("alert")).to_have_text("This key is not valid.")
    assert page.locator("data[data-stat]").count() == 0
    assert "gpt-4o" not in page.content()
    page.screenshot(path=SHOTS / "login-error.png")
    # The only console message is the browser's own note about the 401 response.
    assert all("401" in error for error in watched.errors), watched.errors


def test_overview_filters_list_detail_and_logout(watched: _Watched, site: str) -> None:
    """Log in, read the overview, filter it, sort it, open the list and a detail, log out."""
    page = watched.page
    _log_in(page, "a-read")
    assert page.evaluate("Chart.getChart('series-chart') !== undefined")
    assert page.evaluate("Chart.getChart('distribution-chart') !== undefined")
    _assert_matches_api(page, site, {})
    page.screenshot(path=SHOTS / "overview.png")  # docs/dashboard-overview.png is one
    page.screenshot(path=SHOTS / "overview-full.png", full_page=True)

    page.get_by_label("Time range").select_option("168")
    page.get_by_label("Model", exact=True).fill("gpt-4o")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url("**/ui?*")
    query = parse_qs(urlsplit(page.url).query)
    assert (query["window"], query["model"]) == (["168"], ["gpt-4o"])
    assert "daily" not in page.content()
    assert page.locator('[data-testid="series"] tbody tr').count() in (7, 8)  # per day
    _assert_matches_api(page, site, {"window_hours": "168", "model": "gpt-4o"})
    # The form shows the filters of the URL.
    expect(page.get_by_label("Model", exact=True)).to_have_value("gpt-4o")
    page.reload()
    expect(page.get_by_label("Time range")).to_have_value("168")

    page.goto("/ui?window=168")
    page.get_by_role("link", name="Average rating").click()
    assert "sort=average_rating" in page.url
    rows = page.locator('[data-testid="by-model"] tbody th')
    assert rows.all_inner_texts()[-1] == "llama-3-70b"  # the lowest: its ratings top out at 3
    page.get_by_role("link", name="Average rating").click()  # again: the other way round
    assert "order=asc" in page.url
    assert rows.all_inner_texts()[0] == "llama-3-70b"

    page.get_by_role("navigation", name="Pages").get_by_role("link", name="Feedback").click()
    expect(page.get_by_role("heading", name="Feedback")).to_be_visible()
    assert page.locator('[data-testid="items"] tbody tr').count() == 50
    page.get_by_role("link", name="Older").click()
    assert "cursor=" in page.url
    assert page.locator('[data-testid="items"] tbody tr').count() == 50

    page.goto("/ui/feedback")
    page.get_by_label("Type", exact=True).select_option("correction")
    page.get_by_role("button", name="Apply").click()
    assert "type=correction" in page.url
    page.screenshot(path=SHOTS / "list.png", full_page=True)
    page.locator('[data-testid="items"] tbody tr th a').first.click()
    expect(page.locator("del")).to_contain_text("Sydney.")
    expect(page.locator("ins")).to_contain_text("Canberra.")
    expect(page.get_by_test_id("captured-input")).to_have_text("What is the capital of Australia?")
    expect(page.get_by_test_id("raw")).to_be_visible()
    page.screenshot(path=SHOTS / "detail.png", full_page=True)

    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    page.goto("/ui")
    assert page.url.endswith("/ui/login")
    assert watched.errors == []
    assert all(url.startswith(site) for url in watched.requests), watched.requests


def test_keyboard_labels_and_contrast(watched: _Watched) -> None:
    """The first Tab reaches the skip link; every control has a label; text contrast >= 4.5."""
    page = watched.page
    _log_in(page, "a-read")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    for _ in range(12):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "window":
            break
    assert page.evaluate("document.activeElement.id") == "window"
    for path in ("/ui", "/ui/feedback", "/ui/login"):
        page.goto(path)
        unlabelled = page.evaluate(
            "[...document.querySelectorAll('input, select, textarea')]"
            ".filter(e => e.type !== 'hidden' && e.labels.length === 0).map(e => e.name)"
        )
        assert unlabelled == [], path
    page.goto("/ui/feedback?type=correction")
    page.locator('[data-testid="items"] tbody tr th a').first.click()
    detail = page.url
    for path in ("/ui", "/ui/feedback", detail):
        page.goto(path)
        assert page.evaluate(_LOWEST_CONTRAST) >= 4.5, path  # WCAG AA for body text


def test_without_javascript_the_tables_show_the_numbers(browser: Browser, site: str) -> None:
    """With JavaScript off the charts are gone but every figure is in the tables."""
    watched = _Watched(browser, site, java_script_enabled=False)
    page = watched.page
    _log_in(page, "a-read")
    assert page.locator('[data-testid="series"] tbody tr').count() >= 24
    _assert_matches_api(page, site, {})
    page.screenshot(path=SHOTS / "overview-no-javascript.png", full_page=True)
    watched.close()


_LOWEST_CONTRAST = """
(() => {
  const rgb = s => s.match(/[\\d.]+/g).slice(0, 3).map(Number);
  const lum = c => {
    const [r, g, b] = c.map(v => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const background = el => {
    for (; el; el = el.parentElement) {
      const c = getComputedStyle(el).backgroundColor;
      if (c !== 'rgba(0, 0, 0, 0)' && c !== 'transparent') return rgb(c);
    }
    return [255, 255, 255];
  };
  let lowest = 21;
  for (const el of document.querySelectorAll('body *')) {
    const texts = [...el.childNodes].filter(n => n.nodeType === 3 && n.textContent.trim());
    if (!texts.length) continue;
    if (el.closest('.skip') || el.closest('.sr') || el.offsetParent === null) continue;
    const a = lum(rgb(getComputedStyle(el).color)), b = lum(background(el));
    lowest = Math.min(lowest, (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05));
  }
  return lowest;
})()
"""
