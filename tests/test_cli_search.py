"""``stylus search`` / ``index`` / ``info`` end to end on a real catalog file."""

from __future__ import annotations

import json

import pytest
from helpers_search import CARDS

from stylus_ext import retrieve
from stylus_ext.catalog.db import Catalog
from stylus_ext.cli import main


@pytest.fixture
def indexed(tmp_path, monkeypatch, encoder):
    monkeypatch.setattr(retrieve, "_encoder_for", lambda identity, plugins=None: encoder)
    from stylus_ext import indexing

    real_index = indexing.index_catalog
    monkeypatch.setattr(indexing, "index_catalog",
                        lambda catalog, plugins=None, **kw: real_index(catalog, plugins, **{**kw, "encoder": encoder}))
    path = tmp_path / "catalog.db"
    catalog = Catalog(path)
    ids = {key: catalog.insert_card(card) for key, card in CARDS.items()}
    catalog.close()
    return str(path), ids


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_index_then_search_json_is_deterministic(indexed, capsys):
    path, ids = indexed
    code, out, _ = run(capsys, "--catalog", path, "index")
    assert code == 0 and "indexed" in out and "rebuilt" in out
    code, out, _ = run(capsys, "--catalog", path, "index")
    assert code == 0 and "embedded 0 new" in out and "unchanged" in out
    args = ["--catalog", path, "search", "a kitten napping on a couch", "-k", "5", "--json"]
    code, first, _ = run(capsys, *args)
    code2, second, _ = run(capsys, *args)
    assert code == code2 == 0 and first == second
    data = json.loads(first)
    top = data["candidates"][0]
    assert top["id"] == ids["cat"] and top["name"] == "fluffcat" and top["civitai_model_id"] == 102
    assert {"id", "name", "title", "category", "base_model", "score", "similarity", "installed"} <= set(top)
    assert top["installed"] is False and len(data["candidates"]) == 5


def test_search_input_file_writes_jsonl(indexed, capsys, caplog, tmp_path):
    path, ids = indexed
    run(capsys, "--catalog", path, "index")
    prompts = tmp_path / "prompts.txt"
    prompts.write_text('a giant robot\n{"prompt": "1girl, hanfu, hair ornament"}\n\n{broken json\n', encoding="utf-8")
    code, out, _ = run(capsys, "--catalog", path, "search", "--input", str(prompts), "-k", "3",
                         "--base-model", "SD1")
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert [x["prompt"] for x in lines] == ["a giant robot", "1girl, hanfu, hair ornament"]
    assert lines[0]["candidates"][0]["id"] == ids["mecha"] and lines[1]["style"] == "tags"
    assert "prompts.txt:4" in caplog.text and "skipped" in caplog.text


def test_search_text_output_and_installed_only(indexed, capsys):
    path, _ = indexed
    run(capsys, "--catalog", path, "index")
    code, out, _ = run(capsys, "--catalog", path, "search", "an owl on a branch", "--installed-only")
    assert code == 0 and "snowy_owl" in out and "owl:v2" not in out and "corgi" not in out


def test_info(indexed, capsys):
    path, _ = indexed
    code, out, _ = run(capsys, "--catalog", path, "info")
    assert code == 0 and "index: missing" in out
    run(capsys, "--catalog", path, "index")
    code, out, _ = run(capsys, "--catalog", path, "info", "--json")
    info = json.loads(out)
    assert info["adapters"] == len(CARDS) and info["installed"] == 2
    assert info["index"]["state"] == "up to date" and info["index"]["count"] == len(CARDS)
    assert info["encoder"] == "transformers:sentence-transformers/all-MiniLM-L6-v2"
    assert info["by_base_model"]["Pony"] == 1 and info["refiner"]
    # how queries run here, in the encoder's words: the packaged weights are local, no ONNX export given
    assert info["queries"].startswith("NumPy forward pass (ONNX Runtime")
    catalog = Catalog(path)
    catalog.update_fields(1, title="something else entirely")
    catalog.close()
    _, out, _ = run(capsys, "--catalog", path, "info")
    assert "stale" in out


def test_search_without_catalog_is_a_clear_error(tmp_path, capsys):
    code, _, err = run(capsys, "--catalog", str(tmp_path / "none.db"), "search", "x")
    assert code == 1 and "no catalog" in err


def test_bad_k(indexed, capsys):
    path, _ = indexed
    code, _, err = run(capsys, "--catalog", path, "search", "x", "-k", "0")
    assert code == 1 and "-k" in err


def test_index_without_example_prompts_is_remembered(indexed, capsys):
    """``stylus index --no-examples`` embeds the search texts only and builds no example rows; a plain
    ``stylus index`` keeps that choice, ``--examples`` embeds them again."""
    from stylus_ext.index import load_index

    path, _ = indexed
    n_examples = len({p for card in CARDS.values() for p in card.example_prompts})
    assert n_examples  # the fixture cards have example prompts to leave out

    def state():
        catalog = Catalog(path, create=False)
        try:
            index = load_index(catalog)
            vectors = catalog.db.execute("select count(*) from embeddings").fetchone()[0]
            return index.has_examples, index.count, vectors, catalog.get_meta("index_examples")
        finally:
            catalog.close()

    assert run(capsys, "--catalog", path, "index", "--no-examples")[0] == 0
    assert state() == (False, len(CARDS), len(CARDS), "0")
    code, out, _ = run(capsys, "--catalog", path, "index")
    assert code == 0 and "embedded 0 new" in out and state()[0] is False
    code, out, _ = run(capsys, "--catalog", path, "info")
    assert code == 0 and "index: up to date" in out and "no example-prompt vectors" in out
    code, out, _ = run(capsys, "--catalog", path, "index", "--examples")
    with_examples = state()
    assert code == 0 and with_examples[0] is True and with_examples[2] > len(CARDS) and with_examples[3] == "1"
    assert run(capsys, "--catalog", path, "search", "a kitten napping on a couch", "-k", "1", "--json")[0] == 0
