"""The Stylus pipeline as the WebUI uses it: one cached instance per catalog and settings, the
catalog's state, and the rule that a Stylus failure never breaks a generation.

:func:`plan_images` never raises: any error gives ``None`` plans (= generate from the user's
prompts) and a one-line warning that the glue shows in the UI and the console.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stylus_ext.webui import compat, controls
from stylus_ext.webui import settings as stylus_settings
from stylus_ext.webui.guard import FileGuard

log = logging.getLogger("stylus")
#: Environment variables the user set before the WebUI started: they win over the settings (read
#: only to leave those options alone; the settings reach the encoder as explicit options).
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


#: After a composer fails (a misconfigured LLM server, a timeout), skip it for this long.
COMPOSER_COOLDOWN_S = 300.0
_CLI_HINT = re.compile(r"\(?run `stylus [^`]*`\)?")


def for_webui(message: str) -> str:
    """A pipeline message as a WebUI user can act on it (no CLI commands)."""
    return _CLI_HINT.sub("(press Refresh catalog in the Stylus tab)", message)


class Runtime:
    """Process-wide state of the extension (one per WebUI process; see :func:`get_runtime`)."""

    def __init__(self, *, opts: Callable[[], Mapping[str, Any]] = compat.opts_data,
                 plugins: Callable[[], Any] = _plugins) -> None:
        self._opts = opts
        self._plugins_factory = plugins
        self._plugins: Any = None
        self._lock = threading.RLock()
        self._cache: dict[tuple[str, str], Any] = {}
        self._encoders: dict[tuple[Any, ...], Any] = {}
        self._catalog: Any = None
        self._catalog_path: Path | None = None
        self._catalog_id: tuple[int, int] | None = None
        self._composer_down: dict[str, float] = {}
        self.guard = FileGuard()
        self.on_missing_index: Callable[[str], None] | None = None
        self.refresh_error: Callable[[], str] = lambda: ""

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
        """The settings' catalog file, else ``STYLUS_CATALOG``, else one catalog per WebUI root
        (``<data dir>/webui/<root name>-<hash>/catalog.db``): "installed" means installed HERE."""
        from stylus_ext.paths import data_dir

        values = self.values() if values is None else values
        custom = str(values.get("catalog_path") or "").strip()
        if custom:
            return Path(custom).expanduser()
        if os.environ.get("STYLUS_CATALOG"):
            return Path(os.environ["STYLUS_CATALOG"]).expanduser()
        return data_dir() / "webui" / compat.root_key() / "catalog.db"

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
        if self._composer_down.get(composer, 0.0) > time.monotonic():
            composer = "offline"
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
            installed_only=True,  # a tag for a file that is not in this WebUI's folders would do nothing
            allow_nsfw=bool(values.get("allow_nsfw", False)),
            allow_characters=bool(values.get("allow_characters", True)),
            time_budget_s=float(values.get("time_budget_s", 20.0)),
        )

    # -- catalog and pipeline ---------------------------------------------------------------

    def catalog(self, values: Mapping[str, Any] | None = None) -> Any:
        """The open catalog, reopened when the path setting changes or the file was deleted or
        replaced (a rebuilt catalog is used at once, not after a restart)."""
        from stylus_ext.catalog.db import Catalog

        path = self.catalog_path(values)
        ident = _file_id(path)
        with self._lock:
            if self._catalog is None or self._catalog_path != path or (ident is not None and ident != self._catalog_id):
                self.close()
                self._catalog = Catalog(path)
                self._catalog_path = path
                self._catalog_id = _file_id(path)
            return self._catalog

    def close(self) -> None:
        with self._lock:
            if self._catalog is not None:
                try:
                    self._catalog.close()
                except Exception:  # noqa: BLE001
                    pass
            self._catalog = None
            self._catalog_id = None
            self._cache.clear()

    def invalidate(self) -> None:
        """Forget cached pipelines (the catalog or index changed)."""
        with self._lock:
            self._cache.clear()

    def state(self, values: Mapping[str, Any] | None = None) -> CatalogState:
        return catalog_state(self.catalog_path(values))

    def encoder_options(self, values: Mapping[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        """The encoder's name and the option values the settings give it, passed explicitly to the
        encoder (never through ``os.environ``). Options whose ``STYLUS_ENCODER_*`` variable the user
        set before starting the WebUI are left to that variable."""
        values = self.values() if values is None else values
        name = str(values.get("encoder") or "transformers")
        try:
            cls = self.plugins.backend_class("encoder", name)
        except LookupError:
            return name, {}
        chosen = stylus_settings.backend_options(values, self.plugins, "encoder", name)
        prefix = getattr(cls, "env_prefix", "")
        from_env = {o.name for o in getattr(cls, "options", ()) if prefix and o.env_var(prefix) in _USER_ENV}
        return name, {k: v for k, v in chosen.items() if k not in from_env}

    def encoder(self, values: Mapping[str, Any] | None = None) -> Any:
        """The encoder instance for the settings (one per name and options; models load once)."""
        name, options = self.encoder_options(values)
        key = (name, tuple(sorted(options.items())))
        with self._lock:
            if key not in self._encoders:
                self._encoders[key] = self.plugins.create("encoder", name, **options)
            return self._encoders[key]

    def _index_encoder(self, catalog: Any, values: Mapping[str, Any] | None) -> Any:
        """The settings' encoder when the index was built with it; else None (the retriever then
        recreates the index's own encoder, and the next refresh rebuilds with the settings')."""
        built = _index_meta(catalog).get("encoder")
        if not built:
            return None
        encoder = self.encoder(values)
        return encoder if getattr(encoder, "identity", None) == built else None

    def pipeline(self, st: Any, values: Mapping[str, Any] | None = None) -> Any:
        from stylus_ext.pipeline import Stylus
        from stylus_ext.retrieve import Retriever

        catalog = self.catalog(values)
        key = (str(self._catalog_path), repr(st))
        with self._lock:
            if key not in self._cache:
                # Share the retriever (encoder model, index) between settings variants: changing a
                # slider must not load the text encoder again.
                donor = next((v for (path, _), v in self._cache.items()
                              if path == key[0] and v.settings.encoder == st.encoder), None)
                retriever = donor.retriever if donor is not None else Retriever(
                    catalog, encoder=self._index_encoder(catalog, values), plugins=self.plugins)
                self._cache[key] = Stylus(catalog, self.plugins, st, retriever=retriever)
            return self._cache[key]

    def _not_ready(self, state: CatalogState, n: int) -> PlanResult:
        if state.error:  # a refresh cannot repair an unreadable file: say what to do instead
            return PlanResult([None] * n, [f"Stylus: {state.error} — move or delete that file (Stylus then "
                                           "rebuilds it) or choose another catalog location in Settings → Stylus; "
                                           "this generation uses your prompt as is."])
        failed = self.refresh_error()
        if failed:
            return PlanResult([None] * n, [f"Stylus: the adapter index could not be built ({failed}) — check the "
                                           "encoder in Settings → Stylus, then press Refresh catalog in the Stylus "
                                           "tab; this generation uses your prompt as is."])
        reason = "no adapter index yet" if state.exists else "no catalog yet"
        if self.on_missing_index is not None:
            self.on_missing_index(reason)
        return PlanResult([None] * n, [f"Stylus: {reason} — building it in the background; "
                                       "this generation uses your prompt as is."])

    def _select(self, stylus: Any, prompt: str, warnings: list[str]) -> Any:
        """The composition for ``prompt``, without adapters that must not be tagged; a composer
        that failed is skipped for :data:`COMPOSER_COOLDOWN_S` (and the user told so once)."""
        selection = stylus.select(prompt)
        wanted = stylus.settings.composer
        if getattr(selection, "fell_back", False) and wanted != "offline" \
                and self._composer_down.get(wanted, 0.0) <= time.monotonic():
            self._composer_down[wanted] = time.monotonic() + COMPOSER_COOLDOWN_S
            warnings.append(f"composer {wanted!r} is skipped for the next {COMPOSER_COOLDOWN_S / 60:.0f} minutes "
                            "(the offline composer answers meanwhile)")
        selection, dropped = self.guard.filter(selection)
        warnings.extend(dropped)
        return selection

    def plan_images(self, prompts: Sequence[str], negatives: Sequence[str], seeds: Sequence[int],
                    options: controls.RunOptions, *, family: str | None = None, batch_size: int = 1) -> PlanResult:
        """One ``ImagePlan`` per image (or ``None`` per image + a warning). Never raises.

        Images with the same prompt in one batch of ``batch_size`` share the adapter set drawn from
        the batch's first such image (the WebUI applies one set per batch); ``options.mask_seed``
        ≥ 0 draws every set from that seed (a pasted-back image regenerated alone)."""
        n = len(prompts)
        try:
            values = self.values()
            state = self.state(values)
            if not state.ready:
                return self._not_ready(state, n)
            st = self.pipeline_settings(options, values, family)
            stylus = self.pipeline(st, values)
            plans: list[Any] = [None] * n
            warnings: list[str] = []
            if options.base_model == "auto" and st.base_model is None:
                warnings.append("base model unknown (no checkpoint loaded or recognised): adapters of every "
                                "base model are candidates")
            unknown = options.extra.get("unknown_composer")
            if unknown:
                warnings.append(f"composer {unknown!r} is not installed here (available: "
                                f"{', '.join(self.composer_names())}); using {st.composer!r}")
            selections: dict[str, Any] = {}
            groups: dict[tuple[str, str], list[int]] = {}
            for i, (prompt, negative) in enumerate(zip(prompts, negatives, strict=True)):
                groups.setdefault((prompt, negative), []).append(i)
            for (prompt, negative), idx in groups.items():
                if prompt not in selections:
                    selections[prompt] = self._select(stylus, prompt, warnings)
                selection = selections[prompt]
                warnings.extend(w for w in getattr(selection, "warnings", ()) if w not in warnings)
                mask_seeds = _mask_seeds(idx, seeds, max(1, int(batch_size)), int(options.mask_seed))
                images = stylus.images(selection, mask_seeds, negative_prompt=negative)
                if len(images) != len(idx):
                    raise RuntimeError(f"pipeline returned {len(images)} plans for {len(idx)} images")
                for i, plan in zip(idx, images, strict=True):
                    plans[i] = plan
            return PlanResult(plans, [f"Stylus: {for_webui(w)}" for w in warnings], selections)
        except Exception as exc:
            log.exception("Stylus failed; generating from the user's prompt")
            first = str(exc).splitlines()[0] if str(exc) else ""
            return PlanResult([None] * n, [f"Stylus error ({type(exc).__name__}: {for_webui(first)[:200]}) — "
                                           "generated from your prompt as is."])


def _mask_seeds(idx: Sequence[int], seeds: Sequence[int], batch_size: int, fixed: int) -> list[int]:
    """The seed each image's adapter set is drawn from: ``fixed`` when ≥ 0, else the seed of the
    first image of the same prompt in the same batch."""
    if fixed >= 0:
        return [fixed] * len(idx)
    first: dict[int, int] = {}
    return [int(seeds[first.setdefault(i // batch_size, i)]) for i in idx]


def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _index_meta(catalog: Any) -> dict[str, Any]:
    import json

    try:
        raw = catalog.get_meta("index")
        return json.loads(raw) if raw else {}
    except Exception:  # noqa: BLE001
        return {}


def catalog_state(path: Path) -> CatalogState:
    """Counts and index state of the catalog at ``path`` (opened read-only for the call)."""
    import json

    state = CatalogState(path=str(path), exists=Path(path).exists())
    if not state.exists:
        return state
    try:
        from stylus_ext.catalog.db import Catalog
        from stylus_ext.catalog.readable import READABLE_SQL

        catalog = Catalog(path, create=False)
        try:
            state.adapters = catalog.count()
            state.installed = catalog.count(f"path is not null and {READABLE_SQL}")  # files that load
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
