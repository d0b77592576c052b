"""Plugin loading: built-ins from ``plugins/``, the ``stylus_ext`` entry-point group, user files.

Every plugin is loaded and called inside its own ``try``: a broken plugin is reported (see
:attr:`PluginManager.errors`) and skipped, never takes the host down. ``STYLUS_DISABLE_PLUGINS``
(comma-separated names) keeps plugins from even being imported; ``STYLUS_PLUGINS_DIR`` overrides the
user plugins folder (default ``<data dir>/plugins``). ``STYLUS_TRACE_HOOKS=1`` logs every hook call.
"""

from __future__ import annotations

import difflib
import importlib.util
import logging
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from stylus_ext import hookspecs, sdk
from stylus_ext.paths import data_dir

log = logging.getLogger("stylus")

BUILTIN_PREFIX = "stylus_ext_builtin_plugins"
USER_PREFIX = "stylus_ext_user_plugins"
ENTRY_POINT_GROUP = "stylus_ext"

#: hook name → (SDK base class, the kind word used in listings)
REGISTRIES: dict[str, tuple[type, str]] = {
    "register_catalog_sources": (sdk.CatalogSource, "source"),
    "register_refiners": (sdk.Refiner, "refiner"),
    "register_encoders": (sdk.Encoder, "encoder"),
    "register_composers": (sdk.Composer, "composer"),
}


def builtin_plugins_dir() -> Path:
    """``plugins/`` beside the package (a checkout / the WebUI extension folder), or the copy
    installed inside the package by a wheel."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_builtin_plugins", here.parent / "plugins"):
        if candidate.is_dir():
            return candidate
    return here.parent / "plugins"


def user_plugins_dir(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    return Path(environ.get("STYLUS_PLUGINS_DIR") or data_dir(environ) / "plugins").expanduser()


@dataclass
class PluginInfo:
    """One loaded (or failed) plugin, for ``stylus plugins`` and the WebUI tab."""

    name: str
    origin: str  # "builtin" | "entrypoint" | "user"
    location: str
    hooks: list[str] = field(default_factory=list)
    backends: dict[str, list[str]] = field(default_factory=dict)
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "origin": self.origin, "location": self.location,
                "hooks": self.hooks, "backends": self.backends, "error": self.error}


class PluginManager:
    """Loads plugins and collects the backends they register, by kind and name."""

    def __init__(
        self,
        *,
        builtin_dir: Path | None = None,
        user_dir: Path | None = None,
        disabled: Iterable[str] | None = None,
        entry_points_enabled: bool = True,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        environ = os.environ if environ is None else environ
        self.pm = pluggy.PluginManager(sdk.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        # Hooks are called one implementation at a time (isolation), so pluggy's own tracing never
        # fires: trace() writes straight to stderr (the CLI configures logging after loading plugins).
        self.tracing = bool(environ.get("STYLUS_TRACE_HOOKS"))
        env_disabled = [n.strip() for n in environ.get("STYLUS_DISABLE_PLUGINS", "").split(",")]
        self.disabled = {n for n in [*(disabled or ()), *env_disabled] if n}
        self.infos: list[PluginInfo] = []
        self.backends: dict[str, dict[str, type]] = {kind: {} for _, kind in REGISTRIES.values()}
        self._owner: dict[tuple[str, str], str] = {}
        self._load_folder(builtin_dir or builtin_plugins_dir(), "builtin", BUILTIN_PREFIX)
        if entry_points_enabled:
            self._load_entry_points()
        self._load_folder(user_dir or user_plugins_dir(environ), "user", USER_PREFIX)
        for hook, (base, kind) in REGISTRIES.items():
            self._collect(hook, base, kind)

    # -- loading ---------------------------------------------------------------------------

    @property
    def errors(self) -> list[PluginInfo]:
        return [i for i in self.infos if i.error]

    def _load_folder(self, folder: Path, origin: str, prefix: str) -> None:
        if not folder.is_dir():
            return
        for path in sorted(folder.glob("*.py")):
            if path.name.startswith("_"):
                continue
            name = path.stem
            self._register(name, origin, str(path), lambda p=path, n=name: _import_file(p, f"{prefix}_{n}"))

    def _load_entry_points(self) -> None:
        try:
            eps = entry_points(group=ENTRY_POINT_GROUP)
        except Exception as exc:  # noqa: BLE001 - broken metadata must not stop the host
            log.warning("could not list %s entry points: %s", ENTRY_POINT_GROUP, exc)
            return
        for ep in sorted(eps, key=lambda e: e.name):
            self._register(ep.name, "entrypoint", ep.value, ep.load)

    def _register(self, name: str, origin: str, location: str, load: Any) -> None:
        info = PluginInfo(name=name, origin=origin, location=location)
        if name in self.disabled:
            self.pm.set_blocked(name)
            info.error = "disabled"
            self.infos.append(info)
            return
        if self.pm.has_plugin(name) or self.pm.is_blocked(name):
            info.error = f"a plugin named {name!r} is already loaded; skipped"
            self.infos.append(info)
            return
        try:
            module = load()
            self.pm.register(module, name=name)
            unknown = [n for n in dir(module) if getattr(getattr(module, n), f"{sdk.PROJECT}_impl", None)
                       and getattr(getattr(self.pm.hook, n, None), "spec", None) is None]
            if unknown:
                self.pm.unregister(module)
                hooks = [n for n in dir(hookspecs) if n.startswith("register_")]
                hints = [f"{n} (did you mean {close[0]}?)" if (close := difflib.get_close_matches(n, hooks, 1))
                         else n for n in unknown]
                raise ValueError(f"unknown hook(s) {', '.join(hints)}")
            info.hooks = sorted(impl.function.__name__ for impl in _impls_of(self.pm, module))
        except Exception as exc:  # noqa: BLE001 - one broken plugin must never take the host down
            info.error = f"{type(exc).__name__}: {exc}"
            log.warning("plugin %s (%s) failed to load and was skipped: %s", name, location, info.error)
        self.infos.append(info)

    def _collect(self, hook: str, base: type, kind: str) -> None:
        caller = getattr(self.pm.hook, hook)
        for impl in caller.get_hookimpls():
            info = self._info(impl.plugin_name)
            registered: list[type] = []

            def register(cls: type, _registered: list[type] = registered) -> None:
                if not (isinstance(cls, type) and issubclass(cls, base)) or not getattr(cls, "name", ""):
                    raise TypeError(f"{hook} expects a named {base.__name__} subclass, got {cls!r}")
                _registered.append(cls)

            try:
                impl.function(register=register)
                self.trace(f"{hook} of {impl.plugin_name} registered {[c.name for c in registered]}")
            except Exception as exc:  # noqa: BLE001
                self.trace(f"{hook} of {impl.plugin_name} raised {type(exc).__name__}")
                msg = f"{hook}: {type(exc).__name__}: {exc}"
                if info:
                    info.error = (info.error + "; " if info.error else "") + msg
                log.warning("plugin %s failed in %s and was skipped: %s", impl.plugin_name, hook, exc)
                continue
            for cls in registered:
                previous = self._owner.get((kind, cls.name))
                if previous:
                    log.warning("%s %r from %s replaces the one from %s", kind, cls.name, impl.plugin_name, previous)
                self.backends[kind][cls.name] = cls
                self._owner[(kind, cls.name)] = impl.plugin_name
                if info:
                    info.backends.setdefault(kind, []).append(cls.name)

    def trace(self, message: str) -> None:
        """One ``stylus: hook: ...`` line on stderr when ``STYLUS_TRACE_HOOKS`` is set."""
        if self.tracing:
            print(f"stylus: hook: {message}", file=sys.stderr, flush=True)

    def _info(self, name: str) -> PluginInfo | None:
        return next((i for i in self.infos if i.name == name and not i.error.startswith("a plugin")), None)

    # -- lookup ----------------------------------------------------------------------------

    def names(self, kind: str) -> list[str]:
        return sorted(self.backends[kind])

    def backend_class(self, kind: str, name: str) -> type:
        try:
            return self.backends[kind][name]
        except KeyError:
            known = ", ".join(self.names(kind)) or "none loaded"
            raise LookupError(f"no {kind} named {name!r} (available: {known})") from None

    def create(self, kind: str, name: str, **options: Any) -> Any:
        """Instantiate a backend with explicit option values (others from env / defaults)."""
        cls = self.backend_class(kind, name)
        given = {k: v for k, v in options.items() if v is not None}
        return cls(**given)

    def describe(self) -> list[dict[str, Any]]:
        return [i.as_dict() for i in self.infos]


def _impls_of(pm: pluggy.PluginManager, plugin: object) -> list[Any]:
    return [impl for caller in pm.get_hookcallers(plugin) or [] for impl in caller.get_hookimpls()
            if impl.plugin is plugin]


def _import_file(path: Path, module_name: str) -> ModuleType:
    """Import a plugin file under a unique module name (never ``import plugins``)."""
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    return module


_default: PluginManager | None = None


def get_plugins(reload: bool = False) -> PluginManager:
    """The process-wide plugin manager (created on first use)."""
    global _default
    if _default is None or reload:
        _default = PluginManager()
    return _default
