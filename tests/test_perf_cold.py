"""A cold `stylus compose` / `stylus search` loads only what one answer needs (the performance issue)."""

from __future__ import annotations

import json
import subprocess
import sys

from stylus_ext.cli import requested_command

HEAVY = ("torch", "transformers", "stylus_ext.civitai.sync", "stylus_ext.cli.scan", "stylus_ext.cli.demo",
         "stylus_ext.civitai.download")
PROBE = ("import json, sys; from stylus_ext.cli import main; code = main(sys.argv[1:]); "
         f"print(json.dumps({{'code': code, 'loaded': [m for m in {HEAVY!r} if m in sys.modules]}}))")


def _run(*argv: str) -> tuple[list[str], dict]:
    out = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=300,
                         check=False)
    lines = out.stdout.strip().splitlines()
    assert out.returncode == 0 and lines, out.stdout + out.stderr
    return lines[:-1], json.loads(lines[-1])


def test_cold_compose_imports_neither_torch_nor_other_commands(sample_catalog):
    lines, probe = _run("--catalog", str(sample_catalog), "compose", "a watercolor fox in a snowy forest",
                        "-n", "2", "--json")
    plan = json.loads(lines[0])
    assert plan["prompt"] == "a watercolor fox in a snowy forest" and len(plan["images"]) == 2
    assert probe == {"code": 0, "loaded": []}


def test_cold_search_imports_no_torch(sample_catalog):
    lines, probe = _run("--catalog", str(sample_catalog), "search", "watercolor fox", "-k", "3", "--json")
    assert len(json.loads(lines[0])["candidates"]) == 3
    assert probe["code"] == 0 and "torch" not in probe["loaded"] and "transformers" not in probe["loaded"]


def test_requested_command_reads_past_global_options():
    assert requested_command(["--catalog", "compose", "search", "x"]) == "search"  # a catalog named like a command
    assert requested_command(["-v", "compose", "a cat"]) == "compose"
    assert requested_command(["--help"]) is None and requested_command(["pin", "3"]) is None  # not a module name
    assert requested_command([]) is None
