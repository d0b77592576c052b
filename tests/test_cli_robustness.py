"""What a new user types wrong: hostile ``--input`` files, misspelled base models and composers,
composer options on the command line, catalog paths that cannot work. One clear line, no traceback."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import pytest

from stylus_ext import sdk
from stylus_ext.catalog.db import Catalog, CatalogError
from stylus_ext.cli import main
from stylus_ext.compose import run_composer


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_input_file_keeps_good_lines_around_bad_bytes_bom_and_non_text_prompts(sample_catalog, tmp_path, capsys,
                                                                              caplog):
    src = tmp_path / "prompts.jsonl"
    src.write_bytes(b'\xef\xbb\xbf{"prompt": "a red fox"}\n'  # Notepad's byte-order mark
                    b'{"prompt": null}\n{"prompt": 5}\n{"prompt": "  "}\n'
                    b'caf\xe9 latte in latin-1\n'  # not UTF-8: this line only is lost
                    b'{"prompt": "a bowl of soup"}\n')
    code, out, err = _run(capsys, "--catalog", str(sample_catalog), "search", "--input", str(src), "-k", "2")
    assert code == 0
    assert [json.loads(line)["prompt"] for line in out.splitlines()] == ["a red fox", "a bowl of soup"]
    warned = caplog.text
    assert ":5: not UTF-8" in warned and ":2: not a JSON object" in warned and "Traceback" not in err


def test_blank_prompt_is_an_error(sample_catalog, capsys):
    code, out, err = _run(capsys, "--catalog", str(sample_catalog), "compose", "   ")
    assert code == 1 and not out and err.strip() == "stylus: error: the prompt is empty"


@pytest.mark.parametrize("spelling", ["sd1.5", "SD 1.5", "sd15"])
def test_base_model_spellings_filter_like_the_family_name(sample_catalog, capsys, spelling):
    code, out, _ = _run(capsys, "--catalog", str(sample_catalog), "search", "a corgi", "-k", "60", "--json",
                        "--base-model", spelling)
    assert code == 0
    families = {c["base_model"] for c in json.loads(out)["candidates"]}
    assert families and not families & {"SDXL", "Pony", "Illustrious"}  # "sdxl" ≠ no filter at all


def test_unknown_base_model_is_refused(sample_catalog, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--catalog", str(sample_catalog), "compose", "a corgi", "--base-model", "SD 9000"])
    assert exc.value.code == 2
    assert "unknown base model 'SD 9000'" in capsys.readouterr().err


def test_unknown_composer_is_an_error_not_a_silent_fallback(sample_catalog, capsys):
    code, out, err = _run(capsys, "--catalog", str(sample_catalog), "compose", "a corgi", "--composer", "nope")
    assert code == 1 and not out
    assert err.count("\n") == 1 and "no composer named 'nope'" in err and "offline" in err


def test_composer_options_reach_the_composer_and_are_checked(sample_catalog, capsys):
    base = ["--catalog", str(sample_catalog), "compose", "a corgi in the snow", "-n", "1", "--json"]
    code, out, _ = _run(capsys, *base)
    assert code == 0 and json.loads(out)["concepts"][0]["adapters"]  # corgi_dog by default
    code, out, _ = _run(capsys, *base, "--composer-option", "per_concept=0")
    assert code == 0 and not any(c["adapters"] for c in json.loads(out)["concepts"])
    code, _, err = _run(capsys, *base, "--composer-option", "keep=lots")
    assert code == 1 and "cannot read 'lots' as float" in err
    code, _, err = _run(capsys, *base, "--composer", "openai", "--composer-option", "api_key=sk-secret")
    assert code == 1 and "secret" in err and "sk-secret" not in err


def test_offline_composer_failing_does_not_claim_to_fall_back_to_itself():
    class _Dropped(sdk.Composer):
        name = "offline"

        def compose(self, request: sdk.ComposeRequest) -> sdk.Composition:
            return sdk.Composition((sdk.ConceptPicks("x", (sdk.Pick(424242, "made up"),)),), "offline")

    class _Plugins:
        def create(self, kind: str, name: str, **options: object) -> sdk.Composer:
            return _Dropped()

    request = sdk.ComposeRequest(prompt="a corgi", candidates=(), time_budget_s=5.0)
    res = run_composer(request, "offline", plugins=_Plugins())
    assert res.composition.concepts == ()
    failed = [w for w in res.warnings if "failed" in w]
    assert failed and all(w.endswith("no adapters") for w in failed)
    assert not any("using the offline composer" in w for w in res.warnings)


def test_catalog_path_problems_are_named(tmp_path):
    with pytest.raises(CatalogError, match="is a folder"):
        Catalog(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    with pytest.raises(CatalogError, match="cannot create the catalog folder"):
        Catalog(blocker / "sub" / "catalog.db")


@pytest.mark.skipif(os.name == "nt", reason="needs POSIX permission bits")
def test_catalog_in_read_only_folder_says_so(tmp_path, monkeypatch):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    if os.geteuid() == 0:  # root (as in CI) ignores permission bits: let SQLite see them as other users do
        import sqlite3

        real_connect = sqlite3.connect

        def connect(database, *args, **kwargs):
            path = Path(str(database))
            if not kwargs.get("uri") and not path.exists() and not path.parent.stat().st_mode & 0o222:
                raise sqlite3.OperationalError("unable to open database file")
            return real_connect(database, *args, **kwargs)

        monkeypatch.setattr(sqlite3, "connect", connect)
    try:
        with pytest.raises(CatalogError, match="read-only"):
            Catalog(folder / "catalog.db")
    finally:
        folder.chmod(0o755)


def test_scan_problems_without_folders_lists_the_catalogs_problems(sample_catalog, capsys):
    # `stylus info` points here: "see `stylus scan --problems`"
    code, out, _ = _run(capsys, "--catalog", str(sample_catalog), "scan", "--problems")
    assert code == 0
    assert "hostile_header.safetensors: header length" in out and "broken_truncated" in out
    code, _, err = _run(capsys, "--catalog", str(sample_catalog), "scan")
    assert code == 1 and "give one or more LoRA folders" in err


def test_scan_of_a_missing_folder_says_so_and_keeps_the_catalog(sample_catalog, tmp_path, capsys):
    before = len(list(Catalog(sample_catalog).adapters()))
    code, out, err = _run(capsys, "--catalog", str(sample_catalog), "scan", str(tmp_path / "Lroa"))
    assert code == 1 and not out and "Lroa is not a folder" in err
    assert len(list(Catalog(sample_catalog).adapters())) == before


def test_index_before_any_scan_neither_creates_a_catalog_nor_loads_a_model(tmp_path, capsys, monkeypatch):
    from stylus_ext import indexing

    monkeypatch.setattr(indexing, "index_catalog", lambda *a, **k: pytest.fail("nothing to index"))
    code, _, err = _run(capsys, "--catalog", str(tmp_path / "new.db"), "index")
    assert code == 1 and "no catalog at" in err and not (tmp_path / "new.db").exists()
    Catalog(tmp_path / "empty.db").close()
    code, out, _ = _run(capsys, "--catalog", str(tmp_path / "empty.db"), "index")
    assert code == 0 and "no adapters yet" in out and "stylus scan DIR" in out


def test_scan_of_a_folder_without_loras_says_so(tmp_path, capsys):
    (tmp_path / "Lora").mkdir()
    (tmp_path / "Lora" / "readme.txt").write_text("not a LoRA", encoding="utf-8")
    code, out, _ = _run(capsys, "--catalog", str(tmp_path / "c.db"), "scan", str(tmp_path / "Lora"))
    assert code == 0 and "scanned 0 files" in out and "no LoRA files" in out


def test_a_reader_that_leaves_early_is_not_an_error(sample_catalog, monkeypatch, capsys):
    # `stylus compose --input big.txt | head -1`: EPIPE ends the command quietly (exit 141, like SIGPIPE)
    read_end, write_end = os.pipe()
    os.close(read_end)
    broken = open(write_end, "w", buffering=1, encoding="utf-8")  # noqa: SIM115 - closed below
    monkeypatch.setattr("sys.stdout", broken)
    try:
        code = main(["--catalog", str(sample_catalog), "info"])
    finally:
        monkeypatch.undo()
        with contextlib.suppress(OSError):
            broken.close()
    assert code == 141
    assert "Broken pipe" not in capsys.readouterr().err


def test_openai_default_url_without_a_key_fails_at_once(monkeypatch):
    # `stylus compose --composer openai` with nothing configured: say what to set, no retries/waits
    monkeypatch.delenv("STYLUS_LLM_API_KEY", raising=False)
    client = sdk.OpenAIClient("https://api.openai.com/v1", None, max_retries=3)
    monkeypatch.setattr(client._session, "post", lambda *a, **k: pytest.fail("no request without a key"))
    with pytest.raises(sdk.LLMError, match="OpenAI needs an API key") as exc:
        client.chat([{"role": "user", "content": "hi"}], "gpt-4o-mini")
    assert "base_url" in str(exc.value) and client.attempts == 0


def test_text_output_says_a_composer_warning_once(sample_catalog, tmp_path, monkeypatch, capsys, caplog):
    from stylus_ext import plugins as plugins_module

    user = tmp_path / "user"
    user.mkdir()
    (user / "boom.py").write_text(
        "from stylus_ext import sdk\n\nclass Boom(sdk.Composer):\n    name = 'boom'\n\n"
        "    def compose(self, request):\n        raise RuntimeError('model on fire: ' + request.prompt)\n\n"
        "@sdk.hookimpl\ndef register_composers(register):\n    register(Boom)\n", encoding="utf-8")
    pm = plugins_module.PluginManager(user_dir=user, entry_points_enabled=False, environ={})
    monkeypatch.setattr(plugins_module, "get_plugins", lambda reload=False: pm)
    code, out, err = _run(capsys, "--catalog", str(sample_catalog), "compose", "a corgi", "-n", "1",
                          "--composer", "boom")
    assert code == 0 and "warning: composer 'boom' failed (RuntimeError: model on fire: a corgi)" in out
    assert "model on fire" not in err + caplog.text  # not logged to stderr as well
    code, out, _ = _run(capsys, "--catalog", str(sample_catalog), "compose", "a dog", "-n", "1", "--json",
                        "--composer", "boom")
    assert code == 0 and "model on fire: a dog" in caplog.text  # JSON goes to files: stderr still says it


def test_catalog_option_after_the_command_works_too(sample_catalog, capsys):
    code, out, _ = _run(capsys, "search", "a corgi", "-k", "1", "--json", "--catalog", str(sample_catalog))
    assert code == 0 and json.loads(out)["candidates"][0]["name"] == "corgi_dog"


def test_quoted_tilde_paths_mean_the_home_folder(tmp_path, monkeypatch, capsys):
    # `export STYLUS_HOME="~/stylus"` in a launcher script, or `--catalog "~/c.db"`: not a folder named "~"
    from stylus_ext.paths import data_dir, default_catalog_path
    from stylus_ext.plugins import user_plugins_dir

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert data_dir({"STYLUS_HOME": "~/stylus"}) == tmp_path / "stylus"
    assert default_catalog_path({"STYLUS_CATALOG": "~/c.db"}) == tmp_path / "c.db"
    assert user_plugins_dir({"STYLUS_PLUGINS_DIR": "~/p"}) == tmp_path / "p"
    code, _, err = _run(capsys, "--catalog", "~/none.db", "info")
    assert code == 1 and f"no catalog at {tmp_path / 'none.db'}" in err and not (tmp_path / "~").exists()
    (tmp_path / "Lora").mkdir()
    code, out, err = _run(capsys, "--catalog", "~/c.db", "scan", "~/Lora")
    assert code == 0 and "no LoRA files" in out and (tmp_path / "c.db").exists() and not (tmp_path / "~").exists()


def test_a_lone_surrogate_prompt_costs_its_line_not_the_batch(sample_catalog, tmp_path, capsys, caplog):
    src = tmp_path / "prompts.jsonl"
    src.write_text('{"prompt": "a red fox"}\n{"prompt": "bad \\ud800 half"}\n{"prompt": "a bowl of soup"}\n',
                   encoding="utf-8")
    code, out, err = _run(capsys, "--catalog", str(sample_catalog), "compose", "--input", str(src))
    assert code == 0 and "Traceback" not in err
    assert [json.loads(line)["prompt"] for line in out.splitlines()] == ["a red fox", "a bowl of soup"]
    assert ":2: the prompt holds a lone surrogate" in caplog.text
