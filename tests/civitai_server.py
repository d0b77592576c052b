"""A fake Civitai on 127.0.0.1 for the tests: a real ``http.server`` in a thread (port 0).

Serves Civitai-shaped JSON: ``GET /api/v1/models`` (cursor pages), ``GET/POST
/api/v1/model-versions/by-hash``, ``GET /api/v1/model-versions/{id}``, and downloads
``GET /api/download/models/{id}`` → 302 → ``/files/{id}`` (Content-Disposition, HTTP Range).
Faults are scripted per route: HTTP statuses (with or without Retry-After), a dropped connection
mid-file, corrupted bytes. Every request is logged (method, path, query, headers) for assertions.
The server stops itself after ``max_lifetime`` seconds even if a test forgets to.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np
from safetensors.numpy import save as st_save

BASE_MODELS = ("SD 1.5", "SDXL 1.0", "Pony", "Illustrious", "Flux.1 D")


def make_blob(seed: int, n: int = 64) -> bytes:
    """Bytes of a tiny real safetensors LoRA file (distinct per seed)."""
    rng = np.random.default_rng(seed)
    tensors = {"lora_unet_down.lora_down.weight": rng.standard_normal((4, n)).astype(np.float32)}
    raw = st_save(tensors, metadata={"ss_output_name": f"fake{seed}", "ss_base_model_version": "sd_v1"})
    # safetensors writes header keys in no fixed order: re-serialise sorted so that the same seed
    # gives the same bytes on every server (tensor offsets are relative to the data, so they hold).
    n = int.from_bytes(raw[:8], "little")
    header = json.dumps(json.loads(raw[8:8 + n]), sort_keys=True, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)
    return len(header).to_bytes(8, "little") + header + raw[8 + n:]


def autov3(blob: bytes) -> str:
    n = int.from_bytes(blob[:8], "little")
    return hashlib.sha256(blob[8 + n:]).hexdigest()


def make_models(count: int, *, start_id: int = 1000, nsfw_every: int = 0, blob_size: int = 64) -> tuple[
        list[dict[str, Any]], dict[int, bytes]]:
    """``count`` Civitai /models items (one version each) and the files' bytes by version id."""
    models, blobs = [], {}
    for i in range(count):
        model_id, version_id = start_id + i, 50_000 + start_id + i
        blob = make_blob(version_id, blob_size)
        blobs[version_id] = blob
        sha = hashlib.sha256(blob).hexdigest().upper()
        nsfw = bool(nsfw_every) and i % nsfw_every == nsfw_every - 1
        models.append({
            "id": model_id,
            "name": f"Style Number {i}",
            "description": f"<p>A <b>watercolor</b> style LoRA number {i}.</p>",
            "type": "LORA" if i % 3 else "LoCon",
            "nsfw": nsfw,
            "nsfwLevel": 4 if nsfw else 1,
            "tags": ["style", "watercolor" if i % 2 else "ink"],
            "stats": {"downloadCount": 100 * i, "rating": 3.0 + (i % 3), "thumbsUpCount": i},
            "creator": {"username": "tester"},
            "modelVersions": [{
                "id": version_id,
                "modelId": model_id,
                "name": "v1.0",
                "baseModel": BASE_MODELS[i % 2],
                "trainedWords": [f"wcstyle{i}"],
                "downloadUrl": f"/api/download/models/{version_id}",
                "files": [{
                    "id": version_id, "name": f"style_{i}.safetensors", "sizeKB": len(blob) / 1024,
                    "primary": True, "type": "Model",
                    "hashes": {"SHA256": sha, "AutoV2": sha[:10], "AutoV3": autov3(blob)[:12].upper()},
                    "downloadUrl": f"/api/download/models/{version_id}",
                }],
                "images": [
                    {"url": f"https://img.example/{version_id}/1.jpeg", "nsfwLevel": 1,
                     "meta": {"prompt": f"a lighthouse, wcstyle{i}, <lora:style_{i}:0.7>"}},
                    {"url": f"https://img.example/{version_id}/2.jpeg", "nsfwLevel": 16,
                     "meta": {"prompt": "explicit words here"}},
                ],
            }],
        })
    return models, blobs


@dataclass
class Fault:
    """A scripted answer for requests whose route matches: an HTTP status (int), a 200 body (bytes),
    ``"close"`` (the connection is closed without an answer) or ``"huge"`` (an empty page followed
    by ``size`` bytes of spaces, streamed; without Content-Length unless ``length``)."""

    route: str
    action: Any
    times: int = 1
    when: Callable[[dict[str, list[str]]], bool] = lambda query: True
    retry_after: str | None = None
    size: int = 0
    length: bool = False


@dataclass
class FakeCivitai:
    models: list[dict[str, Any]] = field(default_factory=list)
    blobs: dict[int, bytes] = field(default_factory=dict)
    max_lifetime: float = 60.0
    faults: list[Fault] = field(default_factory=list)
    log: list[dict[str, Any]] = field(default_factory=list)
    corrupt: set[int] = field(default_factory=set)
    #: version id → bytes after which the connection drops (once per entry)
    drop_after: dict[int, int] = field(default_factory=dict)
    filename: dict[int, str] = field(default_factory=dict)
    bulk_enabled: bool = True
    #: seconds to wait before sending a file's bytes (a slow CDN)
    file_delay: float = 0.0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeCivitai:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake._handle(self, "GET")

            def do_POST(self) -> None:
                fake._handle(self, "POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        timer = threading.Timer(self.max_lifetime, self.stop)
        timer.daemon = True
        timer.start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            server, self.server = self.server, None
            server.shutdown()
            server.server_close()

    @property
    def origin(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def base_url(self) -> str:
        return f"{self.origin}/api/v1"

    def requests_to(self, route: str) -> list[dict[str, Any]]:
        return [r for r in self.log if r["route"] == route]

    # -- data ------------------------------------------------------------------------------

    def version(self, version_id: int) -> dict[str, Any] | None:
        for model in self.models:
            for v in model["modelVersions"]:
                if v["id"] == version_id:
                    out = dict(v)
                    out["model"] = {"name": model["name"], "type": model["type"], "nsfw": model["nsfw"]}
                    out["downloadUrl"] = self.origin + v["downloadUrl"]
                    out["files"] = [dict(f, downloadUrl=self.origin + f["downloadUrl"]) for f in v["files"]]
                    return out
        return None

    def by_hash(self, value: str) -> dict[str, Any] | None:
        value = value.upper()
        for model in self.models:
            for v in model["modelVersions"]:
                for f in v["files"]:
                    if value in {h.upper() for h in f["hashes"].values()}:
                        return self.version(v["id"])
        return None

    def _absolute(self, item: dict[str, Any]) -> dict[str, Any]:
        item = json.loads(json.dumps(item))
        for v in item["modelVersions"]:
            v["downloadUrl"] = self.origin + v["downloadUrl"]
            for f in v["files"]:
                f["downloadUrl"] = self.origin + f["downloadUrl"]
        return item

    # -- request handling ------------------------------------------------------------------

    def _fault(self, route: str, query: dict[str, list[str]]) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.route == route and fault.times > 0 and fault.when(query):
                    fault.times -= 1
                    return fault
        return None

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        url = urlparse(h.path)
        query = parse_qs(url.query)
        body = b""
        if method == "POST":
            body = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        parts = [p for p in url.path.split("/") if p]
        route = self._route(method, parts)
        with self._lock:
            self.log.append({"method": method, "route": route, "path": url.path, "query": query,
                             "headers": dict(h.headers), "body": body})
        fault = self._fault(route, query)
        if fault is not None and isinstance(fault.action, int):
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            return self._send(h, fault.action, b'{"error":"scripted"}', headers=headers)
        if fault is not None and isinstance(fault.action, bytes):
            return self._send(h, 200, fault.action)
        if fault is not None and fault.action == "huge":
            return self._huge(h, fault)
        if fault is not None and fault.action == "close":
            h.close_connection = True
            h.wfile.flush()
            h.connection.shutdown(2)
            return None
        if route == "models":
            return self._models(h, query)
        if route == "by-hash":
            found = self.by_hash(parts[-1])
            if found is None:
                return self._send(h, 404, b'{"error":"Model not found"}')
            return self._json(h, found)
        if route == "by-hash-bulk":
            if not self.bulk_enabled:
                return self._send(h, 404, b"<html>no such route</html>", content_type="text/html")
            try:
                hashes = json.loads(body)
            except ValueError:
                return self._send(h, 400, b'{"error":"bad json"}')
            found = [v for v in (self.by_hash(x) for x in hashes) if v]
            return self._json(h, found)
        if route == "version":
            found = self.version(int(parts[-1]))
            return self._json(h, found) if found else self._send(h, 404, b'{"error":"no"}')
        if route == "download":
            vid = int(parts[-1])
            if vid not in self.blobs:
                return self._send(h, 404, b'{"error":"no file"}')
            return self._send(h, 302, b"", headers={"Location": f"{self.origin}/files/{vid}?token=signed-abc"})
        if route == "file":
            return self._file(h, int(parts[-1]))
        return self._send(h, 404, b'{"error":"unknown route"}')

    @staticmethod
    def _route(method: str, parts: list[str]) -> str:
        if parts[:2] == ["api", "v1"]:
            rest = parts[2:]
            if rest == ["models"]:
                return "models"
            if rest[:2] == ["model-versions", "by-hash"]:
                return "by-hash-bulk" if method == "POST" and len(rest) == 2 else "by-hash"
            if rest[:1] == ["model-versions"] and len(rest) == 2:
                return "version"
        if parts[:3] == ["api", "download", "models"] and len(parts) == 4:
            return "download"
        if parts[:1] == ["files"] and len(parts) == 2:
            return "file"
        return "other"

    def _models(self, h: BaseHTTPRequestHandler, query: dict[str, list[str]]) -> None:
        limit = int(query.get("limit", ["100"])[0])
        cursor = query.get("cursor", [""])[0]
        start = int(cursor[1:]) if cursor.startswith("c") else 0
        items = self.models[start:start + limit]
        end = start + len(items)
        metadata: dict[str, Any] = {"pageSize": limit}
        if end < len(self.models):
            metadata["nextCursor"] = f"c{end}"
            metadata["nextPage"] = f"{self.base_url}/models?cursor=c{end}&limit={limit}"
        self._json(h, {"items": [self._absolute(i) for i in items], "metadata": metadata})

    def _file(self, h: BaseHTTPRequestHandler, vid: int) -> None:
        blob = self.blobs.get(vid)
        if blob is None:
            return self._send(h, 404, b"")
        if vid in self.corrupt:
            blob = bytes(b ^ 0xFF for b in blob)
        name = self.filename.get(vid, f"style_{vid}.safetensors")
        start = 0
        rng = h.headers.get("Range")
        if rng and rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[6:-1])
        status = 206 if start else 200
        headers = {"Content-Disposition": f'attachment; filename="{name}"', "Accept-Ranges": "bytes"}
        if start:
            headers["Content-Range"] = f"bytes {start}-{len(blob) - 1}/{len(blob)}"
        payload = blob[start:]
        if self.file_delay:
            time.sleep(self.file_delay)
        drop = None
        with self._lock:
            if vid in self.drop_after:
                drop = self.drop_after.pop(vid)
        if drop is not None:
            h.send_response(status)
            h.send_header("Content-Type", "application/octet-stream")
            for k, v in headers.items():
                h.send_header(k, v)
            h.send_header("Content-Length", str(len(payload)))
            h.end_headers()
            h.wfile.write(payload[:drop])
            h.wfile.flush()
            time.sleep(0.01)
            h.close_connection = True
            h.connection.shutdown(2)
            return None
        return self._send(h, status, payload, headers=headers, content_type="application/octet-stream")

    @staticmethod
    def _huge(h: BaseHTTPRequestHandler, fault: Fault) -> None:
        body = b'{"items": [], "metadata": {}}'
        try:
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            if fault.length:
                h.send_header("Content-Length", str(len(body) + fault.size))
            else:
                h.send_header("Connection", "close")
                h.close_connection = True
            h.end_headers()
            h.wfile.write(body)
            block, left = b" " * (1 << 20), fault.size
            while left > 0:
                h.wfile.write(block[:min(left, len(block))])
                left -= len(block)
        except OSError:
            pass  # the client stopped reading: fine

    def _json(self, h: BaseHTTPRequestHandler, obj: Any) -> None:
        self._send(h, 200, json.dumps(obj).encode())

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, body: bytes, *, headers: dict[str, str] | None = None,
              content_type: str = "application/json") -> None:
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if body:
            h.wfile.write(body)
