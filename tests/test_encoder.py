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
