"""What the review server sends with every answer and how it reads a request it cannot trust:
the security headers (a Content-Security-Policy that admits only the page's own script and
style, by their hashes) and a decision's JSON body, refused with a 4xx when it is malformed."""

import base64
import hashlib
import json
import re
import secrets
from email.message import Message
from http import HTTPStatus
from typing import BinaryIO

MAX_BODY_BYTES = 1 << 14  # a decision is a few hundred bytes
DECISION_FIELDS = ("item", "target", "decision")


class BadRequest(Exception):
    """A request refused before it reaches the decisions: its status and why."""

    def __init__(self, status: HTTPStatus, why: str) -> None:
        super().__init__(why)
        self.status = status
        self.why = why


def _hashes(page: str, tag: str) -> str:
    """The CSP sources of the page's inline <tag> blocks: 'sha256-...' of each one's text."""
    blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", page, flags=re.DOTALL)
    digests = (base64.b64encode(hashlib.sha256(block.encode()).digest()) for block in blocks)
    return " ".join(f"'sha256-{digest.decode()}'" for digest in digests)


def security_headers(page: bytes) -> dict[str, str]:
    """The headers of every answer: nothing but the page's own script, style, photos, heat maps
    (data: URLs in the API's answers) and API, no framing (clickjacking), no sniffing of a
    photo or JSON as something else."""
    text = page.decode()
    policy = (
        "default-src 'none'; "
        f"script-src {_hashes(text, 'script')}; "
        f"style-src {_hashes(text, 'style')}; "
        "img-src 'self' data:; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Cross-Origin-Resource-Policy": "same-origin",
    }


def same_secret(given: str, secret: str) -> bool:
    """Whether `given` is the token, in constant time, whatever characters it holds."""
    return secrets.compare_digest(given.encode("utf-8", "replace"), secret.encode())


def read_decision(headers: Message, body: BinaryIO) -> tuple[str, str, str]:
    """(item, target, decision) of a POST's JSON body; BadRequest for a missing, negative or
    too large Content-Length (never a read to the end of the stream), a body that is not
    JSON or nested too deep, or fields that are not strings."""
    try:
        length = int(headers.get("Content-Length", ""))
    except ValueError:
        raise BadRequest(HTTPStatus.LENGTH_REQUIRED, "a decision needs a Content-Length") from None
    if length < 0:
        raise BadRequest(HTTPStatus.BAD_REQUEST, "a negative Content-Length")
    if length > MAX_BODY_BYTES:
        raise BadRequest(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "a decision is a few hundred bytes")
    try:
        request = json.loads(body.read(length))
    except (ValueError, RecursionError):
        raise BadRequest(HTTPStatus.BAD_REQUEST, "the body is not JSON") from None
    except OSError:
        raise BadRequest(HTTPStatus.REQUEST_TIMEOUT, "the body did not come") from None
    if not isinstance(request, dict):
        raise BadRequest(HTTPStatus.BAD_REQUEST, "expected {item, target, decision}")
    item, target, decision = (request.get(name) for name in DECISION_FIELDS)
    if not (isinstance(item, str) and isinstance(target, str) and isinstance(decision, str)):
        raise BadRequest(HTTPStatus.BAD_REQUEST, "item, target and decision are strings")
    return item, target, decision
