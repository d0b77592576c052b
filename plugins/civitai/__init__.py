"""Built-in plugin ``civitai``: everything Civitai, as one package.

- :mod:`.api` — catalog source ``civitai`` (cards from the Civitai REST API);
- :mod:`.cards` — catalog source ``civitai-json`` (saved Civitai model JSON files);
- :mod:`.commands` — ``stylus sync civitai``, ``stylus match`` and ``stylus download``, added through
  ``register_commands`` with flags generated from their declared options.
"""

from __future__ import annotations

from stylus_ext import sdk

from .api import CivitaiSource
from .cards import CivitaiCards
from .commands import COMMANDS

STYLUS_API = (1, 2)


@sdk.hookimpl
def register_catalog_sources(register):
    register(CivitaiSource)
    register(CivitaiCards)


@sdk.hookimpl
def register_commands(register):
    for command in COMMANDS:
        register(command)
