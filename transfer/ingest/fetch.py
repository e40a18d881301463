"""Download a dataset archive over http(s), with a progress bar and an optional checksum."""

import hashlib
import http.client
import logging
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

from tqdm import tqdm

from transfer.atomic import atomic_output
from transfer.errors import PipelineError

log = logging.getLogger(__name__)
CHUNK_BYTES = 1 << 20


def is_url(source: str) -> bool:
    return urlparse(source).scheme in ("http", "https")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


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


def download(url: str, downloads_dir: Path, expected_sha256: str | None) -> Path:
    """Download `url` into `downloads_dir` once; later calls reuse the verified file.

    Each URL gets its own folder (a hash of the URL), so two URLs whose files have the same
    name never share a download.
    """
    name = Path(urlparse(url).path).name or "download"
    target = downloads_dir / hashlib.sha256(url.encode()).hexdigest()[:16] / name
    if target.exists():
        check_sha256(target, expected_sha256, str(target))
        log.info("using %s downloaded earlier (delete it to download again)", target)
        return target
    offline_hint = (
        "set data.source in params.yaml to a local folder of class subfolders "
        "or a local .tgz/.zip archive"
    )
    # atomic_output deletes the partial file on any error, so a failed download leaves nothing.
    with atomic_output(target) as partial:
        try:
            with urllib.request.urlopen(url, timeout=60) as response, partial.open("wb") as file:
                total = int(response.headers.get("Content-Length") or 0) or None
                with tqdm(
                    total=total, unit="B", unit_scale=True, desc=f"downloading {name}"
                ) as bar:
                    while chunk := response.read(CHUNK_BYTES):
                        file.write(chunk)
                        bar.update(len(chunk))
                if total is not None and bar.n != total:
                    raise http.client.IncompleteRead(b"", total - bar.n)
        except urllib.error.HTTPError as error:
            raise PipelineError(
                f"cannot download {url}: HTTP {error.code} {error.reason}"
            ) from None
        except http.client.IncompleteRead as error:
            raise PipelineError(
                f"download of {url} was cut short ({error.expected} bytes missing); run it again"
            ) from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
            reason = getattr(error, "reason", error)
            raise PipelineError(f"cannot download {url} ({reason}); {offline_hint}") from None
        check_sha256(partial, expected_sha256, url)
    return target
