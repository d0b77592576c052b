"""install.py logic in a WebUI-like environment with the A1111 1.10 pins (what it would install)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stylus_ext.webui import installer

pytestmark = pytest.mark.a1111
ROOT = Path(__file__).resolve().parent.parent

#: The WebUI 1.10.1 venv (requirements_versions.txt), without Stylus's extra packages.
A1111 = {"torch": "2.1.2", "gradio": "3.41.2", "numpy": "1.26.2", "transformers": "4.30.2",
         "safetensors": "0.4.2", "pydantic": "1.10.15", "fastapi": "0.94.0", "requests": "2.31.0",
         "tqdm": "4.66.1", "packaging": "23.2", "filelock": "3.13.1"}  # filelock: a torch dependency


def test_reads_the_projects_pyproject_with_and_without_tomllib() -> None:
    deps, extras = installer.read_dependencies(ROOT / "pyproject.toml")
    assert installer.read_dependencies(ROOT / "pyproject.toml", use_toml=False) == (deps, extras)
    assert any(d.startswith("pluggy") for d in deps) and extras["fast"] == ["annoy>=1.17"]


def test_small_reader_handles_comments_multiline_and_quotes(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text('[tool.x]\ndependencies = ["nope"]\n[project]\nname = "x"\n'
                    'dependencies = [ # the list\n  "a>=1",  # first, with [brackets]\n'
                    "  'b[extra]==2',\n  \"c; python_version < '3.11'\",\n]\n"
                    '[project.optional-dependencies]\nfast = ["annoy>=1.17"]\n', encoding="utf-8")
    deps, extras = installer.read_dependencies(path, use_toml=False)
    assert deps == ["a>=1", "b[extra]==2", "c; python_version < '3.11'"]
    assert extras == {"fast": ["annoy>=1.17"]}


def test_plan_in_a1111_env_installs_only_missing_never_pinned(tmp_path: Path) -> None:
    deps, extras = installer.read_dependencies(ROOT / "pyproject.toml", use_toml=False)
    plan = installer.plan(deps, extras, version_of=A1111.get, data_dir=tmp_path)
    names = [installer.requirement_name(s) for s in plan.install]
    assert names == ["pluggy", "sqlite-utils", "threadpoolctl"], plan
    protected = {installer.requirement_name(s) for s in plan.skipped_protected}
    assert {"torch", "numpy", "transformers", "safetensors"} <= protected
    assert plan.optional == ["annoy>=1.17"]


def test_too_old_versions_are_upgraded_but_pins_never_touched() -> None:
    versions = {**A1111, "pluggy": "0.13.1", "sqlite-utils": "3.36", "numpy": "1.20.0", "torch": "1.0"}
    plan = installer.plan(["pluggy>=1.3", "sqlite-utils>=3.35", "numpy>=1.23", "torch>=1.13"], {},
                          version_of=versions.get)
    assert plan.install == ["pluggy>=1.3"]


def test_environment_markers_are_respected() -> None:
    plan = installer.plan(['tomli>=2; python_version < "3.0"', "pluggy>=1.3"], {}, version_of=lambda n: None)
    assert plan.install == ["pluggy>=1.3"]


def test_run_installs_once_then_nothing(tmp_path: Path) -> None:
    installed = dict(A1111)
    calls: list[str] = []

    def run_pip(args: str, desc: str) -> None:
        calls.append(args)
        spec = args.split('"')[1]
        installed[installer.requirement_name(spec)] = "99.0"

    installer.run(ROOT / "pyproject.toml", run_pip=run_pip, version_of=installed.get, data_dir=tmp_path)
    assert calls == ['install "pluggy>=1.3"', 'install "sqlite-utils>=3.35"', 'install "threadpoolctl>=3.1"',
                     'install "annoy>=1.17"']
    calls.clear()
    installer.run(ROOT / "pyproject.toml", run_pip=run_pip, version_of=installed.get, data_dir=tmp_path)
    assert calls == []  # every later start: nothing to do


def test_failed_annoy_build_is_remembered_and_not_retried(tmp_path: Path) -> None:
    installed = {**A1111, "pluggy": "1.5", "sqlite-utils": "3.37", "threadpoolctl": "3.5.0"}
    calls: list[str] = []
    said: list[str] = []

    def run_pip(args: str, desc: str) -> None:
        calls.append(args)
        raise RuntimeError("Couldn't install annoy\nerror: Microsoft Visual C++ 14.0 or greater is required")

    installer.run(ROOT / "pyproject.toml", run_pip=run_pip, version_of=installed.get, data_dir=tmp_path,
                  echo=said.append)
    assert calls == ['install "annoy>=1.17"'] and len(said) == 1 and "exact search" in said[0]
    assert installer.marker_path(tmp_path, "annoy").exists()
    calls.clear()
    installer.run(ROOT / "pyproject.toml", run_pip=run_pip, version_of=installed.get, data_dir=tmp_path,
                  echo=said.append)
    assert calls == [] and len(said) == 1, "not retried, not repeated"
    old = time.time() - installer.RETRY_AFTER_S - 10
    os.utime(installer.marker_path(tmp_path, "annoy"), (old, old))
    assert not installer.failed_recently(tmp_path, "annoy")


def test_skip_install_does_nothing(tmp_path: Path) -> None:
    calls: list[str] = []
    installer.run(ROOT / "pyproject.toml", run_pip=lambda a, d: calls.append(a), version_of=lambda n: None,
                  data_dir=tmp_path, skip_install=True)
    assert calls == []


def test_install_py_runs_as_the_webui_runs_it(tmp_path: Path) -> None:
    """A subprocess with a fake ``launch`` module on PYTHONPATH, like launch_utils.run_extension_installer."""
    fake = tmp_path / "webui"
    fake.mkdir()
    log = tmp_path / "pip.log"
    (fake / "launch.py").write_text(
        "import types\nargs = types.SimpleNamespace(skip_install=False)\n"
        "def is_installed(name):\n    return False\n"
        f"def run_pip(command, desc=None):\n    open({str(log)!r}, 'a').write(command + '\\n')\n",
        encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(fake), "STYLUS_HOME": str(tmp_path / "home")}
    # a WebUI venv before the first install: neither stylus_ext nor its dependencies importable
    # (-S: no site-packages, -I would also drop PYTHONPATH), run from the WebUI folder
    out = subprocess.run([sys.executable, "-S", str(ROOT / "install.py")], env=env, capture_output=True,
                         text=True, timeout=60, check=True, cwd=fake)
    assert "[Stylus] install.py" not in out.stdout, out.stdout
    lines = log.read_text().splitlines() if log.exists() else []
    assert all(not any(p in line for p in ("torch", "numpy", "gradio", "transformers", "safetensors"))
               for line in lines)
