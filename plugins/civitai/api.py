"""Catalog source ``civitai``: adapter cards from the Civitai REST API (``GET /models`` pages).

Used by ``stylus sync civitai`` (which adds resume and catalog upserts around :meth:`pages`); as a
plain source, :meth:`CivitaiSource.cards` yields the cards of every page. Options come from the
CLI, ``STYLUS_CIVITAI_<OPTION>`` or the defaults; the API key only from the environment or an
owner-only key file (``STYLUS_CIVITAI_API_KEY``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from stylus_ext import sdk


class CivitaiSource(sdk.CatalogSource):
    name = "civitai"
    kind = "cards"
    description = "Cards synced from the Civitai API (LoRA/LoCon/DoRA, filters, cursor pages)"
    env_prefix = "CIVITAI"
    options = (
        sdk.Option("base_url", str, "", "API base URL (default https://civitai.com/api/v1)"),
        sdk.Option("api_key", str, None, "Civitai API key (env or key file only)", secret=True),
        sdk.Option("types", str, "LORA,LoCon,DoRA", "model types, comma-separated"),
        sdk.Option("base_models", str, "", "Civitai base models, comma-separated (e.g. 'SD 1.5,SDXL 1.0')"),
        sdk.Option("nsfw", bool, False, "include NSFW models and example images"),
        sdk.Option("min_downloads", int, 0, "minimum download count"),
        sdk.Option("min_rating", float, 0.0, "minimum rating (0-5)"),
        sdk.Option("query", str, "", "full-text search query"),
        sdk.Option("tags", str, "", "required tags, comma-separated"),
        sdk.Option("sort", str, "Most Downloaded", "Civitai sort order"),
        sdk.Option("limit", int, 0, "models per run (0 = all); the next run continues"),
        sdk.Option("page_size", int, 100, "models per request (1-100)"),
        sdk.Option("min_interval", float, 0.75, "seconds between requests"),
        sdk.Option("backoff_start", float, 1.0, "first backoff wait on 429/403/5xx (doubles up to 30 s)"),
    )

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        self._client: Any = None

    @property
    def filters(self) -> sdk.CivitaiFilters:
        c = self.config
        return sdk.CivitaiFilters(
            types=sdk.split_list(c["types"]), base_models=sdk.split_list(c["base_models"]),
            nsfw=c["nsfw"], min_downloads=max(0, c["min_downloads"]), min_rating=max(0.0, c["min_rating"]),
            query=c["query"].strip(), tags=sdk.split_list(c["tags"]), sort=c["sort"],
            page_size=min(100, max(1, c["page_size"])), limit=max(0, c["limit"]),
        )

    @property
    def client(self) -> sdk.CivitaiClient:
        if self._client is None:
            self._client = sdk.CivitaiClient(
                self.config["base_url"] or None, self.config["api_key"],
                min_interval=max(0.0, self.config["min_interval"]),
                backoff_start=max(0.0, self.config["backoff_start"]))
        return self._client

    def pages(self, cursor: str | None = None, start_page: int = 1) -> Iterator[sdk.CivitaiPage]:
        """Pages of cards (``sdk.CivitaiPage``) from ``cursor`` on."""
        return sdk.civitai_pages(self.client, self.filters, cursor, start_page)

    def cards(self, ctx: sdk.SourceContext) -> Iterator[sdk.AdapterCard]:
        done = 0
        for page in self.pages(ctx.options.get("cursor")):
            for card in page.cards:
                if ctx.should_stop():
                    return
                yield card
            done += page.models
            ctx.progress(done, page.total)

    def close(self) -> None:
        if self._client is not None:
            self._client.session.close()
            self._client = None
