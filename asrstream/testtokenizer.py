"""A small byte-level BPE tokenizer laid out on Qwen's real token ids, for test checkpoints.

Policy: the ids that code hard-codes are the released ones (`<|endoftext|>` 151643, `<|im_start|>`
151644, `<|im_end|>` 151645, `<|audio_start|>` 151669, `<|audio_end|>` 151670, `<|audio_pad|>`
151676, `<asr_text>` 151704, `<timestamp>` 151705). Ids below 151643 are a BPE trained on a few
English and Chinese lines, then filler tokens (single CJK characters, then four-letter words) so
that every id a random model emits decodes to some text. Ids from 151643 to the end of the vocab
are added tokens; those not listed above are `<|dummy_N|>` specials. `<asr_text>` is an added
token with special=False, so it survives `decode(..., skip_special_tokens=True)` as the reference
parser needs. Files written: tokenizer.json, tokenizer_config.json, vocab.json, merges.txt,
chat_template.json, preprocessor_config.json.
"""
from __future__ import annotations

import itertools
import json
import string
from pathlib import Path

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers
from tokenizers import pre_tokenizers, processors, trainers

FIRST_ADDED_ID = 151643
SPECIAL_IDS = {
    "<|endoftext|>": 151643,
    "<|im_start|>": 151644,
    "<|im_end|>": 151645,
    "<|audio_start|>": 151669,
    "<|audio_end|>": 151670,
    "<|audio_pad|>": 151676,
    "<timestamp>": 151705,
}
ASR_TEXT = ("<asr_text>", 151704)  # added but not special: survives skip_special_tokens
BPE_SIZE = 1200  # trained merges + bytes; the rest of the ids below 151643 are fillers

# The GPT-2 / Qwen2 pre-tokenizer split (contractions, letters, single digits, punctuation, spaces).
SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

TRAINING_TEXT = """\
language English<asr_text>hello world, this is a test of the speech recognition system.
The quick brown fox jumps over the lazy dog while the radio plays in the kitchen.
We are streaming audio over a websocket, and the server sends partial and final results.
Please speak clearly into the microphone; the model listens, then it writes what it hears.
It's a good day to build something small, fast and correct, isn't it? I'll try again later.
Numbers like 1, 2, 3, 10 and 2025 are written digit by digit; prices cost $4.99 or 12%.
Good morning, good evening, thank you very much, see you tomorrow at the meeting.
The weather today is sunny with a light wind from the west and a chance of rain tonight.
She said that the new version of the program was much faster than the old one.
Open the door, close the window, turn on the light and sit down at the table.
People from many countries speak many languages, and a good recognizer hears them all.
language Chinese<asr_text>你好，世界。今天天气很好，我们去公园散步吧。
language Chinese<asr_text>语音识别系统把声音变成文字，这是一个测试。
"""
LANGUAGES = (
    "Chinese English Cantonese Arabic German French Spanish Portuguese Indonesian Italian "
    "Korean Russian Thai Vietnamese Japanese Turkish Hindi Malay Dutch Swedish Danish Finnish "
    "Polish Czech Filipino Persian Greek Romanian Hungarian Macedonian"
).split()

# Renders <|im_start|>{role}\n{content}<|im_end|>\n per message; list contents render an audio item
# as <|audio_start|><|audio_pad|><|audio_end|> and a text item as its text.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' -}}"
    "{%- if message['content'] is string -%}{{- message['content'] -}}"
    "{%- else -%}{%- for item in message['content'] -%}"
    "{%- if item['type'] == 'audio' -%}{{- '<|audio_start|><|audio_pad|><|audio_end|>' -}}"
    "{%- elif item['type'] == 'text' -%}{{- item['text'] -}}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)

PREPROCESSOR_CONFIG = {
    "chunk_length": 30,
    "dither": 0.0,
    "feature_extractor_type": "WhisperFeatureExtractor",
    "feature_size": 128,
    "hop_length": 160,
    "n_fft": 400,
    "n_samples": 480000,
    "nb_max_frames": 3000,
    "padding_side": "right",
    "padding_value": 0.0,
    "processor_class": "Qwen3ASRProcessor",
    "return_attention_mask": True,
    "sampling_rate": 16000,
}


def byte_alphabet() -> dict[int, str]:
    """The byte-level BPE map from each byte to a printable character (GPT-2's scheme)."""
    keep = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    extra = (b for b in range(256) if b not in keep)
    table = {b: chr(b) for b in keep}
    table.update({b: chr(256 + i) for i, b in enumerate(extra)})
    return table


def _pipeline(tok: Tokenizer) -> Tokenizer:
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(SPLIT_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return tok


def train_bpe(lines: list[str], size: int) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """A byte-level BPE of `size` tokens (the 256 bytes first) trained on `lines`: (vocab, merges)."""
    tok = _pipeline(Tokenizer(models.BPE()))
    trainer = trainers.BpeTrainer(vocab_size=size, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(lines, trainer=trainer)
    model = json.loads(tok.to_str())["model"]
    return model["vocab"], [tuple(m) for m in model["merges"]]


def _train_bpe() -> tuple[dict[str, int], list[tuple[str, str]]]:
    return train_bpe(TRAINING_TEXT.splitlines() + [f"language {x}<asr_text>" for x in LANGUAGES], BPE_SIZE)


def _fillers() -> itertools.chain[str]:
    """Single CJK characters (byte-level spelled), then ' abcd'-style words: endless, distinct."""
    bl = byte_alphabet()
    cjk = ("".join(bl[b] for b in chr(c).encode()) for c in range(0x4E00, 0x9FA6))
    words = (bl[32] + "".join(w) for n in itertools.count(3)
             for w in itertools.product(string.ascii_lowercase, repeat=n))
    return itertools.chain(cjk, words)


def base_vocab() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """The 151643-entry BPE vocab (trained tokens first, then fillers) and its merges."""
    vocab, merges = _train_bpe()
    fill = (t for t in _fillers() if t not in vocab)
    for i in range(len(vocab), FIRST_ADDED_ID):
        vocab[next(fill)] = i
    return vocab, merges


def added_tokens(vocab_size: int) -> list[tuple[int, str, bool]]:
    """(id, content, special) for every id from 151643 up to vocab_size - 1 (the released layout)."""
    by_id = {i: (s, True) for s, i in SPECIAL_IDS.items()} | {ASR_TEXT[1]: (ASR_TEXT[0], False)}
    return [(i, *by_id.get(i, (f"<|dummy_{i - FIRST_ADDED_ID}|>", True)))
            for i in range(FIRST_ADDED_ID, vocab_size)]


def build_tokenizer(vocab: dict[str, int], merges: list[tuple[str, str]], added: list[tuple[int, str, bool]]) -> Tokenizer:
    """The backend tokenizer over a BPE vocab with every added token at its fixed id."""
    tok = _pipeline(Tokenizer(models.BPE(vocab=vocab, merges=merges)))
    for i, content, special in added:
        token = AddedToken(content, special=special, normalized=False)
        got = tok.add_special_tokens([token]) if special else tok.add_tokens([token])
        assert got == 1 and tok.token_to_id(content) == i, (content, i)
    return tok


def _tokenizer_config(added: list[tuple[int, str, bool]]) -> dict:
    decoder = {str(i): {"content": c, "lstrip": False, "normalized": False, "rstrip": False,
                        "single_word": False, "special": s} for i, c, s in added}
    return {
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": decoder,
        "additional_special_tokens": [s for s in SPECIAL_IDS if s != "<|endoftext|>"],
        "bos_token": None,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "errors": "replace",
        "extra_special_tokens": {"audio_token": "<|audio_pad|>", "audio_bos_token": "<|audio_start|>",
                                 "audio_eos_token": "<|audio_end|>"},
        "model_max_length": 65536,
        "pad_token": "<|endoftext|>",
        "processor_class": "Qwen3ASRProcessor",
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    }


def write_json(path: Path, obj: object) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_tokenizer_files(out_dir: Path, vocab_size: int) -> None:
    """The released id layout: base_vocab() below 151643, added tokens from there (test checkpoints)."""
    vocab, merges = base_vocab()
    write_files(out_dir, vocab, merges, added_tokens(vocab_size))


def write_files(out_dir: Path, vocab: dict[str, int], merges: list[tuple[str, str]],
                added: list[tuple[int, str, bool]]) -> None:
    """Write the tokenizer, chat template and feature-extractor files into out_dir."""
    build_tokenizer(vocab, merges, added).save(str(out_dir / "tokenizer.json"))
    (out_dir / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    lines = ["#version: 0.2", *(" ".join(m) for m in merges)]
    (out_dir / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    write_json(out_dir / "tokenizer_config.json", _tokenizer_config(added))
    write_json(out_dir / "chat_template.json", {"chat_template": CHAT_TEMPLATE})
    write_json(out_dir / "preprocessor_config.json", PREPROCESSOR_CONFIG)
