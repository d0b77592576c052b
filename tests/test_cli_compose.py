"""``stylus compose`` on the sample catalog: text, JSON, JSONL input, errors."""

from __future__ import annotations

import json

from stylus_ext.cli import main


def test_text_output(sample_catalog, capsys):
    rc = main(["--catalog", str(sample_catalog), "compose", "a corgi wearing a knit sweater, watercolor",
               "-n", "3", "--seed", "5"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "corgi_dog" in out and "←" in out and "[3] seed 7:" in out


def test_json_is_deterministic(sample_catalog, capsys):
    args = ["--catalog", str(sample_catalog), "compose", "hatsune miku in a cyberpunk city", "-n", "4", "--json",
            "--seed", "3", "--mask", "subsets", "--max-adapters", "3", "--strength", "1.0"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert main(args) == 0
    assert capsys.readouterr().out == first
    plan = json.loads(first)
    assert [im["seed"] for im in plan["images"]] == [3, 4, 5, 6]
    assert sum(len(c["adapters"]) for c in plan["concepts"]) <= 3


def test_jsonl_input(sample_catalog, tmp_path, capsys):
    src = tmp_path / "prompts.txt"
    src.write_text('a red fox\n{"prompt": "a bowl of soup"}\n{broken\n', encoding="utf-8")
    assert main(["--catalog", str(sample_catalog), "compose", "--input", str(src), "-n", "1"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [p["prompt"] for p in lines] == ["a red fox", "a bowl of soup"]  # the broken line is skipped


def test_missing_catalog_is_a_clean_error(tmp_path, capsys):
    rc = main(["--catalog", str(tmp_path / "none.db"), "compose", "a cat"])
    assert rc == 1 and "no catalog" in capsys.readouterr().err
