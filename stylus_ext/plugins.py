"""Plugin loading: built-ins from ``plugins/``, the ``stylus_ext`` entry-point group, user files.

Every plugin is loaded and called inside its own ``try``: a broken plugin is reported (see
:attr:`PluginManager.errors`) and skipped, never takes the host down. ``STYLUS_DISABLE_PLUGINS``
(comma-separated names) keeps plugins from even being imported; ``STYLUS_PLUGINS_DIR`` overrides the
user plugins folder (default ``<data dir>/plugins``). ``STYLUS_TRACE_HOOKS=1`` logs every hook call.

Plugins load in a fixed order: built-ins (``plugins/``: files and packages, by name), then installed packages (entry
points, by name), then the user folder (by file name). Backend names are unique per kind: the first
registration of a name wins and a later backend with the same name is refused with a message naming
both plugins, so a user plugin can never silently replace a built-in (``offline`` stays the fallback).
A plugin that declares ``STYLUS_API = (major, minor)`` is refused when this Stylus cannot provide it.
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

from stylus_ext import sdk
from stylus_ext.paths import data_dir
from stylus_ext.sdk import hooks
from stylus_ext.sdk.contract import class_problem
from stylus_ext.sdk.files import exec_spec

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
        self.pm.add_hookspecs(hooks)
        # Hooks are called one implementation at a time (isolation), so pluggy's own tracing never
        # fires: trace() writes straight to stderr (the CLI configures logging after loading plugins).
        self.tracing = bool(environ.get("STYLUS_TRACE_HOOKS"))
        env_disabled = [n.strip() for n in environ.get("STYLUS_DISABLE_PLUGINS", "").split(",")]
        self.disabled = {n for n in [*(disabled or ()), *env_disabled] if n}
        self.infos: list[PluginInfo] = []
        self._loaded: dict[str, PluginInfo] = {}  # registered plugins, in load order
        self.backends: dict[str, dict[str, type]] = {kind: {} for _, kind in REGISTRIES.values()}
        self._owner: dict[tuple[str, str], PluginInfo] = {}
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
        for path in sorted(plugin_paths(folder), key=lambda p: p.stem):
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
            if getattr(module, "STYLUS_API", None) is not None:
                sdk.check_api(module.STYLUS_API, f"plugin {name!r}")
            self.pm.register(module, name=name)
            unknown = [n for n in dir(module) if getattr(getattr(module, n), f"{sdk.PROJECT}_impl", None)
                       and getattr(getattr(self.pm.hook, n, None), "spec", None) is None]
            if unknown:
                self.pm.unregister(module)
                hook_names = [n for n in dir(hooks) if n.startswith("register_")]
                hints = [f"{n} (did you mean {close[0]}?)" if (close := difflib.get_close_matches(n, hook_names, 1))
                         else n for n in unknown]
                raise ValueError(f"unknown hook(s) {', '.join(hints)}")
            info.hooks = sorted(impl.function.__name__ for impl in _impls_of(self.pm, module))
            self._loaded[name] = info
        except Exception as exc:  # noqa: BLE001 - one broken plugin must never take the host down
            info.error = f"{type(exc).__name__}: {exc}{_api_hint(exc)}"
            log.warning("plugin %s (%s) failed to load and was skipped: %s", name, location, info.error)
        self.infos.append(info)

    def _collect(self, hook: str, base: type, kind: str) -> None:
        caller = getattr(self.pm.hook, hook)
        order = list(self._loaded)
        for impl in sorted(caller.get_hookimpls(), key=lambda i: order.index(i.plugin_name)):
            info = self._loaded[impl.plugin_name]
            registered: list[type] = []

            def register(cls: type, _registered: list[type] = registered, _info: PluginInfo = info) -> None:
                problem = class_problem(cls, base)
                if problem:
                    self._problem(_info, f"{hook}: refused {getattr(cls, '__qualname__', repr(cls))}: {problem}")
                else:
                    _registered.append(cls)

            try:
                impl.function(register=register)
                self.trace(f"{hook} of {impl.plugin_name} registered {[c.name for c in registered]}")
            except Exception as exc:  # noqa: BLE001
                self.trace(f"{hook} of {impl.plugin_name} raised {type(exc).__name__}")
                self._problem(info, f"{hook}: {type(exc).__name__}: {exc}")
                continue
            for cls in registered:
                self._add(kind, cls, info)

    def _add(self, kind: str, cls: type, info: PluginInfo) -> None:
        """Register ``cls`` under its name unless an earlier plugin already took that name."""
        owner = self._owner.get((kind, cls.name))
        if owner is not None:
            self._problem(info, f"{kind} {cls.name!r} refused: the name is taken by the {owner.origin} plugin "
                                f"{owner.name!r} (backend names must be unique; rename this one)")
            return
        self.backends[kind][cls.name] = cls
        self._owner[(kind, cls.name)] = info
        info.backends.setdefault(kind, []).append(cls.name)

    def _problem(self, info: PluginInfo, message: str) -> None:
        info.error = f"{info.error}; {message}" if info.error else message
        log.warning("plugin %s: %s", info.name, message)

    def trace(self, message: str) -> None:
        """One ``stylus: hook: ...`` line on stderr when ``STYLUS_TRACE_HOOKS`` is set."""
        if self.tracing:
            print(f"stylus: hook: {message}", file=sys.stderr, flush=True)

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


def _api_hint(exc: Exception) -> str:
    """A hint when a plugin failed on an SDK name this Stylus lacks (written for a newer API)."""
    if isinstance(exc, (AttributeError, ImportError)) and "stylus_ext.sdk" in str(exc):
        major, minor = sdk.API_VERSION
        return f" (this Stylus provides plugin API {major}.{minor}; the plugin may need a newer Stylus)"
    return ""


def plugin_paths(folder: Path) -> list[Path]:
    """The plugins in ``folder``: ``*.py`` files and packages (folders with ``__init__.py``); names
    starting with ``_`` are private helpers, not plugins."""
    return [p for p in folder.iterdir() if not p.name.startswith("_")
            and ((p.suffix == ".py" and p.is_file()) or (p.is_dir() and (p / "__init__.py").is_file()))]


def _import_file(path: Path, module_name: str) -> ModuleType:
    """Import a plugin file or package folder under a unique module name (never ``import plugins``);
    a package's modules import each other relatively (``from .api import ...``)."""
    for stale in [m for m in sys.modules if m.startswith(f"{module_name}.")]:  # a reload reads the files again
        del sys.modules[stale]
    if path.is_dir():
        spec = importlib.util.spec_from_file_location(module_name, path / "__init__.py",
                                                      submodule_search_locations=[str(path)])
    else:
        spec = importlib.util.spec_from_file_location(module_name, path)
    return exec_spec(module_name, spec, path)


_default: PluginManager | None = None


def get_plugins(reload: bool = False) -> PluginManager:
    """The process-wide plugin manager (created on first use)."""
    global _default
    if _default is None or reload:
        _default = PluginManager()
    return _default
