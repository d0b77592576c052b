"""The Stylus pipeline as the WebUI uses it: one cached instance per catalog and settings, the
catalog's state, and the rule that a Stylus failure never breaks a generation.

:func:`plan_images` never raises: any error gives ``None`` plans (= generate from the user's
prompts) and a one-line warning that the glue shows in the UI and the console.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stylus_ext.webui import compat, controls
from stylus_ext.webui import settings as stylus_settings

log = logging.getLogger("stylus")
#: Environment variables the user set before the WebUI started: they win over the settings.
_USER_ENV = frozenset(os.environ)


@dataclass
class CatalogState:
    path: str
    exists: bool = False
    adapters: int = 0
    installed: int = 0
    indexed: int = 0
    index_kind: str = ""
    encoder: str = ""
    error: str = ""

    @property
    def ready(self) -> bool:
        return self.exists and self.indexed > 0 and not self.error


@dataclass
class PlanResult:
    """Per-image plans (``None`` = use the prompt as is) and one-line warnings."""

    plans: list[Any]
    warnings: list[str] = field(default_factory=list)
    selections: dict[str, Any] = field(default_factory=dict)


def _plugins() -> Any:
    from stylus_ext.plugins import get_plugins

    return get_plugins()


class Runtime:
    """Process-wide state of the extension (one per WebUI process; see :func:`get_runtime`)."""

    def __init__(self, *, opts: Callable[[], Mapping[str, Any]] = compat.opts_data,
                 plugins: Callable[[], Any] = _plugins) -> None:
        self._opts = opts
        self._plugins_factory = plugins
        self._plugins: Any = None
        self._lock = threading.RLock()
        self._cache: dict[tuple[str, str], Any] = {}
        self._catalog: Any = None
        self._catalog_path: Path | None = None
        self.on_missing_index: Callable[[str], None] | None = None

    # -- settings ----------------------------------------------------------------------------

    @property
    def plugins(self) -> Any:
        if self._plugins is None:
            self._plugins = self._plugins_factory()
        return self._plugins

    def values(self) -> dict[str, Any]:
        try:
            plugins = self.plugins
        except Exception as exc:  # noqa: BLE001 - settings must stay readable without plugins
            log.warning("Stylus: plugins unavailable: %s", exc)
            plugins = None
        return stylus_settings.current(self._opts(), plugins)

    def catalog_path(self, values: Mapping[str, Any] | None = None) -> Path:
        from stylus_ext.paths import default_catalog_path

        values = self.values() if values is None else values
        custom = str(values.get("catalog_path") or "").strip()
        return Path(custom).expanduser() if custom else default_catalog_path()

    def default_options(self) -> controls.RunOptions:
        return controls.defaults(self.values())

    def composer_names(self) -> list[str]:
        try:
            return list(self.plugins.names("composer"))
        except Exception:  # noqa: BLE001
            return []

    def pipeline_settings(self, options: controls.RunOptions, values: Mapping[str, Any] | None = None,
                          family: str | None = None) -> Any:
        """``StylusSettings`` for one run: controls > settings > defaults."""
        from stylus_ext.pipeline import StylusSettings

        values = self.values() if values is None else values
        composer = options.composer or str(values.get("composer") or "offline")
        base_model = options.base_model
        if base_model == "auto":
            base_model = family if family is not None else compat.checkpoint_family()
        elif base_model == "any":
            base_model = None
        return StylusSettings(
            top_k=int(values.get("top_k", 150)),
            composer=composer,
            composer_options=stylus_settings.backend_options(values, self.plugins, "composer", composer),
            max_adapters=int(options.max_adapters),
            strength=float(options.strength),
            mask=options.mask,
            allow_empty_mask=bool(values.get("allow_empty_mask", False)),
            add_triggers=bool(options.add_triggers),
            add_negative=bool(values.get("add_negative", True)),
            base_model=base_model,
            installed_only=not options.allow_downloads,
            allow_nsfw=bool(values.get("allow_nsfw", False)),
            allow_characters=bool(values.get("allow_characters", True)),
            time_budget_s=float(values.get("time_budget_s", 20.0)),
        )

    # -- catalog and pipeline ---------------------------------------------------------------

    def catalog(self, values: Mapping[str, Any] | None = None) -> Any:
        """The generation thread's open catalog (reopened when the path setting changes)."""
        from stylus_ext.catalog.db import Catalog

        path = self.catalog_path(values)
        with self._lock:
            if self._catalog is None or self._catalog_path != path:
                self.close()
                self._catalog = Catalog(path)
                self._catalog_path = path
            return self._catalog

    def close(self) -> None:
        with self._lock:
            if self._catalog is not None:
                try:
                    self._catalog.close()
                except Exception:  # noqa: BLE001
                    pass
            self._catalog = None
            self._cache.clear()

    def invalidate(self) -> None:
        """Forget cached pipelines (the catalog or index changed)."""
        with self._lock:
            self._cache.clear()

    def state(self, values: Mapping[str, Any] | None = None) -> CatalogState:
        return catalog_state(self.catalog_path(values))

    def apply_encoder_settings(self, values: Mapping[str, Any] | None = None) -> str:
        """Make the encoder options from the settings visible to every encoder the SDK creates (the
        index build and the retriever both resolve options from ``STYLUS_ENCODER_*``). Variables the
        user set before starting the WebUI win. Returns the encoder name."""
        values = self.values() if values is None else values
        name = str(values.get("encoder") or "transformers")
        try:
            cls = self.plugins.backend_class("encoder", name)
        except LookupError:
            return name
        chosen = stylus_settings.backend_options(values, self.plugins, "encoder", name)
        for opt in getattr(cls, "options", ()):
            if opt.secret or not cls.env_prefix:
                continue
            var = opt.env_var(cls.env_prefix)
            if var in _USER_ENV:
                continue
            if opt.name in chosen:
                os.environ[var] = str(chosen[opt.name])
            else:
                os.environ.pop(var, None)
        return name

    def pipeline(self, st: Any, values: Mapping[str, Any] | None = None) -> Any:
        from stylus_ext.pipeline import Stylus

        self.apply_encoder_settings(values)
        catalog = self.catalog(values)
        key = (str(self._catalog_path), repr(st))
        with self._lock:
            if key not in self._cache:
                # Share the retriever (encoder model, index) between settings variants: changing a
                # slider must not load the text encoder again.
                donor = next((v for (path, _), v in self._cache.items()
                              if path == key[0] and v.settings.encoder == st.encoder), None)
                self._cache[key] = Stylus(catalog, self.plugins, st,
                                          retriever=donor.retriever if donor is not None else None)
            return self._cache[key]

    def plan_images(self, prompts: Sequence[str], negatives: Sequence[str], seeds: Sequence[int],
                    options: controls.RunOptions, *, family: str | None = None) -> PlanResult:
        """One ``ImagePlan`` per image (or ``None`` per image + a warning). Never raises."""
        n = len(prompts)
        try:
            values = self.values()
            state = self.state(values)
            if not state.ready:
                if state.error:  # a refresh cannot repair an unreadable file: say what to do instead
                    return PlanResult([None] * n, [f"Stylus: {state.error} — move or delete that file (Stylus "
                                                   "then rebuilds it) or choose another catalog location in "
                                                   "Settings → Stylus; this generation uses your prompt as is."])
                reason = "no adapter index yet" if state.exists else "no catalog yet"
                if self.on_missing_index is not None:
                    self.on_missing_index(reason)
                return PlanResult([None] * n, [f"Stylus: {reason} — building it in the background; "
                                               "this generation uses your prompt as is."])
            st = self.pipeline_settings(options, values, family)
            stylus = self.pipeline(st, values)
            plans: list[Any] = [None] * n
            warnings: list[str] = []
            if options.base_model == "auto" and st.base_model is None:
                warnings.append("base model unknown (no checkpoint loaded or recognised): adapters of every "
                                "base model are candidates")
            selections: dict[str, Any] = {}
            groups: dict[tuple[str, str], list[int]] = {}
            for i, (prompt, negative) in enumerate(zip(prompts, negatives, strict=True)):
                groups.setdefault((prompt, negative), []).append(i)
            for (prompt, negative), idx in groups.items():
                selection = selections.get(prompt) or stylus.select(prompt)
                selections[prompt] = selection
                warnings.extend(w for w in getattr(selection, "warnings", ()) if w not in warnings)
                images = stylus.images(selection, [int(seeds[i]) for i in idx], negative_prompt=negative)
                if len(images) != len(idx):
                    raise RuntimeError(f"pipeline returned {len(images)} plans for {len(idx)} images")
                for i, plan in zip(idx, images, strict=True):
                    plans[i] = plan
            return PlanResult(plans, [f"Stylus: {w}" for w in warnings], selections)
        except Exception as exc:
            log.exception("Stylus failed; generating from the user's prompt")
            first = str(exc).splitlines()[0] if str(exc) else ""
            return PlanResult([None] * n, [f"Stylus error ({type(exc).__name__}: {first[:200]}) — "
                                           "generated from your prompt as is."])


def catalog_state(path: Path) -> CatalogState:
    """Counts and index state of the catalog at ``path`` (opened read-only for the call)."""
    import json

    state = CatalogState(path=str(path), exists=Path(path).exists())
    if not state.exists:
        return state
    try:
        from stylus_ext.catalog.db import Catalog

        catalog = Catalog(path, create=False)
        try:
            state.adapters = catalog.count()
            state.installed = catalog.count("path is not null")
            raw = catalog.get_meta("index")
            meta = json.loads(raw) if raw else {}
            state.indexed = int(meta.get("count", 0) or 0)
            state.index_kind = str(meta.get("kind", ""))
            state.encoder = str(meta.get("encoder", ""))
        finally:
            catalog.close()
    except Exception as exc:  # noqa: BLE001 - a broken catalog is reported, never raised
        state.error = f"catalog unusable: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
    return state


_runtime: Runtime | None = None
_runtime_lock = threading.Lock()


def get_runtime() -> Runtime:
    global _runtime
    with _runtime_lock:
        if _runtime is None:
            _runtime = Runtime()
        return _runtime


def set_runtime(runtime: Runtime | None) -> None:
    """Replace the process-wide runtime (tests)."""
    global _runtime
    with _runtime_lock:
        if _runtime is not None and _runtime is not runtime:
            _runtime.close()
        _runtime = runtime
