"""What the model is trained to say, and the loss.

ASR: the prompt is the checkpoint's own inference prompt (empty context, no forced language), with
one `<|audio_pad|>` per encoder output; the target is what the model says at inference,
`language X<asr_text>` + transcript + `<|im_end|>`, then two `<|endoftext|>`: decoders that stop only
at the released eos ids (the reference's transformers backend, with a compact vocabulary, see
fresh.py) then see nothing but special tokens after the answer. Cross-entropy on the target tokens
only, averaged over the batch's target tokens.

Aligner: the sequence is audio + `aligner_text(words)` (each word followed by two `<timestamp>`
tokens); the head classifies each `<timestamp>` position into a time class of
`timestamp_segment_time` ms: class = round(start / segment) and round(end / segment), clipped to
the head's classes. Cross-entropy at those positions; with `time_sigma` (in classes) against a
Gaussian over the classes centred on the exact time instead of the nearest class alone, so that a
prediction one class off costs less than one ten classes off and neighbouring classes' weights learn
from each other's examples (soft ordinal targets, as in label-distribution learning for age or pose).

Rows of a batch run through the decoder together, each as a whole sequence with `Whole` in place
of a KV cache: packed (no padding), except attention, which runs all rows in one padded call
(decoder/model.py's `padded_causal_attention`).

CTC (optional, ASR from scratch): a linear head on the audio encoder's output, trained with CTC on
the transcript's tokens (blank = one class past the vocabulary) and mixed into the loss with weight
`ctc_weight` (hybrid CTC/attention training, as ESPnet does with 0.3). It makes the encoder's frames
say the tokens early, so the decoder learns to read them many steps sooner than from its own loss
alone. The head exists only in training: the exported checkpoint is the released layout.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ..decoder.prompt import ASR_TAG
from ..decoder.words import aligner_text
from .frames import IGNORE, frame_labels, frame_times, word_tokens


FRAMES_PER_SECOND = 100  # log-mel frames (hop 160 at 16 kHz)
AFTER_END = 2  # <|endoftext|> tokens trained after <|im_end|>: what follows the answer is special tokens only


class Whole:
    """Stands in for a KVCache when a row runs as one whole sequence: keys and values pass through."""

    length = 0
    whole = True  # the decoder may run such rows' attention together, padded

    def check_room(self, n: int) -> None:
        pass

    def write(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return k, v

    def advance(self, n: int) -> None:
        pass


@dataclass
class Target:
    ids: list[int]  # the whole sequence, audio placeholders expanded
    positions: list[int]  # where the head's output is scored
    labels: list[int]  # the class (next token, or time class) at each position
    transcript: list[int] = field(default_factory=list)  # the text's tokens alone (CTC's labels)
    frames: list[int] = field(default_factory=list)  # the CTC head's label per audio frame (frames.py), or none
    centres: list[float] = field(default_factory=list)  # aligner: each position's exact time, in classes


def asr_target(prompter, eos_ids: tuple[int, ...], n_audio: int, text: str, language: str) -> Target:
    prompt = prompter.ids("", None, n_audio)
    im_end, pad = eos_ids[0], eos_ids[-1]
    answer = prompter.encode(f"language {language}{ASR_TAG}{text}") + [im_end] + [pad] * AFTER_END
    ids = prompt + answer
    start = len(prompt) - 1  # the prompt's last token predicts the answer's first
    return Target(ids, list(range(start, len(ids) - 1)), answer, prompter.encode(text))


def asr_frames(prompter, audio_cfg, n_audio: int, text: str, words, speed: float, lead: float,
               blank: int) -> list[int]:
    """The CTC head's frame labels (frames.py) for audio played `speed` times faster after `lead` s of
    silence; [] where the example has no word times or its text does not split into its words."""
    groups = word_tokens(prompter.tokenizer, text, len(words)) if words else None
    if groups is None:
        return []
    spans = [(w["start"] / speed + lead, w["end"] / speed + lead) for w in words]
    times = frame_times(n_audio, audio_cfg.tokens_per_chunk, audio_cfg.chunk_frames / FRAMES_PER_SECOND)
    return frame_labels(groups, spans, times, blank)


def aligner_target(prompter, cfg, n_audio: int, words: list[dict], speed: float = 1.0, lead: float = 0.0) -> Target:
    """The aligner's target for audio played `speed` times faster after `lead` seconds of silence."""
    ids = prompter.expand_audio(prompter.encode(aligner_text([w["word"] for w in words])), n_audio)
    slots = [i for i, t in enumerate(ids) if t == cfg.timestamp_token_id]
    seg = cfg.timestamp_segment_time / 1000.0
    centres = [min(max((t / speed + lead) / seg, 0.0), cfg.classify_num - 1.0) for w in words
               for t in (w["start"], w["end"])]
    if len(slots) != len(centres):
        raise ValueError(f"{len(slots)} <timestamp> tokens for {len(words)} words")
    return Target(ids, slots, [round(c) for c in centres], centres=centres)


def soft_time_targets(centres: torch.Tensor, sigma: float, n_classes: int) -> torch.Tensor:
    """(N, n_classes) probabilities: a Gaussian of width `sigma` classes around each centre, normalised
    over the classes (a softmax of the log-density, so a narrow one is the nearest class, never 0/0)."""
    classes = torch.arange(n_classes, dtype=torch.float32, device=centres.device)
    return torch.softmax(-0.5 * ((classes[None, :] - centres[:, None].float()) / sigma) ** 2, dim=-1)


def batch_loss(net, mels: list[torch.Tensor], make_target, ctc_head=None, ctc_weight: float = 0.0,
               frame_weight: float = 0.0, time_sigma: float = 0.0) -> torch.Tensor:
    """Mean cross-entropy over the batch's scored positions (against soft_time_targets where
    `time_sigma` > 0: aligners), mixed with CTC on the encoder's output when a `ctc_head` is given,
    plus `frame_weight` x the head's frame loss (frames.py).
    `make_target(i, n_audio)` gives example i's Target once its encoder output length is known."""
    audio = net.thinker.audio_tower(mels)
    targets = [make_target(i, a.shape[0]) for i, a in enumerate(audio)]
    rows = [net.embed(t.ids, a) for t, a in zip(targets, audio)]
    hidden = net.forward_rows(rows, [Whole() for _ in rows])
    picked = torch.cat([h[t.positions] for h, t in zip(hidden, targets)])
    logits = net.logits(picked).float()
    if time_sigma > 0:
        centres = torch.tensor([c for t in targets for c in t.centres], device=picked.device)
        labels = soft_time_targets(centres, time_sigma, logits.shape[-1])
    else:
        labels = torch.tensor([y for t in targets for y in t.labels], device=picked.device)
    loss = F.cross_entropy(logits, labels)
    if ctc_head is None:
        return loss
    loss = (1 - ctc_weight) * loss + ctc_weight * ctc_loss(ctc_head, audio, [t.transcript for t in targets])
    if frame_weight:
        loss = loss + frame_weight * frame_loss(ctc_head, audio, [t.frames for t in targets])
    return loss


def frame_loss(head, audio: list[torch.Tensor], frames: list[list[int]]) -> torch.Tensor:
    """Cross-entropy of the head's classes against the frame labels, averaged over the scored frames
    (examples without labels score none; a batch without any gives 0)."""
    labels = torch.tensor([y for a, f in zip(audio, frames) for y in (f or [IGNORE] * a.shape[0])],
                          device=audio[0].device)
    if not bool((labels != IGNORE).any()):
        return audio[0].new_zeros(())
    return F.cross_entropy(head(torch.cat(audio)).float(), labels, ignore_index=IGNORE)


def ctc_loss(head, audio: list[torch.Tensor], transcripts: list[list[int]]) -> torch.Tensor:
    """CTC of the head's per-frame classes (the last is blank) against each transcript, averaged
    over the batch's target tokens; impossible alignments (too few frames) count zero."""
    lengths = torch.tensor([a.shape[0] for a in audio])
    frames = torch.nn.utils.rnn.pad_sequence(audio)  # (T, B, d)
    logp = head(frames).float().log_softmax(-1)
    flat = torch.tensor([y for t in transcripts for y in t], dtype=torch.long, device=logp.device)
    sizes = torch.tensor([len(t) for t in transcripts])
    total = F.ctc_loss(logp, flat, lengths, sizes, blank=logp.shape[-1] - 1, reduction="sum", zero_infinity=True)
    return total / max(1, int(sizes.sum()))


def ctc_greedy(head, frames: torch.Tensor) -> list[int]:
    """Best-path CTC decoding of one utterance's encoder frames (T, d): the head's most likely class per
    frame, repeats merged, blanks (the last class) dropped; a blank between two equal tokens keeps both."""
    best = head(frames).argmax(-1).tolist()
    blank = head.out_features - 1
    return [c for i, c in enumerate(best) if c != blank and (i == 0 or c != best[i - 1])]
