"""Reading adapter cards, shared by the catalog and the catalog-source plugins.

- :mod:`.walk` — find LoRA files under folders (one ``scandir`` per folder, loops reported);
- :mod:`.local` — one installed file → a card (:mod:`.header`, :mod:`.sidecars`, :mod:`.families`);
- :mod:`.civitai_json` — Civitai model / model-version JSON → cards of adapters not installed;
- :mod:`.fields` — the small field cleaners both use; :mod:`.fileio` — hostile-folder-safe reads.
"""
