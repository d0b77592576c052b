"""Local transformers composer on a tiny randomly initialised chat model built offline in the test."""

from __future__ import annotations

import pytest
from helpers_backends import load_plugin, request

from stylus_ext import sdk
from stylus_ext.compose import run_composer


@pytest.fixture(scope="module")
def tiny_chat_model(tmp_path_factory):
    """A 1-layer Llama with a byte-level tokenizer and a chat template: its answers are garbage."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    mod = load_plugin("transformers_composer")
    try:
        mod.check_transformers_version()
    except RuntimeError:
        pytest.skip("transformers < 4.34 (covered by test_old_transformers_is_refused_clearly)")
    vocab = {"<s>": 0, "</s>": 1, "<pad>": 2}
    for ch in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab[ch] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                                pad_token="<pad>")
    fast.chat_template = ("{% for m in messages %}<s>{{ m['role'] }}\n{{ m['content'] }}</s>\n{% endfor %}"
                          "{% if add_generation_prompt %}<s>assistant\n{% endif %}")
    folder = tmp_path_factory.mktemp("tiny-chat-lm")
    fast.save_pretrained(folder)
    torch.manual_seed(0)
    config = transformers.LlamaConfig(vocab_size=len(vocab), hidden_size=16, intermediate_size=32,
                                      num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                                      max_position_embeddings=8192, bos_token_id=0, eos_token_id=1, pad_token_id=2)
    transformers.LlamaForCausalLM(config).save_pretrained(folder)
    return str(folder)


def test_tiny_model_garbage_is_rejected_and_pipeline_falls_back(tiny_chat_model):
    mod = load_plugin("transformers_composer")
    comp = mod.TransformersComposer(model=tiny_chat_model, device="cpu", max_new_tokens=24, max_candidates=5)
    answer = comp.generate(list(sdk.build_composer_messages(request()).messages))
    assert isinstance(answer, str) and answer  # something came out, and it is not valid JSON
    with pytest.raises(sdk.ComposerError):
        comp.compose(request())
    result = run_composer(request(), "transformers", instance=comp)
    assert result.fell_back and result.composer == "offline"
    assert any("transformers" in w for w in result.warnings)


def test_model_is_loaded_once_and_unloaded_on_close(tiny_chat_model):
    mod = load_plugin("transformers_composer")
    a = mod.TransformersComposer(model=tiny_chat_model, device="cpu", max_new_tokens=4)
    b = mod.TransformersComposer(model=tiny_chat_model, device="cpu", max_new_tokens=4)
    model_a, _, _ = a._load()
    model_b, _, _ = b._load()
    assert model_a is model_b and len(mod._LOADED) == 1
    a.close()
    assert not mod._LOADED
    model_c, _, _ = b._load()
    assert model_c is not model_a  # loaded again after close
    b.close()


def test_valid_answer_from_a_local_model_is_parsed(tiny_chat_model, monkeypatch):
    mod = load_plugin("transformers_composer")
    comp = mod.TransformersComposer(model=tiny_chat_model, device="cpu")
    seen = []

    def scripted(messages, *, deadline=None):
        seen.append(messages)
        return 'Answer:\n```\n{"concepts": [{"concept": "snow", "picks": [{"n": 2, "reason": "snowy"}]}]}\n```'

    monkeypatch.setattr(comp, "generate", scripted)
    result = comp.compose(request())
    assert [p.adapter_id for c in result.concepts for p in c.picks] == [102]
    assert "UNTRUSTED DATA" in seen[0][0]["content"]


def test_old_transformers_is_refused_clearly(monkeypatch):
    transformers = pytest.importorskip("transformers")
    mod = load_plugin("transformers_composer")
    monkeypatch.setattr(transformers, "__version__", "4.30.2")
    comp = mod.TransformersComposer(model="/nonexistent/model")
    with pytest.raises(RuntimeError, match=r"4\.34.*'openai' composer"):
        comp.compose(request())
    mod.check_transformers_version("4.34.0")
    mod.check_transformers_version("5.0.0.dev0")


@pytest.mark.a1111
def test_version_check_matches_the_installed_transformers():
    """In the A1111-pinned env (4.30.2) the composer refuses clearly; on newer ones it passes the check."""
    transformers = pytest.importorskip("transformers")
    mod = load_plugin("transformers_composer")
    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    if (major, minor) < (4, 34):
        with pytest.raises(RuntimeError, match="openai"):
            mod.check_transformers_version()
    else:
        mod.check_transformers_version()


def test_missing_model_option_is_a_clear_error():
    mod = load_plugin("transformers_composer")
    with pytest.raises(RuntimeError, match=r"set the model option|4\.34"):
        mod.TransformersComposer().compose(request())
