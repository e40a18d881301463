"""The review page in a real browser: Debian's headless Chromium, driven by Selenium, on a
1400x900 window, under the server's Content-Security-Policy."""

import os
import shutil
import threading
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.helpers import make_review_project, save_tiny_classifier, write_image
from transfer.manifests.corrections import read_corrections
from transfer.review.server import ReviewServer

pytestmark = pytest.mark.e2e
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
# Debian's Chromium as root, in a machine with no network: no sandbox, no background calls.
CHROMIUM_FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--window-size=1400,900",
)  # fmt: skip
EXTRA_SUSPECTS = 24  # so that the page scrolls, as it does with a real audit
# The cards whose whole box is on the screen, below the sticky header.
CARDS_ON_SCREEN = """
const bottom = document.querySelector("header").getBoundingClientRect().bottom;
return [...document.querySelectorAll(".item")].filter(card => {
  const box = card.getBoundingClientRect();
  return box.top >= bottom && box.bottom <= window.innerHeight;
}).length;
"""
CURRENT_BELOW_HEADER = """
const bottom = document.querySelector("header").getBoundingClientRect().bottom;
return document.querySelector(".item.current").getBoundingClientRect().top >= bottom;
"""


def make_big_review_project(root: Path) -> Path:
    """make_review_project's photos and findings, with more suspects, an outlier, an
    unusable photo, a byte-identical copy, the audit's out-of-fold accuracy and a classifier
    for the heat maps."""
    project = make_review_project(root)
    save_tiny_classifier(project)
    raw, audit = project / "data/raw", project / "reports/audit"
    suspects = (audit / "suspects.csv").read_text().splitlines()
    with (audit / "suspects.csv").open("w") as file:  # with the suggested class's probability
        file.write(f"{suspects[0]},suggested_probability\n")
        file.writelines(f"{row},0.85\n" for row in suspects[1:])
        for index in range(EXTRA_SUSPECTS):
            write_image(raw / f"cat/extra{index}.jpg", (90, 90, 90), 100 + index)
            file.write(f"cat/extra{index}.jpg,train,cat,dog,0.55,0.4\n")
    for photo, seed in (("dog/odd.jpg", 7), ("fox/dark.jpg", 8)):
        write_image(raw / photo, (0, 0, 0), seed)
    (audit / "outliers.csv").write_text("image,score\ndog/odd.jpg,0.93\n")
    (audit / "quality.csv").write_text("image,issue,score\nfox/dark.jpg,dark,0.99\n")
    shutil.copyfile(raw / "fox/0.jpg", raw / "fox/0 (copy).jpg")
    with (audit / "duplicates.csv").open("a") as file:
        file.write("fox/0 (copy).jpg,fox/0.jpg,1.0,val,val\n")
    (audit / "metrics.json").write_text(
        '{"out_of_fold_accuracy": 0.8712, "label_issues_flagged": 40}'
    )
    return project


@pytest.fixture
def browser(tmp_path: Path):
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail("Chromium and its driver are missing: .ci/run installs them")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    yield driver
    driver.quit()


@pytest.fixture
def server(tmp_path: Path, browser):
    """The big review project's server, and its page open in the browser."""
    project = make_big_review_project(tmp_path / "project")
    server = ReviewServer(project, 0, "browser-token")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    browser.get(server.address)
    wait_until_ready(browser)
    yield server
    server.shutdown()
    server.server_close()


def wait_until_ready(browser) -> None:
    WebDriverWait(browser, 20).until(
        lambda driver: driver.find_element(By.TAG_NAME, "body").get_attribute("data-ready")
    )


def text_of(browser, element_id: str) -> str:
    return browser.find_element(By.ID, element_id).text


def press(browser, key: str, status: str) -> None:
    """Press `key` and wait for the server's answer (the status line saying `status`)."""
    ActionChains(browser).send_keys(key).perform()
    WebDriverWait(browser, 10).until(lambda driver: status in text_of(driver, "status"))


def show_reason(browser, reason: str) -> None:
    Select(browser.find_element(By.ID, "reason")).select_by_value(reason)


def heat_maps_of(card) -> list[str]:
    """The captions of a card's heat maps, once each has come (the page asks when the card
    comes on screen)."""
    tiles = card.find_elements(By.CLASS_NAME, "heat")
    WebDriverWait(card.parent, 20).until(lambda _: all("…" not in tile.text for tile in tiles))
    return [tile.text for tile in tiles]


def test_eight_cards_fit_a_1400x900_screen_and_the_page_runs_under_its_policy(
    browser, server: ReviewServer
) -> None:
    width, height = browser.execute_script("return [innerWidth, innerHeight]")
    assert width <= 1400 and height <= 900  # a 1400x900 window, less the browser's own bars
    assert browser.execute_script(CARDS_ON_SCREEN) >= 8, height
    assert text_of(browser, "progress") == f"0 of {EXTRA_SUSPECTS + 7} decided"
    assert "right on 87%" in text_of(browser, "trust")
    assert "most suspicious of the 40 it flagged" in text_of(browser, "trust")
    first = browser.find_element(By.CSS_SELECTOR, ".item.current")
    assert "filed: cat 10%" in first.text and "suggested: dog 85%" in first.text
    photo, heat = first.find_elements(By.TAG_NAME, "img")
    # The heat map of the class suggested, beside the photo: on its row, as high.
    assert heat_maps_of(first) == ["heat map: dog\nclassifier: 34%"]
    assert heat.get_attribute("src").startswith("data:image/jpeg;base64,")
    assert heat.rect["y"] == photo.rect["y"] and heat.rect["height"] == photo.rect["height"]
    assert heat.rect["x"] > photo.rect["x"] + photo.rect["width"] - 1
    for image in (photo, heat):  # the photo and its heat map load under the policy
        WebDriverWait(browser, 10).until(
            lambda driver, image=image: (
                driver.execute_script("return arguments[0].naturalWidth", image) == 48
            )
        )
    # Only the cards on screen ask for theirs: 31 cards, 32 photos. The requests are
    # answered one after another, so the count is waited for.
    WebDriverWait(browser, 30).until(lambda _: len(server.heat_maps.answers) >= 8)
    assert len(server.heat_maps.answers) < 20
    photo.click()  # enlarges it
    assert browser.find_element(By.ID, "zoom").is_displayed()
    ActionChains(browser).send_keys("\ue00c").perform()  # Escape
    assert not browser.find_element(By.ID, "zoom").is_displayed()
    blocked = [entry["message"] for entry in browser.get_log("browser")]
    assert not [message for message in blocked if "Content Security Policy" in message]
    # With 30 classes no class takes a key that moves or acts.
    keys = browser.execute_script(
        "return Object.values(shortcutKeys([...Array(30).keys()].map(i => `c${i}`)))"
    )
    assert len(keys) == len(set(keys)) == 30 and not {"j", "k", "u", "x"} & set(keys)
    if os.environ.get("REVIEW_SCREENSHOT"):
        browser.save_screenshot(os.environ["REVIEW_SCREENSHOT"])


def test_one_decision_of_each_kind_the_filter_and_undo_land_in_corrections_csv(
    browser, server: ReviewServer
) -> None:
    project = server.heat_maps.project
    press(browser, "\ue007", "cat/0.jpg: cat/0.jpg → dog")  # Enter: the suggestion
    press(browser, "1", "dog/1.jpg: dog/1.jpg → cat")  # the next suspect, by a class's key
    browser.execute_script("window.scrollTo(0, document.body.scrollHeight)")
    show_reason(browser, "suspect")  # the current card, fox/0.jpg, scrolls back into view
    assert browser.execute_script(CURRENT_BELOW_HEADER)  # and not under the sticky header
    press(browser, "x", "fox/0.jpg: drop fox/0.jpg")
    press(browser, "u", "undone: fox/0.jpg")  # the last decision, and only it
    show_reason(browser, "outlier")
    assert len(browser.find_elements(By.CLASS_NAME, "item")) == 1
    outlier = browser.find_element(By.CSS_SELECTOR, ".item.current")
    assert heat_maps_of(outlier)[0].startswith("heat map: ")  # of the class predicted
    press(browser, "x", "outlier:dog/odd.jpg: drop dog/odd.jpg")
    show_reason(browser, "unusable")
    press(browser, "x", "unusable:fox/dark.jpg: drop fox/dark.jpg")
    show_reason(browser, "duplicate")
    pair = browser.find_element(By.CSS_SELECTOR, ".item.current")
    assert "byte-identical" in pair.text and "copy" in pair.text
    assert len(heat_maps_of(pair)) == 2  # one beside each photo
    press(browser, "\ue007", "drop fox/0 (copy).jpg")  # Enter on a pair drops the copy
    show_reason(browser, "leak")
    press(browser, "k", "kept as it is")
    rows = {
        path: label for path, (_, label) in read_corrections(project / "corrections.csv").items()
    }
    assert rows == {
        "cat/0.jpg": "dog", "dog/1.jpg": "cat", "dog/odd.jpg": "drop", "fox/dark.jpg": "drop",
        "fox/0 (copy).jpg": "drop",
    }  # fmt: skip
    assert "cat/1.jpg + dog/0.jpg" in (project / "reviewed.csv").read_text()
    assert text_of(browser, "progress").startswith("6 of ")
    browser.refresh()  # a reload shows every decision
    wait_until_ready(browser)
    decisions = [element.text for element in browser.find_elements(By.CLASS_NAME, "decision")]
    assert "cat/0.jpg → dog" in decisions and "kept as it is" in decisions
    assert text_of(browser, "progress").startswith("6 of ")
