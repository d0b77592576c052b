"""Applying Stylus to a WebUI generation (``p``): plan in ``process()``, apply per batch.

Flow (see ``spec/webui.md``): after ``setup_prompts``, seeds and every always-on ``process()``
(Dynamic Prompts included: our scripts load after it, see ``metadata.ini``), :func:`prepare` plans
each image from its final prompt, writes the rewritten prompts into ``p.all_prompts`` (ADetailer
reads them there), the hires prompts and the negatives, then — because the WebUI activates LoRAs
per batch from the batch's FIRST prompt — reorders images (prompt, negative, seed and subseed move
together) and lowers the batch size when needed so each batch has one adapter set.
:func:`apply_batch` runs in ``before_process_batch``: it mutates the batch's ``prompts`` in place
if anything changed them after planning, so the tags that are parsed are the planned ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stylus_ext.webui import batching, controls, tags
from stylus_ext.webui.runtime import PlanResult, Runtime

#: The grid's (and the first gallery entry's) infotext: its prompt is the untagged main prompt and
#: the WebUI's "Lora hashes" there are the last batch's, so it must not claim one image's adapters.
GRID_NOTE = "images differ: each image's own parameters (PNG info) list its adapters; this summary is the grid's"
STATE_ATTR = "stylus_state"
REQUEST_ATTR = "stylus_request"


@dataclass
class RunState:
    options: controls.RunOptions
    plans: list[Any]
    prompts: list[str]
    negatives: list[str]
    hr_prompts: list[str] | None
    batch: batching.BatchPlan | None = None
    warnings: list[str] = field(default_factory=list)
    composer: str = ""  # the composer that ran (recorded, so a paste-back elsewhere reruns it)
    originals: list[tuple[str, str]] = field(default_factory=list)  # (prompt, negative) before Stylus

    def describe(self, index: int) -> str | None:
        """``concept → name:weight; ...`` for image ``index`` (``none`` when it has no adapter)."""
        if not 0 <= index < len(self.plans) or self.plans[index] is None:
            return None
        plan = self.plans[index]
        adapters = getattr(plan, "adapters", ()) or ()
        if not adapters:
            return "none"
        return "; ".join(f"{a.concept} → {a.name}:{_num(a.weight)}" for a in adapters)

    def settings_text(self) -> str:
        o = self.options
        return (f"mask={o.mask};max={o.max_adapters};strength={_num(o.strength)};"
                f"triggers={int(o.add_triggers)};composer={self.composer or o.composer or 'default'};"
                f"base={o.base_model}")

    def differ(self) -> bool:
        """Whether the images of this job have different adapter choices."""
        return len({self.describe(i) for i in range(len(self.plans))}) > 1

    def added(self, index: int, negative: bool = False) -> str | None:
        """Exactly what Stylus appended to image ``index``'s prompt (or negative prompt): pasting
        back strips that and nothing else. None when nothing was added or it is not a suffix."""
        if not 0 <= index < len(self.plans) or self.plans[index] is None or index >= len(self.originals):
            return None
        before = self.originals[index][1 if negative else 0].rstrip()  # the rewrite trims the end first
        after = self.negatives[index] if negative else self.prompts[index]
        if after == before or not after.startswith(before):
            return None
        return after[len(before):]


def _num(value: float) -> str:
    return f"{float(value):.3f}".rstrip("0").rstrip(".")


def lora_tag_strings(prompt: str) -> list[str]:
    return [m.group(0) for m in tags.EXTRA_NET.finditer(prompt or "") if m.group(1).lower() in tags.LORA_KINDS]


def _can_rebatch(p: Any, n: int) -> bool:
    bs, n_iter = int(getattr(p, "batch_size", 1) or 1), int(getattr(p, "n_iter", 1) or 1)
    if bs * n_iter != n:
        return False
    init_images = getattr(p, "init_images", None)
    # img2img with one init image per batch slot: the batch size is tied to the images.
    return not (isinstance(init_images, list) and len(init_images) > 1)


def _hires(p: Any, n: int) -> tuple[list[str] | None, list[str] | None]:
    if not getattr(p, "enable_hr", False):
        return None, None
    hr, hr_neg = getattr(p, "all_hr_prompts", None), getattr(p, "all_hr_negative_prompts", None)
    if not isinstance(hr, list) or len(hr) != n:
        return None, None
    return list(hr), (list(hr_neg) if isinstance(hr_neg, list) and len(hr_neg) == n else None)


def _rewrite(original: str, original_neg: str, plan: Any, hr: str | None, hr_neg: str | None
             ) -> tuple[str, str, str | None, str | None]:
    if plan is None:
        return original, original_neg, hr, hr_neg
    prompt, negative = plan.prompt, plan.negative_prompt
    if hr is not None:
        hr = prompt if hr == original else tags.add_missing(hr, lora_tag_strings(prompt))
    if hr_neg is not None and hr_neg == original_neg:
        hr_neg = negative
    return prompt, negative, hr, hr_neg


def comment(p: Any, text: str) -> None:
    """A visible one-line note under the images (and in the console)."""
    if hasattr(p, "comment"):
        try:
            p.comment(text)
        except Exception:  # noqa: BLE001
            pass
    from stylus_ext.webui.compat import print_warning

    print_warning(text.removeprefix("Stylus: "))


def prepare(p: Any, options: controls.RunOptions, runtime: Runtime, *, family: str | None = None) -> RunState | None:
    """Plan every image of ``p`` and rewrite/reorder ``p``'s per-image lists. Never raises."""
    if getattr(p, STATE_ATTR, None) is not None:
        return getattr(p, STATE_ATTR)
    all_prompts = list(getattr(p, "all_prompts", None) or [])
    n = len(all_prompts)
    if n == 0:
        return None
    negatives = list(getattr(p, "all_negative_prompts", None) or [""] * n)
    seeds = list(getattr(p, "all_seeds", None) or [0] * n)
    bs = int(getattr(p, "batch_size", 1) or 1)
    batch_size = bs if bs * int(getattr(p, "n_iter", 1) or 1) == n else 1
    result: PlanResult = runtime.plan_images(all_prompts, negatives, seeds, options, family=family,
                                             batch_size=batch_size)
    hr, hr_neg = _hires(p, n)
    new_prompts, new_negs, new_hr, new_hr_neg = [], [], [], []
    for i in range(n):
        a, b, c, d = _rewrite(all_prompts[i], negatives[i], result.plans[i],
                              hr[i] if hr else None, hr_neg[i] if hr_neg else None)
        new_prompts.append(a)
        new_negs.append(b)
        new_hr.append(c)
        new_hr_neg.append(d)
    state = RunState(options=options, plans=list(result.plans), prompts=new_prompts, negatives=new_negs,
                     hr_prompts=new_hr if hr else None, warnings=list(result.warnings),
                     composer=_composer_that_ran(result), originals=list(zip(all_prompts, negatives, strict=True)))
    keys = [(tags.lora_tags(new_prompts[i]), tags.lora_tags(new_hr[i] or "") if hr else ()) for i in range(n)]
    if len(set(keys)) > 1:
        new_hr_neg = _regroup(p, state, keys, new_hr if hr else None, new_hr_neg)
    p.all_prompts = list(state.prompts)
    p.all_negative_prompts = list(state.negatives)
    if hr:
        p.all_hr_prompts = list(state.hr_prompts or [])
        if hr_neg:
            p.all_hr_negative_prompts = list(new_hr_neg)
    setattr(p, STATE_ATTR, state)
    _record_infotext(p, state)
    params = getattr(p, "extra_generation_params", None)
    if result.warnings and isinstance(params, dict):
        # also in the infotext: API callers see it there (the UI shows the comments too)
        params["Stylus warning"] = " | ".join(w.removeprefix("Stylus: ") for w in result.warnings)[:300]
    for w in state.warnings:
        comment(p, w)
    return state


def _regroup(p: Any, state: RunState, keys: list[Any], hr: list[Any] | None, hr_neg: list[Any]) -> list[Any]:
    """Reorder the images (and lower the batch size if needed) so each batch has one adapter set;
    returns the hires negatives in the new order."""
    n = len(keys)
    if not _can_rebatch(p, n):
        state.warnings.append("Stylus: images have different adapter sets but the batch cannot be regrouped "
                              "here; only each batch's first image's adapters apply")
        return hr_neg
    plan = batching.plan_batches(keys, int(p.batch_size))
    state.batch = plan
    if plan.changed:
        for name in ("plans", "prompts", "negatives", "originals"):
            setattr(state, name, plan.apply(getattr(state, name)))
        if hr is not None:
            state.hr_prompts = plan.apply(hr)
            hr_neg = plan.apply(hr_neg)
        for attr in ("all_seeds", "all_subseeds"):
            values = getattr(p, attr, None)
            if isinstance(values, list) and len(values) == n:
                setattr(p, attr, plan.apply(values))
        p.batch_size, p.n_iter = plan.batch_size, plan.n_iter
    if plan.message:
        state.warnings.append(f"Stylus: {plan.message}")
    return hr_neg


def _image_index(p: Any, state: RunState, kw: dict[str, Any]) -> int | None:
    """The image's position in the job, from ``create_infotext``'s locals. The WebUI writes each
    image's infotext from the BATCH lists with the batch-local index (and params.txt / Processed
    from the whole-job lists); the grid's / "main" infotext (``use_main_prompt``) is the first image's."""
    index, p_ = kw.get("index"), kw.get("p", p)
    if kw.get("use_main_prompt"):
        return 0 if state.plans else None
    if index is None:
        return None
    seeds = kw.get("all_seeds")
    n = len(state.plans)
    if seeds is not None and len(seeds) != n:
        index = int(getattr(p_, "iteration", 0)) * int(p_.batch_size) + int(index)
    return int(index) if 0 <= int(index) < n else None


def _record_infotext(p: Any, state: RunState) -> None:
    params = getattr(p, "extra_generation_params", None)
    if not isinstance(params, dict) or all(x is None for x in state.plans):
        return

    def choices(**kw: Any) -> str | None:
        if kw.get("use_main_prompt") and state.differ():
            return GRID_NOTE
        i = _image_index(p, state, kw)
        return state.describe(i) if i is not None else None

    def added(negative: bool) -> Any:
        def value(**kw: Any) -> str | None:
            i = None if kw.get("use_main_prompt") and state.differ() else _image_index(p, state, kw)
            return state.added(i, negative) if i is not None else None

        return value

    def seed(**kw: Any) -> int | None:
        i = None if kw.get("use_main_prompt") and state.differ() else _image_index(p, state, kw)
        if i is None or state.plans[i] is None:
            return None
        return int(state.plans[i].seed)

    params["Stylus"] = choices
    params["Stylus settings"] = state.settings_text()
    params["Stylus seed"] = seed
    params["Stylus added"] = added(False)
    params["Stylus added negative"] = added(True)


def _composer_that_ran(result: PlanResult) -> str:
    ran = {getattr(sel, "composer", "") for sel in result.selections.values()} - {"", "none"}
    return ran.pop() if len(ran) == 1 else ""


def _fix_hires_infotext(p: Any, state: RunState) -> None:
    """The WebUI's own "Hires prompt"/"Hires negative prompt" infotext callables (set in ``p.init()``,
    after ``process()``) index ``p.all_hr_prompts`` with the BATCH-local index: with n_iter > 1 (or
    after regrouping) images record another image's hires prompt — and its LoRA tags, which pasting
    back would then re-apply. Replace them with callables that use the image's position in the job."""
    params = getattr(p, "extra_generation_params", None)
    if state.hr_prompts is None or not isinstance(params, dict):
        return
    for key, attr, text_key in (("Hires prompt", "all_hr_prompts", "prompt_text"),
                                ("Hires negative prompt", "all_hr_negative_prompts", "negative_prompt")):
        current = params.get(key)
        if not callable(current) or getattr(current, "_stylus", False):
            continue

        def value(_attr: str = attr, _text_key: str = text_key, **kw: Any) -> str | None:
            i = _image_index(p, state, kw)
            values = getattr(kw.get("p", p), _attr, None)
            if i is None or not isinstance(values, list) or i >= len(values):
                return None
            return values[i] if values[i] != kw.get(_text_key) else None

        value._stylus = True  # type: ignore[attr-defined]
        params[key] = value


def apply_batch(p: Any, batch_number: int, prompts: list[str], runtime: Runtime) -> None:
    """``before_process_batch``: make the batch's prompts (mutated in place) the planned ones."""
    state: RunState | None = getattr(p, STATE_ATTR, None)
    if state is None:
        return
    _fix_hires_infotext(p, state)
    start = int(batch_number) * int(p.batch_size)
    changed: list[int] = []
    for j, prompt in enumerate(prompts):
        i = start + j
        if i >= len(state.prompts):
            break
        if prompt == state.prompts[i]:
            continue
        # Something rewrote this prompt after Stylus planned it (a script ordered after ours):
        # plan it again from what will really be generated.
        neg = p.all_negative_prompts[i] if i < len(p.all_negative_prompts or []) else ""
        seed = p.all_seeds[i] if i < len(p.all_seeds or []) else 0
        result = runtime.plan_images([prompt], [neg], [seed], state.options)
        plan = result.plans[0]
        hr = p.all_hr_prompts[i] if state.hr_prompts is not None and getattr(p, "all_hr_prompts", None) else None
        new, new_neg, new_hr, _ = _rewrite(prompt, neg, plan, hr if hr != state.prompts[i] else prompt, None)
        prompts[j] = new
        p.all_prompts[i] = new
        state.prompts[i] = new
        state.plans[i] = plan
        if plan is not None and new_neg != neg:
            p.all_negative_prompts[i] = new_neg
            negs = getattr(p, "negative_prompts", None)
            if isinstance(negs, list) and j < len(negs):
                negs[j] = new_neg
        if new_hr is not None:
            p.all_hr_prompts[i] = new_hr
        if i < len(state.originals):
            state.originals[i] = (prompt, neg)
        changed.append(i)
    if changed and len({tags.lora_tags(x) for x in prompts}) > 1:
        comment(p, f"Stylus: batch {int(batch_number) + 1}: prompts were changed after Stylus planned the batches; "
                   "only the first image's adapters apply to this batch")

