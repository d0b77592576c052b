"""``stylus demo`` end to end in a subprocess: offline, on a fresh data folder, with the real model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stylus_ext.cli.demo import DEMO_PROMPTS

pytestmark = pytest.mark.slow


def _run(args: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STYLUS_")}
    env.update(STYLUS_HOME=str(home), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", STYLUS_SECRETS_DIR=str(home / "k"),
               OPENAI_API_KEY="", PYTHONIOENCODING="utf-8")
    return subprocess.run([sys.executable, "-m", "stylus_ext", *args], env=env, capture_output=True, text=True,
                          timeout=300, check=False, encoding="utf-8")


def _pipeline_ready() -> bool:
    from stylus_ext.pipeline import Stylus

    try:
        Stylus(None)
    except NotImplementedError:
        return False
    except Exception:
        return True
    return True


def test_demo_runs_offline_and_shows_compositions(tmp_path: Path) -> None:
    home = tmp_path / "home"
    done = _run(["demo"], home)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "Traceback" not in done.stderr
    assert (home / "demo" / "catalog.db").exists()
    assert len(list((home / "demo" / "Lora").rglob("*.safetensors"))) >= 60
    assert out.count("=== ") == len(DEMO_PROMPTS)
    assert out.count("retrieval top 5:") == len(DEMO_PROMPTS)
    # One line per deliberately broken file, before the prompts.
    head = out.split("=== ", 1)[0]
    for name in ("broken_truncated", "hostile_header", "garbled_header", "bad_sidecar_style", "ink=wash_style"):
        lines = [line for line in head.splitlines() if name in line]
        assert len(lines) == 1, (name, lines)
    if _pipeline_ready():
        assert "<lora:" in out and "images:" in out
    else:
        assert "composition is not available yet" in out

    # The JSON form, into an explicit --catalog, reusing the scanned folder.
    other = tmp_path / "elsewhere.db"
    again = _run(["--catalog", str(other), "demo", "--json"], home)
    assert again.returncode == 0, again.stderr[-3000:]
    data = json.loads(again.stdout)
    assert other.exists() and data["catalog"] == str(other)
    assert {p["path"].rsplit("/", 1)[-1] for p in data["problems"]} >= {
        "broken_truncated.safetensors", "hostile_header.safetensors", "garbled_header.safetensors"}
    assert [p["prompt"] for p in data["prompts"]] == [p for p, _ in DEMO_PROMPTS]
    for item in data["prompts"]:
        assert 1 <= len(item["retrieval"]) <= 5
        assert all(r["base_model"] in ("unknown", item["base_model"]) or
                   {r["base_model"], item["base_model"]} <= {"SDXL", "Pony", "Illustrious"}
                   for r in item["retrieval"])
    if data["composition_available"]:
        rewritten = [im["prompt"] for item in data["prompts"] for im in item["composition"]["images"]]
        assert sum("<lora:" in p for p in rewritten) >= len(DEMO_PROMPTS)
        assert all("ink=wash" not in p for p in rewritten)
