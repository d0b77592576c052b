"""The `transformers` encoder on the real all-MiniLM-L6-v2 weights (also run with transformers 4.30.2)."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.a1111


def test_similar_texts_are_closer_than_unrelated(encoder):
    v = encoder.encode(["a cat sleeping on a sofa", "a kitten napping on a couch", "a rocket launching into space"])
    assert v.shape == (3, encoder.dimension) and v.dtype == np.float32
    assert v[0] @ v[1] > v[0] @ v[2] + 0.3
    assert v[0] @ v[1] > v[1] @ v[2] + 0.3


def test_unit_norm_and_empty_input(encoder):
    v = encoder.encode(["watercolor painting", "", "x" * 5000])  # empty and over-long texts work too
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert encoder.encode([]).shape == (0, encoder.dimension)


def test_batch_equals_single(encoder):
    texts = ["short", "a much longer sentence about a knight in shining armor riding a horse", "neon city at night"]
    batch = encoder.encode(texts)
    single = np.stack([encoder.encode([t])[0] for t in texts])
    assert np.allclose(batch, single, atol=1e-5)


def test_identity_is_stable_and_dimension_from_config(plugins, encoder):
    from stylus_ext.plugins import PluginManager  # noqa: F401 - the fixture built it

    assert encoder.identity == "transformers:sentence-transformers/all-MiniLM-L6-v2"
    assert encoder.dimension == 384
    # The hub id names the same weights: same identity (resolved to the packaged copy offline).
    other = plugins.create("encoder", "transformers", model="sentence-transformers/all-MiniLM-L6-v2")
    assert other.identity == encoder.identity


def test_env_prefix_and_local_folder_identity(plugins, encoder, monkeypatch, tmp_path):
    import shutil

    source = encoder._source
    copy = tmp_path / "my-minilm"
    shutil.copytree(source, copy)
    monkeypatch.setenv("STYLUS_ENCODER_MODEL", str(copy))
    local = plugins.create("encoder", "transformers")
    assert local.identity.startswith("transformers:local/my-minilm@")
    v = local.encode(["a red fox in the snow"])
    assert np.allclose(v, encoder.encode(["a red fox in the snow"]), atol=1e-5)


def test_missing_model_is_a_clear_error(plugins, tmp_path):
    broken = tmp_path / "empty-model"
    broken.mkdir()
    (broken / "config.json").write_text("{}")
    enc = plugins.create("encoder", "transformers", model=str(broken))
    with pytest.raises((RuntimeError, ValueError, OSError)):
        enc.encode(["hello"])


TEXTS = ["a cat sleeping on a sofa", "", "knight " * 400, "masterpiece, best quality, 1girl, (red dress:1.2)",
         "Ünïcödé 東京 タワー at night", "A smiling sloth wearing a leather jacket, bowtie, kilt and cowboy hat."]


def test_numpy_runtime_gives_the_torch_vectors(plugins):
    """Same weights, same vectors (so one identity): also for over-long, empty and non-ASCII texts."""
    torch_enc = plugins.create("encoder", "transformers", runtime="torch")
    numpy_enc = plugins.create("encoder", "transformers", runtime="numpy")
    assert numpy_enc.identity == torch_enc.identity
    expected = torch_enc.encode(TEXTS)
    got = numpy_enc.encode(TEXTS)
    assert got.shape == expected.shape and got.dtype == np.float32
    assert np.abs(got - expected).max() < 1e-5


def test_auto_runtime_answers_queries_without_torch():
    """A query (a few texts) on the CPU never imports torch or transformers: the cold CLI path."""
    import subprocess
    import sys

    code = ("import sys; from stylus_ext.plugins import PluginManager; "
            "e = PluginManager(entry_points_enabled=False).create('encoder', 'transformers', device='cpu'); "
            "v = e.encode(['a red fox in the snow', 'castle']); "
            "print(v.shape, e.dimension, 'torch' in sys.modules, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split()[-4:] == ["384)", "384", "False", "False"], out.stdout + out.stderr


def test_threads_option_pins_the_forward_pass_and_restores_torch(plugins):
    import torch

    enc = plugins.create("encoder", "transformers", runtime="torch", threads=1)
    enc.encode(["warm up"])
    seen = []
    forward = enc._model.forward

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return forward(*args, **kwargs)

    enc._model.forward = spy
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        enc.encode(["a castle on a hill"])
        assert seen == [1] and torch.get_num_threads() == 2
        auto = plugins.create("encoder", "transformers", runtime="torch")  # threads=0: 1 for queries only
        assert auto.threads_for(1) == 1 and auto.threads_for(200) == 0
    finally:
        torch.set_num_threads(before)


def test_bulk_embedding_uses_torch_and_batches(plugins):
    enc = plugins.create("encoder", "transformers", device="cpu")
    texts = [f"card number {i} about dragons" for i in range(100)]  # more than a query (64 texts)
    vectors = enc.encode(texts)
    assert enc._model is not None and enc.batch_size == 64  # torch, CPU batch
    assert np.allclose(vectors[3], enc.encode([texts[3]])[0], atol=1e-5)  # the query path agrees


def test_a_hub_ids_cached_snapshot_serves_queries_without_torch(encoder, tmp_path):
    """A WebUI without the weights package names the hub id; once transformers has downloaded it, the
    hub cache's snapshot folder serves queries through the NumPy pass (before, every query went to torch)."""
    import json
    import os
    import shutil
    import subprocess
    import sys

    snapshot = tmp_path / "hub" / "models--someone--minilm-copy" / "snapshots" / "0123abcd"
    shutil.copytree(encoder._source, snapshot)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0123abcd")
    code = ("import json, sys; from stylus_ext.plugins import PluginManager; "
            "e = PluginManager(entry_points_enabled=False).create('encoder', 'transformers', "
            "model='someone/minilm-copy', runtime='numpy'); "
            "v = e.encode(['a red fox in the snow', 'castle']); "
            "print(json.dumps([e.identity, e.dimension, 'torch' in sys.modules, v.tolist()]))")
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env,
                         check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    identity, dimension, imported_torch, vectors = json.loads(out.stdout.strip().splitlines()[-1])
    assert identity == "transformers:someone/minilm-copy" and dimension == 384 and not imported_torch
    assert np.abs(np.array(vectors) - encoder.encode(["a red fox in the snow", "castle"])).max() < 1e-5
    # Not downloaded: runtime numpy says what it needs (auto would load it with torch).
    env["HF_HUB_CACHE"] = str(tmp_path / "empty")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env,
                         check=False)
    assert out.returncode != 0 and "runtime numpy needs a local BERT folder" in out.stderr
