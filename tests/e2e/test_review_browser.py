"""The review page in a real browser: Debian's headless Chromium, driven by Selenium."""

import threading
import time
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from tests.helpers import make_review_project
from transfer.manifests.corrections import read_corrections
from transfer.review.server import ReviewServer

pytestmark = pytest.mark.e2e
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
# Debian's Chromium as root, in a machine with no network: no sandbox, no background calls.
CHROMIUM_FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--window-size=1200,900",
)  # fmt: skip


@pytest.fixture
def browser(tmp_path: Path):
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail("Chromium and its driver are missing: .ci/run installs them")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    yield driver
    driver.quit()


def wait_for_rows(file: Path, count: int, timeout_s: float = 10) -> dict[str, str]:
    deadline = time.monotonic() + timeout_s
    while True:
        rows = {path: label for path, (_, label) in read_corrections(file).items()}
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


def test_a_relabel_and_a_drop_with_keypresses_land_in_corrections_csv(
    browser, tmp_path: Path
) -> None:
    project = make_review_project(tmp_path / "project")
    server = ReviewServer(project, 0, "browser-token")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        browser.get(server.address)
        WebDriverWait(browser, 20).until(
            lambda driver: driver.find_element(By.TAG_NAME, "body").get_attribute("data-ready")
        )
        page = browser.find_element(By.TAG_NAME, "body")
        page.send_keys(Keys.ENTER)  # the first suspect, cat/0.jpg, to its suggestion: dog
        page.send_keys("x")  # the page moved on to the next, dog/1.jpg: drop it
        rows = wait_for_rows(project / "corrections.csv", 2)
        assert rows == {"cat/0.jpg": "dog", "dog/1.jpg": "drop"}
        WebDriverWait(browser, 10).until(
            lambda driver: "2 decided" in driver.find_element(By.ID, "counts").text
        )
        browser.refresh()  # a reload shows both decisions
        WebDriverWait(browser, 20).until(
            lambda driver: driver.find_element(By.TAG_NAME, "body").get_attribute("data-ready")
        )
        decisions = [element.text for element in browser.find_elements(By.CLASS_NAME, "decision")]
        assert "cat/0.jpg → dog" in decisions and "drop dog/1.jpg" in decisions
    finally:
        server.shutdown()
        server.server_close()
