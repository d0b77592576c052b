"""What ``install.py`` does inside the WebUI, importable (and tested) without the WebUI.

The WebUI runs the extension's ``install.py`` on every start, in a subprocess with ``import launch``
available. We read the dependency list from ``pyproject.toml`` (Python 3.10 has no ``tomllib``: a
small reader for the ``dependencies = [...]`` array, or ``tomllib``/``tomli`` when present), skip
the WebUI's own pinned packages, and install only what is missing or too old. ``annoy`` (the
``fast`` extra) is optional: a failed build is remembered in a marker file so it is not retried on
every start, and Stylus runs on exact search.
"""

from __future__ import annotations

import importlib.metadata
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

#: The WebUI owns these: never install, upgrade or pin them from an extension.
PROTECTED = frozenset({"torch", "torchvision", "gradio", "numpy", "transformers", "safetensors", "pydantic",
                       "fastapi", "starlette", "pillow", "accelerate", "tokenizers", "huggingface-hub"})
OPTIONAL = ("annoy",)
ANNOY_MARKER = "annoy-build-failed"
#: Retry a failed optional build after this long (a compiler may have been installed meanwhile).
RETRY_AFTER_S = 30 * 24 * 3600

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(spec: str) -> str:
    m = _NAME.match(spec)
    if not m:
        raise ValueError(f"not a requirement: {spec!r}")
    return normalize(m.group(1))


def _strings(text: str, start: int) -> list[str]:
    """The strings of the TOML array opening at ``text[start] == '['`` (comments and commas skipped)."""
    out: list[str] = []
    i, depth = start, 0
    while i < len(text):
        ch = text[i]
        if ch == "#":
            i = text.find("\n", i)
            if i < 0:
                break
        elif ch in "\"'":
            quote = ch
            j, buf = i + 1, []
            while j < len(text) and text[j] != quote:
                if quote == '"' and text[j] == "\\" and j + 1 < len(text):
                    j += 1
                buf.append(text[j])
                j += 1
            out.append("".join(buf))
            i = j
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth == 0:
                return out
        i += 1
    raise ValueError("unterminated array")


def _array(text: str, key: str, section: str) -> list[str]:
    """The string array ``key = [...]`` inside ``[section]`` of a simple TOML file."""
    current = ""
    offset = 0
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if stripped.startswith("[") and not stripped.startswith("[["):
            current = stripped.split("#", 1)[0].strip().strip("[]").strip()
        elif current == section and re.match(rf"^{re.escape(key)}\s*=\s*\[", stripped):
            return _strings(text, offset + line.index("["))
        offset += len(line)
    return []


def read_dependencies(pyproject: str | Path, *, use_toml: bool = True) -> tuple[list[str], dict[str, list[str]]]:
    """``(dependencies, optional_dependencies)`` from a ``pyproject.toml`` (``tomllib``/``tomli`` when
    present and ``use_toml``, else the small reader)."""
    text = Path(pyproject).read_text(encoding="utf-8")
    try:
        if not use_toml:
            raise ImportError
        try:
            import tomllib as toml  # type: ignore[import-not-found]
        except ImportError:
            import tomli as toml  # type: ignore[import-not-found,no-redef]
        project = toml.loads(text).get("project", {})
        return list(project.get("dependencies", [])), dict(project.get("optional-dependencies", {}))
    except ImportError:
        pass
    extras: dict[str, list[str]] = {}
    for line in text.splitlines():
        m = re.match(r"^\s*([A-Za-z0-9_-]+)\s*=\s*\[", line)
        if m:
            values = _array(text, m.group(1), "project.optional-dependencies")
            if values:
                extras[m.group(1)] = values
    return _array(text, "dependencies", "project"), extras


def installed_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def satisfied(spec: str, version_of: Callable[[str], str | None] = installed_version) -> bool:
    """True when the requirement is installed in a version the specifier accepts.

    Without ``packaging`` (always present in the WebUI) any installed version counts.
    """
    name = requirement_name(spec)
    version = version_of(name)
    if version is None:
        return False
    try:
        from packaging.requirements import Requirement
    except ImportError:
        return True
    try:
        req = Requirement(spec)
    except Exception:  # noqa: BLE001 - an odd spec: presence is enough
        return True
    return not req.specifier or req.specifier.contains(version, prereleases=True)


def applies(spec: str) -> bool:
    """False when the requirement's environment marker excludes this Python/platform."""
    try:
        from packaging.requirements import Requirement

        marker = Requirement(spec).marker
    except Exception:  # noqa: BLE001 - no packaging or an odd spec: assume it applies
        return True
    return marker is None or bool(marker.evaluate())


@dataclass
class InstallPlan:
    install: list[str] = field(default_factory=list)
    optional: list[str] = field(default_factory=list)
    skipped_protected: list[str] = field(default_factory=list)
    skipped_optional: list[str] = field(default_factory=list)


def plan(
    dependencies: Iterable[str],
    extras: dict[str, list[str]],
    *,
    version_of: Callable[[str], str | None] = installed_version,
    data_dir: Path | None = None,
    now: float | None = None,
) -> InstallPlan:
    """Which requirements to install: missing/too old, never protected ones, annoy unless it failed before."""
    result = InstallPlan()
    for spec in dependencies:
        name = requirement_name(spec)
        if not applies(spec):
            continue
        if name in PROTECTED:
            result.skipped_protected.append(spec)
        elif not satisfied(spec, version_of):
            result.install.append(spec)
    for spec in extras.get("fast", []):
        name = requirement_name(spec)
        if name in PROTECTED or satisfied(spec, version_of):
            continue
        if data_dir is not None and failed_recently(data_dir, name, now=now):
            result.skipped_optional.append(spec)
        else:
            result.optional.append(spec)
    return result


def marker_path(data_dir: Path, name: str) -> Path:
    return Path(data_dir) / f"{name}-build-failed"


def failed_recently(data_dir: Path, name: str, *, now: float | None = None) -> bool:
    path = marker_path(data_dir, name)
    try:
        age = (time.time() if now is None else now) - path.stat().st_mtime
    except OSError:
        return False
    return age < RETRY_AFTER_S


def run(
    pyproject: str | Path,
    *,
    run_pip: Callable[[str, str], object],
    version_of: Callable[[str], str | None] = installed_version,
    data_dir: Path | None = None,
    skip_install: bool = False,
    echo: Callable[[str], None] = print,
) -> InstallPlan:
    """Install what is missing. ``run_pip(args, description)`` is ``launch.run_pip``."""
    if skip_install:
        return InstallPlan()
    try:
        deps, extras = read_dependencies(pyproject)
    except (OSError, ValueError) as exc:
        echo(f"[Stylus] cannot read dependencies ({exc}); nothing installed")
        return InstallPlan()
    todo = plan(deps, extras, version_of=version_of, data_dir=data_dir)
    for spec in todo.install:
        try:
            run_pip(f'install "{spec}"', f"Stylus requirement: {spec}")
        except Exception as exc:  # noqa: BLE001 - report, keep the WebUI starting
            echo(f"[Stylus] could not install {spec}: {str(exc).splitlines()[0] if str(exc) else exc}")
    for spec in todo.optional:
        name = requirement_name(spec)
        try:
            run_pip(f'install "{spec}"', f"Stylus optional: {spec}")
        except Exception:  # noqa: BLE001 - annoy often cannot build on Windows without a compiler
            if data_dir is not None:
                path = marker_path(data_dir, name)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("build failed; delete this file to retry\n", encoding="utf-8")
            echo(f"[Stylus] optional {name} could not be built (no C++ compiler?); using exact search "
                 f"instead — fine for catalogs up to tens of thousands of LoRAs. Not retried for 30 days.")
    return todo
