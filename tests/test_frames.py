"""The CTC head's frame labels from word times (training/frames.py): where each word's tokens land,
blanks only in clear silence, and that the frame loss trains the head through the trainer."""
from __future__ import annotations

import pytest
import torch

from asrstream.decoder.prompt import Prompter
from asrstream.training.augment import AugmentOptions
from asrstream.training.frames import IGNORE, frame_labels, frame_times, word_tokens
from asrstream.training.fresh import make_fresh_model
from asrstream.training.manifest import read_manifest
from asrstream.training.options import TrainOptions
from asrstream.training.trainer import Trainer

from .test_training import SHORT, _opts, corpus  # noqa: F401  (corpus: the module fixture)

BLANK = 99


def test_frame_times_follow_the_chunks():
    times = frame_times(15, 13, 1.0)
    assert times[0] == pytest.approx(1 / 26) and times[12] == pytest.approx(12.5 / 13)
    assert times[13] == pytest.approx(1 + 1 / 26)  # the second chunk starts at 1 s


def test_each_words_frames_carry_its_tokens_in_order_and_blanks_only_in_silence():
    times = [0.04 + 0.08 * i for i in range(20)]  # 1.6 s of frames
    groups = [[1, 2], [3], [4, 5, 6, 7, 8]]  # the last word has more tokens than frames
    spans = [(0.3, 0.7), (0.7, 0.9), (1.2, 1.4)]
    labels = frame_labels(groups, spans, times, BLANK)
    first = [y for t, y in zip(times, labels) if 0.3 <= t <= 0.7]
    assert first == [1, 1, 1, 2, 2]  # shared out in order, every token at least one frame
    assert [y for t, y in zip(times, labels) if 0.7 < t <= 0.9] == [3, 3]
    assert all(y == IGNORE for t, y in zip(times, labels) if 1.2 <= t <= 1.4)  # too short for 5 tokens
    for t, y in zip(times, labels):
        near = any(s - 0.08 <= t <= e + 0.08 for s, e in spans)
        assert (y == BLANK) == (not near), (t, y)


def test_word_tokens_group_the_spoken_tokens_by_word(tmp_path):
    text = "Well, it's 2 o'clock - time to go!"
    fresh = make_fresh_model(tmp_path / "m", [text] * 3 + SHORT * 5, "asr", bpe_size=300)
    tok = Prompter(fresh).tokenizer
    groups = word_tokens(tok, text, 7)  # "-" is no spoken word
    spoken = [tok.decode(g).strip() for g in groups]  # tokens of bare punctuation (',', '!', the apostrophe) dropped
    assert [s.replace("'", "") for s in spoken] == ["Well", "its", "2", "oclock", "time", "to", "go"]
    assert word_tokens(tok, text, 6) is None  # a manifest whose words do not fit the text: no labels


def test_the_frame_loss_trains_the_ctc_head_and_needs_it(corpus, tmp_path):  # noqa: F811
    fresh = make_fresh_model(tmp_path / "fresh", SHORT * 5, "asr", bpe_size=300)
    train = read_manifest(corpus / "train.jsonl")
    aug = AugmentOptions(speeds=(0.9, 1.1), gain_db=0.0, noise_prob=0.0, lead_in=0.5)
    trainer = Trainer(fresh, tmp_path / "a", train, [], _opts(steps=30, ctc_weight=0.3, frame_weight=1.0, augment=aug))
    mels, make, _ = trainer._prepare([0, 1], epoch=0)
    labels = make(0, mels[0].shape[1] // 8).frames
    assert len(labels) == mels[0].shape[1] // 8
    assert sum(y not in (IGNORE, trainer.cfg.text.vocab_size) for y in labels) >= 3  # tokens placed
    before = _frame_ce(trainer, mels, make)
    for _ in range(30):
        trainer.train_step()
    assert _frame_ce(trainer, mels, make) < 0.5 * before
    with pytest.raises(ValueError, match="frame_weight"):
        TrainOptions(frame_weight=0.5)


@torch.no_grad()
def _frame_ce(trainer, mels, make) -> float:
    audio = trainer.net.thinker.audio_tower(mels)
    labels = torch.tensor([y for k, a in enumerate(audio) for y in make(k, a.shape[0]).frames])
    logits = trainer.ctc_head(torch.cat(audio))
    return float(torch.nn.functional.cross_entropy(logits, labels, ignore_index=IGNORE))
