"""The bundled tiny-en model end to end, and the command line's fallback to it.

Speech: Festival's kal voice speaking tests/speech.py's SENTENCES, held out of training, with
Festival's exact word times. Words are compared after the WER normaliser (training/wer.py); "in
order" is a longest common subsequence of words. The first four tests measure the trained model
(they fail on random weights); the others check the mechanics with whatever checkpoint is bundled.
"""
from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from asrstream import load_aligner, load_model
from asrstream.cli import main, render
from asrstream.clients.sdk import StreamingClient
from asrstream.decoder import bundled
from asrstream.decoder.generate import DecodingOptions
from asrstream.encoder.audio import load_audio
from asrstream.protocol.messages import TranscriptFinal
from asrstream.streaming.options import StreamOptions
from asrstream.training.voices import synthesize, voice
from asrstream.training.wer import normalize

from .servers import ServeProcess, http_get, pcm16
from .speech import SENTENCES, SR, silence

ASR, ALIGNER = "Qwen/Qwen3-ASR-0.6B", "Qwen/Qwen3-ForcedAligner-0.6B"
CHECKPOINT_FILES = {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
                    "tokenizer_config.json", "vocab.json", "merges.txt", "chat_template.json", "preprocessor_config.json"}


# The shipped weights fall short of these two (issue 7 stays open for it): per-sentence word recall 1.00,
# 0.93, 0.69, 0.62 offline (docs/tiny-en.md). strict: once a better bundle passes, remove the mark.
BELOW_GOAL = pytest.mark.xfail(strict=True, reason="the bundled tiny-en model hears 62-100 % of these sentences' "
                               "words (goal 80 %): a better-trained bundle is issue 7's remaining work")


@pytest.fixture(scope="module")
def spoken() -> list[tuple[str, np.ndarray, list[dict]]]:
    """(sentence, 16 kHz audio, Festival's word times) for each of SENTENCES, by festival-kal."""
    n = len(SENTENCES)
    out = synthesize(voice("festival-kal"), list(SENTENCES), [1.0] * n, [0.0] * n)
    assert all(words for _, words in out), "festival gave no word times"
    return [(s, audio, words) for s, (audio, words) in zip(SENTENCES, out)]


@pytest.fixture(scope="module")
def tiny_en():
    return load_model("tiny-en")


@pytest.fixture(scope="module")
def sentence_wav(tmp_path_factory, spoken):
    path = tmp_path_factory.mktemp("tiny_en") / "sentence.wav"
    sf.write(path, spoken[0][1], SR)
    return path


def _words(text: str) -> list[str]:
    return normalize(text).split()


def _lcs(a: list[str], b: list[str]) -> list[tuple[int, int]]:
    """Index pairs (i, j), a[i] == b[j], of a longest common subsequence of a and b."""
    longest = np.zeros((len(a) + 1, len(b) + 1), dtype=int)  # of a[i:] and b[j:]
    for i in range(len(a) - 1, -1, -1):
        for j in range(len(b) - 1, -1, -1):
            longest[i, j] = longest[i + 1, j + 1] + 1 if a[i] == b[j] else max(longest[i + 1, j], longest[i, j + 1])
    pairs, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        if a[i] == b[j]:
            pairs.append((i, j))
            i, j = i + 1, j + 1
        elif longest[i + 1, j] >= longest[i, j + 1]:
            i += 1
        else:
            j += 1
    return pairs


@BELOW_GOAL
def test_offline_transcripts_hold_80_percent_of_the_spoken_words_in_order(spoken, tiny_en):
    heard = [(sentence, tiny_en.transcribe(audio).text) for sentence, audio, _ in spoken]
    recall = [len(_lcs(_words(s), _words(text))) / len(_words(s)) for s, text in heard]
    assert min(recall) >= 0.8, list(zip(recall, heard))


async def _stream_each(spoken) -> list[tuple[np.ndarray, str, list[TranscriptFinal]]]:
    """Each sentence (then 1 s of silence) streamed through `serve --model tiny-en --aligner tiny-en`:
    (the samples the server decoded, the model session.created named, the finals)."""
    server = ServeProcess("--model", "tiny-en", "--aligner", "tiny-en")
    try:
        server.wait_for(r"ready: model tiny-en, aligner tiny-en")
        streamed = []
        for _, audio, _ in spoken:
            pcm = pcm16(np.concatenate([audio, silence(1.0)]))
            async with StreamingClient(f"ws://127.0.0.1:{server.port}/v1/asr") as client:
                await client.send_audio(pcm)
                await client.close()
                finals = [ev async for ev in client if isinstance(ev, TranscriptFinal)]
            streamed.append((np.frombuffer(pcm, "<i2").astype(np.float32) / 32768, client.created.model, finals))
    finally:
        server.proc.kill()
        server.proc.wait()
    return streamed


@pytest.fixture(scope="module")
def streamed(spoken):
    return asyncio.run(_stream_each(spoken))


def test_streamed_finals_equal_offline_transcripts_of_their_spans(streamed, tiny_en):
    """Each final equals the offline transcript of its span (as tests/test_streaming_engine.py
    checks for the engine)."""
    for sent, model, finals in streamed:
        assert model == "tiny-en" and finals
        for f in finals:
            span = sent[round(f.start * SR) : round(f.end * SR)]
            limit = StreamOptions().token_limit(len(span) / SR)
            assert f.text == tiny_en.transcribe(span, options=DecodingOptions(max_new_tokens=limit)).text


# The server cuts "... the lazy dog | near the river bank" at Festival's pause, and the shipped model
# reads the two pieces otherwise than the whole ("laysy dog", "negniver bank"); strict: see BELOW_GOAL.
@pytest.mark.xfail(strict=True, reason="the bundled tiny-en model reads a sentence cut at a pause otherwise "
                   "than the whole sentence")
def test_a_sentences_finals_together_equal_its_offline_transcript(streamed, tiny_en):
    for sent, _, finals in streamed:
        assert normalize(" ".join(f.text for f in finals)) == normalize(tiny_en.transcribe(sent).text)


@BELOW_GOAL
def test_word_centres_fall_inside_festivals_word_spans(spoken, tiny_en):
    """Words of the transcript are matched to the spoken ones in order (longest common subsequence of
    the normalised words); >= 90 % of the matched words' centres lie inside Festival's span."""
    aligner = load_aligner("tiny-en")
    inside = matched = 0
    for sentence, audio, timed in spoken:
        words = tiny_en.transcribe(audio, aligner=aligner).words
        pairs = _lcs([normalize(w["word"]) for w in timed], [normalize(w["word"]) for w in words])
        assert len(pairs) >= 0.8 * len(timed), (sentence, words)
        for i, j in pairs:
            inside += timed[i]["start"] <= (words[j]["start"] + words[j]["end"]) / 2 <= timed[i]["end"]
        matched += len(pairs)
    assert inside >= 0.9 * matched, f"{inside} of {matched} word centres inside the spoken words"


def test_bundle_has_every_checkpoint_file():
    for kind in ("asr", "aligner"):
        folder = bundled.MODELS / "tiny-en" / kind
        assert CHECKPOINT_FILES <= {p.name for p in folder.iterdir()}, folder


def test_bundle_is_under_40_mib():
    size = sum(p.stat().st_size for p in (bundled.MODELS / "tiny-en").rglob("*") if p.is_file())
    assert size < 40 * 2**20, f"{size / 2**20:.1f} MiB"


def test_a_missing_bundle_is_one_error_line(monkeypatch, tmp_path, capsys, sentence_wav):
    monkeypatch.setattr(bundled, "MODELS", tmp_path / "no-models")
    code = main(["transcribe", str(sentence_wav), "--model", "tiny-en"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert err.startswith("asrstream: error: the bundled tiny-en model is not in this install")


def _offline(tmp_path) -> dict:
    """This process's environment with the hub offline and an empty Hugging Face cache in tmp_path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    return {**env, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}


def _transcribe(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "asrstream", "transcribe", *args], capture_output=True, text=True,
                          env=env, timeout=600)


def _says_what_tiny_en_is_and_how_to_get(line: str, *hub_ids: str) -> bool:
    return ("tiny-en" in line and "demonstration" in line and "synthetic English speech" in line
            and all(f"{i} " in line and f"huggingface-cli download {i}`" in line for i in hub_ids))


def test_transcribe_falls_back_to_tiny_en_offline_with_one_warning(tmp_path, sentence_wav, tiny_en):
    r = _transcribe(_offline(tmp_path), str(sentence_wav))
    assert r.returncode == 0, r.stderr
    [line] = r.stderr.splitlines()
    assert line.startswith(f"asrstream: warning: {ASR} is neither in the Hugging Face cache nor downloadable")
    assert _says_what_tiny_en_is_and_how_to_get(line, ASR) and "--model PATH" in line
    assert r.stdout.strip() and r.stdout == render(tiny_en.transcribe(load_audio(sentence_wav)).to_dict(), "text")


async def test_serve_falls_back_to_tiny_en_offline_with_one_warning(tmp_path):
    server = ServeProcess(env=_offline(tmp_path))
    try:
        server.wait_for(r"ready: model tiny-en, aligner tiny-en")
        status = (await asyncio.to_thread(http_get, server, "/health"))[0]
        async with StreamingClient(f"ws://127.0.0.1:{server.port}/v1/asr") as client:
            created = client.created
    finally:
        server.proc.kill()
        server.proc.wait()
    [warning] = [line for line in server.lines if " WARNING " in line]
    assert f"{ASR} and {ALIGNER} are neither in the Hugging Face cache nor downloadable" in warning
    assert _says_what_tiny_en_is_and_how_to_get(warning, ASR, ALIGNER)
    assert status == 200 and created.model == "tiny-en"
    assert "error" not in server.log.lower() and "Traceback" not in server.log


@pytest.fixture
def cached_default(tmp_path, tiny_asr_dir) -> dict:
    """An offline environment whose Hugging Face cache holds a tiny random checkpoint as the default
    ASR model, in the hub's cache layout."""
    repo = tmp_path / "hf" / "hub" / ("models--" + ASR.replace("/", "--"))
    commit = "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(tiny_asr_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    return _offline(tmp_path)


def test_a_cached_default_model_is_used_offline_without_warning(cached_default, sentence_wav, tiny_asr_dir):
    r = _transcribe(cached_default, str(sentence_wav), "--max-new-tokens", "16")
    assert r.returncode == 0 and r.stderr == ""
    want = load_model(tiny_asr_dir).transcribe(load_audio(sentence_wav), options=DecodingOptions(max_new_tokens=16))
    assert r.stdout == render(want.to_dict(), "text")


async def test_serve_names_a_cached_default_by_its_hub_id(cached_default):
    """session.created names the model loaded as the user knows it, never its cache folder."""
    server = ServeProcess("--no-aligner", env=cached_default)
    try:
        server.wait_for(rf"ready: model {re.escape(ASR)}$")
        async with StreamingClient(f"ws://127.0.0.1:{server.port}/v1/asr") as client:
            created = client.created
    finally:
        server.proc.kill()
        server.proc.wait()
    assert created.model == ASR and "WARNING" not in server.log


def test_a_named_model_is_never_replaced_by_tiny_en(tmp_path, sentence_wav):
    env = _offline(tmp_path)
    r = _transcribe(env, str(sentence_wav), "--model", "some/missing-id")
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.splitlines() == [r.stderr.strip()] and r.stderr.startswith("asrstream: error: model 'some/missing-id'")
    s = subprocess.run([sys.executable, "-m", "asrstream", "serve", "--port", "0", "--model", "some/missing-id"],
                       capture_output=True, text=True, env=env, timeout=300)
    errors = [line for line in s.stderr.splitlines() if "error" in line.lower()]
    assert s.returncode == 1 and len(errors) == 1 and "'some/missing-id'" in errors[0]
    assert "tiny-en" not in s.stderr and "WARNING" not in s.stderr
