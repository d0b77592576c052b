"""Civitai's REST API for plugins and the core alike: :mod:`.client` (a polite, retrying client that
keeps the API key out of every message) and :mod:`.pages` (``/models`` pages → adapter cards)."""
