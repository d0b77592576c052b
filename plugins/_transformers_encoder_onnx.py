"""ONNX Runtime forward pass for the ``transformers`` encoder's queries (a helper of ``transformers_encoder.py``).

A query's forward pass is most of a warm search (performance issue). On one thread here ONNX Runtime
took 9.2 ms p50 per bench prompt against 18.1 ms for the NumPy forward pass, with the same vectors
(cosine 1.000000 on 200 prompts); on the 11.8K real-card catalogue a search took 28.7 ms p50 against
42.7 ms, with every retrieval figure unchanged. An int8 export was faster still (3.5 ms) but moved the
vectors (cosine 0.93–0.96) and lost recall (recover R@150 0.813 → 0.807, silver 0.897 → 0.889), so
a file whose vectors differ from the weights' is refused (:func:`verified`): the index's vectors and
the query's must come from one model.

Used only when ``onnxruntime`` (or ``onnxruntime-gpu``: the same module) is importable and an fp32
export of the same weights is found (:func:`find_file`). Stylus never installs it: installing
``onnxruntime`` beside an extension's ``onnxruntime-gpu`` breaks both, so it is the user's choice
(``pip install onnxruntime``). The hub's ``sentence-transformers/all-MiniLM-L6-v2`` ships one as
``onnx/model.onnx``; :func:`export` writes one from a model folder (needs torch and ``onnx``).
"""

from __future__ import annotations

import importlib.util
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("stylus")
#: Where a model folder keeps its export (the hub repository's layout first).
FOLDER_NAMES = ("onnx/model.onnx", "model.onnx")
#: Probe texts whose vectors must match the weights' before a file is used.
PROBES = ("a castle that looks like Studio Ghibli", "1girl, looking at viewer, ink wash painting, (red panda:1.2)",
          "gothic cathedral at night")
MIN_COSINE = 0.9999


def available() -> bool:
    """Whether ``onnxruntime`` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec("onnxruntime") is not None
    except (ImportError, ValueError):
        return False


def find_file(folder: Path, explicit: str = "", hub_id: str | None = None) -> Path | None:
    """The ONNX file for a model: ``explicit`` (option ``onnx_file``), else the model folder's
    ``onnx/model.onnx`` / ``model.onnx``, else the hub cache's copy of ``hub_id``'s (never downloaded)."""
    if explicit:
        path = Path(explicit).expanduser()
        return path if path.is_file() else None
    for name in FOLDER_NAMES:
        if (folder / name).is_file():
            return folder / name
    if hub_id and importlib.util.find_spec("huggingface_hub") is not None:
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(hub_id, FOLDER_NAMES[0])
        except Exception:  # noqa: BLE001 - an odd cache is no ONNX file, never an error
            return None
        if isinstance(cached, str) and Path(cached).is_file():
            return Path(cached)
    return None


class OnnxBert:
    """Mean-pooled, L2-normalised vectors from an ONNX export of a BERT model (CPU provider).

    Takes the hub's export (inputs ``input_ids``, ``attention_mask``, ``token_type_ids``; output
    ``last_hidden_state``) or one that already pools (a 2-d output)."""

    def __init__(self, path: Path, tokenizer: Any, threads: int = 1) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, int(threads))
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # no graph-optimisation chatter on stderr
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.tokenizer = tokenizer
        self.path = path

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors of ``texts``, run in groups of similar length (a prompt and its short concepts
        padded to one width would cost the prompt's length times their count)."""
        encodings = self.tokenizer.encode_batch(list(texts))
        groups: list[list[int]] = []
        for i in sorted(range(len(encodings)), key=lambda i: -len(encodings[i].ids)):
            if not groups or 2 * len(encodings[i].ids) < len(encodings[groups[-1][0]].ids):
                groups.append([])
            groups[-1].append(i)
        rows: dict[int, np.ndarray] = {}
        for group in groups:
            rows.update(zip(group, self._run([encodings[i] for i in group]), strict=True))
        return np.stack([rows[i] for i in range(len(encodings))])

    def _run(self, encodings: list[Any]) -> np.ndarray:
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, e in enumerate(encodings):
            ids[row, :len(e.ids)] = e.ids
            mask[row, :len(e.ids)] = 1
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        out = self.session.run(None, {k: v for k, v in feed.items() if k in self.inputs})[0].astype(np.float32)
        if out.ndim == 3:
            weights = mask[:, :, None].astype(np.float32)
            out = (out * weights).sum(1) / np.maximum(weights.sum(1), 1e-9)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def verified(candidate: OnnxBert, reference: Any) -> float:
    """The lowest cosine between ``candidate``'s and ``reference``'s (the weights') probe vectors."""
    return float(np.min(np.sum(candidate.encode(PROBES) * reference.encode(list(PROBES)), axis=1)))


def load(path: Path, reference: Any, threads: int) -> OnnxBert | None:
    """An :class:`OnnxBert` for ``path`` that gives ``reference``'s vectors, else None (told once, in the log)."""
    try:
        model = OnnxBert(path, reference.tokenizer, threads)
        cosine = verified(model, reference)
    except Exception as exc:  # noqa: BLE001 - a broken file or runtime only costs speed
        log.warning("encoder 'transformers': cannot use the ONNX file %s (%s); queries use the NumPy forward pass",
                    path, f"{type(exc).__name__}: {exc}"[:300])
        return None
    if cosine < MIN_COSINE:
        log.warning("encoder 'transformers': the ONNX file %s gives other vectors than the model's weights "
                    "(probe cosine %.4f: quantised, or another model), so the index could not be searched with "
                    "them; queries use the NumPy forward pass", path, cosine)
        return None
    return model


def export(folder: Path, path: Path) -> Path:
    """Write an fp32 ONNX export of the BERT model in ``folder`` to ``path``, in the hub's layout
    (needs torch, transformers and the ``onnx`` package)."""
    import torch
    from transformers import AutoModel

    class Graph(torch.nn.Module):  # keyword arguments: BertModel.forward's order differs by version
        def __init__(self) -> None:
            super().__init__()
            self.bert = AutoModel.from_pretrained(str(folder), local_files_only=True).eval()

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)[0]

    model = Graph().eval()
    dummy = torch.ones(1, 8, dtype=torch.long)
    axes = {0: "batch", 1: "tokens"}
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on BERT's masks, not problems of this graph
        kwargs: dict[str, Any] = {
            "input_names": ["input_ids", "attention_mask", "token_type_ids"], "output_names": ["last_hidden_state"],
            "opset_version": 17,
            "dynamic_axes": {"input_ids": axes, "attention_mask": axes, "token_type_ids": axes,
                             "last_hidden_state": axes}}
        try:  # the TorchScript exporter: torch 2.5+ defaults to dynamo, which needs onnxscript
            torch.onnx.export(model, (dummy, dummy, torch.zeros_like(dummy)), str(path), dynamo=False, **kwargs)
        except TypeError:  # an older torch: no dynamo argument (its only exporter is TorchScript)
            torch.onnx.export(model, (dummy, dummy, torch.zeros_like(dummy)), str(path), **kwargs)
    return path
