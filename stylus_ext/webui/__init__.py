"""The AUTOMATIC1111 / Forge WebUI glue. Importing this package does not import the WebUI or gradio:
``scripts/stylus.py`` imports :mod:`stylus_ext.webui.script` inside the WebUI; the pure parts
(:mod:`batching`, :mod:`controls`, :mod:`tags`, :mod:`installer`) are tested without it."""
