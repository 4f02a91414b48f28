"""The admin page in a real browser (Debian's Chromium, headless, through its chromedriver).

Real processes: the bridge's ``web`` and ``worker`` on one SQLite file, and the Facturation.pro
sandbox. A sale's webhook fails to map (a merchant's mapping override reads the wrong amount);
the operator logs in through the form, finds the event by the invoice number, fixes the mapping,
replays the event and sees it delivered. Nothing is downloaded: the browser and the driver are the
system's, and Selenium Manager never runs (the driver's path is given).

With ``BRIDGE_SCREENSHOTS_DIR`` set, the test saves the dashboard, a list and a detail page there
(docs/screenshots/ holds the ones the documentation shows).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.bridge_procs import (
    bridge_env,
    invoice_custom,
    running_bridge,
    sandbox_to_file,
    stripe_sale,
)
from tests.support.webhooks import stripe_header

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
TOKEN = "browser-admin-token-0123456789"
MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"
WAIT_S = 60.0  # generous: the machine may be busy


def _browser(profile: Path) -> Iterator[object]:
    if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
        message = f"Chromium and its driver are needed: {CHROMIUM}, {CHROMEDRIVER}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    yield from _browser(tmp_path / "chromium-profile")


def _until(check: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def _click(driver: Any, element_id: str) -> None:
    """Click and wait for the next page to replace this one (a link or a form's submission)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.wait import WebDriverWait

    page = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.ID, element_id).click()
    WebDriverWait(driver, WAIT_S).until(expected_conditions.staleness_of(page))


def _broken_mappings(into: Path) -> Path:
    """A merchant's override of invoice.paid that reads the amount still due (0) as the charge."""
    (into / "stripe").mkdir(parents=True)
    spec = (MAPPINGS / "stripe" / "invoice.paid.yaml").read_text(encoding="utf-8")
    right = 'charged: "minor(o.total, o.currency)"'
    assert right in spec
    broken = into / "stripe" / "invoice.paid.yaml"
    broken.write_text(spec.replace(right, 'charged: "minor(o.amount_remaining, o.currency)"'))
    return broken


def test_an_operator_finds_fixes_and_replays_a_failed_webhook(
    tmp_path: Path, browser: object
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver

    assert isinstance(browser, WebDriver)
    driver = browser
    shots = os.environ.get("BRIDGE_SCREENSHOTS_DIR")
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
    broken = _broken_mappings(tmp_path / "mappings")
    env = bridge_env(
        f"sqlite:///{tmp_path / 'bridge.db'}",
        "",
        BRIDGE_ADMIN_TOKEN=TOKEN,
        BRIDGE_MAPPINGS_DIR=str(broken.parent.parent),
    )
    with sandbox_to_file(tmp_path / "sandbox.log") as sandbox:
        env["FACTURATION_API_URL"] = sandbox.url
        with running_bridge(env, tmp_path / "logs", workers=1) as bridge:
            ui = f"{bridge.url}/admin/ui"
            sale = stripe_sale(1042, "cus_browser", 4990)
            answer = httpx.post(
                f"{bridge.url}/webhooks/stripe",
                content=sale.body,
                headers={"Stripe-Signature": stripe_header(sale.body)},
                timeout=30,
            )
            assert answer.status_code == 200, answer.text

            # Not logged in: every page leads to the login form.
            driver.get(f"{ui}/events")
            assert driver.current_url == f"{ui}/login"
            assert "Log in" in driver.title  # headless Chromium asks for English
            _click(driver, "lang-fr")  # the operator prefers French
            assert "Connexion" in driver.title
            driver.find_element(By.ID, "token").send_keys(TOKEN)
            _click(driver, "login")
            assert driver.current_url == f"{ui}/"
            assert "Tableau de bord" in driver.title

            # The worker maps the webhook and fails: the dashboard counts it.
            def failed_counted() -> bool:
                driver.get(f"{ui}/")
                row = driver.find_element(By.CSS_SELECTOR, "#event-counts tr:nth-child(4)")
                return row.text.split()[-1] == "1"

            _until(failed_counted, "the failed event on the dashboard")
            if shots:
                driver.save_screenshot(str(Path(shots) / "admin-dashboard.png"))

            # Found by the invoice number the merchant reads on Stripe.
            _click(driver, "nav-events")
            driver.find_element(By.ID, "q").send_keys("CHAOS-01042")
            _click(driver, "apply")
            rows = driver.find_elements(By.CSS_SELECTOR, "#rows tbody tr")
            assert len(rows) == 1
            assert "en échec" in rows[0].text
            if shots:
                driver.save_screenshot(str(Path(shots) / "admin-events.png"))
            _click(driver, rows[0].find_element(By.CSS_SELECTOR, "a.open").get_attribute("id"))
            error = driver.find_element(By.ID, "error").text
            assert "was charged" in error, error
            assert "CHAOS-01042" in driver.find_element(By.ID, "body").text
            if shots:
                driver.save_screenshot(str(Path(shots) / "admin-event-detail.png"))
            detail = driver.current_url

            # A POST without the form's CSRF token is refused, and changes nothing.
            driver.execute_script(
                "document.querySelector('form[action$=\"/replay\"] input[name=csrf]').remove()"
            )
            _click(driver, "replay")
            assert "CSRF" in driver.find_element(By.ID, "message").text
            driver.get(detail)
            assert "en échec" in driver.find_element(By.TAG_NAME, "h1").text

            # The fix: drop the faulty override (the built-in mapping applies), restart the worker.
            broken.unlink()
            bridge.kill_worker(0)
            bridge.start_worker(0)
            driver.get(detail)
            _click(driver, "replay")
            assert "1 événement(s) rejoué(s)" in driver.find_element(By.ID, "flash").text

            def delivered() -> bool:
                driver.get(detail)
                produced = driver.find_elements(By.CSS_SELECTOR, "#produced li")
                return bool(produced) and all("faite" in li.text for li in produced)

            _until(delivered, "the replayed event's commands to be done")
            assert "traduit" in driver.find_element(By.TAG_NAME, "h1").text
            if shots:
                driver.get(f"{ui}/commands?state=done")
                driver.save_screenshot(str(Path(shots) / "admin-commands.png"))

            # The web process reports what the worker process did.
            metrics = httpx.get(
                f"{bridge.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
            ).text
            assert 'facturation_bridge_commands{state="done"} 2.0' in metrics
            assert "facturation_bridge_delivery_seconds_count 2.0" in metrics

            _click(driver, "logout")
            driver.get(f"{ui}/commands")
            assert driver.current_url == f"{ui}/login"
        invoices = sandbox.ledger()["invoices"]
    assert [i["api_custom"] for i in invoices] == [invoice_custom(1042)]
