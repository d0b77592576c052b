"""Extra-network tags in prompts, as the WebUI parses them (``<name:arg1:arg2...>``)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from stylus_ext.sdk.prompt import TAG_RE, network_tags

#: The one extra-network tag pattern (:data:`stylus_ext.sdk.prompt.TAG_RE`, as the WebUI reads tags).
EXTRA_NET = TAG_RE
LORA_KINDS = ("lora", "lyco")


def lora_tags(prompt: str) -> tuple[tuple[str, str], ...]:
    """``(name, weights)`` of every ``<lora:...>``/``<lyco:...>`` tag, sorted (a set key for batching)."""
    return tuple(sorted((t.name, ":".join(t.args)) for t in network_tags(prompt or "") if t.kind in LORA_KINDS))


def strip_loras(prompt: str, names: Iterable[str]) -> str:
    """Remove the lora tags naming any of ``names`` (whatever their weights), tidying separators."""
    wanted = {n for n in names if n}
    if not wanted:
        return prompt

    def drop(m: re.Match[str]) -> str:
        if m.group(1).lower() in LORA_KINDS and m.group(2).partition(":")[0] in wanted:
            return ""
        return m.group(0)

    text = EXTRA_NET.sub(drop, prompt)
    text = re.sub(r"[ \t]*,[ \t]*(?=,)", "", text)
    text = re.sub(r"[ \t]{2,}", " ", text)
    return text.strip().rstrip(",").strip()


def add_missing(prompt: str, tags: Iterable[str]) -> str:
    """Append the ``tags`` whose lora name is not in ``prompt`` yet (idempotent)."""
    present = {name for name, _ in lora_tags(prompt)}
    extra = []
    for tag in tags:
        found = lora_tags(tag)
        if found and found[0][0] not in present:
            extra.append(tag)
            present.add(found[0][0])
    if not extra:
        return prompt
    sep = "" if not prompt or prompt.endswith((" ", ",")) else " "
    return prompt + sep + " ".join(extra)
