"""Prompt rewriting: tags, triggers, negatives, debias, emphasis; idempotence; unparseable names."""

from __future__ import annotations

from stylus_ext.rewrite import TagSpec, rewrite
from stylus_ext.sdk.cards.fields import name_problem
from stylus_ext.sdk.concepts import parse_prompt
from stylus_ext.sdk.prompt import sanitize

SPECS = [
    TagSpec("ghibli_bg", 0.64, activation_text="ghibli style", trained_words=("ghibli",),
            negative_text="3d render"),
    TagSpec("watercolor_v2", 0.32, trained_words=("watercolor, masterpiece, 1girl, long prompt", "wc")),
]


def test_tags_triggers_and_negative():
    out = rewrite("a castle on a hill", SPECS, negative_prompt="blurry")
    assert out.prompt == "a castle on a hill, ghibli style <lora:ghibli_bg:0.64> <lora:watercolor_v2:0.32>"
    assert out.negative_prompt == "blurry, 3d render"
    off = rewrite("a castle", SPECS, add_triggers=False, add_negative=False)
    assert "ghibli style" not in off.prompt and off.negative_prompt == ""


def test_trained_words_only_short_ones_and_only_on_request():
    out = rewrite("a castle", SPECS, add_trained_words=True)
    assert ", wc" in out.prompt and "long prompt" not in out.prompt


def test_a_trained_words_brackets_are_written_escaped_not_as_attention():
    spec = [TagSpec("casca", 0.8, trained_words=("casca (berserk)",))]
    out = rewrite("1girl, standing", spec, add_trained_words=True)
    assert out.prompt == r"1girl, standing, casca \(berserk\) <lora:casca:0.8>"
    assert parse_prompt(out.prompt).concepts[-1].weight == 1.0  # a literal tag, not berserk x1.1
    assert rewrite(out.prompt, spec, add_trained_words=True).prompt == out.prompt
    typed = rewrite("casca (berserk), 1girl", spec, add_trained_words=True).prompt
    assert typed == "casca (berserk), 1girl <lora:casca:0.8>"  # already there, in either form


def test_idempotent_on_pasted_back_prompt():
    once = rewrite("a castle, (sky:1.1)", SPECS, negative_prompt="blurry", debias="high quality",
                   emphasize=["castle"])
    twice = rewrite(once.prompt, SPECS, negative_prompt=once.negative_prompt, debias="high quality",
                    emphasize=["castle"])
    assert twice.prompt == once.prompt and twice.negative_prompt == once.negative_prompt
    assert once.prompt.count("<lora:ghibli_bg") == 1 and "(castle:1.1)" in once.prompt
    # the tag already present with another weight or as lyco is not duplicated either
    pasted = "a castle <lyco:ghibli_bg:1.0>"
    assert rewrite(pasted, SPECS[:1], add_triggers=False).prompt == pasted
    # and the concept parser excludes it from selection
    assert "ghibli_bg" in parse_prompt(once.prompt).excluded_names


def test_trigger_already_present_not_added():
    out = rewrite("a castle, Ghibli Style", SPECS[:1])
    assert out.prompt.lower().count("ghibli style") == 1


def test_unparseable_names_never_tagged():
    bad = [TagSpec("bad:name", 0.5), TagSpec(" edge", 0.5), TagSpec("a>b", 0.5), TagSpec("", 0.5),
           TagSpec("a<b", 0.5), TagSpec("tab\tname", 0.5), TagSpec("  ", 0.5),
           TagSpec("fine", 0.5, name_problem="alias is ambiguous")]
    out = rewrite("a cat", [*bad, TagSpec("good", 0.5)])
    assert out.prompt == "a cat <lora:good:0.5>"
    assert len(out.skipped) == 8 and out.skipped_names[0] == "bad:name"
    assert name_problem("ok_name-v2.1") == ""


def test_debias_and_empty_prompt():
    out = rewrite("", [TagSpec("x", 0.5)], debias="realistic, high quality")
    assert out.prompt == "realistic, high quality <lora:x:0.5>"


# -- card text is untrusted ----------------------------------------------------------------------

HOSTILE = "glassfig, <lora:evil:5>, BREAK\nmasterpiece AND (worst quality:-9), __wildcard__ {a|b}"


def test_hostile_activation_text_adds_no_syntax_and_says_what_was_dropped():
    out = rewrite("a glass figure", [TagSpec("glass", 0.7, activation_text=HOSTILE)])
    assert out.prompt == "a glass figure, glassfig, masterpiece, (worst quality) <lora:glass:0.7>"
    assert [t.name for t in parse_prompt(out.prompt).tags] == ["glass"]  # the only tag is ours
    for bad in ("evil", "BREAK", " AND ", "\n", "__", "{", "-9"):
        assert bad not in out.prompt
    [note] = out.skipped
    for what in ("activation text", "<lora:evil:5>", "BREAK/AND", "__wildcard__", "{a|b}", "line breaks"):
        assert what in note
    assert rewrite(out.prompt, [TagSpec("glass", 0.7, activation_text=HOSTILE)]).prompt == out.prompt  # idempotent


def test_negative_text_cannot_add_a_tag():
    out = rewrite("a cat", [TagSpec("cat", 0.5, negative_text="blurry, <lora:neg_evil:3>, <lyco:x:1> lowres")],
                  negative_prompt="bad hands")
    assert out.negative_prompt == "bad hands, blurry, lowres"
    assert "negative text" in out.skipped[0] and "<lora:neg_evil:3>" in out.skipped[0]


def test_a_100kb_activation_text_is_capped():
    huge = "shiny, " * 15_000  # ~100 KB
    out = rewrite("a cat", [TagSpec("cat", 0.5, activation_text=huge)])
    added = out.prompt[len("a cat, "):out.prompt.index(" <lora:")]
    assert 0 < len(added) <= 300 and added.endswith("shiny")
    assert "cut to" in out.skipped[0] and "105000" in out.skipped[0]


def test_two_trained_words_cannot_join_into_a_tag():
    spec = TagSpec("tw", 0.5, trained_words=("<lora:evil", ":5>"))
    out = rewrite("a cat", [spec], add_trained_words=True)
    assert [t.name for t in parse_prompt(out.prompt).tags] == ["tw"] and "<lora:evil" not in out.prompt
    assert out.prompt.count("<") == 1 and out.prompt.count(">") == 1


def test_clean_card_text_is_kept_as_is():
    clean = sanitize("ghibli style, (soft light:1.2), [sky], film grain")
    assert clean.text == "ghibli style, (soft light:1.2), [sky], film grain" and clean.dropped == ()
    out = rewrite("a castle", SPECS)
    assert out.skipped == []
