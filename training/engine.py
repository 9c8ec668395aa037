"""Running an offline speech engine's command (flite, festival, espeak-ng) for the corpus."""
from __future__ import annotations

import shlex
import subprocess


def run_engine(cmd: list[str], timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    """Run a speech engine; a missing, failing or hung engine is a RuntimeError saying which and why
    (the CLI prints it as one error line, not a traceback)."""
    try:
        return subprocess.run(cmd, check=True, capture_output=True, timeout=timeout, **kw)
    except FileNotFoundError:
        raise RuntimeError(f"{cmd[0]} is not installed (Debian package {cmd[0]})") from None
    except subprocess.TimeoutExpired:  # wall-clock: pausing the job (SIGSTOP) for longer also ends here
        raise RuntimeError(f"{cmd[0]} gave no speech within {timeout:g} s: {shlex.join(cmd)}") from None
    except subprocess.CalledProcessError as e:
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else e.stderr or ""
        raise RuntimeError(f"{cmd[0]} failed (exit status {e.returncode}): {err.strip()[-300:] or 'no message'}") \
            from None
