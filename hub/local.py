"""Running a hub on this machine's loopback: what ``make demo``, ``bench/hub.py`` and the
integration tests share.

``serve_local(data_dir, log)`` starts ``hub serve`` on a free loopback port as a child
process, with its logs in a file (a pipe nobody reads fills up and stalls the server), and
returns once ``/readyz`` answers.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

__all__ = ["free_port", "serve_local"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_local(
    data_dir: Path,
    log: Path,
    *,
    timeout: float = 30.0,
    tls: ssl.SSLContext | None = None,
    workers: int = 0,
) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``hub serve`` for ``data_dir`` on a free loopback port; (process, base URL).

    ``tls`` is the client context that trusts the hub's certificate, for a hub whose
    configuration serves HTTPS; ``workers`` the job workers it runs beside the API."""
    port = free_port()
    with log.open("ab") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hub.cli", "serve", "--data-dir", str(data_dir),
             "--listen", f"127.0.0.1:{port}", "--workers", str(workers)],
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )  # fmt: skip
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"hub serve exited: {log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=2, context=tls) as response:
                if response.status == 200:
                    return proc, url
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    raise RuntimeError(f"hub serve did not become ready within {timeout:.0f} s")
