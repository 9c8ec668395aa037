"""`asrstream transcribe` end to end on generated files, and one clear error line for bad input."""
import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from asrstream.cli import main

from .reference import speechlike


@pytest.fixture(scope="module")
def audio_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("audio")
    sf.write(d / "speech.wav", speechlike(4.0, seed=1), 16000)
    stereo = np.stack([speechlike(3.0, seed=2, sr=44100), speechlike(3.0, seed=3, sr=44100)], axis=1)
    sf.write(d / "stereo.flac", (stereo * 20000).astype(np.int16), 44100)
    sf.write(d / "empty.wav", np.zeros(0, dtype=np.float32), 16000)
    sf.write(d / "nan.wav", np.full(16000, np.nan, dtype=np.float32), 16000, subtype="FLOAT")
    (d / "notaudio.wav").write_text("this is not audio")
    return d


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_text_output(capsys, audio_files, tiny_asr_dir):
    code, out, err = _run(capsys, "transcribe", str(audio_files / "speech.wav"), "--model", str(tiny_asr_dir),
                          "--max-new-tokens", "16")
    assert code == 0 and out.strip() and out.endswith("\n")


def test_json_output_of_stereo_flac_has_every_field(capsys, audio_files, tiny_asr_dir, tiny_aligner_dir):
    code, out, _ = _run(capsys, "transcribe", str(audio_files / "stereo.flac"), "--model", str(tiny_asr_dir),
                        "--aligner", str(tiny_aligner_dir), "--format", "json", "--max-new-tokens", "16")
    assert code == 0
    res = json.loads(out)
    assert list(res) == ["text", "language", "raw", "token_ids", "words", "segments"]
    assert len(res["token_ids"]) == 16 and res["raw"]
    assert res["words"] and all(set(w) == {"word", "start", "end"} for w in res["words"])
    assert all(0 <= w["start"] <= w["end"] <= 3.0 for w in res["words"])


@pytest.mark.parametrize("fmt,head", [("srt", "1\n00:00:"), ("vtt", "WEBVTT\n")])
def test_subtitle_formats(capsys, audio_files, tiny_asr_dir, tiny_aligner_dir, fmt, head):
    code, out, _ = _run(capsys, "transcribe", str(audio_files / "speech.wav"), "--model", str(tiny_asr_dir),
                        "--aligner", str(tiny_aligner_dir), "--format", fmt, "--max-new-tokens", "24")
    assert code == 0 and out.startswith(head) and " --> " in out


def test_output_dir_gets_one_file_per_input(capsys, tmp_path, audio_files, tiny_asr_dir):
    code, out, _ = _run(capsys, "transcribe", str(audio_files / "speech.wav"), str(audio_files / "stereo.flac"),
                        "--model", str(tiny_asr_dir), "--format", "json", "--output-dir", str(tmp_path / "o"),
                        "--max-new-tokens", "8")
    assert code == 0 and out == ""
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["speech.json", "stereo.json"]


def test_forced_language_and_context_are_used(capsys, audio_files, tiny_asr_dir):
    code, out, _ = _run(capsys, "transcribe", str(audio_files / "speech.wav"), "--model", str(tiny_asr_dir),
                        "--language", "english", "--context", "names", "--format", "json",
                        "--max-new-tokens", "8")
    assert code == 0 and json.loads(out)["language"] == "English"


@pytest.mark.parametrize("name,message", [
    ("missing.wav", "no such file"),
    ("notaudio.wav", "is not an audio file"),
    ("empty.wav", "empty"),
    ("nan.wav", "NaN"),
])
def test_bad_audio_gives_one_error_line(capsys, audio_files, tiny_asr_dir, name, message):
    code, out, err = _run(capsys, "transcribe", str(audio_files / name), "--model", str(tiny_asr_dir))
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith("asrstream: error: ") and message in err


@pytest.mark.parametrize("args,message", [
    (["--language", "Klingon"], "unsupported language 'Klingon'"),
    (["--model", "/nonexistent/model"], "not a checkpoint directory"),
    (["--batch-size", "0"], "--batch-size must be >= 1"),
    (["--max-new-tokens", "0"], "max_new_tokens must be >= 1"),
    (["--dtype", "int4"], "dtype 'int4'"),
])
def test_bad_options_give_one_error_line(capsys, audio_files, tiny_asr_dir, args, message):
    argv = ["transcribe", str(audio_files / "speech.wav"), "--model", str(tiny_asr_dir), *args]
    code, out, err = _run(capsys, *argv)
    assert code == 1 and err.count("\n") == 1 and message in err


def test_console_script_reports_offline_hub_without_traceback(tmp_path, audio_files):
    """A hub id the user names is never replaced by the bundled model, even the default's (tests/test_tiny_en.py)."""
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-m", "asrstream", "transcribe", str(audio_files / "speech.wav"),
                           "--model", "Qwen/Qwen3-ASR-0.6B"], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "warning" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("asrstream: error: model 'Qwen/Qwen3-ASR-0.6B'")


def test_long_file_is_cut_into_pieces_with_file_times(tiny_asr_dir, tiny_aligner_dir):
    from asrstream import load_aligner, load_model
    from asrstream.decoder.generate import DecodingOptions

    model, aligner = load_model(tiny_asr_dir), load_aligner(tiny_aligner_dir)
    wav = np.concatenate([speechlike(9.0, seed=1), np.zeros(8000, np.float32), speechlike(9.0, seed=2)])
    calls = []
    res = model.transcribe(wav, aligner=aligner, options=DecodingOptions(max_new_tokens=12), batch_size=2,
                           max_piece_seconds=10.0, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(2, 2)]
    assert len(res.token_ids) == 24
    assert res.words[-1]["start"] >= 9.0  # the second piece's words are in file time
    assert all(w["end"] <= len(wav) / 16000 for w in res.words)


def test_client_side_imports_and_help_never_load_torch():
    code = ("import sys, asrstream, asrstream.protocol.formats, asrstream.clients, asrstream.cli\n"
            "asrstream.cli.parser().format_help()\n"
            "assert 'torch' not in sys.modules, 'torch was imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_twenty_one_minute_file_through_the_cli(capsys, tmp_path, tiny_asr_dir):
    """A 21-minute file is cut into two pieces (<= 1200 s each) that are decoded as one batch."""
    wav = np.concatenate([speechlike(60.0, seed=i) for i in range(21)])
    sf.write(tmp_path / "long.flac", wav, 16000)
    code, out, _ = _run(capsys, "transcribe", str(tmp_path / "long.flac"), "--model", str(tiny_asr_dir),
                        "--format", "json", "--max-new-tokens", "8", "--quiet")
    assert code == 0
    res = json.loads(out)
    assert len(res["token_ids"]) == 16  # two pieces (<= 1200 s each), 8 tokens each
