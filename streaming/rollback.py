"""The rollback policy of streaming decoding, and what of a hypothesis is stable.

Each step decodes the segment's audio so far with a forced text prefix. The prefix for the next
step is computed from this step's hypothesis (the reference's policy):
- no prefix while fewer than `unfixed_chunks` steps have run (early guesses are poor);
- later, all but the last `rollback_tokens` tokens (at least one), shortened further while it ends
  inside a multi-byte character (its decoding would hold U+FFFD);
- and never shorter than the previous prefix: what was forced once stays forced, so the prefix only
  grows. That makes its text *stable*: every later hypothesis of the segment starts with it.
A partial's `stable_text` is the transcript part of the next step's prefix; `unstable_text` is the
rest of the hypothesis.
"""
from __future__ import annotations

from typing import Callable

from ..decoder.prompt import ASR_TAG, parse_output


def next_prefix(prev: list[int], hyp: list[int], steps_done: int, unfixed_chunks: int, rollback: int,
                decode: Callable[[list[int]], str]) -> list[int]:
    """The prefix the next step forces, given this step's hypothesis (which starts with prev)."""
    if steps_done < unfixed_chunks or not hyp:
        return list(prev)
    n = max(1, len(hyp) - rollback)
    while n > len(prev) and "\ufffd" in decode(hyp[:n]):
        n -= 1
    return hyp[: max(n, len(prev))]


def split_stable(stable_raw: str, full_raw: str, forced_language: str | None, prev_stable: str) -> tuple[str, str, str]:
    """(stable_text, unstable_text, language) of a hypothesis whose first part is stable_raw.

    The stable text only ever grows: if parsing (which collapses repetition loops) would make it
    shrink or change, the previous stable text is kept and the unstable text is what follows it.
    """
    language, text = parse_output(full_raw, forced_language)
    stable = ""
    if forced_language or ASR_TAG in stable_raw or ASR_TAG not in full_raw:  # else: the tag is still unstable
        stable = parse_output(stable_raw, forced_language)[1]
    if not stable.startswith(prev_stable) or not text.startswith(stable):
        stable = prev_stable
    unstable = text[len(stable) :] if text.startswith(stable) else ""
    return stable, unstable, language
