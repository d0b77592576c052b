"""Encoder ``openai``: embeddings from any OpenAI-compatible ``/v1/embeddings`` endpoint.

OpenAI (text-embedding-3-small/large, the paper used -large), Ollama (nomic-embed-text), LM Studio,
llama.cpp's server (``--embedding``), vLLM... Configure with ``STYLUS_EMBED_BASE_URL``,
``STYLUS_EMBED_MODEL``, ``STYLUS_EMBED_API_KEY`` (or the owner-only key file). Vectors are
L2-normalised here; the index records ``identity`` (``openai:<model>``, plus ``@<dimensions>`` when
set) and the dimension, and refuses to mix them with another encoder's vectors. Every request
batch has a deadline (``time_budget``, 30 s), so a query never waits on a long ``Retry-After``;
a server that cannot be reached is skipped for a while (``sdk.OpenAIClient``'s breaker).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from stylus_ext import sdk


class OpenAIEmbeddings(sdk.Encoder):
    """Texts → normalised vectors, in batches, over HTTP."""

    name = "openai"
    description = "Embeddings over an OpenAI-compatible /v1/embeddings API (OpenAI, Ollama, LM Studio, vLLM...)"
    env_prefix = "EMBED"
    options = (
        *sdk.server_options("EMBED", "text-embedding-3-small", timeout=60.0),
        sdk.Option("dimensions", int, 0, "ask for shortened vectors (text-embedding-3 only; 0 = model default)"),
        sdk.Option("batch_size", int, 64, "texts per request"),
        sdk.Option("time_budget", float, 30.0, "seconds per request batch, retries included (a query is one batch)"),
    )

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        self.client = sdk.server_client(self.config)  # the key lives only in the client
        self._dimension: int | None = self.config["dimensions"] or None
        self.requests_sent = 0

    @property
    def identity(self) -> str:  # type: ignore[override]
        dims = self.config["dimensions"]
        return f"{self.name}:{self.config['model']}" + (f"@{dims}" if dims else "")

    @property
    def dimension(self) -> int:  # type: ignore[override]
        """Vector size: the ``dimensions`` option, else learned from the server (one probe request)."""
        if self._dimension is None:
            self.encode(["dimension probe"])
        return int(self._dimension or 0)

    def encode(self, texts: Sequence[str]) -> Any:
        import numpy as np

        texts = [str(t) if str(t).strip() else " " for t in texts]  # servers reject empty strings
        if not texts:
            return np.zeros((0, self._dimension or 0), dtype=np.float32)
        budget = float(self.config["time_budget"])
        budget = budget if budget > 0 else 30.0  # never unbounded: a Retry-After: 3600 must not stall a query
        size = max(1, int(self.config["batch_size"]))
        rows: list[list[float]] = []
        for start in range(0, len(texts), size):
            self.requests_sent += 1
            rows.extend(self.client.embeddings(texts[start:start + size], self.config["model"],
                                               dimensions=self.config["dimensions"] or None,
                                               deadline=time.monotonic() + budget))
        dims = {len(r) for r in rows}
        if len(dims) != 1:
            raise sdk.LLMError(f"embeddings server returned vectors of different sizes: {sorted(dims)}")
        dim = dims.pop()
        if self._dimension is not None and dim != self._dimension:
            raise sdk.LLMError(f"embeddings server returned {dim}-d vectors, expected {self._dimension}-d "
                               f"(model changed on the server? re-index needed)")
        self._dimension = dim
        out = np.asarray(rows, dtype=np.float32)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        if not np.all(np.isfinite(out)) or np.any(norms == 0):
            raise sdk.LLMError("embeddings server returned a zero or non-finite vector")
        return out / norms

    def close(self) -> None:
        self.client.close()


@sdk.hookimpl
def register_encoders(register: Any) -> None:
    register(OpenAIEmbeddings)
