"""/docs in headless Chromium: Swagger UI loads with no internet access and
"Try it out" on POST /predict succeeds.

Debian's chromium (installed by `make test`), driven by Playwright; every
request that leaves 127.0.0.1 is aborted, so a CDN asset would break the page.
"""

from __future__ import annotations

import os
import shutil
from urllib.parse import urlparse

import pytest
from support.serving import mlfast_serve

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (make test installs it)"
)


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        yield browser
        browser.close()


def test_try_it_out_on_predict(browser, tmp_path):
    with mlfast_serve() as server:
        page = browser.new_page()
        outside = []

        def only_loopback(route):
            host = urlparse(route.request.url).hostname
            if host in ("127.0.0.1", "localhost"):
                route.continue_()
            else:
                outside.append(route.request.url)
                route.abort()

        page.route("**/*", only_loopback)
        page.goto(server.url + "/docs")
        page.wait_for_selector("#operations-Lesson-predict", timeout=20_000)
        assert outside == []

        operation = page.locator("#operations-Lesson-predict")
        operation.locator(".opblock-summary").click()
        operation.locator("button.try-out__btn").click()
        body = operation.locator("textarea.body-param__text")
        assert '"features"' in body.input_value()
        operation.locator("button.execute").click()
        status = operation.locator(".live-responses-table .response .response-col_status")
        status.first.wait_for(timeout=20_000)
        assert status.first.inner_text().strip() == "200"
        answer = operation.locator(
            ".live-responses-table .response-col_description pre"
        ).first.inner_text()
        assert '"prediction": 0' in answer
        page.screenshot(path=str(tmp_path / "docs.png"), full_page=False)
        if os.environ.get("MLFAST_KEEP_SCREENSHOT"):
            shutil.copy(tmp_path / "docs.png", os.environ["MLFAST_KEEP_SCREENSHOT"])

        # the schemas are typed: the request model names its field
        page.locator("section.models, .models").first.wait_for(timeout=10_000)
        assert "PredictRequest" in page.content()
        assert outside == []
