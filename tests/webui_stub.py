"""A stand-in for the AUTOMATIC1111 WebUI (v1.10.1) modules the Stylus glue touches, written from the
WebUI's source (not copied), so the real Script classes can be driven through simulated generations.

Modelled behaviours, with the WebUI file each follows:
- script loading: a ``scripts/*.py`` file is loaded by path; every ``Script`` subclass in its globals is
  registered; ``show()`` → True (dropdown) / ``AlwaysVisible``; ``ui()`` returning None registers no
  args and no API info (modules/scripts.py: load_scripts, initialize_scripts, create_script_ui_inner);
- script args: ``args_from/args_to`` per script, ``run(p, *args[args_from:args_to])`` for the selected
  dropdown script; hooks called only for always-on scripts that override them, each in its own
  try/except (modules/scripts.py: ScriptRunner.run, ordered_scripts, process, before_process_batch);
- the API's defaults from each ``ui()`` component's ``.value`` and its splice of ``request.script_args``
  into the selected script's slot, which SHRINKS the list when the caller sends fewer values
  (modules/api/api.py: init_default_script_args, init_script_args);
- process_images: before_process → setup_prompts (``batch_size * n_iter`` copies, or the list;
  hires prompts separately) → ``all_seeds = seed + i`` (all equal with variation strength) → always-on
  ``process()`` → per batch: slices → ``before_process_batch(batch_number, prompts, seeds, subseeds)``
  → tags parsed, extra-network data from the FIRST prompt only → LoRAs activated → hires pass parses
  ``all_hr_prompts`` and activates from its first prompt → prompts re-sliced from ``all_prompts`` →
  per-image infotext from the BATCH lists with the batch-local index (so list values and callables
  see ``index`` = position in the batch) and "Lora hashes" (modules/processing.py: setup_prompts,
  process_images_inner, parse_extra_network_prompts, create_infotext; modules/extra_networks.py:
  parse_prompt(s); extensions-builtin/Lora/extra_networks_lora.py: activate;
  extensions-builtin/Lora/networks.py: load_networks name resolution with aliases/forbidden aliases);
- infotext parsing and paste (modules/infotext_utils.py: parse_generation_parameters,
  connect_paste → infotext_pasted callbacks, then each field's key or callable).

Each simulated image records the LoRAs that were REALLY active for it (first and hires pass).
"""

from __future__ import annotations

import copy
import importlib.util
import inspect
import json
import re
import sys
import types
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXTRA_NET = re.compile(r"<(\w+):([^>]+)>")


# ----------------------------------------------------------------------------------------------
# gradio (only what ui() builds): components remember label/value/choices like gradio 3.41
# ----------------------------------------------------------------------------------------------


class _Block:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.kwargs = kwargs
        self.label = kwargs.get("label")
        self.value = kwargs.get("value", args[0] if args and not isinstance(args[0], str) else None)
        self.elem_id = kwargs.get("elem_id")
        self.events: list[tuple[str, dict[str, Any]]] = []

    def __enter__(self) -> _Block:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def click(self, **kwargs: Any) -> None:
        self.events.append(("click", kwargs))

    def select(self, **kwargs: Any) -> None:
        self.events.append(("select", kwargs))

    submit = change = click


class _Slider(_Block):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.minimum, self.maximum, self.step = kwargs.get("minimum"), kwargs.get("maximum"), kwargs.get("step")


class _Dropdown(_Block):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.choices = list(kwargs.get("choices") or [])


class _Checkbox(_Block):
    def __init__(self, label: str | None = None, value: bool = False, **kwargs: Any) -> None:
        super().__init__(label=label, value=value, **kwargs)


def make_gradio() -> types.ModuleType:
    gr = types.ModuleType("gradio")
    for name in ("Blocks", "Row", "Column", "Group", "Tab", "Accordion", "Button", "HTML", "Markdown",
                 "Textbox", "Number", "Dataframe"):
        setattr(gr, name, type(name, (_Block,), {}))
    gr.Slider, gr.Dropdown, gr.Checkbox, gr.Radio = _Slider, _Dropdown, _Checkbox, _Dropdown
    gr.update = lambda **kw: {"__type__": "generic_update", **kw}
    gr.SelectData = type("SelectData", (), {"__init__": lambda self, index=(0, 0), value=None: (
        setattr(self, "index", list(index)), setattr(self, "value", value), None)[-1]})
    gr.__version__ = "3.41.2"
    return gr


# ----------------------------------------------------------------------------------------------
# networks (the built-in Lora extension's view of files) and LoRA activation
# ----------------------------------------------------------------------------------------------


@dataclass
class NetworkOnDisk:
    name: str
    filename: str
    alias: str = ""
    hash: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    sd_version: str = "SD1"

    def __post_init__(self) -> None:
        self.alias = self.alias or self.name
        self.shorthash = self.hash[:12]

    def get_alias(self) -> str:
        return self.alias


def make_networks() -> types.ModuleType:
    m = types.ModuleType("networks")
    m.available_networks = {}
    m.available_network_aliases = {}
    m.forbidden_network_aliases = {"none": 1, "addams": 1}
    m.loaded_networks = []

    def add(entry: NetworkOnDisk) -> None:
        m.available_networks[entry.name] = entry
        if entry.alias in m.available_network_aliases:
            m.forbidden_network_aliases[entry.alias.lower()] = 1
        m.available_network_aliases[entry.name] = entry
        m.available_network_aliases[entry.alias] = entry

    def resolve(name: str) -> NetworkOnDisk | None:
        if name.lower() in m.forbidden_network_aliases:
            return m.available_networks.get(name)
        return m.available_network_aliases.get(name)

    def load_networks(names: list[str], te: list[float], unet: list[float], dyn: list[Any]) -> None:
        m.loaded_networks.clear()
        for name, t, u in zip(names, te, unet, strict=True):
            entry = resolve(name)
            if entry is not None:  # the WebUI skips (and reports) names it cannot find
                m.loaded_networks.append(types.SimpleNamespace(name=name, mentioned_name=name, te=t, unet=u,
                                                               network_on_disk=entry))

    m.add, m.resolve, m.load_networks = add, resolve, load_networks
    m.list_available_networks = lambda: None
    return m


# ----------------------------------------------------------------------------------------------
# modules.shared / options / script_callbacks / sd_models
# ----------------------------------------------------------------------------------------------


class OptionInfo:
    def __init__(self, default: Any = None, label: str = "", component: Any = None, component_args: Any = None,
                 onchange: Any = None, section: Any = None, refresh: Any = None, comment_before: str = "",
                 comment_after: str = "", infotext: Any = None, restrict_api: bool = False,
                 category_id: Any = None) -> None:
        self.default, self.label, self.component, self.component_args = default, label, component, component_args
        self.section, self.category_id = section, category_id


class OptionsCategories:
    """modules/options.py: categories of the Settings page; an option whose ``category_id`` is not
    registered is listed under "Uncategorized" (Options.dump_json)."""

    def __init__(self) -> None:
        self.mapping: dict[str, str] = {}

    def register_category(self, category_id: str, label: str) -> str:
        self.mapping.setdefault(category_id, label)
        return category_id

    def label_of(self, info: Any) -> str:
        return self.mapping.get(getattr(info, "category_id", None) or "", "Uncategorized")


class OptionHTML(OptionInfo):
    def __init__(self, text: str) -> None:
        super().__init__(str(text).strip(), label="", component=None)


class Options:
    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.data_labels: dict[str, OptionInfo] = {}

    def add_option(self, key: str, info: OptionInfo) -> None:
        self.data_labels[key] = info
        if key not in self.data and not isinstance(info, OptionHTML):
            self.data[key] = info.default

    def reorder(self) -> None:
        """modules/options.py Options.reorder: reads ``section[1]`` of EVERY option (crashes on None)."""
        for info in self.data_labels.values():
            _ = info.section[1]

    def __getattr__(self, item: str) -> Any:
        if item in ("data", "data_labels"):
            raise AttributeError(item)
        if item in self.data:
            return self.data[item]
        if item in self.data_labels:
            return self.data_labels[item].default
        raise AttributeError(item)


def make_script_callbacks() -> types.ModuleType:
    m = types.ModuleType("modules.script_callbacks")
    m.callback_map = defaultdict(list)
    for name in ("ui_settings", "ui_tabs", "app_started", "model_loaded", "infotext_pasted", "before_image_saved",
                 "image_saved", "script_unloaded", "before_ui"):
        def register(callback: Any, *, name: str | None = None, _kind: str = name) -> None:
            m.callback_map[_kind].append(callback)

        setattr(m, f"on_{name}", register)
    m.clear_callbacks = m.callback_map.clear
    return m


# ----------------------------------------------------------------------------------------------
# modules.scripts: Script, AlwaysVisible, ScriptRunner
# ----------------------------------------------------------------------------------------------

AlwaysVisible = object()


class Script:
    name = None
    section = None
    filename = None
    args_from = None
    args_to = None
    alwayson = False
    is_txt2img = False
    is_img2img = False
    tabname = None
    group = None
    create_group = True
    infotext_fields = None
    paste_field_names = None
    api_info = None
    on_before_component_elem_id = None
    on_after_component_elem_id = None
    controls = None

    def title(self) -> str:
        raise NotImplementedError

    def ui(self, is_img2img: bool) -> Any:
        return None

    def show(self, is_img2img: bool) -> Any:
        return True

    def run(self, p: Any, *args: Any) -> Any:
        return None

    def setup(self, p: Any, *args: Any) -> None: ...
    def before_process(self, p: Any, *args: Any) -> None: ...
    def process(self, p: Any, *args: Any) -> None: ...
    def before_process_batch(self, p: Any, *args: Any, **kwargs: Any) -> None: ...
    def process_batch(self, p: Any, *args: Any, **kwargs: Any) -> None: ...
    def postprocess(self, p: Any, processed: Any, *args: Any) -> None: ...

    def on_after_component(self, callback: Any, *, elem_id: str) -> None:
        if self.on_after_component_elem_id is None:
            self.on_after_component_elem_id = []
        self.on_after_component_elem_id.append((elem_id, callback))

    def elem_id(self, item_id: str) -> str:
        need_tabname = self.show(True) == self.show(False)
        tabkind = "img2img" if self.is_img2img else "txt2img"
        tabname = f"{tabkind}_" if need_tabname else ""
        title = re.sub(r"[^a-z_0-9]", "", re.sub(r"\s", "_", self.title().lower()))
        return f"script_{tabname}{title}_{item_id}"


class ScriptRunner:
    """Builds script UIs (args slots) and calls hooks the way modules/scripts.py does."""

    def __init__(self, classes: list[type], is_img2img: bool = False, errors: list[str] | None = None) -> None:
        self.scripts: list[Any] = []
        self.selectable_scripts: list[Any] = []
        self.alwayson_scripts: list[Any] = []
        self.inputs: list[Any] = [None]
        self.errors = errors if errors is not None else []
        self.infotext_fields: list[tuple[Any, Any]] = []
        for cls in classes:
            script = cls()
            script.filename = "stylus.py"
            script.is_txt2img, script.is_img2img = not is_img2img, is_img2img
            visibility = script.show(is_img2img)
            if visibility is AlwaysVisible:
                script.alwayson = True
                self.scripts.append(script)
                self.alwayson_scripts.append(script)
            elif visibility:
                self.scripts.append(script)
                self.selectable_scripts.append(script)
        # the prompt box is created before the scripts' UI: run on_after_component callbacks for it
        prompt = _Block(label="Prompt", elem_id="img2img_prompt" if is_img2img else "txt2img_prompt")
        for script in self.scripts:
            for elem_id, callback in script.on_after_component_elem_id or []:
                if elem_id == prompt.elem_id:
                    callback(types.SimpleNamespace(component=prompt))
        self.prompt = prompt
        for script in self.alwayson_scripts + self.selectable_scripts:
            self._create_ui(script)

    def _create_ui(self, script: Any) -> None:
        script.args_from = script.args_to = len(self.inputs)
        controls = script.ui(script.is_img2img)
        script.controls = controls
        if controls is None:
            return
        script.name = script.title().lower()
        args = []
        for control in controls:
            info = {"label": control.label or ""}
            for attr in ("value", "minimum", "maximum", "step"):
                if getattr(control, attr, None) is not None:
                    info[attr] = getattr(control, attr)
            if getattr(control, "choices", None) is not None:
                info["choices"] = [x[0] if isinstance(x, tuple) else x for x in control.choices]
            args.append(info)
        script.api_info = {"name": script.name, "is_alwayson": script.alwayson, "args": args}
        if script.infotext_fields is not None:
            self.infotext_fields += script.infotext_fields
        self.inputs += controls
        script.args_to = len(self.inputs)

    def script(self, title: str) -> Any:
        return next((s for s in self.scripts if s.title().lower() == title.lower()), None)

    def default_args(self) -> list[Any]:
        """modules/api/api.py init_default_script_args: None everywhere, then each ui()'s values."""
        args: list[Any] = [None] * max([1] + [s.args_to for s in self.scripts])
        args[0] = 0
        for script in self.scripts:
            controls = script.ui(script.is_img2img)
            if controls:
                args[script.args_from:script.args_to] = [c.value for c in controls]
        return args

    def api_args(self, script_name: str | None, script_args: list[Any],
                 alwayson: dict[str, dict[str, Any]] | None = None) -> list[Any]:
        """modules/api/api.py init_script_args (including its slice assignment)."""
        args = self.default_args()
        if script_name:
            idx = next(i for i, s in enumerate(self.selectable_scripts) if s.title().lower() == script_name.lower())
            script = self.selectable_scripts[idx]
            args[script.args_from:script.args_to] = script_args
            args[0] = idx + 1
        for name, spec in (alwayson or {}).items():
            script = self.script(name)
            if script is None or not script.alwayson:
                raise ValueError(f"always on script {name} not found")
            for i in range(min(script.args_to - script.args_from, len(spec.get("args", [])))):
                args[script.args_from + i] = spec["args"][i]
        return args

    def ui_args(self, selected: str | None = None, **values: Any) -> list[Any]:
        """What the UI submits: every component's value (overrides by elem_id suffix), dropdown index."""
        args = [c.value if c is not None else None for c in self.inputs]
        args[0] = 0
        if selected:
            args[0] = 1 + next(i for i, s in enumerate(self.selectable_scripts) if s.title() == selected)
        for i, c in enumerate(self.inputs):
            if c is None:
                continue
            for key, value in values.items():
                if c.elem_id and c.elem_id.endswith("_" + key):
                    args[i] = value
        return args

    def run(self, p: Any, *args: Any) -> Any:
        index = args[0]
        if index == 0 or index is None:
            return None
        script = self.selectable_scripts[index - 1]
        return script.run(p, *args[script.args_from:script.args_to])

    def _call(self, hook: str, p: Any, *extra: Any, **kwargs: Any) -> None:
        for script in self.alwayson_scripts:
            if getattr(type(script), hook, None) is getattr(Script, hook):
                continue
            try:
                getattr(script, hook)(p, *extra, *p.script_args[script.args_from:script.args_to], **kwargs)
            except Exception as exc:  # the WebUI reports and carries on
                self.errors.append(f"{hook}: {type(exc).__name__}: {exc}")

    def before_process(self, p: Any) -> None:
        self._call("before_process", p)

    def process(self, p: Any) -> None:
        self._call("process", p)

    def before_process_batch(self, p: Any, **kwargs: Any) -> None:
        self._call("before_process_batch", p, **kwargs)

    def process_batch(self, p: Any, **kwargs: Any) -> None:
        self._call("process_batch", p, **kwargs)

    def postprocess(self, p: Any, processed: Any) -> None:
        for script in self.alwayson_scripts:
            if getattr(type(script), "postprocess", None) is not getattr(Script, "postprocess"):
                script.postprocess(p, processed, *p.script_args[script.args_from:script.args_to])


# ----------------------------------------------------------------------------------------------
# modules.processing: p, process_images, create_infotext
# ----------------------------------------------------------------------------------------------


@dataclass(repr=False)
class Processing:
    prompt: Any = ""
    negative_prompt: Any = ""
    seed: Any = -1
    subseed: Any = -1
    subseed_strength: float = 0.0
    batch_size: int = 1
    n_iter: int = 1
    steps: int = 20
    styles: list[str] = field(default_factory=list)
    enable_hr: bool = False
    hr_prompt: Any = ""
    hr_negative_prompt: Any = ""
    init_images: Any = None
    extra_generation_params: dict[str, Any] = field(default_factory=dict)
    scripts: Any = None
    script_args: Any = ()
    disable_extra_networks: bool = False

    def __post_init__(self) -> None:
        self.comments: dict[str, int] = {}
        self.all_prompts = self.all_negative_prompts = self.all_seeds = self.all_subseeds = None
        self.all_hr_prompts = self.all_hr_negative_prompts = None
        self.prompts = self.negative_prompts = self.seeds = self.subseeds = None
        self.hr_prompts = self.hr_negative_prompts = None
        self.iteration = 0
        self.is_hr_pass = False
        self.extra_network_data: dict[str, list[Any]] = {}
        self.hr_extra_network_data: dict[str, list[Any]] = {}

    def comment(self, text: str) -> None:
        self.comments[text] = 1

    def setup_prompts(self) -> None:
        if isinstance(self.prompt, list):
            self.all_prompts = self.prompt
        elif isinstance(self.negative_prompt, list):
            self.all_prompts = [self.prompt] * len(self.negative_prompt)
        else:
            self.all_prompts = self.batch_size * self.n_iter * [self.prompt]
        if isinstance(self.negative_prompt, list):
            self.all_negative_prompts = self.negative_prompt
        else:
            self.all_negative_prompts = [self.negative_prompt] * len(self.all_prompts)
        self.main_prompt = self.all_prompts[0]
        if not self.enable_hr:
            return
        if self.hr_prompt == "":
            self.hr_prompt = self.prompt
        if self.hr_negative_prompt == "":
            self.hr_negative_prompt = self.negative_prompt
        n = self.batch_size * self.n_iter
        self.all_hr_prompts = self.hr_prompt if isinstance(self.hr_prompt, list) else n * [self.hr_prompt]
        self.all_hr_negative_prompts = (self.hr_negative_prompt if isinstance(self.hr_negative_prompt, list)
                                        else n * [self.hr_negative_prompt])

    def init(self) -> None:
        """``StableDiffusionProcessingTxt2Img.init`` (called after every ``process()``): the hires
        infotext callables, indexing the job-wide hires lists with the index ``create_infotext`` gets."""
        if not self.enable_hr:
            return

        def get_hr_prompt(p: Any, index: int, prompt_text: str, **kwargs: Any) -> str | None:
            hr_prompt = p.all_hr_prompts[index]
            return hr_prompt if hr_prompt != prompt_text else None

        def get_hr_negative_prompt(p: Any, index: int, negative_prompt: str, **kwargs: Any) -> str | None:
            hr_negative_prompt = p.all_hr_negative_prompts[index]
            return hr_negative_prompt if hr_negative_prompt != negative_prompt else None

        self.extra_generation_params["Hires prompt"] = get_hr_prompt
        self.extra_generation_params["Hires negative prompt"] = get_hr_negative_prompt

    def parse_extra_network_prompts(self) -> None:
        self.prompts, self.extra_network_data = parse_prompts(self.prompts)
        if self.enable_hr:
            b = slice(self.iteration * self.batch_size, (self.iteration + 1) * self.batch_size)
            self.hr_prompts = self.all_hr_prompts[b]
            self.hr_negative_prompts = self.all_hr_negative_prompts[b]
            self.hr_prompts, self.hr_extra_network_data = parse_prompts(self.hr_prompts)


def parse_prompt(prompt: str) -> tuple[str, dict[str, list[list[str]]]]:
    found: dict[str, list[list[str]]] = defaultdict(list)

    def take(m: re.Match[str]) -> str:
        found[m.group(1)].append(m.group(2).split(":"))
        return ""

    return EXTRA_NET.sub(take, prompt), found


def parse_prompts(prompts: list[str]) -> tuple[list[str], dict[str, list[list[str]]]]:
    """Tags are removed from every prompt, but the extra-network data is the FIRST prompt's only."""
    out, data = [], None
    for prompt in prompts:
        text, found = parse_prompt(prompt)
        if data is None:
            data = found
        out.append(text)
    return out, data or {}


def quote(text: Any) -> Any:
    s = str(text)
    return text if "," not in s and "\n" not in s and ":" not in s else json.dumps(s, ensure_ascii=False)


def create_infotext(p: Processing, all_prompts: list[str], all_seeds: list[int], all_subseeds: list[int],
                    comments: Any = None, iteration: int = 0, position_in_batch: int = 0, use_main_prompt: bool = False,
                    index: int | None = None, all_negative_prompts: list[str] | None = None) -> str:
    if use_main_prompt:
        index = 0
    elif index is None:
        index = position_in_batch + iteration * p.batch_size
    if all_negative_prompts is None:
        all_negative_prompts = p.all_negative_prompts
    prompt_text = p.main_prompt if use_main_prompt else all_prompts[index]
    negative_prompt = all_negative_prompts[index]
    seed = p.all_seeds[0] if use_main_prompt else all_seeds[index]
    generation_params: dict[str, Any] = {"Steps": p.steps, "Seed": seed, **p.extra_generation_params}
    for key, value in list(generation_params.items()):
        try:
            if isinstance(value, list):
                generation_params[key] = value[index]
            elif callable(value):
                generation_params[key] = value(**locals())
        except Exception:
            generation_params[key] = None
    text = ", ".join(k if k == v else f"{k}: {quote(v)}" for k, v in generation_params.items() if v is not None)
    negative = f"\nNegative prompt: {negative_prompt}" if negative_prompt else ""
    return f"{prompt_text}{negative}\n{text}".strip()


@dataclass
class Image:
    """One simulated image: its seed, prompts and the LoRAs that were really active for it."""

    seed: int
    prompt: str
    negative_prompt: str
    active: dict[str, float]
    hr_active: dict[str, float] | None
    infotext: str


@dataclass
class Processed:
    images: list[Image]
    all_prompts: list[str]
    all_seeds: list[int]
    infotexts: list[str]
    comments: str
    batch_size: int
    info: str = ""  # the grid's / gallery's main infotext (use_main_prompt) when there are several images


def make_processing(webui: WebUI) -> types.ModuleType:
    m = types.ModuleType("modules.processing")
    m.StableDiffusionProcessing = Processing
    m.StableDiffusionProcessingTxt2Img = Processing
    m.Processed = Processed
    m.create_infotext = create_infotext

    def activate(p: Processing, data: dict[str, list[list[str]]]) -> dict[str, float]:
        params = data.get("lora", []) + data.get("lyco", [])
        names = [items[0] for items in params]
        te = [float(items[1]) if len(items) > 1 else 1.0 for items in params]
        webui.networks.load_networks(names, te, te, [None] * len(names))
        hashes = {n.mentioned_name: n.network_on_disk.shorthash for n in webui.networks.loaded_networks
                  if n.network_on_disk.shorthash}
        if hashes:
            p.extra_generation_params["Lora hashes"] = ", ".join(f"{k}: {v}" for k, v in hashes.items())
        return {n.network_on_disk.name: n.te for n in webui.networks.loaded_networks}

    def process_images(p: Processing) -> Processed:
        if p.scripts is not None:
            p.scripts.before_process(p)
        p.setup_prompts()
        seed = p.seed if p.seed is not None and p.seed >= 0 else 1234
        n = len(p.all_prompts)
        p.all_seeds = seed if isinstance(seed, list) else [int(seed) + (x if p.subseed_strength == 0 else 0)
                                                           for x in range(n)]
        p.all_subseeds = [int(p.subseed if p.subseed >= 0 else 99) + x for x in range(n)]
        if p.scripts is not None:
            p.scripts.process(p)
        p.init()
        images: list[Image] = []
        infotexts: list[str] = []
        for it in range(p.n_iter):
            p.iteration = it
            b = slice(it * p.batch_size, (it + 1) * p.batch_size)
            p.prompts, p.negative_prompts = p.all_prompts[b], p.all_negative_prompts[b]
            p.seeds, p.subseeds = p.all_seeds[b], p.all_subseeds[b]
            if p.scripts is not None:
                p.scripts.before_process_batch(p, batch_number=it, prompts=p.prompts, seeds=p.seeds,
                                               subseeds=p.subseeds)
            if len(p.prompts) == 0:
                break
            p.parse_extra_network_prompts()
            active = activate(p, p.extra_network_data) if not p.disable_extra_networks else {}
            if p.scripts is not None:
                p.scripts.process_batch(p, batch_number=it, prompts=p.prompts, seeds=p.seeds, subseeds=p.subseeds)
            hr_active = None
            if p.enable_hr:
                p.is_hr_pass = True
                hr_active = activate(p, p.hr_extra_network_data)
                p.is_hr_pass = False
            # after postprocess_batch the WebUI re-slices the prompts from all_prompts (tags included)
            # and writes each image's infotext from the BATCH lists with the batch-local index
            p.prompts, p.negative_prompts = p.all_prompts[b], p.all_negative_prompts[b]
            for j, seed_j in enumerate(p.seeds):
                index = it * p.batch_size + j
                text = create_infotext(p, p.prompts, p.seeds, p.subseeds, index=j,
                                       all_negative_prompts=p.negative_prompts)
                infotexts.append(text)
                images.append(Image(seed=seed_j, prompt=p.all_prompts[index],
                                    negative_prompt=p.all_negative_prompts[index], active=dict(active),
                                    hr_active=dict(hr_active) if hr_active is not None else None, infotext=text))
        # the grid's infotext: written after the loop from the LAST batch's lists, with use_main_prompt
        info = (create_infotext(p, p.prompts, p.seeds, p.subseeds, use_main_prompt=True,
                                all_negative_prompts=p.negative_prompts) if len(images) > 1
                else (infotexts[0] if infotexts else ""))
        res = Processed(images, list(p.all_prompts), list(p.all_seeds), infotexts,
                        "".join(f"{c}\n" for c in p.comments), p.batch_size, info)
        if p.scripts is not None:
            p.scripts.postprocess(p, res)
        return res

    m.process_images = process_images
    return m


# ----------------------------------------------------------------------------------------------
# infotext parsing and paste (modules/infotext_utils.py)
# ----------------------------------------------------------------------------------------------

_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')


def parse_generation_parameters(text: str) -> dict[str, Any]:
    *lines, last = text.strip().split("\n")
    if len(_PARAM.findall(last)) < 3 and not last.startswith("Steps:"):
        lines.append(last)
        last = ""
    prompt, negative, in_negative = "", "", False
    for raw in lines:
        line = raw.strip()
        if line.startswith("Negative prompt:"):
            in_negative, line = True, line[16:].strip()
        if in_negative:
            negative += ("\n" if negative else "") + line
        else:
            prompt += ("\n" if prompt else "") + line
    res: dict[str, Any] = {}
    for k, raw in _PARAM.findall(last):
        value: Any = raw
        if raw.startswith('"') and raw.endswith('"'):
            try:
                value = json.loads(raw)
            except ValueError:
                pass
        res[k] = value
    res["Prompt"], res["Negative prompt"] = prompt, negative
    return res


# ----------------------------------------------------------------------------------------------
# The whole stand-in
# ----------------------------------------------------------------------------------------------


class WebUI:
    """Installed into ``sys.modules`` by the :func:`webui` fixture."""

    def __init__(self) -> None:
        self.gradio = make_gradio()
        self.networks = make_networks()
        self.modules = types.ModuleType("modules")
        self.modules.__path__ = []
        self.shared = types.ModuleType("modules.shared")
        self.shared.opts = Options()
        self.shared.OptionInfo, self.shared.OptionHTML = OptionInfo, OptionHTML
        self.shared.cmd_opts = types.SimpleNamespace(lora_dir="", lyco_dir_backcompat="")
        self.shared.sd_model = None
        self.options = types.ModuleType("modules.options")
        self.options.OptionInfo, self.options.OptionHTML = OptionInfo, OptionHTML
        self.options.categories = OptionsCategories()
        self.script_callbacks = make_script_callbacks()
        self.sd_models = types.ModuleType("modules.sd_models")
        self.sd_models.model_data = types.SimpleNamespace(sd_model=None)
        self.sd_models.checkpoints_list = {}  # title → CheckpointInfo (modules/sd_models.py)
        self.sd_models.get_closet_checkpoint_match = self._closest_checkpoint
        self.scripts = types.ModuleType("modules.scripts")
        self.scripts.Script, self.scripts.AlwaysVisible, self.scripts.ScriptRunner = Script, AlwaysVisible, ScriptRunner
        self.processing = make_processing(self)
        self.errors: list[str] = []
        self.script_module: types.ModuleType | None = None

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for name, module in (("gradio", self.gradio), ("networks", self.networks), ("modules", self.modules),
                             ("modules.shared", self.shared), ("modules.options", self.options),
                             ("modules.script_callbacks", self.script_callbacks),
                             ("modules.sd_models", self.sd_models), ("modules.scripts", self.scripts),
                             ("modules.processing", self.processing)):
            monkeypatch.setitem(sys.modules, name, module)
            if name.startswith("modules."):
                monkeypatch.setattr(self.modules, name.split(".", 1)[1], module, raising=False)
        for name in [n for n in sys.modules if n.startswith("stylus_ext.webui.")]:
            if name.rsplit(".", 1)[1] in ("script", "callbacks", "ui", "tab"):
                monkeypatch.delitem(sys.modules, name)

    def set_family(self, family: str | None) -> None:
        if family is None:
            self.sd_models.model_data.sd_model = None
            return
        flags = {f"is_{k}": False for k in ("sd1", "sd2", "sdxl", "sd3")}
        flags[f"is_{family.lower()}"] = True
        self.sd_models.model_data.sd_model = types.SimpleNamespace(**flags)

    def set_engine(self, engine: str, config: str = "") -> None:
        """A loaded Forge / Forge Neo diffusion engine: an instance of a class named ``engine``
        (backend/diffusion_engine/*.py) with ``model_config`` of class ``config`` (huggingface_guess);
        Neo sets ``is_sd1``/``is_sdxl`` only on its SD engines, ``False`` elsewhere."""
        cls = type(engine, (), {})
        model = cls()
        model.is_sd1 = model.is_sdxl = model.is_wan = False
        model.model_config = type(config or "BASE", (), {})()
        self.sd_models.model_data.sd_model = model

    def forge_before_first_load(self) -> None:
        """Forge before its first (lazy) model load: ``model_data.sd_model`` is a ``FakeInitialModel``
        placeholder (modules/sd_models.py), not None, with no ``is_*`` flags."""
        cls = type("FakeInitialModel", (), {"cond_stage_model": None, "chunk_length": 75})
        self.sd_models.model_data.sd_model = cls()

    def add_checkpoint(self, title: str, filename: str, *, select: bool = True) -> None:
        """A checkpoint in the UI's list (selected in ``opts.sd_model_checkpoint``, not loaded)."""
        self.sd_models.checkpoints_list[title] = types.SimpleNamespace(title=title, filename=filename)
        if select:
            self.shared.opts.data["sd_model_checkpoint"] = title

    def _closest_checkpoint(self, search: str) -> Any:
        """modules/sd_models.py get_closet_checkpoint_match: exact title, else a name containing it."""
        found = self.sd_models.checkpoints_list.get(search)
        if found is None:
            found = next((v for k, v in self.sd_models.checkpoints_list.items() if search in k), None)
        return found

    def load_script_file(self) -> types.ModuleType:
        """Load ``scripts/stylus.py`` by path, as modules/scripts.py load_scripts does."""
        path = ROOT / "scripts" / "stylus.py"
        spec = importlib.util.spec_from_file_location("stylus_script_under_test", path)
        module = importlib.util.module_from_spec(spec)
        self.script_callbacks.clear_callbacks()
        spec.loader.exec_module(module)
        self.script_module = module
        return module

    def script_classes(self) -> list[type]:
        module = self.script_module or self.load_script_file()
        return [v for v in module.__dict__.values() if inspect.isclass(v) and issubclass(v, Script)]

    def runner(self, is_img2img: bool = False) -> ScriptRunner:
        return ScriptRunner(self.script_classes(), is_img2img, self.errors)

    def add_lora(self, name: str, filename: str, *, alias: str = "", hash: str = "") -> NetworkOnDisk:
        entry = NetworkOnDisk(name=name, filename=filename, alias=alias, hash=hash or f"{abs(hash_(name)):064x}"[:64])
        self.networks.add(entry)
        return entry

    def generate(self, runner: ScriptRunner, args: list[Any], **fields: Any) -> Processed:
        """modules/txt2img.py: build p, then the dropdown script's run() or process_images(p)."""
        p = Processing(**fields)
        p.scripts = runner
        p.script_args = list(args)
        processed = runner.run(p, *p.script_args)
        if processed is None:
            processed = self.processing.process_images(p)
        self.last_p = p
        return processed

    def paste(self, runner: ScriptRunner, infotext: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """connect_paste: parse, infotext_pasted callbacks, then every script field's value."""
        params = parse_generation_parameters(infotext)
        for callback in self.script_callbacks.callback_map["infotext_pasted"]:
            callback(infotext, params)
        values: dict[str, Any] = {}
        for component, key in runner.infotext_fields:
            value = key(params) if callable(key) else params.get(key)
            if value is not None:
                values[component.elem_id] = value
        return params, values


def hash_(text: str) -> int:
    import hashlib

    return int(hashlib.sha256(text.encode()).hexdigest(), 16)


@pytest.fixture
def webui(monkeypatch: pytest.MonkeyPatch) -> WebUI:
    """The WebUI stand-in in ``sys.modules`` (removed after the test), with a fresh Stylus runtime."""
    from stylus_ext.webui import runtime

    ui = WebUI()
    ui.install(monkeypatch)
    runtime.set_runtime(None)
    yield ui
    runtime.set_runtime(None)


def copy_p(p: Processing) -> Processing:
    return copy.copy(p)
