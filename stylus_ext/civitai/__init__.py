"""Civitai: API client, catalogue sync, hash matching of local files, and on-demand downloads.

- :mod:`.client` — a polite HTTP client (rate limit, backoff, redacted errors, optional API key).
- :mod:`.sync` — ``stylus sync civitai``: cursor pages → catalog cards, resumable.
- :mod:`.match` — ``stylus match``: local files → Civitai cards by hash; "not on Civitai" remembered.
- :mod:`.download` — download chosen adapters into the LoRA folder (resumable, verified).
"""

from __future__ import annotations

from stylus_ext.civitai.client import DEFAULT_BASE_URL, CivitaiClient, CivitaiError, CivitaiNotFound, CivitaiOffline

__all__ = ["DEFAULT_BASE_URL", "CivitaiClient", "CivitaiError", "CivitaiNotFound", "CivitaiOffline"]
