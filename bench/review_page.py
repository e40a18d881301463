"""The review page on a pipeline repo in headless Chromium at 1400x900, as docs/review.png
shows it: how soon it is ready, how soon the heat maps of the first screen come, of the next
screen, and of the first screen seen again; the cards wholly on screen; then, after two
decisions (the suggestion, a drop: written to REPO's corrections.csv), the screenshot.

    python -m bench.review_page REPO docs/review.png

Needs Debian's chromium and chromium-driver, as the browser test does. REPO's own code is not
used: the server is this checkout's, in this process, which loads TensorFlow only at the
first heat map as `review` does.
"""

import argparse
import threading
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from transfer.review.server import ReviewServer

FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--window-size=1400,900")  # fmt: skip
# Whether each heat map on screen is still waiting for its answer.
WAITING_ON_SCREEN = """
return [...document.querySelectorAll('.heat')].filter(tile => {
  const box = tile.getBoundingClientRect();
  return box.bottom > 0 && box.top < innerHeight;
}).map(tile => tile.textContent.includes('…'));
"""
CARDS_ON_SCREEN = """
const bottom = document.querySelector("header").getBoundingClientRect().bottom;
return [...document.querySelectorAll(".item")].filter(card => {
  const box = card.getBoundingClientRect();
  return box.top >= bottom && box.bottom <= innerHeight;
}).length;
"""


def seconds_until(driver: webdriver.Chrome, done) -> float:
    start = time.perf_counter()
    WebDriverWait(driver, 600, poll_frequency=0.05).until(done)
    return time.perf_counter() - start


def maps_shown(driver: webdriver.Chrome) -> float:
    """Seconds until every heat map on screen has come."""
    return seconds_until(driver, lambda d: not any(d.execute_script(WAITING_ON_SCREEN)))


def measure(driver: webdriver.Chrome, server: ReviewServer, picture: Path) -> list:
    """The table's rows, and the screenshot."""
    driver.get(server.address)
    ready = seconds_until(
        driver, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready")
    )
    rows = [("page ready", f"{ready:.2f} s, {driver.find_element(By.ID, 'progress').text}")]
    for what, scroll in (
        ("first screen's heat maps", None),
        ("next screen's", "window.scrollBy(0, innerHeight - 150)"),
        ("first screen again", "window.scrollTo(0, 0)"),
    ):
        if scroll:
            driver.execute_script(scroll)
        counted = len(server.heat_maps.answers)
        seconds = maps_shown(driver)
        computed = len(server.heat_maps.answers) - counted
        rows.append((what, f"{seconds:.2f} s, {computed} computed"))
    for key in ("\ue007", "x"):  # Enter, x
        status = driver.find_element(By.ID, "status").text
        ActionChains(driver).send_keys(key).perform()
        seconds_until(driver, lambda d, s=status: d.find_element(By.ID, "status").text != s)
    maps_shown(driver)
    log = driver.get_log("browser")
    violations = sum("Content Security Policy" in entry["message"] for entry in log)
    rows.append(("cards wholly on screen", str(driver.execute_script(CARDS_ON_SCREEN))))
    rows.append(("policy violations", str(violations)))
    driver.save_screenshot(str(picture))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo", type=Path)
    parser.add_argument("picture", type=Path)
    args = parser.parse_args()
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    for flag in FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    server = ReviewServer(args.repo, 0, "bench")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        rows = measure(driver, server, args.picture)
    finally:
        driver.quit()
        server.shutdown()
    print(f"review page on {args.repo}")  # not bench.common's table: it would load TensorFlow
    for what, figure in rows:
        print(f"{what:<26}{figure}")


if __name__ == "__main__":
    main()
