"""The random-weight checkpoint generator, checked against the reference `qwen-asr` loaders."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors import safe_open
from transformers import AutoTokenizer

from asrstream.testmodel import build_config, make_test_model, parameter_shapes

SR = 16000
SPECIAL_IDS = {"<|endoftext|>": 151643, "<|im_start|>": 151644, "<|im_end|>": 151645,
               "<|audio_start|>": 151669, "<|audio_end|>": 151670, "<|audio_pad|>": 151676,
               "<asr_text>": 151704, "<timestamp>": 151705}
PROMPT = ("<|im_start|>system\nctx<|im_end|>\n<|im_start|>user\n"
          "<|audio_start|><|audio_pad|><|audio_end|><|im_end|>\n<|im_start|>assistant\n")
TEXTS = ["language English<asr_text>hello world", "It's 2025: prices rose 12%, didn't they?\n",
         "language Chinese<asr_text>你好，世界", "  spaces\tand\ttabs  ", "ünïcödé / émoji 🙂"]


def _tensors(path) -> dict[str, torch.Tensor]:
    out = {}
    for f in sorted(path.glob("*.safetensors")):
        with safe_open(str(f), "pt") as st:
            out.update({k: st.get_tensor(k) for k in st.keys()})
    return out


def _load_reference(path, dtype=torch.float32):
    from qwen_asr.core.transformers_backend import Qwen3ASRForConditionalGeneration

    model, info = Qwen3ASRForConditionalGeneration.from_pretrained(path, dtype=dtype, output_loading_info=True)
    assert not any(info.values()), info  # no missing, unexpected or mismatched weights
    return model.thinker


def _wavs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    t = np.arange(10 * SR) / SR
    return {"noise_1s": 0.1 * rng.standard_normal(SR), "tone_3s": 0.3 * np.sin(2 * np.pi * 440 * t[:3 * SR]),
            "chirp_5s": 0.3 * np.sin(2 * np.pi * (200 + 300 * t[:5 * SR]) * t[:5 * SR]),
            "noise_10s": 0.05 * rng.standard_normal(10 * SR)}


@pytest.fixture(scope="module")
def ref_asr(tiny_asr_dir):
    qwen_asr = pytest.importorskip("qwen_asr")
    return qwen_asr.Qwen3ASRModel.from_pretrained(str(tiny_asr_dir), dtype=torch.float32,
                                                  device_map="cpu", max_new_tokens=64)


def test_reference_transcribes_tiny_asr(ref_asr):
    """The reference loads the checkpoint through AutoModel/AutoProcessor and transcribes."""
    out = ref_asr.transcribe(audio=(_wavs()["noise_1s"].astype(np.float32), SR))
    assert len(out) == 1 and isinstance(out[0].text, str) and out[0].text


def test_reference_prompt_is_the_released_one(ref_asr):
    assert ref_asr._build_text_prompt("ctx", None) == PROMPT
    assert ref_asr._build_text_prompt("", "English").endswith("assistant\nlanguage English<asr_text>")


def test_reference_tokenizer_round_trips_with_real_special_ids(ref_asr):
    tok = ref_asr.processor.tokenizer  # loaded by the reference, with its fix_mistral_regex patch
    assert {s: tok.convert_tokens_to_ids(s) for s in SPECIAL_IDS} == SPECIAL_IDS
    for text in TEXTS:
        ids = tok.encode(text)
        assert tok.decode(ids) == text
        assert max(ids) < 151643 or "<asr_text>" in text
    ids = tok.encode("<|im_start|>language English<asr_text>hi<|im_end|>")
    assert ids[0] == 151644 and ids[-1] == 151645 and 151704 in ids
    assert tok.decode(ids, skip_special_tokens=True) == "language English<asr_text>hi"
    assert len(tok.encode("language English<asr_text>hello world")) <= 6  # trained merges, not bytes


def test_slow_and_fast_tokenizers_agree(tiny_asr_dir):
    fast = AutoTokenizer.from_pretrained(str(tiny_asr_dir))
    slow = AutoTokenizer.from_pretrained(str(tiny_asr_dir), use_fast=False)
    assert type(fast).__name__ == "Qwen2TokenizerFast" and len(fast) == len(slow) == 151936
    for text in TEXTS:
        assert fast.encode(text) == slow.encode(text)
    ids = [*range(150990, 151010), *range(900, 910), 151704, 151935]
    assert fast.decode(ids) == slow.decode(ids)


def test_greedy_decoding_does_not_collapse(ref_asr):
    """Random weights must still give varied tokens, or token parity would prove little."""
    for name, wav in _wavs().items():
        inputs = ref_asr.processor(text=[PROMPT], audio=[wav.astype(np.float32)], return_tensors="pt")
        seq = ref_asr.model.generate(**inputs, max_new_tokens=64).sequences[0]
        new = seq[inputs["input_ids"].shape[1]:].tolist()
        assert len(new) == 64 and len(set(new)) >= 8, (name, new)


def test_reference_aligner_gives_one_item_per_word(tiny_aligner_dir):
    qwen_asr = pytest.importorskip("qwen_asr")
    aligner = qwen_asr.Qwen3ForcedAligner.from_pretrained(str(tiny_aligner_dir), dtype=torch.float32,
                                                          device_map="cpu")
    assert aligner.timestamp_token_id == 151705 and aligner.timestamp_segment_time == 80
    assert tuple(aligner.model.thinker.lm_head.weight.shape) == (5000, 64)
    wav = _wavs()["noise_1s"].astype(np.float32)
    result = aligner.align(audio=(wav, SR), text="hello brave new world", language="English")
    assert [item.text for item in result[0].items] == ["hello", "brave", "new", "world"]


@pytest.mark.parametrize("tie", [True, False])
def test_tie_flag_is_honoured_by_the_reference(tmp_path, tie):
    pytest.importorskip("qwen_asr")
    path = make_test_model(tmp_path, tie_word_embeddings=tie)
    stored = _tensors(path)
    assert ("thinker.lm_head.weight" in stored) is not tie
    thinker = _load_reference(path)
    head, embed = thinker.lm_head.weight, thinker.model.embed_tokens.weight
    assert (head.data_ptr() == embed.data_ptr()) is tie
    if not tie:
        assert torch.equal(head, stored["thinker.lm_head.weight"]) and not torch.equal(head, embed)


@pytest.mark.parametrize("kind,size", [("asr", "0.6b"), ("asr", "1.7b"), ("aligner", "0.6b"),
                                       ("asr", "tiny"), ("aligner", "tiny")])
def test_names_and_shapes_match_the_reference_model(kind, size):
    pytest.importorskip("qwen_asr")
    from qwen_asr.core.transformers_backend import Qwen3ASRConfig, Qwen3ASRForConditionalGeneration

    config = build_config(kind, size)
    with torch.device("meta"):
        ref = Qwen3ASRForConditionalGeneration(Qwen3ASRConfig.from_dict(config))
    expected = {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    if config["thinker_config"]["text_config"]["tie_word_embeddings"]:
        assert expected.pop("thinker.lm_head.weight") == expected["thinker.model.embed_tokens.weight"]
    assert parameter_shapes(config) == expected


def test_released_dims():
    asr = build_config("asr", "0.6b")["thinker_config"]
    assert {k: asr["audio_config"][k] for k in ("d_model", "encoder_layers", "encoder_attention_heads",
            "encoder_ffn_dim", "output_dim", "n_window", "n_window_infer", "downsample_hidden_size")} == \
        dict(d_model=896, encoder_layers=18, encoder_attention_heads=14, encoder_ffn_dim=3584,
             output_dim=1024, n_window=50, n_window_infer=800, downsample_hidden_size=480)
    assert asr["text_config"]["rope_scaling"]["mrope_section"] == [24, 20, 20]
    big = build_config("asr", "1.7b")["thinker_config"]
    assert (big["audio_config"]["output_dim"], big["text_config"]["hidden_size"]) == (2048, 2048)
    al = build_config("aligner", "0.6b")
    assert (al["timestamp_token_id"], al["timestamp_segment_time"]) == (151705, 80)
    th = al["thinker_config"]
    assert (th["model_type"], th["classify_num"], th["text_config"]["vocab_size"]) == \
        ("qwen3_forced_aligner", 5000, 152064)
    assert th["text_config"]["tie_word_embeddings"] is False and al["tie_word_embeddings"] is False


def test_sharded_checkpoint_matches_and_loads(tmp_path, tiny_asr_dir):
    path = make_test_model(tmp_path, shard_max_bytes=10_000_000)
    index = json.loads((path / "model.safetensors.index.json").read_text())
    shards = sorted(p.name for p in path.glob("model-*.safetensors"))
    assert len(shards) >= 2 and shards[-1].endswith(f"-of-{len(shards):05d}.safetensors")
    assert set(index["weight_map"].values()) == set(shards)
    sharded, whole = _tensors(path), _tensors(tiny_asr_dir)
    assert index["metadata"]["total_size"] == sum(t.numel() * t.element_size() for t in sharded.values())
    assert sharded.keys() == whole.keys() == index["weight_map"].keys()
    assert all(torch.equal(sharded[k], whole[k]) for k in whole)
    pytest.importorskip("qwen_asr")
    _load_reference(path)


def test_same_seed_same_bytes_other_seed_other_tensors(tmp_path, tiny_asr_dir):
    again = make_test_model(tmp_path / "again", seed=0)
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        assert (again / name).read_bytes() == (tiny_asr_dir / name).read_bytes()
    other, base = _tensors(make_test_model(tmp_path / "other", seed=1)), _tensors(tiny_asr_dir)
    assert all(not torch.equal(other[k], base[k]) for k in base)


def test_overrides_and_dtype(tmp_path):
    path = make_test_model(tmp_path, overrides={"audio": {"n_window_infer": 400},
                                                "text": {"num_key_value_heads": 1}}, dtype="bfloat16")
    config = json.loads((path / "config.json").read_text())
    assert config["thinker_config"]["audio_config"]["n_window_infer"] == 400
    assert config["dtype"] == config["torch_dtype"] == "bfloat16"
    stored = _tensors(path)
    assert {t.dtype for t in stored.values()} == {torch.bfloat16}
    assert stored["thinker.model.layers.0.self_attn.k_proj.weight"].shape == (32, 64)
    pytest.importorskip("qwen_asr")
    thinker = _load_reference(path, torch.bfloat16)
    assert thinker.config.text_config.num_key_value_heads == 1


@pytest.mark.parametrize("kwargs,field", [
    (dict(kind="tts"), "kind"), (dict(size="7b"), "size"), (dict(kind="aligner", size="1.7b"), "size"),
    (dict(dtype="int8"), "dtype"), (dict(seed="0"), "seed"), (dict(shard_max_bytes=0), "shard_max_bytes"),
    (dict(overrides={"vision": {}}), "vision"), (dict(overrides={"text": {"hiden_size": 8}}), "hiden_size"),
    (dict(kind="aligner", tie_word_embeddings=True), "tie_word_embeddings"),
    (dict(overrides={"audio": {"output_dim": 32}}), "output_dim"),
    (dict(overrides={"text": {"vocab_size": 1000}}), "vocab_size"),
])
def test_bad_arguments_raise_value_error_naming_the_field(tmp_path, kwargs, field):
    with pytest.raises(ValueError, match=field):
        make_test_model(tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


def test_cli_writes_the_checkpoint_and_prints_its_path(tmp_path, capsys):
    from asrstream.cli import main

    assert main(["make-test-model", str(tmp_path / "al"), "--kind", "aligner", "--seed", "3"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "al")
    config = json.loads((tmp_path / "al" / "config.json").read_text())
    assert config["thinker_config"]["model_type"] == "qwen3_forced_aligner"
