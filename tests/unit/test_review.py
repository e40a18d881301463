"""The review server: decisions kept and reloaded, the token, the paths it serves."""

import base64
import hashlib
import json
import os
import shutil
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import make_review_project, write_image
from transfer.manifests.corrections import read_corrections
from transfer.review.items import copy_in_pair
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


def test_every_answer_carries_the_security_headers(served) -> None:
    server, url = served
    page = server.page.decode()
    script = page.split("<script>")[1].split("</script>")[0]
    script_hash = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    for path in (f"/?token={TOKEN}", f"/api/items?token={TOKEN}", "/api/items", "/photo/a"):
        try:
            with urllib.request.urlopen(f"{url}{path}") as answer:
                headers = answer.headers
        except urllib.error.HTTPError as error:  # 403 without the token, 404 for no page
            headers = error.headers
        policy = headers["Content-Security-Policy"]
        assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
        assert "img-src 'self' data:;" in policy  # photos, and heat maps inside the JSON
        assert f"script-src 'sha256-{script_hash}'" in policy and "unsafe-inline" not in policy
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Server"] == "review"  # no Python version


def raw_status(url: str, request: bytes) -> int:
    """The status a raw request gets over a socket left open (a server that waits for more
    of the body times out the read here rather than answering)."""
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(request)
        answer = connection.makefile("rb").readline()
    return int(answer.split()[1])


def post(body: bytes, *, length: int | None = None, token: bytes = TOKEN.encode()) -> bytes:
    length = len(body) if length is None else length
    return (
        b"POST /api/decide HTTP/1.1\r\nHost: HOST\r\nContent-Type: application/json\r\n"
        b"X-Review-Token: " + token + b"\r\nContent-Length: " + str(length).encode() + b"\r\n\r\n"
    ) + body


def heat_map(query: str) -> bytes:
    return f"GET /api/heatmap?token={TOKEN}&{query} HTTP/1.1\r\n".encode()


DECISION = {"target": "cat/0.jpg", "decision": "dog"}
MALFORMED = {
    "non-ASCII token in the address": (b"GET /api/items?token=%C3%A9t%C3%A9 HTTP/1.1\r\n", 403),
    "non-ASCII token in the header": (post(b"{}", token="été".encode()), 403),
    "NUL in a photo path": (f"GET /photo/cat/0%00.jpg?token={TOKEN} HTTP/1.1\r\n".encode(), 400),
    "item as a list": (post(json.dumps({**DECISION, "item": ["cat/0.jpg"]}).encode()), 400),
    "item as an object": (post(json.dumps({**DECISION, "item": {"a": 1}}).encode()), 400),
    "JSON nested 50,000 deep": (post(b"[" * 50_000 + b"]" * 50_000), 413),
    "JSON nested 5,000 deep": (post(b"[" * 5_000 + b"]" * 5_000), 400),
    "Content-Length -1": (post(b'{"item": ', length=-1), 400),
    "Content-Length too large": (post(b'{"item": ', length=10**12), 413),
    "invalid JSON": (post(b'{"item": "cat/0.jpg",'), 400),
    "JSON that is not an object": (post(b'["cat/0.jpg", "cat/0.jpg", "dog"]'), 400),
    "heat map without its photo": (heat_map("item=cat/0.jpg"), 400),
    "heat map of two items": (heat_map("item=cat/0.jpg&item=dog/1.jpg&photo=cat/0.jpg"), 400),
    "heat map of another item's photo": (heat_map("item=cat/0.jpg&photo=dog/1.jpg"), 404),
    "heat map of no item": (heat_map("item=cat/9.jpg&photo=cat/9.jpg"), 404),
    "heat map before `dvc repro`": (heat_map("item=cat/0.jpg&photo=cat/0.jpg"), 404),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_a_malformed_request_gets_a_4xx_and_the_server_stays_up(
    served, tmp_path: Path, case: str
) -> None:
    server, url = served
    request, status = MALFORMED[case]
    host = url.removeprefix("http://").encode()
    if b"Host: HOST" in request:
        request = request.replace(b"Host: HOST", b"Host: " + host)
    else:
        request += b"Host: " + host + b"\r\n\r\n"
    assert raw_status(url, request) == status
    assert read_corrections(tmp_path / "project/corrections.csv") == {}
    assert decide(url, "cat/0.jpg", "dog") == 200  # and the next request works
    assert items(url)["cat/0.jpg"]["decided"] == {"cat/0.jpg": "dog"}
    assert server.heat_maps.loaded is None  # no classifier here: TensorFlow never loaded


def test_the_page_gets_the_out_of_fold_accuracy_outliers_and_unusable_photos(
    served, tmp_path: Path
) -> None:
    _, url = served
    audit = tmp_path / "project/reports/audit"
    (audit / "metrics.json").write_text(
        '{"out_of_fold_accuracy": 0.8712, "label_issues_flagged": 40}'
    )
    (audit / "outliers.csv").write_text("image,score\ndog/0.jpg,0.93\n")
    (audit / "quality.csv").write_text("image,issue,score\nfox/1.jpg,dark,0.99\n")
    status, answer = request(f"{url}/api/items?token={TOKEN}")
    assert status == 200 and (answer["accuracy"], answer["flagged"]) == (0.8712, 40)
    shown = {item["id"]: item for item in answer["items"]}
    assert shown["outlier:dog/0.jpg"]["kind"] == "outlier"
    assert shown["unusable:fox/1.jpg"]["issue"] == "dark"
    assert decide(url, "unusable:fox/1.jpg", "drop", target="fox/1.jpg") == 200
    assert read_corrections(tmp_path / "project/corrections.csv")["fox/1.jpg"][1] == "drop"


def test_a_pair_marks_byte_identical_copies_and_offers_to_drop_the_copy(
    served, tmp_path: Path
) -> None:
    _, url = served
    raw = tmp_path / "project/data/raw"
    shutil.copyfile(raw / "fox/1.jpg", raw / "fox/1 (copy).jpg")
    with (tmp_path / "project/reports/audit/duplicates.csv").open("a") as file:
        file.write("fox/1 (copy).jpg,fox/1.jpg,1.0,val,val\n")
    shown = items(url)
    copied = shown["fox/1 (copy).jpg + fox/1.jpg"]
    assert copied["identical"] and copied["copy"] == "fox/1 (copy).jpg"
    leak = shown["cat/1.jpg + dog/0.jpg"]  # cat/1 in train, dog/0 in test
    assert not leak["identical"] and leak["copy"] == "dog/0.jpg"


def test_the_copy_of_a_pair_is_the_one_not_in_train_else_by_name_else_the_newer(
    tmp_path: Path,
) -> None:
    for name in ("a.jpg", "b.jpg"):
        (tmp_path / name).write_bytes(b"x")

    def copy(photos: list[str], splits: list[str]) -> str:
        return copy_in_pair(photos, splits, tmp_path, identical=False)

    assert copy(["a.jpg", "b.jpg"], ["test", "train"]) == "a.jpg"
    assert copy(["a_copy.jpg", "a.jpg"], ["val", "val"]) == "a_copy.jpg"
    os.utime(tmp_path / "a.jpg", (2_000_000_000, 2_000_000_000))
    os.utime(tmp_path / "b.jpg", (1_000_000_000, 1_000_000_000))
    assert copy(["a.jpg", "b.jpg"], ["train", "train"]) == "a.jpg"
    os.utime(tmp_path / "b.jpg", (2_000_000_000, 2_000_000_000))
    assert copy(["a.jpg", "b.jpg"], ["train", "train"]) == "b.jpg"
