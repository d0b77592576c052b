"""Built-in catalog source ``civitai-json``: Civitai model JSON files (kind ``cards``).

Reads the files and folders in ``ctx.paths`` (``*.json``, ``*.info``, ``*.jsonl``): raw
``/api/v1/models`` items (one card per model version), ``/models`` pages with ``items``, and
model-version JSON as saved by Civitai Helper. Cards describe adapters that are not installed; the
catalog joins them to installed files by Civitai version id or hash. Unreadable or non-Civitai files
are reported through ``ctx.warn``.
"""

from __future__ import annotations

from collections.abc import Iterator

from stylus_ext import sdk


class CivitaiCards(sdk.CatalogSource):
    name = "civitai-json"
    kind = "cards"
    description = "Civitai model / model-version JSON files (adapters that are not installed)."

    def cards(self, ctx: sdk.SourceContext) -> Iterator[sdk.AdapterCard]:
        files = list(sdk.iter_card_files(ctx.paths, ctx.warn))
        ctx.progress(0, len(files))
        for done, path in enumerate(files, 1):
            if ctx.should_stop():
                return
            values, problem = sdk.load_json_file(path)
            if problem:
                ctx.warn(path, problem)
            if values:  # a bad line or item is skipped and named; the rest is kept
                cards = sdk.cards_from_civitai_json(values, source=self.name,
                                                             warn=lambda why, p=path: ctx.warn(p, why))
                if not cards and not problem:
                    ctx.warn(path, "no Civitai LoRA model or model-version JSON found")
                yield from cards
            ctx.progress(done, len(files))
