"""Run by the WebUI on every start (and after "Install from URL"): install Stylus's missing
dependencies, never the WebUI's own pins. The logic lives in ``stylus_ext/webui/installer.py``,
loaded by file path: the package itself needs the dependencies this file installs."""

import importlib.util
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def _load(name, *parts):
    spec = importlib.util.spec_from_file_location(name, os.path.join(HERE, *parts))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


try:
    import launch  # provided by the WebUI

    installer = _load("stylus_ext_installer", "stylus_ext", "webui", "installer.py")
    # files.py needs only the standard library: the package itself (pluggy ...) is not installed yet
    paths = _load("stylus_ext_install_files", "stylus_ext", "sdk", "files.py")
    installer.run(
        os.path.join(HERE, "pyproject.toml"),
        run_pip=launch.run_pip,
        data_dir=paths.data_dir(),
        skip_install=bool(getattr(getattr(launch, "args", None), "skip_install", False)),
    )
except Exception as exc:  # noqa: BLE001 - never stop the WebUI from starting
    print(f"[Stylus] install.py: {type(exc).__name__}: {exc}")
