"""Shared fixtures: an isolated data dir, the built-in plugins, the real MiniLM encoder (loaded once),
and the embedded sample LoRA folder scanned and indexed into a real catalog."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

# Never touch the user's real data folder or a model hub from the tests.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Read before the session fixture below clears every STYLUS_* variable.
WITHOUT_TORCH = os.environ.get("STYLUS_TESTS_WITHOUT_TORCH") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without torch (see :func:`encoder`), the encoder's own tests are skipped, saying why."""
    if not WITHOUT_TORCH:
        return
    skip = pytest.mark.skip(reason="the encoder's tests need torch and the model weights (not in this venv)")
    for item in items:
        if item.path.name == "test_encoder.py":
            item.add_marker(skip)


@pytest.fixture(autouse=True, scope="session")
def _isolated_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    home = tmp_path_factory.mktemp("stylus-home")
    os.environ["STYLUS_HOME"] = str(home)
    os.environ["STYLUS_SECRETS_DIR"] = str(home / "keys")
    for var in [v for v in os.environ if v.startswith("STYLUS_") and v not in ("STYLUS_HOME", "STYLUS_SECRETS_DIR")]:
        del os.environ[var]


@pytest.fixture(scope="session")
def plugins(tmp_path_factory: pytest.TempPathFactory):
    """A plugin manager with the built-in plugins only (no entry points, an empty user folder)."""
    from stylus_ext.plugins import PluginManager

    return PluginManager(user_dir=tmp_path_factory.mktemp("no-user-plugins"), entry_points_enabled=False)


@pytest.fixture(scope="session")
def encoder(plugins):
    """The default `transformers` encoder on the real all-MiniLM-L6-v2 weights, loaded once.

    ``STYLUS_TESTS_WITHOUT_TORCH=1`` (the Forge Neo environment of ``make test``: there is no CPU
    torch wheel for Python 3.13 on the project's machines) skips the tests that need the model;
    anywhere else a missing torch is an error.
    """
    if WITHOUT_TORCH:
        pytest.importorskip("torch", reason="no torch in this environment (Python 3.13 without a CPU wheel)")
    return plugins.create("encoder", "transformers")


@pytest.fixture(scope="session")
def sample_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from stylus_ext.sample import make_sample_folder

    return make_sample_folder(tmp_path_factory.mktemp("sample") / "Lora")


@pytest.fixture(scope="session")
def _sample_catalog_master(tmp_path_factory: pytest.TempPathFactory, sample_folder: Path, plugins, encoder) -> Path:
    from stylus_ext.catalog.db import Catalog
    from stylus_ext.catalog.scan import scan_folders
    from stylus_ext.indexing import index_catalog

    path = tmp_path_factory.mktemp("catalog-master") / "catalog.db"
    catalog = Catalog(path)
    scan_folders(catalog, [str(sample_folder)], plugins=plugins)
    index_catalog(catalog, plugins)
    catalog.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    catalog.close()
    return path


@pytest.fixture
def sample_catalog(tmp_path: Path, _sample_catalog_master: Path) -> Path:
    """Path of a private copy of the scanned and indexed sample catalog (safe to mutate)."""
    dest = tmp_path / "catalog"
    shutil.copytree(_sample_catalog_master.parent, dest)
    return dest / _sample_catalog_master.name


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the checkout (the project's redistributable prompt sets)."""
    root = Path(__file__).resolve().parents[1]
    for candidate in (root.parent / "shared" / "data", root / "shared" / "data"):
        if candidate.is_dir():
            return candidate
    pytest.skip("../shared/data is not present beside this checkout")
