"""Loading checkpoints: layouts, dtypes, and one clear error for each broken case."""
import json
import shutil

import pytest
import torch

from asrstream import load_aligner, load_model
from asrstream.testmodel import make_test_model

from .reference import speechlike


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_sharded_checkpoint_loads_and_decodes_like_the_single_file(tmp_path, tiny_asr_dir):
    sharded = make_test_model(tmp_path / "sharded", "asr", "tiny", seed=0, shard_max_bytes=4_000_000)
    assert (sharded / "model.safetensors.index.json").exists()
    wav = speechlike(3.0)
    assert load_model(sharded).transcribe(wav).token_ids == load_model(tiny_asr_dir).transcribe(wav).token_ids


def test_bf16_checkpoint_loads_as_bf16_or_float32(tmp_path):
    from asrstream.encoder.precision import fast_half

    path = make_test_model(tmp_path / "bf16", "asr", "tiny", seed=0, dtype="bfloat16")
    auto = load_model(path).net.dtype  # "auto": the checkpoint's, unless half precision is slow here
    assert auto == (torch.bfloat16 if fast_half(torch.device("cpu")) else torch.float32)
    bf16 = load_model(path, dtype="bfloat16")
    assert bf16.net.dtype == torch.bfloat16 and bf16.transcribe(speechlike(2.0)).token_ids
    conv = bf16.net.thinker.audio_tower.conv2d2.weight.dtype
    assert conv == (torch.bfloat16 if fast_half(torch.device("cpu")) else torch.float32)
    model = load_model(path, dtype="float32")
    assert model.net.dtype == torch.float32
    assert model.transcribe(speechlike(2.0)).token_ids


def test_weights_are_loaded_not_left_on_meta(tiny_asr_dir):
    net = load_model(tiny_asr_dir).net
    assert all(p.device.type == "cpu" for p in net.parameters())
    assert all(b.device.type == "cpu" for b in net.buffers())


def test_missing_config_is_a_clear_error(tmp_path, tiny_asr_dir):
    path = _copy(tiny_asr_dir, tmp_path / "m")
    (path / "config.json").unlink()
    with pytest.raises(RuntimeError, match="has no config.json; pass --model PATH"):
        load_model(path)


def test_missing_weights_are_a_clear_error(tmp_path, tiny_asr_dir):
    path = _copy(tiny_asr_dir, tmp_path / "m")
    (path / "model.safetensors").unlink()
    with pytest.raises(RuntimeError, match=r"no \*\.safetensors file"):
        load_model(path)


def test_missing_shard_is_a_clear_error(tmp_path):
    path = make_test_model(tmp_path / "sharded", "asr", "tiny", shard_max_bytes=4_000_000)
    shard = sorted(path.glob("model-*.safetensors"))[-1]
    shard.unlink()
    with pytest.raises(RuntimeError, match=f"missing weight files: {shard.name}"):
        load_model(path)


def test_tensor_missing_from_checkpoint_is_named(tmp_path, tiny_asr_dir):
    from safetensors.torch import load_file, save_file

    path = _copy(tiny_asr_dir, tmp_path / "m")
    state = load_file(path / "model.safetensors")
    del state["thinker.model.norm.weight"]
    save_file(state, path / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(RuntimeError, match="does not match its config.json: missing .*thinker.model.norm.weight"):
        load_model(path)


def test_wrong_shape_is_a_clear_error(tmp_path, tiny_asr_dir):
    path = _copy(tiny_asr_dir, tmp_path / "m")
    cfg = json.loads((path / "config.json").read_text())
    cfg["thinker_config"]["text_config"]["intermediate_size"] = 96
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(RuntimeError, match="wrong shape"):
        load_model(path)


def test_wrong_model_type_is_a_clear_error(tmp_path, tiny_asr_dir):
    path = _copy(tiny_asr_dir, tmp_path / "m")
    cfg = json.loads((path / "config.json").read_text())
    cfg["model_type"] = "whisper"
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="model_type 'whisper'; asrstream loads Qwen3-ASR"):
        load_model(path)


def test_aligner_and_asr_checkpoints_are_not_interchangeable(tiny_asr_dir, tiny_aligner_dir):
    with pytest.raises(RuntimeError, match="forced-aligner checkpoint; pass it with --aligner"):
        load_model(tiny_aligner_dir)
    with pytest.raises(RuntimeError, match="ASR checkpoint; pass it with --model"):
        load_aligner(tiny_asr_dir)


def test_unknown_hub_id_offline_names_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(RuntimeError, match="not in the local Hugging Face cache.*--model PATH"):
        load_model("Qwen/Qwen3-ASR-0.6B")


def test_path_that_is_not_a_checkpoint_names_the_fix(tmp_path):
    with pytest.raises(RuntimeError, match="not a checkpoint directory; pass --model PATH"):
        load_model(str(tmp_path / "nowhere" / "model"))


def test_bad_dtype_and_device_are_clear_errors(tiny_asr_dir):
    with pytest.raises(ValueError, match="dtype 'float8'"):
        load_model(tiny_asr_dir, dtype="float8")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="torch sees no CUDA device"):
            load_model(tiny_asr_dir, device="cuda")


def test_hub_cache_is_used_when_present(monkeypatch, tmp_path, tiny_asr_dir):
    """A hub id resolves to the cached snapshot without any network access."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    snap = tmp_path / "hf" / "hub" / "models--acme--tiny-asr"
    (snap / "refs").mkdir(parents=True)
    (snap / "refs" / "main").write_text("0" * 40)
    shutil.copytree(tiny_asr_dir, snap / "snapshots" / ("0" * 40))
    assert load_model("acme/tiny-asr").transcribe(speechlike(1.0)).token_ids


def test_int8_decoder_quantization_stays_close_to_float32(tmp_path):
    """On a checkpoint with the usual init scale (std 0.02), int8 logits track float32 closely."""
    from asrstream.decoder.loading import load_net, quantize_decoder, read_config

    from .reference import reference_and_ours

    _, fp32 = reference_and_ours(tmp_path)
    int8 = load_net(tmp_path, read_config(tmp_path), torch.float32, torch.device("cpu"))
    quantize_decoder(int8)
    assert "quantized" in type(int8.thinker.lm_head).__module__
    assert "quantized" in type(int8.thinker.model.layers[0].mlp.up_proj).__module__
    x = torch.randn(40, 64, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        lf, lq = (n.logits(n.forward_rows([x], [n.new_cache(40)])[0]) for n in (fp32, int8))
    rel_rms = ((lf - lq).pow(2).mean() / lf.pow(2).mean()).sqrt().item()
    assert rel_rms < 0.02, rel_rms
    assert (lf.argmax(-1) == lq.argmax(-1)).float().mean() > 0.9


def test_int8_model_transcribes(tiny_asr_dir):
    assert load_model(tiny_asr_dir, dtype="float32", quantize="int8").transcribe(speechlike(3.0)).token_ids


def test_int8_needs_cpu_float32(tiny_asr_dir):
    with pytest.raises(ValueError, match="int8"):
        load_model(tiny_asr_dir, dtype="bfloat16", quantize="int8")
    with pytest.raises(ValueError, match="quantize='int4'"):
        load_model(tiny_asr_dir, quantize="int4")
