"""Helpers for the Civitai tests: a started fake server, fast clients, catalogs, secret scanning."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from civitai_server import FakeCivitai, make_models

from stylus_ext.sdk.civitai.client import CivitaiClient

SECRET = "sk-civitai-TEST-5f3c9a1e-never-log-me"


def start_fake(count: int = 23, **kw: Any) -> FakeCivitai:
    models, blobs = make_models(count, nsfw_every=kw.pop("nsfw_every", 0), blob_size=kw.pop("blob_size", 64))
    return FakeCivitai(models=models, blobs=blobs, **kw).start()


def fast_client(fake: FakeCivitai, sleeps: list[float] | None = None, **kw: Any) -> CivitaiClient:
    """A client with politeness delays near zero; ``sleeps`` records every wait it asks for."""
    kw.setdefault("min_interval", 0.0)
    kw.setdefault("backoff_start", 0.001)
    kw.setdefault("backoff_max", 0.01)
    kw.setdefault("timeout", (2.0, 5.0))
    rec = sleeps if sleeps is not None else []

    def sleep(seconds: float) -> None:
        rec.append(seconds)

    return CivitaiClient(fake.base_url, sleep=sleep, **kw)


def make_source(plugins: Any, fake: FakeCivitai, **opts: Any) -> Any:
    opts.setdefault("page_size", 5)
    source = plugins.create("source", "civitai", base_url=fake.base_url, min_interval=0.0, backoff_start=0.001,
                            **opts)
    # keep retries fast and never really sleep
    source.client._sleep = lambda s: None
    source.client.backoff_max = 0.01
    return source


def files_contain(folder: Path, needle: str) -> list[str]:
    """Files under ``folder`` (sqlite, -wal, sidecars...) whose bytes contain ``needle``."""
    data = needle.encode()
    return [str(p) for p in folder.rglob("*") if p.is_file() and data in p.read_bytes()]
