"""Built-in catalog source ``local``: installed LoRA files in folders (kind ``files``).

Walks the folders in ``ctx.paths`` (``.safetensors``; ``.pt``/``.ckpt`` by name and sidecars only),
asks ``ctx.unchanged(path, size, stamp)`` before reading anything, and yields a card for every new
or changed file. The stamp is the newest mtime of the file and its sidecars, so editing a LoRA's
``.json`` in the WebUI or adding a ``.civitai.info`` rescans it. Unreadable folders, symlink loops
and broken files are reported through ``ctx.warn`` and never stop the scan.
"""

from __future__ import annotations

from collections.abc import Iterator

from stylus_ext import sdk


class LocalFiles(sdk.CatalogSource):
    name = "local"
    kind = "files"
    description = "Installed LoRA files (safetensors header + WebUI/Civitai Helper/LoRA Manager sidecars)."
    env_prefix = "LOCAL"
    options = (
        sdk.Option("follow_symlinks", bool, True, "Follow symlinked folders (loops are detected)."),
    )

    def cards(self, ctx: sdk.SourceContext) -> Iterator[sdk.AdapterCard]:
        files = sdk.walk_lora_files(ctx.paths, ctx.warn, follow_symlinks=self.config["follow_symlinks"])
        total = len(files)
        ctx.progress(0, total)
        for done, item in enumerate(files, 1):
            if ctx.should_stop():
                return
            if not ctx.unchanged(item.path, item.size, item.stamp):
                try:
                    card = sdk.read_lora_card(item.path, size=item.size, mtime=item.stamp, siblings=item.siblings,
                                                 source=self.name)
                except Exception as exc:  # noqa: BLE001 - one odd file must not stop the scan
                    ctx.warn(item.path, f"could not be read: {type(exc).__name__}: {exc}")
                else:
                    yield card
            ctx.progress(done, total)


@sdk.hookimpl
def register_catalog_sources(register):
    register(LocalFiles)
