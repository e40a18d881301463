"""Download a dataset archive over http(s), with a progress bar and an optional checksum."""

import hashlib
import http.client
import json
import logging
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

from tqdm import tqdm

from transfer.atomic import atomic_output, write_json
from transfer.errors import PipelineError
from transfer.hashing import CHUNK_BYTES, sha256_of

log = logging.getLogger(__name__)


def is_url(source: str) -> bool:
    return urlparse(source).scheme in ("http", "https")


def check_sha256(path: Path, expected: str | None, origin: str) -> None:
    """Raise a one-line error if `path` does not have the expected SHA-256."""
    if expected is None:
        return
    actual = sha256_of(path)
    if actual != expected.lower():
        raise PipelineError(
            f"checksum mismatch for {origin}: data.sha256 is {expected.lower()}, "
            f"the file has {actual}"
        )


def _validators_file(target: Path) -> Path:
    """Where the server's validators of a downloaded file (ETag, Last-Modified) are kept."""
    return target.with_name(f".{target.name}.validators.json")


def download(url: str, downloads_dir: Path, expected_sha256: str | None) -> Path:
    """Download `url` into `downloads_dir`; a later call asks the server whether the file has
    changed since (a conditional GET with the ETag and Last-Modified it gave) and downloads
    it again only if so. DVC runs `download` when the file at the URL changed (its http
    dependency), and also when a param or the code did: only the first needs the bytes.

    Each URL gets its own folder (a hash of the URL), so two URLs whose files have the same
    name never share a download. Offline, a file downloaded earlier is used, with a warning.
    """
    name = Path(urlparse(url).path).name or "download"
    target = downloads_dir / hashlib.sha256(url.encode()).hexdigest()[:16] / name
    validators = _validators_file(target)
    conditions = _conditions(validators) if target.exists() else {}
    offline_hint = (
        "set data.source in params.yaml to a local folder of class subfolders "
        "or a local .tgz/.zip archive"
    )
    try:
        response = urllib.request.urlopen(
            urllib.request.Request(url, headers=conditions), timeout=60
        )
    except urllib.error.HTTPError as error:
        if error.code == 304 and target.exists():  # not modified: the kept file is current
            return _checked(target, expected_sha256, "unchanged on the server")
        raise PipelineError(f"cannot download {url}: HTTP {error.code} {error.reason}") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
        reason = getattr(error, "reason", error)
        if target.exists():
            log.warning("cannot reach %s (%s)", url, reason)
            return _checked(target, expected_sha256, "the server could not be asked")
        raise PipelineError(f"cannot download {url} ({reason}); {offline_hint}") from None
    # atomic_output deletes the partial file on any error, so a failed download leaves nothing.
    with response, atomic_output(target) as partial:
        _save_body(response, partial, url)
        check_sha256(partial, expected_sha256, url)
    served = {field: response.headers.get(field) for field in ("ETag", "Last-Modified")}
    write_json(validators, served)
    return target


def _conditions(validators: Path) -> dict[str, str]:
    """The headers of a conditional GET, from the validators the server gave last time."""
    if not validators.exists():
        return {}
    saved = json.loads(validators.read_text())
    return {
        header: saved[field]
        for header, field in (("If-None-Match", "ETag"), ("If-Modified-Since", "Last-Modified"))
        if saved.get(field)
    }


def _save_body(response: http.client.HTTPResponse, partial: Path, url: str) -> None:
    """Write the response's body to `partial`, with a progress bar; a body cut short or a
    failed read is a one-line error."""
    name = Path(urlparse(url).path).name or "download"
    try:
        with partial.open("wb") as file:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"downloading {name}") as bar:
                while chunk := response.read(CHUNK_BYTES):
                    file.write(chunk)
                    bar.update(len(chunk))
            if total is not None and bar.n != total:
                raise http.client.IncompleteRead(b"", total - bar.n)
    except http.client.IncompleteRead as error:
        raise PipelineError(
            f"download of {url} was cut short ({error.expected} bytes missing); run it again"
        ) from None
    except (http.client.HTTPException, OSError) as error:
        raise PipelineError(f"download of {url} failed ({error}); run it again") from None


def _checked(target: Path, expected_sha256: str | None, why: str) -> Path:
    check_sha256(target, expected_sha256, str(target))
    log.info("using %s downloaded earlier (%s)", target, why)
    return target
