"""The bytes of one download: a resumable, size-capped HTTP transfer into a part file.

An interrupted transfer continues with an HTTP ``Range`` request (a server that ignores it sends the
whole file, which restarts the part); past the cap or the deadline it stops between chunks, keeping
the part file for a later resume (a file over the cap is deleted).
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from pathlib import Path

import requests

from stylus_ext.civitai.filenames import filename_from_disposition
from stylus_ext.sdk.civitai.client import CivitaiClient, CivitaiError

log = logging.getLogger("stylus.civitai")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Stop(Exception):
    """The transfer stopped short: ``status`` (``skipped``/``failed``), why, and the bytes so far."""

    def __init__(self, status: str, reason: str, size: int = 0) -> None:
        super().__init__(reason)
        self.status, self.reason, self.size = status, reason, size


def fetch(client: CivitaiClient, url: str, part: Path, *, cap: int | None, deadline: float | None,
           max_resumes: int, chunk_size: int) -> str | None:
    """Fill ``part`` with the whole file; returns the server's file name (if any)."""
    name: str | None = None
    resumes = 0
    while True:
        offset = part.stat().st_size if part.exists() else 0
        if deadline is not None and time.monotonic() > deadline:
            raise Stop("skipped", f"time budget reached ({offset} bytes so far; the next try resumes)", offset)
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        resp = client.request("GET", url, headers=headers, stream=True, ok_statuses=(200, 206, 416))
        try:
            name = filename_from_disposition(resp.headers.get("Content-Disposition")) or name
            if resp.status_code == 416:  # nothing left to send: the part is complete, if there is one
                if not offset:
                    raise Stop("failed", "the server refused the download (HTTP 416, range not satisfiable) "
                                "and nothing was downloaded; try again later")
                return name
            if resp.status_code == 206:
                m = re.match(r"bytes (\d+)-", resp.headers.get("Content-Range", ""))
                if not m or int(m.group(1)) != offset:
                    offset = 0  # a range we did not ask for: start over
                    resp.close()
                    part.unlink(missing_ok=True)
                    continue
            else:
                offset = 0  # 200: the whole file
            length = resp.headers.get("Content-Length")
            total = offset + int(length) if length and length.isdigit() else None
            if cap and total and total > cap:
                part.unlink(missing_ok=True)
                raise Stop("skipped", f"file is {total / 2**20:.0f} MB, over the {cap / 2**20:g} MB limit")
            with open(part, "ab" if offset else "wb") as fh:
                size = offset
                for chunk in resp.iter_content(chunk_size):
                    fh.write(chunk)
                    size += len(chunk)
                    if cap and size > cap:
                        fh.close()
                        part.unlink(missing_ok=True)
                        raise Stop("skipped", f"file is over the {cap / 2**20:g} MB limit")
                    if deadline is not None and time.monotonic() > deadline:
                        raise Stop("skipped", f"time budget reached ({size} bytes so far; the next try resumes)",
                                    size)
            if total is not None and size < total:
                raise requests.ConnectionError("connection closed early")
            return name
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError, requests.Timeout) as exc:
            resumes += 1
            have = part.stat().st_size if part.exists() else 0
            if resumes > max_resumes:
                raise CivitaiError(f"download interrupted {resumes} times ({have} bytes so far)") from None
            log.info("civitai: download interrupted at %d bytes (%s); resuming", have, type(exc).__name__)
        finally:
            resp.close()
