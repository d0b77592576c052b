"""One installed LoRA file → an :class:`~stylus_ext.sdk.AdapterCard` (header + sidecars; never raises
for bad files: problems end up in ``card.problems``)."""

from __future__ import annotations

import os
from collections.abc import Iterable

from stylus_ext import sdk
from stylus_ext.catalog.derive import local_card
from stylus_ext.catalog.header import read_header
from stylus_ext.catalog.sidecars import read_sidecars


def read_lora_card(path: str, *, size: int | None = None, mtime: float | None = None,
                   siblings: Iterable[str] | None = None, source: str = "local") -> sdk.AdapterCard:
    """Card of the model file ``path``. ``.pt``/``.ckpt`` files are read by name and sidecars only.

    ``size``/``mtime`` default to the file's own; ``siblings`` (names in its folder) saves stats.
    """
    path = os.path.abspath(path)
    if size is None or mtime is None:
        try:
            st = os.stat(path)
            size = st.st_size if size is None else size
            mtime = st.st_mtime if mtime is None else mtime
        except OSError as exc:
            return sdk.AdapterCard(source=source, name=os.path.splitext(os.path.basename(path))[0], path=path,
                                   problems=(f"cannot read: {exc.strerror or exc}",))
    header = read_header(path, size=size) if path.lower().endswith(".safetensors") else None
    return local_card(path, size=size, mtime=mtime, header=header, sidecars=read_sidecars(path, siblings),
                      source=source)
