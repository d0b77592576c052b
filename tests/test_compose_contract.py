"""The composer contract: any composer's answer is validated, capped, and replaced when it fails."""

from __future__ import annotations

import textwrap
import time
from dataclasses import replace

import pytest
from helpers_compose import catalog_adapters, make_adapter, make_request, picked_ids

from stylus_ext import sdk
from stylus_ext.compose import run_composer, validate
from stylus_ext.plugins import PluginManager

BAD_PLUGIN = textwrap.dedent('''
    import time
    from stylus_ext import sdk

    class Misbehaving(sdk.Composer):
        name = "bad"
        env_prefix = "BAD"
        options = (sdk.Option("mode", str, "unknown", "how to misbehave"),)

        def compose(self, request):
            ids = [c.adapter.id for c in request.candidates]
            mode = self.config["mode"]
            if mode == "unknown":
                return sdk.Composition((sdk.ConceptPicks("x", (sdk.Pick(999999, "made up"), sdk.Pick(ids[0], "ok"))),))
            if mode == "all_unknown":
                return sdk.Composition((sdk.ConceptPicks("x", (sdk.Pick(424242, "made up"),)),))
            if mode == "duplicates":
                return sdk.Composition((sdk.ConceptPicks("a", (sdk.Pick(ids[0], "one"),)),
                                        sdk.ConceptPicks("b", (sdk.Pick(ids[0], "again"), sdk.Pick(ids[1], "two")))))
            if mode == "slow":
                time.sleep(5)
                return sdk.Composition()
            if mode == "boom":
                raise RuntimeError("the model melted")
            if mode == "garbage":
                return {"concepts": "lots"}
            if mode == "malformed_picks":
                return sdk.Composition((sdk.ConceptPicks("x", ("seven", sdk.Pick("7", "str id"), None)),))
            if mode == "empty":
                return sdk.Composition((), "bad", ("nothing fits",))
            if mode == "greedy":
                return sdk.Composition((sdk.ConceptPicks("everything", tuple(sdk.Pick(i, "more!") for i in ids)),))
            if mode == "styles":
                return sdk.Composition(tuple(sdk.ConceptPicks(f"c{i}", (sdk.Pick(i, "style"),)) for i in ids))
            raise ValueError(mode)

    @sdk.hookimpl
    def register_composers(register):
        register(Misbehaving)
''')


@pytest.fixture(scope="module")
def pm(tmp_path_factory):
    folder = tmp_path_factory.mktemp("user-plugins")
    (folder / "bad_composer.py").write_text(BAD_PLUGIN, encoding="utf-8")
    manager = PluginManager(user_dir=folder, entry_points_enabled=False)
    assert "bad" in manager.names("composer") and "offline" in manager.names("composer")
    return manager


@pytest.fixture(scope="module")
def request_(encoder):
    return make_request("a corgi in a medieval castle, watercolor", catalog_adapters(), encoder)


def run(pm, request, mode, **kw):
    return run_composer(request, "bad", plugins=pm, options={"mode": mode}, **kw)


def test_unknown_ids_dropped_rest_kept(pm, request_):
    res = run(pm, request_, "unknown")
    assert not res.fell_back and res.composer == "bad"
    assert picked_ids(res.composition) == [request_.candidates[0].adapter.id]
    assert any("999999" in d and "not among the candidates" in d for d in res.dropped)
    assert res.warnings


def test_duplicates_dropped(pm, request_):
    res = run(pm, request_, "duplicates")
    ids = picked_ids(res.composition)
    assert ids == [request_.candidates[0].adapter.id, request_.candidates[1].adapter.id]
    assert any("duplicate" in d for d in res.dropped)


@pytest.mark.parametrize("mode", ["all_unknown", "boom", "garbage", "malformed_picks"])
def test_failures_fall_back_to_offline(pm, request_, mode):
    res = run(pm, request_, mode)
    assert res.fell_back and res.composer == "offline"
    offline = pm.create("composer", "offline").compose(request_)
    assert picked_ids(res.composition) == picked_ids(offline) != []
    assert any("using the offline composer" in w for w in res.warnings)


def test_timeout_falls_back_quickly(pm, request_):
    t0 = time.perf_counter()
    res = run(pm, request_, "slow", time_budget_s=0.3)
    assert time.perf_counter() - t0 < 3
    assert res.fell_back and any("budget" in w for w in res.warnings)


def test_explicit_empty_answer_is_a_valid_none(pm, request_):
    res = run(pm, request_, "empty")
    assert not res.fell_back and res.composer == "bad"
    assert picked_ids(res.composition) == []


def test_caps_enforced_on_any_composer(pm, request_):
    res = run(pm, request_, "greedy")
    assert len(picked_ids(res.composition)) == 3  # per-concept cap
    capped = replace(request_, max_adapters=2)
    assert len(picked_ids(run(pm, capped, "greedy").composition)) == 2
    styles = [make_adapter(50 + i, f"Style {i}", category="style") for i in range(4)]
    req = sdk.ComposeRequest("x", tuple(sdk.Candidate(a) for a in styles))
    assert len(picked_ids(run(pm, req, "styles").composition)) == 2  # at most two style adapters


def test_validation_drops_unnamed_characters_and_unpinned_utility():
    ads = [make_adapter(1, "Hatsune Miku (Vocaloid)", category="character", triggers=["twintails"]),
           make_adapter(2, "Detail Slider", category="utility"), make_adapter(3, "Castle")]
    answer = sdk.Composition((sdk.ConceptPicks("x", (sdk.Pick(1, ""), sdk.Pick(2, ""), sdk.Pick(3, ""))),))
    comp, dropped, _, _ = validate(answer, sdk.ComposeRequest("a girl with twintails at a castle",
                                                              tuple(sdk.Candidate(a) for a in ads)))
    assert picked_ids(comp) == [3] and len(dropped) == 2
    comp, _, _, _ = validate(answer, sdk.ComposeRequest("miku at a castle", tuple(sdk.Candidate(a) for a in ads)))
    assert picked_ids(comp) == [1, 3]


def test_validation_drops_a_character_named_only_by_its_series():
    """Any composer's pick (an LLM's too) goes through the offline composer's series rule: a prompt
    saying the franchise names none of its characters; one naming her keeps her."""
    cast = [("Korrin Starfall Saga | Character LoRA", "korrin_v1", ["korrin"]),
            ("StarfallSaga_Thessaly", "thessaly_ss", []),
            ("Ysolde Starfall Saga", "ysolde", []),
            ("Lirael Vance | Starfall Saga", "lirael_vance", ["lirael vance"]),
            ("Miravel (Starfall Saga)", "miravel_v2", ["miravel (starfall saga)"])]
    ads = [make_adapter(i + 1, t, category="character", name=n, triggers=tr) for i, (t, n, tr) in enumerate(cast)]
    answer = sdk.Composition((sdk.ConceptPicks("x", (sdk.Pick(1, ""), sdk.Pick(3, ""))),))
    cands = tuple(sdk.Candidate(a) for a in ads)
    comp, dropped, _, _ = validate(answer, sdk.ComposeRequest("1girl, starfall saga, smile", cands))
    assert picked_ids(comp) == [] and len(dropped) == 2
    comp, _, _, _ = validate(answer, sdk.ComposeRequest("1girl, korrin, starfall saga, smile", cands))
    assert picked_ids(comp) == [1]


def test_an_adult_word_in_title_name_or_tags_makes_an_adapter_nsfw():
    """Civitai's model flag missed most adult adapters of 2023 (cards flagged SFW titled "… anal sex"),
    so a word of ``sdk.NSFW_WORDS`` in the title, file name or tags counts as NSFW too, whatever any
    composer answers; "sexy", "lingerie" and words that only contain such a word ("Essex") do not."""
    ads = [make_adapter(1, "Riverside Porn Pack"), make_adapter(2, "Plain Dress", name="dress_r18_v2"),
           make_adapter(3, "Collar (v2.0)", tags=["clothing", "BDSM"]), make_adapter(4, "Essex | Azur Lane"),
           make_adapter(5, "Sexy Dancer", tags=["sexy", "lingerie"])]
    assert [sdk.is_nsfw(a.card) for a in ads] == [True, True, True, False, False]
    assert not sdk.is_nsfw(make_adapter(6, "Nude pantyhose (v1.0)").card)  # a colour
    assert sdk.is_nsfw(make_adapter(7, "Nude Beach Scene").card)
    assert not sdk.is_nsfw(sdk.AdapterCard(source="test", name="", title="", tags=("", " ")))  # nothing to read
    answer = sdk.Composition((sdk.ConceptPicks("x", tuple(sdk.Pick(a.id, "") for a in ads)),))
    req = sdk.ComposeRequest("x", tuple(sdk.Candidate(a) for a in ads))
    comp, dropped, _, _ = validate(answer, req)
    assert picked_ids(comp) == [4, 5] and all("NSFW" in d for d in dropped) and len(dropped) == 3
    comp, dropped, _, _ = validate(answer, replace(req, allow_nsfw=True))
    assert picked_ids(comp)[:3] == [1, 2, 3] and not any("NSFW" in d for d in dropped)


def test_validation_drops_banned_nsfw_and_incompatible():
    ads = [make_adapter(1, "A"), make_adapter(2, "B", banned=True), make_adapter(3, "C", nsfw=True),
           make_adapter(4, "D", base_model="SDXL"), make_adapter(5, "E", category="character"),
           make_adapter(6, "F", pinned=True)]
    req = sdk.ComposeRequest("x", tuple(sdk.Candidate(a) for a in ads), base_model="SD1", allow_characters=False)
    answer = sdk.Composition((sdk.ConceptPicks("x", tuple(sdk.Pick(i, "") for i in range(1, 6))),))
    comp, dropped, made, kept = validate(answer, req)
    assert made == 5 and kept == 1
    assert picked_ids(comp) == [1, 6]  # the pinned adapter is always kept
    assert len(dropped) == 4
