"""Checkpoints shipped inside the package (package data, no code): `tiny-en/asr` and `tiny-en/aligner`,
the bundled demonstration model that `--model tiny-en` / `--aligner tiny-en` load (decoder/bundled.py,
docs/tiny-en.md)."""
