"""The `transformers` encoder's ONNX Runtime path: a real export of the packaged MiniLM weights, run by
the real onnxruntime; same vectors as the NumPy forward pass, or it is not used."""

from __future__ import annotations

import logging
import sys
import time

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
pytest.importorskip("torch")

# A prompt and concepts of very different lengths (the length groups), an empty, an over-long and a
# non-ASCII text.
TEXTS = ["masterpiece, best quality, 1girl, solo, looking at viewer, ink wash painting, (red panda:1.2), "
         "gothic cathedral, night sky", "red panda", "ink wash painting", "", "knight " * 400, "東京 タワー at night"]


def helper():
    return sys.modules["stylus_plugin_helper_transformers_encoder_onnx"]


@pytest.fixture(scope="module")
def export(plugins, encoder, tmp_path_factory):
    """An fp32 export of the packaged weights in the hub's layout (``onnx/model.onnx``)."""
    from pathlib import Path

    folder = tmp_path_factory.mktemp("minilm-onnx")
    return helper().export(Path(encoder._source), folder / "onnx" / "model.onnx")


@pytest.fixture
def reference(plugins):
    return plugins.create("encoder", "transformers", runtime="numpy").encode(TEXTS)


def wait_for(enc, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while enc._onnx_state in ("new", "loading") and time.monotonic() < deadline:
        time.sleep(0.05)
    return enc._onnx_state


def test_onnx_runtime_gives_the_numpy_vectors(plugins, export, reference):
    enc = plugins.create("encoder", "transformers", runtime="onnx", onnx_file=str(export))
    vectors = enc.encode(TEXTS)
    assert enc._onnx_state == "ready"
    assert vectors.shape == reference.shape and vectors.dtype == np.float32
    assert np.abs(vectors - reference).max() < 1e-5
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_auto_switches_in_the_background_from_the_third_query_call(plugins, export, reference):
    enc = plugins.create("encoder", "transformers", onnx_file=str(export))
    enc.encode(TEXTS[:2])
    enc.encode(TEXTS[:2])
    assert enc._onnx_state == "new" and enc._onnx is None  # a one-shot answer never loads it
    first = enc.encode(TEXTS)  # the third call starts the load and is itself answered by NumPy
    assert np.abs(first - reference).max() < 1e-5
    assert wait_for(enc) == "ready"
    assert np.abs(enc.encode(TEXTS) - reference).max() < 1e-5


def test_the_model_folders_export_is_found(plugins, export, tmp_path):
    import shutil
    from pathlib import Path

    folder = tmp_path / "my-minilm"
    shutil.copytree(plugins.create("encoder", "transformers")._source, folder)
    assert helper().find_file(folder) is None
    (folder / "onnx").mkdir()
    shutil.copy(export, folder / "onnx" / "model.onnx")
    assert helper().find_file(folder) == folder / "onnx" / "model.onnx"
    assert helper().find_file(folder, str(tmp_path / "missing.onnx")) is None  # an explicit file or nothing
    enc = plugins.create("encoder", "transformers", model=str(folder), runtime="onnx")
    enc.encode(["a castle"])
    assert enc._onnx_state == "ready" and Path(enc._onnx.path) == folder / "onnx" / "model.onnx"


def test_a_quantised_export_is_refused_once(plugins, export, reference, tmp_path, caplog):
    from onnxruntime.quantization import QuantType, quantize_dynamic

    int8 = tmp_path / "model_int8.onnx"
    quantize_dynamic(str(export), str(int8), weight_type=QuantType.QInt8)
    enc = plugins.create("encoder", "transformers", runtime="onnx", onnx_file=str(int8))
    with caplog.at_level(logging.WARNING, logger="stylus"):
        first = enc.encode(TEXTS)
        again = enc.encode(TEXTS)
    assert enc._onnx_state == "off"
    assert np.array_equal(first, reference) and np.array_equal(again, reference)  # the NumPy pass served both
    told = [r.getMessage() for r in caplog.records if "ONNX" in r.getMessage()]
    assert len(told) == 1 and "other vectors" in told[0] and "probe cosine" in told[0]


@pytest.mark.parametrize("content", [b"not a model", b""])
def test_a_broken_file_only_costs_speed(plugins, reference, tmp_path, caplog, content):
    bad = tmp_path / "model.onnx"
    bad.write_bytes(content)
    enc = plugins.create("encoder", "transformers", runtime="onnx", onnx_file=str(bad))
    with caplog.at_level(logging.WARNING, logger="stylus"):
        vectors = enc.encode(TEXTS)
    assert enc._onnx_state == "off" and np.array_equal(vectors, reference)
    assert any("cannot use the ONNX file" in r.getMessage() for r in caplog.records)


def test_without_onnxruntime_numpy_serves_and_says_what_to_install(plugins, export, reference, monkeypatch, caplog):
    monkeypatch.setattr(helper(), "available", lambda: False)
    enc = plugins.create("encoder", "transformers", runtime="onnx", onnx_file=str(export))
    with caplog.at_level(logging.WARNING, logger="stylus"):
        vectors = enc.encode(TEXTS)
    assert enc._onnx_state == "off" and np.array_equal(vectors, reference)
    assert any("pip install onnxruntime" in r.getMessage() for r in caplog.records)
    quiet = plugins.create("encoder", "transformers")  # auto, nothing asked for: silent, NumPy
    with caplog.at_level(logging.WARNING, logger="stylus"):
        caplog.clear()
        for _ in range(4):
            quiet.encode(TEXTS[:1])
        assert wait_for(quiet) == "off" and not caplog.records


def test_a_runtime_failure_mid_run_falls_back_once(plugins, export, reference, caplog):
    enc = plugins.create("encoder", "transformers", runtime="onnx", onnx_file=str(export))
    enc.encode(TEXTS[:1])
    assert enc._onnx_state == "ready"

    def broken(*args, **kwargs):
        raise RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : out of memory")

    enc._onnx.session.run = broken
    with caplog.at_level(logging.WARNING, logger="stylus"):
        first = enc.encode(TEXTS)
        again = enc.encode(TEXTS)
    assert np.array_equal(first, reference) and np.array_equal(again, reference)
    assert enc._onnx_state == "off" and enc._onnx is None
    assert sum("ONNX Runtime failed" in r.getMessage() for r in caplog.records) == 1


def test_query_runtime_says_what_runs_and_what_is_missing(plugins, export, tmp_path, monkeypatch):
    assert plugins.create("encoder", "transformers", runtime="numpy").query_runtime().endswith("(runtime numpy)")
    missing = plugins.create("encoder", "transformers", onnx_file=str(tmp_path / "none.onnx")).query_runtime()
    assert "no fp32 export found" in missing
    ready = plugins.create("encoder", "transformers", onnx_file=str(export))
    assert ready.query_runtime().startswith("ONNX Runtime") and ready._onnx is None  # said, not loaded
    monkeypatch.setattr(helper(), "available", lambda: False)
    assert "pip install onnxruntime" in ready.query_runtime()
