"""Composer ``transformers``: a local chat/instruct causal LM (folder or hub id) via ``transformers``.

Same prompt, parsing and validation as the HTTP composer (``sdk.build_composer_messages`` /
``sdk.parse_composer_answer``): card text goes in as quoted data, answers may only name candidate
numbers. The model is loaded once per process (shared by instances with the same model/device/
dtype), on the GPU when present; ``close()`` unloads it.

Chat templates need transformers >= 4.34: on the AUTOMATIC1111 pin (4.30.2) this composer refuses
with a clear message pointing to the ``openai`` composer (run the model in Ollama/LM Studio/vLLM).
Environment: ``STYLUS_LOCAL_LLM_MODEL``, ``STYLUS_LOCAL_LLM_DEVICE``...
"""

from __future__ import annotations

import gc
import re
import threading
import time
from typing import Any

from stylus_ext import sdk

MIN_TRANSFORMERS = (4, 34)

#: (model, device, dtype) → (model, tokenizer): loaded once per process.
_LOADED: dict[tuple[str, str, str], tuple[Any, Any]] = {}
_LOCK = threading.Lock()


def check_transformers_version(version: str | None = None) -> None:
    """Raise ``RuntimeError`` when ``transformers`` is older than 4.34 (no chat templates)."""
    if version is None:
        import transformers

        version = transformers.__version__
    nums = tuple(int(x) for x in re.findall(r"\d+", version)[:2])
    if nums < MIN_TRANSFORMERS:
        raise RuntimeError(
            f"composer 'transformers' needs transformers >= 4.34 for chat templates, this WebUI has "
            f"{version}; serve the model with Ollama, LM Studio, llama.cpp or vLLM and use the 'openai' "
            f"composer instead (STYLUS_LLM_BASE_URL=http://127.0.0.1:11434/v1)"
        )


class TransformersComposer(sdk.Composer):
    """Prompt + candidates → concepts and picks, from a local chat model."""

    name = "transformers"
    description = "Local chat/instruct LM via transformers (needs transformers >= 4.34)"
    env_prefix = "LOCAL_LLM"
    options = (
        sdk.Option("model", str, "", "model folder or hub id of a chat/instruct causal LM"),
        sdk.Option("device", str, "auto", "torch device: auto (cuda when available), cpu, cuda, mps"),
        sdk.Option("dtype", str, "auto", "auto (bfloat16/float16 on GPU, float32 on CPU), float32, bfloat16, float16",
                   choices=("auto", "float32", "bfloat16", "float16")),
        sdk.Option("temperature", float, 0.0, "0 = greedy decoding"),
        sdk.Option("max_new_tokens", int, 400, "maximum answer tokens"),
        sdk.Option("max_candidates", int, 40, "candidates shown to the model"),
        sdk.Option("token_budget", int, 3000, "approximate token budget of the candidate catalogue"),
        sdk.Option("review", bool, False, "second 'review and prune' turn"),
    )

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        self._key: tuple[str, str, str] | None = None
        self.cache = sdk.AnswerCache(size=128)

    def _load(self) -> tuple[Any, Any, Any]:
        check_transformers_version()
        model_id = (self.config["model"] or "").strip()
        if not model_id:
            raise RuntimeError("composer 'transformers': set the model option (STYLUS_LOCAL_LLM_MODEL) "
                               "to a chat model folder or hub id")
        import torch

        device = self.config["device"] or "auto"
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype_name = self.config["dtype"]
        if dtype_name == "auto":
            dtype_name = ("bfloat16" if torch.cuda.is_bf16_supported() else "float16") if device.startswith(
                "cuda") else "float32"
        key = (model_id, device, dtype_name)
        with _LOCK:
            if key not in _LOADED:
                import transformers
                from transformers import AutoModelForCausalLM, AutoTokenizer

                # transformers 5 renamed ``torch_dtype`` to ``dtype``
                dtype_kw = "dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype"
                try:
                    tokenizer = AutoTokenizer.from_pretrained(model_id)
                    model = AutoModelForCausalLM.from_pretrained(model_id, **{dtype_kw: getattr(torch, dtype_name)})
                except (OSError, ValueError) as exc:
                    raise RuntimeError(f"composer 'transformers': cannot load {model_id!r}: {exc}") from exc
                if not getattr(tokenizer, "chat_template", None):
                    raise RuntimeError(f"composer 'transformers': {model_id!r} has no chat template; "
                                       f"use a chat/instruct model")
                model.to(device).eval()
                _LOADED[key] = (model, tokenizer)
            self._key = key
            model, tokenizer = _LOADED[key]
        return model, tokenizer, torch

    def generate(self, messages: list[dict[str, str]], *, deadline: float | None = None) -> str:
        """One greedy (or sampled) chat answer, bounded by ``max_new_tokens`` and the deadline."""
        model, tokenizer, torch = self._load()
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        inputs = tokenizer(text, return_tensors="pt", add_special_tokens=False).to(model.device)
        kwargs: dict[str, Any] = {"max_new_tokens": int(self.config["max_new_tokens"])}
        temperature = float(self.config["temperature"])
        if temperature > 0:
            kwargs.update(do_sample=True, temperature=temperature)
        else:
            kwargs["do_sample"] = False
        if deadline is not None:
            kwargs["max_time"] = max(0.5, deadline - time.monotonic())
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        with torch.inference_mode():
            out = model.generate(**inputs, pad_token_id=pad, **kwargs)
        return tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)

    def compose(self, request: sdk.ComposeRequest) -> sdk.Composition:
        deadline = time.monotonic() + max(0.5, float(request.time_budget_s))
        cfg = self.config
        prompt = sdk.build_composer_messages(request, max_candidates=cfg["max_candidates"],
                                             token_budget=cfg["token_budget"])
        if not prompt.candidates:
            return sdk.Composition(composer=self.name, notes=("no candidates",))
        key = sdk.answer_cache_key(prompt, composer=self.name, model=cfg["model"], temperature=cfg["temperature"],
                                   review=cfg["review"], max_new_tokens=cfg["max_new_tokens"])
        return sdk.compose_with(lambda m: self.generate(m, deadline=deadline), prompt, composer=self.name,
                                review=cfg["review"], cache=self.cache if cfg["temperature"] == 0 else None,
                                key=key, deadline=deadline)

    def close(self) -> None:
        """Unload the model (for every instance sharing it) and free GPU memory."""
        with _LOCK:
            if self._key is not None:
                _LOADED.pop(self._key, None)
                self._key = None
        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:
            pass


@sdk.hookimpl
def register_composers(register: Any) -> None:
    register(TransformersComposer)
