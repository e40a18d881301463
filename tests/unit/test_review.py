"""The review server: decisions kept and reloaded, the token, the paths it serves."""

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import make_review_project, write_image
from transfer.manifests.corrections import read_corrections
from transfer.review.server import TOKEN_HEADER, ReviewServer

TOKEN = "secret-token"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[ReviewServer, str]]:
    server = ReviewServer(make_review_project(tmp_path / "project"), 0, TOKEN)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def request(url: str, body: dict | None = None, token: str | None = TOKEN, **headers):
    """(status, JSON or bytes) of a GET, or of a POST of `body` with the token header."""
    if body is not None and token is not None:
        headers[TOKEN_HEADER] = token
    data = None if body is None else json.dumps(body).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data, headers)) as response:
            content = response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        content, status = error.read(), error.code
    try:
        return status, json.loads(content)
    except ValueError:
        return status, content


def decide(url: str, item: str, decision: str, target: str | None = None) -> int:
    """The status of a decision on `item` (on its photo `target`, by default the item's)."""
    body = {"item": item, "target": target or item, "decision": decision}
    return request(f"{url}/api/decide", body)[0]


def items(url: str) -> dict:
    status, answer = request(f"{url}/api/items?token={TOKEN}")
    assert status == 200
    return {item["id"]: item for item in answer["items"]}


def test_decisions_are_written_at_once_and_shown_after_a_reload(served, tmp_path: Path) -> None:
    server, url = served
    assert decide(url, "cat/0.jpg", "dog") == 200
    assert decide(url, "dog/1.jpg", "drop") == 200
    assert decide(url, "fox/0.jpg", "keep") == 200
    pair = "cat/1.jpg + dog/0.jpg"
    assert decide(url, pair, "drop", target="dog/0.jpg") == 200
    corrections = read_corrections(tmp_path / "project/corrections.csv")
    assert {path: label for path, (_, label) in corrections.items()} == {
        "cat/0.jpg": "dog", "dog/1.jpg": "drop", "dog/0.jpg": "drop",
    }  # fmt: skip
    # A new server (the tab closed, the server killed) shows them all.
    again = ReviewServer(tmp_path / "project", 0, TOKEN)
    thread = threading.Thread(target=again.serve_forever, daemon=True)
    thread.start()
    try:
        shown = items(f"http://127.0.0.1:{again.server_address[1]}")
    finally:
        again.shutdown()
        again.server_close()
    assert shown["cat/0.jpg"]["decided"] == {"cat/0.jpg": "dog"}
    assert shown["dog/1.jpg"]["decided"] == {"dog/1.jpg": "drop"}
    assert shown["fox/0.jpg"]["kept"] and not shown["fox/0.jpg"]["decided"]
    assert shown[pair]["decided"] == {"dog/0.jpg": "drop"} and shown[pair]["kind"] == "leak"


def test_a_kept_photo_is_asked_again_once_it_changes(served, tmp_path: Path) -> None:
    _, url = served
    assert decide(url, "fox/0.jpg", "keep") == 200
    assert items(url)["fox/0.jpg"]["kept"]
    write_image(tmp_path / "project/data/raw/fox/0.jpg", (200, 0, 0), 99)  # a new photo
    assert not items(url)["fox/0.jpg"]["kept"]


def test_a_decision_without_the_token_is_refused(served, tmp_path: Path) -> None:
    _, url = served
    body = {"item": "cat/0.jpg", "target": "cat/0.jpg", "decision": "dog"}
    assert request(f"{url}/api/decide", body, token=None)[0] == 403
    assert request(f"{url}/api/decide", body, token="guessed")[0] == 403
    assert request(f"{url}/api/items")[0] == 403  # the page's data needs it too
    assert request(f"{url}/api/items?token={TOKEN}", Host="evil.example:80")[0] == 403
    assert read_corrections(tmp_path / "project/corrections.csv") == {}


@pytest.mark.parametrize(
    "path",
    [
        "/photo/../../corrections.csv",
        "/photo/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/photo/..%2f..%2freports/audit/suspects.csv",
        "/photo//etc/hostname",
        "/photo/cat/../../../params.yaml",
    ],
)
def test_nothing_outside_the_photos_is_served(served, tmp_path: Path, path: str) -> None:
    _, url = served
    (tmp_path / "project/secret.jpg").write_bytes(b"not to be served")
    status, _ = request(f"{url}{path}?token={TOKEN}")
    assert status in (403, 404)
    status, _ = request(f"{url}/photo/../secret.jpg?token={TOKEN}")
    assert status in (403, 404)
    status, photo = request(f"{url}/photo/cat/0.jpg?token={TOKEN}")
    assert status == 200 and photo[:2] == b"\xff\xd8"  # a JPEG


def test_two_decisions_posted_at_once_are_both_kept(served, tmp_path: Path) -> None:
    _, url = served
    bodies = [
        {"item": path, "target": path, "decision": "drop"}
        for path in ("cat/0.jpg", "dog/1.jpg", "fox/0.jpg")
    ]
    threads = [
        threading.Thread(target=request, args=(f"{url}/api/decide", body)) for body in bodies
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    corrections = read_corrections(tmp_path / "project/corrections.csv")
    assert set(corrections) == {"cat/0.jpg", "dog/1.jpg", "fox/0.jpg"}


def test_an_unknown_decision_or_item_is_refused(served) -> None:
    _, url = served
    assert decide(url, "cat/0.jpg", "wolf") == 400
    assert decide(url, "cat/9.jpg", "drop") == 404
