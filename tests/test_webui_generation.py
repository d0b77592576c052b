"""The real Script classes driven through simulated WebUI generations (see tests/webui_stub.py):
per-image adapter sets that really apply, hires, prompt generators, the API path, paste-back, errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from webui_stub import Script, WebUI, parse_generation_parameters, webui  # noqa: F401

from stylus_ext.catalog.db import Catalog
from stylus_ext.pipeline import Stylus, StylusSettings
from stylus_ext.webui import infotext, runtime
from stylus_ext.webui.controls import CONTROLS

pytestmark = pytest.mark.a1111

CASTLE = "a castle on a hill, studio ghibli style, watercolor"


class SharedEncoder:
    """The session's plugin manager, handing out the already-loaded MiniLM encoder (fast tests)."""

    def __init__(self, plugins: Any, encoder: Any) -> None:
        self._plugins, self._encoder = plugins, encoder

    def __getattr__(self, name: str) -> Any:
        return getattr(self._plugins, name)

    def create(self, kind: str, name: str, **options: Any) -> Any:
        if kind == "encoder" and name == self._encoder.name and not options:
            return self._encoder
        return self._plugins.create(kind, name, **options)


_EXPECTED: dict[str, Stylus] = {}


@pytest.fixture
def ui(webui: WebUI, sample_catalog: Path, plugins: Any, encoder: Any,  # noqa: F811 - fixture from webui_stub
       _sample_catalog_master: Path) -> WebUI:
    """The stand-in WebUI with the sample LoRAs installed and Stylus pointed at the sample catalog."""
    # keep=0: the offline composer keeps every pick it makes, so the sample prompts give several adapters
    # (these tests are about the glue, not the composer's calibration)
    webui.shared.opts.data.update({"stylus_catalog_path": str(sample_catalog), "stylus_auto_refresh": False,
                                   "stylus_composer_offline_keep": "0"})
    catalog = Catalog(sample_catalog)
    for a in catalog.adapters():
        if a.card.path:
            webui.add_lora(Path(a.card.path).stem, a.card.path, alias=a.card.alias or "")
    catalog.close()
    shared = SharedEncoder(plugins, encoder)
    runtime.set_runtime(runtime.Runtime(plugins=lambda: shared))
    webui.set_family("SD1")
    webui.catalog_path = _sample_catalog_master
    webui.plugins = shared
    return webui


def expected_active(ui: WebUI, prompt: str, seed: int, **settings: Any) -> dict[str, float]:
    """What Stylus plans for this prompt and seed, computed independently, as the WebUI resolves names."""
    st = StylusSettings(base_model="SD1", installed_only=True, composer_options={"keep": 0.0}, **settings)
    if repr(st) not in _EXPECTED:
        _EXPECTED[repr(st)] = Stylus(Catalog(ui.catalog_path, create=False), ui.plugins, st)
    stylus = _EXPECTED[repr(st)]
    plan = stylus.images(stylus.select(prompt), [seed])[0]
    return {ui.networks.resolve(a.name).name: a.weight for a in plan.adapters}


def mask_seed(seed: int, seed0: int, batch_size: int, prompts: list[str] | None = None) -> int:
    """The seed an image's adapter set is drawn from: that of the first image with the same prompt in
    its (original) batch — the WebUI applies one set per batch, so a batch shares one draw."""
    i = seed - seed0
    start = (i // batch_size) * batch_size
    if prompts is None:
        return seed0 + start
    return seed0 + next(j for j in range(start, i + 1) if prompts[j] == prompts[i])


def lora_count(text: str) -> dict[str, int]:
    from stylus_ext.webui.tags import lora_tags

    counts: dict[str, int] = {}
    for name, _ in [(n, w) for n, w in lora_tags(text)]:
        counts[name] = counts.get(name, 0) + 1
    return counts


def test_script_file_registers_exactly_our_scripts(ui: WebUI) -> None:
    module = ui.load_script_file()
    names = sorted(c.__name__ for c in ui.script_classes())
    assert names == ["StylusAlwaysOnScript", "StylusCompanion", "StylusScript"]
    assert Script not in module.__dict__.values(), "the Script base must not be in the file's globals"
    kinds = {k for k, v in ui.script_callbacks.callback_map.items() if v}
    assert {"ui_settings", "ui_tabs", "app_started", "infotext_pasted"} <= kinds


def test_ui_slots_and_api_info(ui: WebUI) -> None:
    runner = ui.runner()
    dropdown = runner.script("Stylus")
    companion = runner.script("Stylus companion")
    always = runner.script("Stylus (always on)")
    assert dropdown in runner.selectable_scripts and always in runner.alwayson_scripts
    assert companion.api_info is None and companion.args_from == companion.args_to
    assert [a["label"] for a in dropdown.api_info["args"]] == [c.label for c in CONTROLS]
    assert always.api_info["args"][0]["value"] is False, "the always-on variant is off by default"
    mask = dropdown.api_info["args"][0]
    assert mask["value"] == "paper" and "subsets" in mask["choices"]
    assert runner.prompt is dropdown.stylus_prompt_component, "preview is wired to the prompt box"


def test_every_image_gets_its_own_adapters_batch4_x3(ui: WebUI) -> None:
    runner = ui.runner()
    processed = ui.generate(runner, runner.ui_args("Stylus"), prompt=CASTLE, seed=100, batch_size=4, n_iter=3)
    assert [im.seed for im in processed.images] == list(range(100, 112)), "seeds and order stay as the user set them"
    assert processed.batch_size == 4, "one adapter set per batch: the user's batch size is kept"
    sets = set()
    for im in processed.images:
        want = expected_active(ui, CASTLE, mask_seed(im.seed, 100, 4))
        assert im.active == want, f"seed {im.seed}: active {im.active} != planned {want}"
        sets.add(tuple(sorted(want)))
        assert lora_count(im.infotext.split("\n")[0]) == {n: 1 for n in lora_count(im.infotext.split("\n")[0])}
        assert "Stylus settings: " in im.infotext
        record = parse_generation_parameters(im.infotext)["Stylus"]
        recorded = {ui.networks.resolve(name).name: w for _, name, w in infotext.parse_record(record)}
        assert recorded == want, f"seed {im.seed}: infotext says {record}"
    assert len(sets) > 1, "the sample prompt must give different sets, or this test proves nothing"
    assert "batch size 4 → 1" not in processed.comments
    assert not ui.errors


def test_grid_infotext_says_the_images_differ(ui: WebUI) -> None:
    """The grid's / gallery's main infotext (``use_main_prompt``) has the untagged main prompt and the
    last batch's "Lora hashes": when the images' adapters differ it must say so, not claim image 1's."""
    from stylus_ext.webui.generation import GRID_NOTE

    runner = ui.runner()
    processed = ui.generate(runner, runner.ui_args("Stylus"), prompt=CASTLE, seed=100, batch_size=2, n_iter=2)
    assert len({tuple(sorted(im.active)) for im in processed.images}) > 1, "needs different sets"
    main = parse_generation_parameters(processed.info)
    assert main["Stylus"] == GRID_NOTE and "Stylus seed" not in main and "Stylus added" not in main, main
    assert all(parse_generation_parameters(im.infotext)["Stylus"] != GRID_NOTE for im in processed.images)
    same = ui.generate(runner, runner.ui_args("Stylus", mask="all"), prompt=CASTLE, seed=100, batch_size=2, n_iter=2)
    main = parse_generation_parameters(same.info)
    assert main["Stylus"] == parse_generation_parameters(same.images[0].infotext)["Stylus"], "one set: say it"


def test_grouping_keeps_batch_size_when_sets_allow(ui: WebUI) -> None:
    runner = ui.runner()
    processed = ui.generate(runner, runner.ui_args("Stylus", mask="all"), prompt=CASTLE, seed=7, batch_size=4,
                            n_iter=2)
    assert processed.batch_size == 4 and [im.seed for im in processed.images] == list(range(7, 15))
    first = processed.images[0].active
    assert len(first) >= 2 and all(im.active == first for im in processed.images)


def test_hires_pass_gets_the_same_adapters(ui: WebUI) -> None:
    runner = ui.runner()
    processed = ui.generate(runner, runner.ui_args("Stylus"), prompt=CASTLE, seed=100, batch_size=2, n_iter=2,
                            enable_hr=True)
    for im in processed.images:
        assert im.hr_active == im.active == expected_active(ui, CASTLE, mask_seed(im.seed, 100, 2))
    # a separate hires prompt gets the image's tags too
    processed = ui.generate(runner, runner.ui_args("Stylus"), prompt=CASTLE, seed=100, batch_size=2, n_iter=2,
                            enable_hr=True, hr_prompt="a castle, highly detailed")
    for im in processed.images:
        assert im.hr_active == im.active == expected_active(ui, CASTLE, mask_seed(im.seed, 100, 2))
    assert all("highly detailed" in x for x in ui.last_p.all_hr_prompts)


def test_hires_prompt_infotext_is_each_images_own(ui: WebUI) -> None:
    """The WebUI's "Hires prompt" infotext indexes the job's hires prompts with the batch-local index;
    after regrouping, images must still record (and paste back) their OWN hires prompt."""
    runner = ui.runner()
    for extra in ({}, {"hr_prompt": "a castle, highly detailed"}):
        processed = ui.generate(runner, runner.ui_args("Stylus"), prompt=CASTLE, seed=100, batch_size=2, n_iter=2,
                                enable_hr=True, **extra)
        assert len({tuple(sorted(im.active)) for im in processed.images}) > 1, "needs different sets"
        for im in processed.images:
            params = parse_generation_parameters(im.infotext)
            hr = params.get("Hires prompt")
            if not extra:
                assert hr is None, f"seed {im.seed}: hires prompt equals the prompt, yet recorded {hr!r}"
                continue
            assert "highly detailed" in hr and lora_count(hr) == lora_count(im.prompt), (im.prompt, hr)
            pasted, _ = ui.paste(runner, im.infotext)
            assert "<lora:" not in pasted["Hires prompt"], pasted["Hires prompt"]


class DynamicPromptsLike(Script):
    """An always-on prompt generator: replaces p.all_prompts in process(), like sd-dynamic-prompts."""

    VARIANTS = (CASTLE, "a cat", "portrait of a knight in armor, pixel art", "a cat")

    def title(self) -> str:
        return "Dynamic Prompts (stand-in)"

    def show(self, is_img2img: bool) -> Any:
        import webui_stub

        return webui_stub.AlwaysVisible

    def ui(self, is_img2img: bool) -> list[Any]:
        return []

    def process(self, p: Any, *args: Any) -> None:
        p.all_prompts = [self.VARIANTS[i % len(self.VARIANTS)] for i in range(len(p.all_prompts))]


def test_prompt_generator_before_stylus(ui: WebUI) -> None:
    from webui_stub import ScriptRunner

    runner = ScriptRunner([DynamicPromptsLike, *ui.script_classes()], errors=ui.errors)
    processed = ui.generate(runner, runner.ui_args("Stylus"), prompt="{x|y}", seed=300, batch_size=4, n_iter=2)
    assert not ui.errors
    prompts = [DynamicPromptsLike.VARIANTS[i % 4] for i in range(8)]
    for im in processed.images:
        source = prompts[im.seed - 300]
        assert im.active == expected_active(ui, source, mask_seed(im.seed, 300, 4, prompts)), im.prompt
        assert im.prompt.startswith(source)
    assert any("fluffy_cat" in im.active for im in processed.images)


def test_prompt_generator_after_stylus_is_rewritten_per_batch(ui: WebUI) -> None:
    from webui_stub import ScriptRunner

    runner = ScriptRunner([*ui.script_classes(), DynamicPromptsLike], errors=ui.errors)
    processed = ui.generate(runner, runner.ui_args("Stylus"), prompt="{x|y}", seed=300, batch_size=1, n_iter=4)
    assert not ui.errors
    for im in processed.images:
        source = DynamicPromptsLike.VARIANTS[(im.seed - 300) % 4]
        assert im.prompt.startswith(source) and im.active == expected_active(ui, source, im.seed)


@pytest.mark.parametrize("script_args", [[], ["paper"], [None, None], [{"max_adapters": 1}]])
def test_api_script_args_short_lists_take_defaults(ui: WebUI, script_args: list[Any]) -> None:
    runner = ui.runner()
    args = runner.api_args("stylus", script_args)
    processed = ui.generate(runner, args, prompt=CASTLE, seed=100, batch_size=2, n_iter=2)
    assert not ui.errors
    limit = {"max_adapters": 1} if script_args and isinstance(script_args[0], dict) else {}
    for im in processed.images:
        assert im.active == expected_active(ui, CASTLE, mask_seed(im.seed, 100, 2), **limit)
        assert "Stylus settings: " in im.infotext


def test_api_always_on_variant(ui: WebUI) -> None:
    runner = ui.runner()
    args = runner.api_args(None, [], {"stylus (always on)": {"args": [True, "none"]}})
    processed = ui.generate(runner, args, prompt=CASTLE, seed=5, batch_size=2)
    assert all(im.active == {} for im in processed.images), "mask 'none' = no adapters"
    args = runner.api_args(None, [], {"stylus (always on)": {"args": [True]}})
    processed = ui.generate(runner, args, prompt="a cat", seed=5, batch_size=2)
    assert all("fluffy_cat" in im.active for im in processed.images)
    processed = ui.generate(runner, runner.api_args(None, []), prompt="a cat", seed=5, batch_size=2)
    assert all(im.active == {} and im.prompt == "a cat" for im in processed.images), "off by default"


def test_prompts_from_file_style_list_with_always_on(ui: WebUI) -> None:
    runner = ui.runner()
    args = runner.ui_args(None, enabled=True)
    prompts = ["a cat", CASTLE, "a cat", CASTLE]
    processed = ui.generate(runner, args, prompt=prompts, seed=40, batch_size=2, n_iter=2)
    by_seed = {im.seed: im for im in processed.images}
    for i, source in enumerate(prompts):
        im = by_seed[40 + i]
        assert im.prompt.startswith(source) and im.active == expected_active(ui, source, 40 + i)  # one per batch


def test_paste_back_restores_settings_without_duplicating_tags(ui: WebUI) -> None:
    runner = ui.runner()
    processed = ui.generate(runner, runner.ui_args("Stylus", max_adapters=3, strength=0.6), prompt=CASTLE,
                            seed=100, batch_size=4, n_iter=1)
    image = next(im for im in processed.images if len(im.active) >= 2)
    params, values = ui.paste(runner, image.infotext)
    assert params["Script"] == "Stylus"
    assert "<lora:" not in params["Prompt"], params["Prompt"]
    restored = {k.rsplit("_", 1)[-1]: v for k, v in values.items() if k.startswith("script_txt2img_stylus_")}
    assert values["script_txt2img_stylus_max_adapters"] == 3 and values["script_txt2img_stylus_strength"] == 0.6
    assert restored.get("enabled") is False, "dropdown run: the always-on variant is not switched on"
    again = ui.generate(runner, runner.ui_args("Stylus", max_adapters=3, strength=0.6), prompt=params["Prompt"],
                        seed=image.seed, batch_size=1)
    im2 = again.images[0]
    assert im2.active == image.active
    assert all(c == 1 for c in lora_count(im2.prompt).values())
    # pasting the raw prompt (tags included) into a new run: still no duplicates
    raw = parse_generation_parameters(image.infotext)["Prompt"]
    third = ui.generate(runner, runner.ui_args("Stylus", max_adapters=3, strength=0.6), prompt=raw,
                        seed=image.seed, batch_size=1)
    assert all(c == 1 for c in lora_count(third.images[0].prompt).values())


def test_stylus_error_generates_from_user_prompt_with_warning(ui: WebUI, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(self: Any, prompt: str) -> Any:
        raise RuntimeError("composer exploded")

    monkeypatch.setattr(Stylus, "select", boom)
    runner = ui.runner()
    processed = ui.generate(runner, runner.ui_args("Stylus"), prompt=CASTLE, seed=1, batch_size=2, n_iter=2)
    assert len(processed.images) == 4
    assert all(im.prompt == CASTLE and im.active == {} for im in processed.images)
    assert "Stylus error (RuntimeError: composer exploded)" in processed.comments
    assert all("Stylus warning: " in im.infotext for im in processed.images), "API callers see it too"
    assert not ui.errors


def test_no_index_yet_says_so_and_proceeds(ui: WebUI, tmp_path: Path) -> None:
    ui.shared.opts.data["stylus_catalog_path"] = str(tmp_path / "none" / "catalog.db")
    started: list[str] = []
    runtime.get_runtime().on_missing_index = started.append
    runner = ui.runner()
    processed = ui.generate(runner, runner.ui_args("Stylus"), prompt="a cat", seed=1)
    assert processed.images[0].prompt == "a cat" and processed.images[0].active == {}
    assert "no catalog yet" in processed.comments and started == ["no catalog yet"]


def test_no_script_selected_changes_nothing(ui: WebUI) -> None:
    runner = ui.runner()
    processed = ui.generate(runner, runner.ui_args(None), prompt="a cat <lora:FluffyCat:0.5>", seed=1, batch_size=2)
    assert [im.prompt for im in processed.images] == ["a cat <lora:FluffyCat:0.5>"] * 2
    assert processed.comments == ""


def test_img2img_with_one_init_image_per_slot_is_not_regrouped(ui: WebUI) -> None:
    runner = ui.runner(is_img2img=True)
    processed = ui.generate(runner, runner.ui_args("Stylus"), prompt=CASTLE, seed=100, batch_size=4,
                            init_images=["a", "b", "c", "d"])
    assert processed.batch_size == 4
    first = processed.images[0].active
    assert first and all(im.active == first for im in processed.images), "the batch shares one adapter set"
    assert "cannot be regrouped" not in processed.comments
