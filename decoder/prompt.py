"""The ASR prompt, the model's output format, and languages.

Prompt: the checkpoint's chat template rendered for a system message holding the context (hotwords
or other biasing text) and a user message holding one audio item, plus the generation prompt. With a
forced language, `language X<asr_text>` is appended so the model writes only the transcript. The one
`<|audio_pad|>` placeholder becomes one token per encoder output.

Output: `language X<asr_text>text`, or `language None<asr_text>` for no speech. Character runs and
n-gram loops longer than 20 repeats are collapsed before parsing, as the reference does.
"""
from __future__ import annotations

import json
from functools import lru_cache
from itertools import groupby
from pathlib import Path

LANGUAGES = (
    "Chinese", "English", "Cantonese", "Arabic", "German", "French", "Spanish", "Portuguese", "Indonesian",
    "Italian", "Korean", "Russian", "Thai", "Vietnamese", "Japanese", "Turkish", "Hindi", "Malay", "Dutch",
    "Swedish", "Danish", "Finnish", "Polish", "Czech", "Filipino", "Persian", "Greek", "Romanian", "Hungarian",
    "Macedonian",
)
ASR_TAG = "<asr_text>"
REPEAT_THRESHOLD = 20


def normalize_language(name: str, supported: tuple[str, ...] = LANGUAGES) -> str:
    """'english' -> 'English'; ValueError naming the supported list for anything else."""
    s = str(name).strip()
    lang = s[:1].upper() + s[1:].lower()
    if lang not in (supported or LANGUAGES):
        raise ValueError(f"unsupported language {name!r}; supported: {', '.join(supported or LANGUAGES)}")
    return lang


def read_chat_template(path: Path) -> str:
    """The chat template from chat_template.json, chat_template.jinja or tokenizer_config.json."""
    for name, key in (("chat_template.json", "chat_template"), ("chat_template.jinja", None),
                      ("tokenizer_config.json", "chat_template")):
        f = path / name
        if f.exists():
            text = f.read_text(encoding="utf-8")
            value = json.loads(text).get(key) if key else text
            if value:
                return value
    raise RuntimeError(f"model dir {path} has no chat template (chat_template.json or chat_template.jinja)")


class Prompter:
    """Builds prompt token ids; holds the tokenizer and chat template of one checkpoint."""

    def __init__(self, path: Path, audio_token: str = "<|audio_pad|>"):
        from transformers import AutoTokenizer

        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(path), fix_mistral_regex=False)
        except Exception as e:
            raise RuntimeError(f"model dir {path} has no usable tokenizer files: {e}") from None
        self.template = read_chat_template(path)
        self.audio_token = audio_token
        self.audio_id = self.tokenizer.convert_tokens_to_ids(audio_token)
        self._cache: dict[tuple[str, str | None], list[int]] = {}

    def text(self, context: str, language: str | None) -> str:
        """The prompt string with a single audio placeholder."""
        messages = [{"role": "system", "content": context or ""},
                    {"role": "user", "content": [{"type": "audio", "audio": ""}]}]
        s = self.tokenizer.apply_chat_template(messages, chat_template=self.template, tokenize=False,
                                               add_generation_prompt=True)
        return s + f"language {language}{ASR_TAG}" if language else s

    def encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def template_ids(self, context: str, language: str | None) -> list[int]:
        """The prompt's ids with a single audio placeholder; cached per (context, language)."""
        key = (context, language)
        if key not in self._cache:
            self._cache[key] = self.encode(self.text(context, language))
        return self._cache[key]

    def expand_audio(self, ids: list[int], n_audio: int) -> list[int]:
        """Replace the one audio placeholder in `ids` by `n_audio` of them."""
        if ids.count(self.audio_id) != 1:
            raise RuntimeError("the prompt must hold exactly one audio placeholder")
        i = ids.index(self.audio_id)
        return ids[:i] + [self.audio_id] * n_audio + ids[i + 1 :]

    def ids(self, context: str, language: str | None, n_audio: int) -> list[int]:
        return self.expand_audio(self.template_ids(context, language), n_audio)

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)


def _collapse_char_runs(s: str, limit: int) -> str:
    runs = ((ch, len(list(g))) for ch, g in groupby(s))
    return "".join(ch if n > limit else ch * n for ch, n in runs)


def _pattern_loop_at(s: str, i: int, limit: int, max_len: int) -> tuple[int, int] | None:
    """(pattern length, end) if an n-gram (n <= max_len) starting at i repeats >= limit times."""
    n = len(s)
    for k in range(1, max_len + 1):
        if i + k * limit > n:
            return None
        pat = s[i : i + k]
        if all(s[i + r * k : i + r * k + k] == pat for r in range(1, limit)):
            end = i + limit * k
            while end + k <= n and s[end : end + k] == pat:
                end += k
            return k, end
    return None


def _collapse_pattern_loops(s: str, limit: int, max_len: int = 20) -> str:
    out: list[str] = []
    i = 0
    while len(s) - i >= 2 * limit:
        hit = _pattern_loop_at(s, i, limit, max_len)
        if hit is None:
            out.append(s[i])
            i += 1
            continue
        k, end = hit
        out.append(s[i : i + k])
        s, i = s[end:], 0
    out.append(s[i:])
    return "".join(out)


def fix_repetitions(text: str, limit: int = REPEAT_THRESHOLD) -> str:
    """Collapse a character repeated more than `limit` times, then n-gram loops of >= `limit` repeats."""
    return _collapse_pattern_loops(_collapse_char_runs(text, limit), limit)


@lru_cache(maxsize=1024)
def parse_output(raw: str, forced_language: str | None = None) -> tuple[str, str]:
    """(language, text) from the decoded output; language is '' when unknown or no speech."""
    s = (raw or "").strip()
    if not s:
        return "", ""
    s = fix_repetitions(s)
    if forced_language:
        return forced_language, s
    if ASR_TAG not in s:
        return "", s.strip()
    meta, text = s.split(ASR_TAG, 1)
    if "language none" in meta.lower():
        return "", text.strip()
    for line in meta.splitlines():
        line = line.strip()
        if line.lower().startswith("language "):
            val = line[len("language ") :].strip()
            return (val[:1].upper() + val[1:].lower() if val else ""), text.strip()
    return "", text.strip()
