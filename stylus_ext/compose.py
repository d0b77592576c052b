"""The composer contract: run any composer safely and validate what it answers.

:func:`run_composer` runs the chosen composer (by name, through the plugin manager) in a worker
thread under a time budget, then validates its :class:`~stylus_ext.sdk.Composition`:

- malformed answers (not a Composition, concepts that are not ConceptPicks, picks without an int id)
  are dropped with a logged reason;
- unknown ids, ids that were not among the candidates, duplicates, banned / NSFW (unless allowed) /
  incompatible adapters, character adapters when characters are off, adapters already tagged in
  the prompt are dropped;
- the caps are enforced on ANY composer's answer: 3 per concept, 2 style adapters, ``max_adapters``;
- pinned, compatible candidates are always kept (added under a ``pinned`` concept when missing).

When the composer raises, exceeds its budget, or every pick it made was dropped, the offline
composer answers instead. An explicitly empty answer (no picks at all) is a valid "none".
Warnings are returned for the UI and logged once per process ("told once").
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from stylus_ext import sdk

log = logging.getLogger("stylus")

PER_CONCEPT = 3
MAX_STYLES = 2
FALLBACK = "offline"

_told: set[str] = set()
_told_lock = threading.Lock()


def tell_once(message: str) -> None:
    """Log ``message`` as a warning the first time it is seen in this process."""
    with _told_lock:
        if message in _told:
            return
        _told.add(message)
    log.warning("%s", message)


@dataclass
class ComposeResult:
    """A validated composition and how it came about."""

    composition: sdk.Composition
    composer: str  # the composer whose answer is used
    fell_back: bool = False
    dropped: list[str] = field(default_factory=list)  # one line per dropped pick
    warnings: list[str] = field(default_factory=list)  # for the UI


class ComposerTimeout(RuntimeError):
    pass


def call_with_budget(fn: Any, arg: Any, budget_s: float) -> Any:
    """``fn(arg)`` in a daemon thread; raise :class:`ComposerTimeout` after ``budget_s`` seconds.

    A composer that overruns is abandoned (its thread finishes in the background; its answer is
    ignored). Exceptions raised by ``fn`` are re-raised here.
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn(arg)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name="stylus-composer", daemon=True)
    thread.start()
    thread.join(max(0.0, budget_s))
    if thread.is_alive():
        raise ComposerTimeout(f"took longer than its {budget_s:g} s budget")
    if "error" in box:
        raise box["error"]
    return box.get("value")


@dataclass
class _Validation:
    """What :func:`validate` has seen so far: the rules' inputs and the running counts."""

    request: sdk.ComposeRequest
    composer: str
    by_id: dict[int, sdk.Adapter]
    excluded: set[str]
    prompt_words: set[str]
    coined: Callable[[str], bool] | None = None
    tagged: tuple[str, ...] = ()  # the prompt's <lora:...> names, as written
    series: set[frozenset[str]] | None = None  # the prompt's franchise words (:func:`_series`), once
    used: set[int] = field(default_factory=set)
    dropped: list[str] = field(default_factory=list)
    styles: int = 0
    total: int = 0
    made: int = 0


def validate(
    answer: Any, request: sdk.ComposeRequest, *, composer: str = "?"
) -> tuple[sdk.Composition | None, list[str], int, int]:
    """Clean ``answer`` against ``request``.

    Returns (composition or None when malformed, dropped reasons, picks the answer made, picks kept).
    """
    if not isinstance(answer, sdk.Composition):
        return None, [f"{composer}: answer is {type(answer).__name__}, not a Composition"], 0, 0
    concepts_in = answer.concepts
    if not isinstance(concepts_in, (tuple, list)):
        return None, [f"{composer}: 'concepts' is {type(concepts_in).__name__}, not a list"], 0, 0
    parsed = sdk.parse_prompt(request.prompt)
    state = _Validation(
        request, composer, by_id={c.adapter.id: c.adapter for c in request.candidates if isinstance(c, sdk.Candidate)},
        excluded={n.lower() for n in (*request.exclude_names, *parsed.excluded_names)},
        prompt_words=sdk.prompt_words(request.prompt), coined=sdk.distinctive(request),
        tagged=tuple(t.name for t in parsed.tags if t.is_lora))
    out: list[sdk.ConceptPicks] = []
    for cp in concepts_in:
        if not isinstance(cp, sdk.ConceptPicks) or not isinstance(cp.concept, str) or \
                not isinstance(cp.picks, (tuple, list)):
            state.dropped.append(f"{composer}: malformed concept entry {str(cp)[:60]!r}")
            continue
        concept = " ".join(cp.concept.split())[:200] or "(unnamed)"
        out.append(sdk.ConceptPicks(concept, tuple(_valid_picks(cp.picks, concept, state))))
    kept = state.total
    missing = _missing_pins(state)
    if missing:
        out.append(sdk.ConceptPicks("pinned", tuple(missing)))
    notes = tuple(str(n) for n in answer.notes) if isinstance(answer.notes, (tuple, list)) else ()
    return sdk.Composition(tuple(out), composer, notes), state.dropped, state.made, kept


def _valid_picks(picks: Any, concept: str, state: _Validation) -> list[sdk.Pick]:
    """The picks of one concept that pass every rule, in order; the others are named in ``state.dropped``."""
    keep: list[sdk.Pick] = []
    for pick in picks:
        state.made += 1
        aid = getattr(pick, "adapter_id", None)
        if not isinstance(pick, sdk.Pick) or isinstance(aid, bool) or not isinstance(aid, int):
            state.dropped.append(f"{state.composer}: malformed pick {str(pick)[:60]!r} for {concept!r}")
            continue
        adapter = state.by_id.get(aid)
        why = _why_dropped(adapter, aid, state, len(keep), concept)
        if why or adapter is None:
            state.dropped.append(f"{state.composer}: adapter {aid} {why}; dropped")
            continue
        reason = " ".join(str(pick.reason or "").split())[:300]
        keep.append(sdk.Pick(aid, reason))
        state.used.add(aid)
        state.total += 1
        state.styles += (adapter.category or "").lower() == "style"
    return keep


def _why_dropped(adapter: sdk.Adapter | None, aid: int, state: _Validation, kept_here: int, concept: str) -> str:
    """Why this pick breaks a rule ("" when it is kept); the first rule that applies is named."""
    request = state.request
    if adapter is None:
        return "is not among the candidates (unknown id)"
    category = (adapter.category or "").lower()
    if aid in state.used:
        return "is a duplicate"
    if adapter.banned:
        return "is banned"
    if not request.allow_nsfw and sdk.is_nsfw(adapter.card):
        return "is NSFW (not allowed)"
    if not sdk.compatible(adapter.card.base_model, request.base_model):
        return f"is for {adapter.card.base_model}, not {request.base_model}"
    if category in ("character", "celebrity") and not request.allow_characters:
        return "is a character adapter (characters are off)"
    if category in ("character", "celebrity") and not adapter.pinned and \
            not _named(adapter, state):
        return "is a character/celebrity the prompt does not name"
    if category == "utility" and not adapter.pinned:
        return "is a utility adapter (used only when pinned)"
    if adapter.card.name.lower() in state.excluded:
        return "is already tagged in the prompt"
    if category in ("character", "celebrity") and not adapter.pinned and (tag := sdk.tagged_as(
            adapter.title, adapter.card.alias or adapter.card.name, state.tagged)):
        return f"is a character <lora:{tag}> in the prompt already draws"
    if kept_here >= PER_CONCEPT:
        return f"exceeds {PER_CONCEPT} adapters for {concept!r}"
    if state.total >= request.max_adapters and not adapter.pinned:
        return f"exceeds the cap of {request.max_adapters} adapters"
    if category == "style" and state.styles >= MAX_STYLES and not adapter.pinned:
        return f"exceeds {MAX_STYLES} style adapters"
    return ""


def _missing_pins(state: _Validation) -> list[sdk.Pick]:
    """Pinned adapters the answer left out: always kept when compatible, allowed and not already tagged."""
    request, missing = state.request, []
    for cand in request.candidates:
        a = cand.adapter
        if a.pinned and a.id not in state.used and not a.banned \
                and sdk.compatible(a.card.base_model, request.base_model) \
                and a.card.name.lower() not in state.excluded and (request.allow_nsfw or not sdk.is_nsfw(a.card)):
            missing.append(sdk.Pick(a.id, f"pinned: '{a.title}'"))
            state.used.add(a.id)
    return missing


def _named(adapter: sdk.Adapter, state: _Validation) -> bool:
    """The prompt names this character: the offline composer's rule (a coined trigger in any place
    included), plus a single name word (lenient), unless the words name the prompt's series
    (``sdk.series_matches``: "genshin impact" names no Genshin character)."""
    _, words = _character_words(adapter, state, lenient=True)
    return bool(words) and not any(words <= series for series in _series(state))


def _character_words(adapter: sdk.Adapter, state: _Validation, *, lenient: bool = False) -> tuple[str, set[str]]:
    card = adapter.card
    return sdk.character_evidence(adapter.title, card.alias or card.name, (*card.trigger_words, card.activation_text),
                                  state.prompt_words, lenient=lenient, coined=state.coined)


def _series(state: _Validation) -> set[frozenset[str]]:
    """The matched words that name a series among the request's character candidates (computed once)."""
    if state.series is None:
        named = []
        for a in state.by_id.values():
            if a.category in ("character", "celebrity"):
                evidence, words = _character_words(a, state)
                named.append((words if evidence else (), a.title, a.card.alias or a.card.name, a.card.trigger_words))
        state.series = sdk.series_matches(named)
    return state.series


def run_composer(
    request: sdk.ComposeRequest,
    composer: str = FALLBACK,
    *,
    plugins: Any = None,
    options: dict[str, Any] | None = None,
    time_budget_s: float | None = None,
    instance: sdk.Composer | None = None,
) -> ComposeResult:
    """Run ``composer`` (or ``instance``) on ``request``, validate, fall back to ``offline``."""
    if plugins is None:
        from stylus_ext.plugins import get_plugins

        plugins = get_plugins()
    budget = request.time_budget_s if time_budget_s is None else time_budget_s
    result = ComposeResult(sdk.Composition((), composer), composer)
    failure = ""
    try:
        backend = instance or plugins.create("composer", composer, **(options or {}))
        answer = call_with_budget(backend.compose, request, budget)
        comp, dropped, made, kept = validate(answer, request, composer=composer)
        result.dropped.extend(dropped)
        if comp is None:
            failure = dropped[-1] if dropped else "malformed answer"
        elif made and not kept:
            failure = "every pick it made was dropped by validation"
        else:
            result.composition = comp
    except ComposerTimeout as exc:
        failure = str(exc)
    except Exception as exc:  # noqa: BLE001 - a third-party composer must never break the pipeline
        failure = f"{type(exc).__name__}: {exc}"
    for line in result.dropped:
        log.info("%s", line)
    if result.dropped:
        result.warnings.append(f"composer {composer!r}: {len(result.dropped)} pick(s) dropped by validation "
                               f"(first: {result.dropped[0]})")
    if failure:
        last_resort = composer == FALLBACK and instance is None
        message = f"composer {composer!r} failed ({failure}); " + (
            "no adapters" if last_resort else "using the offline composer")
        result.warnings.append(message)
        if last_resort:
            result.composition = sdk.Composition((), FALLBACK)
        else:
            result.fell_back = True
            result.composer = FALLBACK
            try:
                fallback = plugins.create("composer", FALLBACK)
                comp, dropped, _, _ = validate(fallback.compose(request), request, composer=FALLBACK)
                result.composition = comp or sdk.Composition((), FALLBACK)
                result.dropped.extend(dropped)
            except Exception as exc:  # noqa: BLE001
                msg = f"the offline composer failed too ({type(exc).__name__}: {exc}); no adapters"
                result.warnings.append(msg)
                result.composition = sdk.Composition((), FALLBACK, (msg,))
    for w in result.warnings:
        tell_once(w)
    return result
