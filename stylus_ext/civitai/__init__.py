"""Civitai in the catalog: sync, hash matching of local files, and on-demand downloads (the API client
and the ``/models`` pages are the SDK's: :mod:`stylus_ext.sdk.civitai`).

- :mod:`.sync` — ``stylus sync civitai``: cursor pages → catalog cards, resumable.
- :mod:`.match` — ``stylus match``: local files → Civitai cards by hash; "not on Civitai" remembered.
- :mod:`.download` — download chosen adapters into the LoRA folder (verified, named, installed);
  :mod:`.transfer` — the resumable transfer of its bytes; :mod:`.ensure` — a generation's downloads
  within a time budget.
"""
