"""`asrstream train` on tiny checkpoints and espeak-ng speech: the loss falls, a resumed run is bit for
bit the uninterrupted one, the exported checkpoint loads here and in the reference package."""
from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file

from asrstream import load_aligner, load_model
from asrstream.decoder.generate import DecodingOptions
from asrstream.testmodel import make_test_model
from asrstream.encoder.audio import load_audio
from asrstream.training.augment import NO_AUGMENT, AugmentOptions, augment, example_rng
from asrstream.training.fresh import make_fresh_model, warm_start
from asrstream.training.manifest import read_manifest, write_manifest
from asrstream.training.objective import ctc_greedy, soft_time_targets
from asrstream.training.options import TrainOptions
from asrstream.training.trainer import Trainer
from asrstream.training.wer import normalize, wer

from .reference import reference_asr, windowed_reference
from .speech import SENTENCES, SR, tts

SHORT = ["Hello there.", "Good morning.", "Thank you.", "See you soon."]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Eight clips (two voices x four short sentences) with evenly spread word times."""
    d = tmp_path_factory.mktemp("corpus")
    rows = []
    for v, voice in enumerate(("en-us", "en")):
        for k, text in enumerate(SHORT):
            wav = tts(text, voice=voice)
            sf.write(d / f"{v}{k}.wav", wav, SR)
            words = text.rstrip(".").split()
            step = len(wav) / SR / len(words)
            rows.append({"audio": f"{v}{k}.wav", "text": text, "language": "English",
                         "words": [{"word": w, "start": round(i * step, 3), "end": round((i + 1) * step, 3)}
                                   for i, w in enumerate(words)]})
    write_manifest(d / "train.jsonl", rows)
    write_manifest(d / "eval.jsonl", rows[:2])
    return d


@pytest.fixture(scope="module")
def asr_dir(tmp_path_factory):
    return make_test_model(tmp_path_factory.mktemp("asr"), "asr", "tiny", seed=0)


def _opts(**kw) -> TrainOptions:
    base = dict(steps=4, lr=2e-3, warmup_steps=2, batch_seconds=6.0, max_batch=4, save_every=100, eval_every=0,
                eval_max_new_tokens=8, augment=NO_AUGMENT, bf16=False)
    return TrainOptions(**{**base, **kw})


def test_training_lowers_the_loss(corpus, asr_dir, tmp_path):
    trainer = Trainer(asr_dir, tmp_path, read_manifest(corpus / "train.jsonl"), [], _opts(steps=40))
    losses = [trainer.train_step()["loss"] for _ in range(40)]
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5]), losses


def test_specaugment_masks_reach_the_batch(corpus, asr_dir, tmp_path):
    """The trainer's batches carry the drawn masks: each masked band of bins holds one value; without masks
    the same example's features have no such band."""
    masks = AugmentOptions(speeds=(1.0,), gain_db=0.0, noise_prob=0.0, freq_masks=1, freq_mask_bins=40)
    plain = Trainer(asr_dir, tmp_path / "a", read_manifest(corpus / "train.jsonl"), [], _opts())
    masked = Trainer(asr_dir, tmp_path / "b", read_manifest(corpus / "train.jsonl"), [], _opts(augment=masks))
    flat = [int(((m.max(dim=1).values - m.min(dim=1).values) == 0).sum()) for trainer in (plain, masked)
            for m in trainer._prepare(list(range(8)), 0)[0]]
    assert sum(flat[:8]) == 0 and sum(flat[8:]) > 8, flat


def test_bf16_autocast_and_a_frozen_encoder(corpus, asr_dir, tmp_path):
    trainer = Trainer(asr_dir, tmp_path, read_manifest(corpus / "train.jsonl"), [],
                      _opts(steps=3, bf16=True, freeze="encoder"))
    before = {k: v.clone() for k, v in trainer.net.state_dict().items()}
    for _ in range(3):
        assert np.isfinite(trainer.train_step()["loss"])
    after = trainer.net.state_dict()
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert moved and all(not k.startswith("thinker.audio_tower.") for k in moved)
    assert any(k.startswith("thinker.model.layers.") for k in moved)


def _weights(folder) -> dict:
    return load_file(str(folder / "model.safetensors"))


def test_resume_is_bit_identical(corpus, asr_dir, tmp_path):
    """Augmented, two batches per step: 3 steps, save, a new Trainer resumes to 6 == 6 straight (the
    resumed one prepares its batches on 3 threads: that must not change anything either)."""
    opts = _opts(steps=6, save_every=3, grad_accum=2, batch_seconds=3.0, augment=AugmentOptions(reverb_prob=0.5))
    train = read_manifest(corpus / "train.jsonl")
    Trainer(asr_dir, tmp_path / "a", train, [], opts).run()
    first = Trainer(asr_dir, tmp_path / "b", train, [], opts)
    for _ in range(3):
        first.train_step()
    first.save_last()
    resumed = Trainer(asr_dir, tmp_path / "b", train, [], dataclasses.replace(opts, workers=3), resume=True)
    assert (resumed.step, resumed.epoch, resumed.index) == (first.step, first.epoch, first.index)
    resumed.run()
    a, b = _weights(tmp_path / "a" / "last"), _weights(tmp_path / "b" / "last")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    sa = torch.load(tmp_path / "a" / "last" / "training_state.pt", weights_only=True)
    sb = torch.load(tmp_path / "b" / "last" / "training_state.pt", weights_only=True)
    ea, eb = sa["optimizer"]["state"], sb["optimizer"]["state"]
    assert all(torch.equal(ea[i]["exp_avg_sq"], eb[i]["exp_avg_sq"]) for i in ea)
    assert not all(torch.equal(a[k], v) for k, v in _weights(asr_dir).items() if k in a)  # it did train


def test_exported_model_loads_and_the_reference_transcribes_it_identically(corpus, asr_dir, tmp_path):
    Trainer(asr_dir, tmp_path, read_manifest(corpus / "train.jsonl"), [], _opts(steps=3)).run()
    out = tmp_path / "model"
    ours = load_model(str(out), dtype="float32")
    ref = reference_asr(str(out), 32)
    wav = tts(SENTENCES[0])
    with windowed_reference():
        expected = ref.transcribe(audio=(wav, SR))[0]
    got = ours.transcribe(wav, options=DecodingOptions(max_new_tokens=32, repeat_limit=0))
    assert (got.text, got.language) == (expected.text, expected.language)
    assert not all(torch.equal(v, _weights(asr_dir)[k]) for k, v in _weights(out).items())


@pytest.mark.parametrize("sigma_ms", [0.0, 80.0])
def test_aligner_training_lowers_the_loss_and_reports_boundary_error(corpus, tmp_path, sigma_ms):
    d = make_test_model(tmp_path / "aligner", "aligner", "tiny", seed=0)
    train = read_manifest(corpus / "train.jsonl", need_words=True)
    trainer = Trainer(d, tmp_path / "out", train, train[:2], _opts(steps=30, time_sigma_ms=sigma_ms))
    losses = [trainer.train_step()["loss"] for _ in range(30)]
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5]), losses
    result = trainer.evaluate()
    assert set(result) == {"boundary_ms"} and result["boundary_ms"] >= 0


def test_soft_time_targets_are_gaussians_around_the_exact_time():
    p = soft_time_targets(torch.tensor([3.0, 10.5, 0.0, 7.2]), 1.0, 40)
    assert torch.allclose(p.sum(-1), torch.ones(4)) and p.argmax(-1).tolist()[::2] == [3, 0]
    assert p[1, 10] == pytest.approx(p[1, 11].item()) and p[1, 10] > p[1, 9] > p[1, 8]  # symmetric about 10.5
    assert p[3, 7] > p[3, 8] > p[3, 6]  # 7.2 lies nearer 8 than 6
    narrow = soft_time_targets(torch.tensor([7.2, 4999.0]), 1e-3, 5000)
    assert not narrow.isnan().any() and narrow.argmax(-1).tolist() == [7, 4999] and narrow.max() == 1.0


def test_time_sigma_is_for_aligners_only(corpus, asr_dir, tmp_path):
    with pytest.raises(ValueError, match="time_sigma_ms applies to aligner"):
        Trainer(asr_dir, tmp_path / "o", read_manifest(corpus / "train.jsonl"), [], _opts(time_sigma_ms=80.0))


def test_the_aligners_labels_move_with_the_lead_in_and_the_speed(corpus, tmp_path):
    d = make_test_model(tmp_path / "aligner", "aligner", "tiny", seed=0)
    train = read_manifest(corpus / "train.jsonl", need_words=True)
    aug = AugmentOptions(speeds=(0.9, 1.1), gain_db=0.0, noise_prob=0.0, lead_in=1.0)
    trainer = Trainer(d, tmp_path / "out", train, [], _opts(augment=aug))
    seg = trainer.cfg.timestamp_segment_time / 1000.0
    mels, make, _ = trainer._prepare([0, 1, 2, 3], epoch=5)
    leads = []
    for k in range(4):
        a = augment(load_audio(train[k].audio), aug, example_rng(trainer.opts.seed, 5, k))
        assert mels[k].shape[1] == len(a.wav) // 160  # the lead-in is in the features
        times = [t / a.speed + a.lead for w in train[k].words for t in (w["start"], w["end"])]
        assert make(k, mels[k].shape[1] // 8).labels == [round(t / seg) for t in times]
        leads.append(a.lead)
    assert max(leads) > 0.1  # the labels were moved, not just left at zero lead


def test_cli_trains_evaluates_and_exports(corpus, asr_dir, tmp_path):
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "asrstream", "train", "--model", str(asr_dir),
                        "--train", str(corpus / "train.jsonl"), "--eval", str(corpus / "eval.jsonl"), "--out", str(out),
                        "--steps", "2", "--batch-seconds", "4", "--eval-max-new-tokens", "4", "--no-bf16"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "wer" in r.stdout and (out / "model" / "model.safetensors").is_file()
    log = (out / "train.log").read_text()
    assert "step 2 loss" in log and "eval wer" in log
    load_model(str(out / "model"))


@pytest.mark.parametrize("line,message", [
    ("not json", ":1: not JSON"),
    ('{"audio": "missing.wav", "text": "x"}', "does not exist"),
    ('{"audio": 3, "text": "x"}', "'audio' and 'text' must be strings"),
    ('{"audio": "00.wav", "text": "x", "words": [{"word": "x", "start": 2, "end": 1}]}', "0 <= 'start' <= 'end'"),
])
def test_bad_manifests_are_named_errors(corpus, tmp_path, line, message):
    (corpus / "bad.jsonl").write_text(line + "\n")
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        read_manifest(corpus / "bad.jsonl")


def test_aligner_manifest_needs_words(corpus):
    (corpus / "nowords.jsonl").write_text('{"audio": "00.wav", "text": "Hello there."}\n')
    with pytest.raises(ValueError, match="needs 'words'"):
        read_manifest(corpus / "nowords.jsonl", need_words=True)


@pytest.mark.parametrize("bad, field", [(["--grad-accum", "0"], "grad_accum"), (["--vtlp", "0.5"], "vtlp"),
                                        (["--freq-masks", "-1"], "freq_masks"), (["--speeds", "0.9", "2.5"], "speeds"),
                                        (["--time-sigma-ms", "-1"], "time_sigma_ms")])
def test_cli_bad_option_is_one_line(tmp_path, bad, field):
    r = subprocess.run([sys.executable, "-m", "asrstream", "train", "--model", "x", "--train", str(tmp_path / "no.jsonl"),
                        "--out", str(tmp_path / "o"), *bad], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "Traceback" not in r.stderr and field in r.stderr


def test_wer_normaliser():
    assert normalize("Hello, World! It's 'quoted' — fine.") == "hello world it's quoted fine"
    assert wer(["the cat sat"], ["The cat, sat."]) == 0.0
    assert wer(["the cat sat", "a dog"], ["the hat sat", ""]) == pytest.approx(3 / 5)


def test_a_fresh_compact_model_learns_and_the_reference_transcribes_it_identically(tmp_path):
    """Our own 300-token BPE with the specials after it: trained from scratch (150 steps) on four clips it says
    them back, and the reference (which stops only at the released eos ids) gives the same text."""
    rows = []
    for k, text in enumerate(SHORT):
        sf.write(tmp_path / f"{k}.wav", tts(text), SR)
        rows.append({"audio": f"{k}.wav", "text": text})
    write_manifest(tmp_path / "m.jsonl", rows)
    fresh = make_fresh_model(tmp_path / "fresh", SHORT * 5, "asr", bpe_size=300)
    vocab = load_model(str(fresh)).cfg.text.vocab_size
    assert vocab <= 300 + 8
    Trainer(fresh, tmp_path / "out", read_manifest(tmp_path / "m.jsonl"), [],
            _opts(steps=150, lr=3e-3, warmup_steps=5, batch_seconds=8.0)).run()
    ours = load_model(str(tmp_path / "out" / "model"), dtype="float32")
    ref = reference_asr(str(tmp_path / "out" / "model"), 24)
    for text in SHORT:
        wav = tts(text)
        with windowed_reference():
            expected = ref.transcribe(audio=(wav, SR))[0]
        got = ours.transcribe(wav, options=DecodingOptions(max_new_tokens=24, repeat_limit=0))
        assert got.text == expected.text == text and got.language == expected.language == "English"


def test_an_aligner_warm_starts_from_an_asr_model_of_the_same_design(tmp_path):
    lines = SHORT * 5
    asr = make_fresh_model(tmp_path / "asr", lines, "asr", bpe_size=300, seed=1)
    aligner = make_fresh_model(tmp_path / "aligner", lines + ["other text"], "aligner", bpe_size=300, seed=2)
    copied = warm_start(aligner, asr)
    a, b = _weights(asr), _weights(aligner)
    assert copied == len(a) and all(torch.equal(a[k], b[k]) for k in a)
    assert b["thinker.lm_head.weight"].shape[0] == 5000  # the timestamp head stays fresh
    assert (aligner / "merges.txt").read_bytes() == (asr / "merges.txt").read_bytes()
    assert load_aligner(str(aligner), dtype="float32").cfg.classify_num == 5000
    with pytest.raises(ValueError, match="vocabularies differ"):
        warm_start(make_fresh_model(tmp_path / "big", lines, "aligner", bpe_size=400), asr)


def test_the_ctc_head_trains_resumes_exactly_and_is_not_exported(corpus, tmp_path):
    fresh = make_fresh_model(tmp_path / "fresh", SHORT * 5, "asr", bpe_size=300)
    train = read_manifest(corpus / "train.jsonl")
    opts = _opts(steps=4, save_every=2, ctc_weight=0.3)
    Trainer(fresh, tmp_path / "a", train, [], opts).run()
    first = Trainer(fresh, tmp_path / "b", train, [], opts)
    head = first.ctc_head.weight.detach().clone()
    first.train_step(), first.train_step()
    assert not torch.equal(head, first.ctc_head.weight)  # the head is optimised
    first.save_last()
    resumed = Trainer(fresh, tmp_path / "b", train, [], opts, resume=True)
    assert torch.equal(resumed.ctc_head.weight, first.ctc_head.weight)
    resumed.run()
    a, b = _weights(tmp_path / "a" / "last"), _weights(tmp_path / "b" / "last")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert _weights(tmp_path / "a" / "model").keys() == _weights(fresh).keys()  # the released layout only
    Trainer(fresh, tmp_path / "c", train, [], _opts(steps=1)).run()
    with pytest.raises(ValueError, match="without --ctc-weight"):
        Trainer(fresh, tmp_path / "c", train, [], opts, resume=True)
    with pytest.raises(ValueError, match="applies to ASR"):
        Trainer(make_fresh_model(tmp_path / "al", SHORT * 5, "aligner", bpe_size=300), tmp_path / "d", train, [], opts)


def test_a_warm_start_takes_the_ctc_head_a_previous_run_saved(corpus, tmp_path):
    fresh = make_fresh_model(tmp_path / "fresh", SHORT * 5, "asr", bpe_size=300)
    train = read_manifest(corpus / "train.jsonl")
    opts = _opts(steps=2, ctc_weight=0.3)
    Trainer(fresh, tmp_path / "a", train, [], opts).run()
    state = tmp_path / "a" / "last" / "training_state.pt"
    saved = torch.load(state, weights_only=True)["ctc_head"]
    warm = Trainer(tmp_path / "a" / "model", tmp_path / "b", train, [], opts, ctc_head_from=state)
    assert all(torch.equal(v, warm.ctc_head.state_dict()[k]) for k, v in saved.items())
    cold = Trainer(tmp_path / "a" / "model", tmp_path / "c", train, [], opts)
    assert not torch.equal(saved["weight"], cold.ctc_head.weight)
    other = make_fresh_model(tmp_path / "other", SHORT * 5, "asr", bpe_size=260)
    for model, src, kw, match in [(other, state, opts, "does not fit"), (fresh, tmp_path / "nope.pt", opts, "not a file"),
                                  (fresh, state, _opts(steps=2), "needs --ctc-weight")]:
        with pytest.raises(ValueError, match=match):
            Trainer(model, tmp_path / "d", train, [], kw, ctc_head_from=src)
    torch.save({"step": 3}, tmp_path / "headless.pt")
    with pytest.raises(ValueError, match="holds no CTC head"):
        Trainer(fresh, tmp_path / "d", train, [], opts, ctc_head_from=tmp_path / "headless.pt")
    (tmp_path / "text.pt").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="not a torch file"):
        Trainer(fresh, tmp_path / "d", train, [], opts, ctc_head_from=tmp_path / "text.pt")


def test_ctc_greedy_merges_repeats_and_drops_blanks():
    head = torch.nn.Linear(4, 4)  # classes 0-2 and the blank, 3
    with torch.no_grad():
        head.weight.copy_(torch.eye(4))
        head.bias.zero_()
    frames = torch.eye(4)[[0, 0, 3, 1, 1, 3, 1, 2, 2]]
    assert ctc_greedy(head, frames) == [0, 1, 1, 2]
    assert ctc_greedy(head, torch.eye(4)[[3, 3]]) == []


def test_evaluation_reports_the_ctc_heads_wer(corpus, tmp_path):
    fresh = make_fresh_model(tmp_path / "fresh", SHORT * 5, "asr", bpe_size=300)
    train, held_out = read_manifest(corpus / "train.jsonl"), read_manifest(corpus / "eval.jsonl")
    with_ctc = Trainer(fresh, tmp_path / "a", train, held_out, _opts(steps=1, ctc_weight=0.3)).evaluate()
    assert set(with_ctc) == {"wer", "ctc_wer"} and with_ctc["ctc_wer"] >= 0
    assert set(Trainer(fresh, tmp_path / "b", train, held_out, _opts(steps=1)).evaluate()) == {"wer"}
