"""The `review` command: a page on 127.0.0.1 to review the audit's findings with the keyboard,
each decision written to corrections.csv (or reviewed.csv) the moment it is made.

    review [--port N] [--no-browser]

Safe by default: it listens on 127.0.0.1 only, answers only requests addressed to it by that
name (not a rebound DNS name), serves only the photos of data/raw, their heat maps and the
page, and takes a decision only with the token printed in the address, in a header that
another page in the browser cannot send.
"""

import argparse
import json
import logging
import secrets
import sys
import webbrowser
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from transfer.errors import PipelineError, run_main
from transfer.manifests.corrections import DROP
from transfer.paths import AUDIT_DIR, CORRECTIONS_FILE, RAW_DIR, REVIEWED_FILE
from transfer.review.decisions import KEEP, UNDO, Decisions
from transfer.review.guard import BadRequest, read_decision, same_secret, security_headers
from transfer.review.heatmaps import HeatMaps
from transfer.review.items import item_states, label_check_figures, read_items

log = logging.getLogger(__name__)
HOST = "127.0.0.1"
TOKEN_HEADER = "X-Review-Token"
PHOTO_TYPES = {
    ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".gif": "image/gif",
    ".bmp": "image/bmp", ".webp": "image/webp",
}  # fmt: skip


class ReviewServer(ThreadingHTTPServer):
    """The review of one project: its audit, photos and decisions, behind a token."""

    daemon_threads = True

    def __init__(self, project: Path, port: int, token: str) -> None:
        super().__init__((HOST, port), ReviewHandler)
        self.token = token
        self.audit_dir = project / AUDIT_DIR
        self.photos = (project / RAW_DIR).resolve()
        self.decisions = Decisions(
            project / CORRECTIONS_FILE, project / REVIEWED_FILE, project / RAW_DIR
        )
        self.classes = sorted(path.name for path in self.photos.iterdir() if path.is_dir())
        self.heat_maps = HeatMaps(project, self.photos)
        self.page = files("transfer.review").joinpath("page.html").read_bytes()
        self.answer_headers = security_headers(self.page)

    def handle_error(self, request: object, client_address: object) -> None:
        """One line, not a traceback, for a request that broke off (the client left)."""
        log.warning("review: a request from %s failed: %s", client_address, sys.exc_info()[1])

    @property
    def address(self) -> str:
        return f"http://{HOST}:{self.server_address[1]}/?token={self.token}"


class ReviewHandler(BaseHTTPRequestHandler):
    server: ReviewServer
    server_version = "review"
    timeout = 10  # seconds a client may take to send its request: no thread held for good

    def version_string(self) -> str:
        """The Server header: the command's name, not Python's version."""
        return self.server_version

    def end_headers(self) -> None:
        for name, value in self.server.answer_headers.items():
            self.send_header(name, value)
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:
        log.debug(format, *args)

    def _send(self, status: HTTPStatus, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, value: object, status: HTTPStatus = HTTPStatus.OK) -> None:
        self._send(status, json.dumps(value).encode(), "application/json")

    def _refuse(self, status: HTTPStatus, why: str) -> None:
        self._json({"error": why}, status)

    def _addressed_to_us(self) -> bool:
        """The Host header names this server on 127.0.0.1 (a DNS rebinding attack names a
        domain of its own)."""
        port = self.server.server_address[1]
        return self.headers.get("Host") in (f"{HOST}:{port}", f"localhost:{port}")

    def do_GET(self) -> None:
        url = urlparse(self.path)
        token = parse_qs(url.query).get("token", [""])[0]
        if not self._addressed_to_us():
            return self._refuse(HTTPStatus.FORBIDDEN, "unknown host")
        if not same_secret(token, self.server.token):
            return self._refuse(HTTPStatus.FORBIDDEN, "the address needs its token")
        if url.path == "/":
            return self._send(HTTPStatus.OK, self.server.page, "text/html; charset=utf-8")
        if url.path == "/api/items":
            items = item_states(read_items(self.server.audit_dir), self.server.decisions)
            figures = label_check_figures(self.server.audit_dir)
            answer = {"classes": self.server.classes, "items": items, **figures}
            return self._json(answer)
        if url.path == "/api/heatmap":
            return self._heat_map(parse_qs(url.query))
        if url.path.startswith("/photo/"):
            return self._photo(unquote(url.path.removeprefix("/photo/")))
        return self._refuse(HTTPStatus.NOT_FOUND, "no such page")

    def _heat_map(self, query: dict[str, list[str]]) -> None:
        """The heat map of a photo of an item (HeatMaps.answer): for the class the audit
        suggests, else the one the classifier predicts."""
        item_id, photo = (query.get(name, []) for name in ("item", "photo"))
        if len(item_id) != 1 or len(photo) != 1:
            return self._refuse(HTTPStatus.BAD_REQUEST, "a heat map needs one item and photo")
        items = {item.id: item for item in read_items(self.server.audit_dir)}
        item = items.get(item_id[0])
        if item is None or photo[0] not in item.photos:
            return self._refuse(HTTPStatus.NOT_FOUND, "no such item or photo")
        try:
            answer = self.server.heat_maps.answer(photo[0], item.suggested)
        except BadRequest as refused:
            return self._refuse(refused.status, refused.why)
        return self._json(answer)

    def _photo(self, relative: str) -> None:
        """A photo of data/raw, and nothing outside it, whatever the path says."""
        if "\0" in relative:
            return self._refuse(HTTPStatus.BAD_REQUEST, "a NUL byte in the path")
        file = (self.server.photos / relative).resolve()
        suffix = file.suffix.lower()
        if not file.is_relative_to(self.server.photos) or suffix not in PHOTO_TYPES:
            return self._refuse(HTTPStatus.FORBIDDEN, "not a photo of the project")
        if not file.is_file():
            return self._refuse(HTTPStatus.NOT_FOUND, "no such photo")
        return self._send(HTTPStatus.OK, file.read_bytes(), PHOTO_TYPES[suffix])

    def do_POST(self) -> None:
        if not self._addressed_to_us():
            return self._refuse(HTTPStatus.FORBIDDEN, "unknown host")
        token = self.headers.get(TOKEN_HEADER, "")
        if not same_secret(token, self.server.token):
            return self._refuse(HTTPStatus.FORBIDDEN, f"a decision needs the {TOKEN_HEADER}")
        if urlparse(self.path).path != "/api/decide":
            return self._refuse(HTTPStatus.NOT_FOUND, "no such action")
        try:
            item_id, target, decision = read_decision(self.headers, self.rfile)
        except BadRequest as refused:
            self.close_connection = True  # whatever of the body is left is not read
            return self._refuse(refused.status, refused.why)
        items = {item.id: item for item in read_items(self.server.audit_dir)}
        item = items.get(item_id)
        if item is None or target not in item.photos:
            return self._refuse(HTTPStatus.NOT_FOUND, "no such item or photo")
        if decision not in (*self.server.classes, DROP, KEEP, UNDO):
            return self._refuse(HTTPStatus.BAD_REQUEST, f"unknown decision {decision!r}")
        self.server.decisions.decide(item.id, item.photos, target, decision)
        state = item_states([item], self.server.decisions)[0]
        return self._json(state)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="review",
        description="Review the audit's findings in a browser; every decision goes into "
        "corrections.csv at once.",
    )
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    parser.add_argument("--no-browser", action="store_true", help="only print the address")
    args = parser.parse_args()
    project = Path()
    for needed in (AUDIT_DIR / "suspects.csv", AUDIT_DIR / "duplicates.csv", RAW_DIR):
        if not (project / needed).exists():
            raise PipelineError(f"{needed} not found; run `dvc repro` first")
    try:
        server = ReviewServer(project, args.port, secrets.token_urlsafe(16))
    except OSError as error:
        raise PipelineError(f"cannot listen on {HOST}:{args.port} ({error.strerror})") from None
    print(f"review: {server.address}", flush=True)
    print("every decision is saved at once; Ctrl-C stops the server", file=sys.stderr)
    if not args.no_browser:
        webbrowser.open(server.address)
    with server:
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            print("review stopped; the decisions are in corrections.csv", file=sys.stderr)


def cli() -> None:
    """The `review` console script."""
    run_main(main)
