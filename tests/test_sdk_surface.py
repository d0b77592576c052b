"""The SDK surface is explicit: ``sdk.__all__`` is documented name by name, every exported object is
defined inside the SDK package, and the SDK does not import the core (so the core can depend on the
SDK, not the other way round)."""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

from stylus_ext import sdk

ROOT = Path(__file__).resolve().parents[1]
SDK_DIR = ROOT / "stylus_ext" / "sdk"
DOCS = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
REFERENCE = DOCS[DOCS.index("## 8. Reference"):]


def _imports(path: Path) -> set[str]:
    """Absolute module names a file imports (``from a import b`` gives ``a.b``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_every_exported_name_is_documented_and_nothing_else_is():
    documented = set(re.findall(r"`sdk\.([A-Za-z_][A-Za-z0-9_]*)", REFERENCE))
    exported = set(sdk.__all__)
    assert len(sdk.__all__) == len(exported), "sdk.__all__ lists a name twice"
    assert exported - documented == set(), "exported but missing from docs/plugins.md section 8"
    assert documented - exported == set(), "documented in section 8 but not in sdk.__all__"
    assert all(hasattr(sdk, name) for name in sdk.__all__)


def test_every_record_field_is_documented():
    records = (sdk.ComposeRequest, sdk.Composition, sdk.ConceptPicks, sdk.Pick, sdk.Candidate, sdk.Adapter,
               sdk.AdapterCard, sdk.Refinement, sdk.SourceContext)
    section = DOCS[DOCS.index("## 3. The records"):DOCS.index("## 4. Options")]
    for record in records:
        missing = [f.name for f in dataclasses.fields(record) if not re.search(rf"`{f.name}[`(]", section)]
        assert not missing, f"{record.__name__} fields not documented in section 3: {missing}"
    table = section[section.index("### ComposeRequest"):section.index("### The answer")]
    rows = re.findall(r"^\| `([a-z_]+)` \|", table, re.M)
    assert rows == [f.name for f in dataclasses.fields(sdk.ComposeRequest)], "the ComposeRequest table is incomplete"


def test_exported_objects_are_defined_in_the_sdk_package():
    for name in sorted(sdk.__all__):
        module = getattr(getattr(sdk, name), "__module__", None) or "stylus_ext.sdk"  # constants carry none
        core = module.startswith("stylus_ext") and not module.startswith("stylus_ext.sdk")
        assert not core, f"sdk.{name} re-exports the core module {module}"


def test_the_sdk_imports_no_core_module():
    files = sorted(SDK_DIR.rglob("*.py"))
    assert any(p.parent != SDK_DIR for p in files), "the SDK's subpackages (cards/, civitai/) are not searched"
    for path in files:
        core = {m for m in _imports(path) if m.startswith("stylus_ext.") and not m.startswith("stylus_ext.sdk")}
        name = path.relative_to(SDK_DIR).as_posix()
        assert not core, f"stylus_ext/sdk/{name} imports core modules {sorted(core)}"


def test_sdk_modules_import_submodules_not_the_package():
    # ``stylus_ext/sdk/__init__.py`` imports these modules; one importing the package itself is a cycle.
    # The kit (testing.py) is imported on its own, after the package.
    for path in sorted(SDK_DIR.rglob("*.py")):
        if path.name not in ("__init__.py", "testing.py"):
            back = {m for m in _imports(path) if m in ("stylus_ext.sdk", "stylus_ext.sdk.__init__")}
            assert not back, f"stylus_ext/sdk/{path.relative_to(SDK_DIR).as_posix()} imports the sdk package"


def test_moved_modules_keep_their_old_import_paths():
    from stylus_ext import hookspecs, testing
    from stylus_ext.sdk import hooks
    from stylus_ext.sdk import testing as kit

    assert testing is kit and hookspecs is hooks
    assert sdk.hookimpl is hooks.hookimpl and sdk.PROJECT == "stylus_ext"
