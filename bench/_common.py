"""Helpers shared by the ``bench/`` scripts: machine description, measured subprocess runs, the
peers' virtual environment and the result line.

Only the standard library is used here, so any bench script (and any interpreter) can import it.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
PEERS_VENV = BENCH_DIR / ".peers-venv"
PEERS_REQUIREMENTS = BENCH_DIR / "requirements-peers.txt"
_PEERS_STAMP = ".bench-requirements.sha256"
_MB = 1024 * 1024


def log(message: str) -> None:
    """Progress for the person running the bench (stderr, so stdout stays the report)."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --- machine -------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return platform.processor() or "unknown"
    for line in text.splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def memory_total_mb() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def machine_info() -> dict[str, Any]:
    """The ``machine`` object of the result line (load averages are added by the caller)."""
    return {
        "cores": os.cpu_count(),
        "cpu_model": cpu_model(),
        "memory_mb": memory_total_mb(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


# --- measured runs -------------------------------------------------------------------------


def _children_map() -> dict[int, list[int]]:
    """ppid -> child pids, for every process visible in /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text(encoding="utf-8")
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may contain spaces, so split after the last ')'.
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 1:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def _tree(root: int) -> list[int]:
    children = _children_map()
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo.extend(children.get(pid, ()))
    return pids


def _pss_kb(pid: int) -> int:
    """Proportional set size of one process (shared pages split between their users)."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text(encoding="utf-8")
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


class TreeMemorySampler:
    """Samples the summed PSS of a process's descendants (not the process itself) until stopped.

    PSS (not RSS) so that pages shared by forked workers are counted once in total. Sampling
    can miss a spike shorter than the interval, so the figure is a lower bound of the true peak.
    """

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeMemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            total = sum(_pss_kb(pid) for pid in _tree(self.pid) if pid != self.pid)
            self.peak_kb = max(self.peak_kb, total)
            self._stop.wait(self.interval)


@dataclass(frozen=True, slots=True)
class RunMeasurement:
    """One command run in its own process."""

    wall_seconds: float
    #: ``ru_maxrss`` of the command from ``wait4``: the peak RSS of the largest single process
    #: of its tree (the kernel folds reaped descendants in as a maximum, not a sum).
    peak_rss_mb: float
    #: Peak of the sampled sum of PSS over the whole process tree (main process + workers).
    peak_tree_pss_mb: float
    returncode: int
    stdout: str
    stderr: str


def run_measured(cmd: Sequence[str], *, cwd: Path = REPO_DIR) -> RunMeasurement:
    """Run ``cmd`` as a fresh process (through ``_launch.py``); its wall time and memory."""
    scratch = BENCH_DIR / "out" / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        result = Path(tmp, "launch.json")
        out_path, err_path = Path(tmp, "stdout"), Path(tmp, "stderr")
        launch = [sys.executable, "-I", "-S", str(BENCH_DIR / "_launch.py"), str(result), *cmd]
        with out_path.open("wb") as out, err_path.open("wb") as err:
            proc = subprocess.Popen(launch, stdout=out, stderr=err, cwd=cwd)
            with TreeMemorySampler(proc.pid) as sampler:
                returncode = proc.wait()
        stdout = out_path.read_text(encoding="utf-8", errors="replace")
        stderr = err_path.read_text(encoding="utf-8", errors="replace")
        try:
            launched = json.loads(result.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            launched = {"wall_seconds": float("nan"), "maxrss_kb": 0}
    return RunMeasurement(
        wall_seconds=float(launched["wall_seconds"]),
        peak_rss_mb=int(launched["maxrss_kb"]) / 1024,
        peak_tree_pss_mb=sampler.peak_kb / 1024,
        returncode=returncode,
        stdout=stdout,
        stderr=stderr,
    )


def last_json_line(text: str) -> dict[str, Any]:
    """The last line of ``text`` that is a JSON object (how bench helpers report back)."""
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            doc: dict[str, Any] = json.loads(line)
            return doc
    raise ValueError("no JSON object in the output")


# --- the peers' virtual environment --------------------------------------------------------


def _requirements_stamp() -> str:
    digest = hashlib.sha256(PEERS_REQUIREMENTS.read_bytes())
    digest.update(sys.version.encode())
    return digest.hexdigest()


def peers_python() -> Path:
    return PEERS_VENV / "bin" / "python"


def ensure_peers_venv() -> Path:
    """Create ``bench/.peers-venv`` from ``requirements-peers.txt`` unless it is up to date.

    The peer tools pin old ``cryptography`` and ``bitarray`` releases that conflict with the
    project's own pins, so they never share the project's environment. The venv is rebuilt from
    scratch whenever the requirements file (or the Python version) changes.
    """
    stamp_file = PEERS_VENV / _PEERS_STAMP
    stamp = _requirements_stamp()
    if stamp_file.is_file() and stamp_file.read_text().strip() == stamp:
        return peers_python()
    venv = PEERS_VENV.relative_to(REPO_DIR)
    if PEERS_VENV.exists():
        log(f"{PEERS_REQUIREMENTS.name} or Python changed: rebuilding {venv}")
        shutil.rmtree(PEERS_VENV)
    log(f"creating {venv} from {PEERS_REQUIREMENTS.name} (about 30 s)")
    subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], check=True)
    pip = [str(peers_python()), "-m", "pip", "install", "-qq", "--disable-pip-version-check"]
    subprocess.run([*pip, "-r", str(PEERS_REQUIREMENTS)], check=True)
    check = (
        "from importlib.metadata import version as v; import clkhash, anonlink; "
        "print('peers venv ready: clkhash', v('clkhash'), 'anonlink', v('anonlink'))"
    )
    subprocess.run(
        [str(peers_python()), "-W", "ignore", "-c", check], check=True, stdout=sys.stderr
    )
    stamp_file.write_text(stamp + "\n")
    return peers_python()


# --- the result line -----------------------------------------------------------------------


def print_result_line(
    bench: str, machine: Mapping[str, Any], results: Sequence[Mapping[str, Any]], **extra: Any
) -> dict[str, Any]:
    """Print the bench's closing JSON object (always the last line of stdout) and return it."""
    doc: dict[str, Any] = {"bench": bench, "machine": dict(machine), "results": list(results)}
    doc.update(extra)
    print(json.dumps(doc, sort_keys=False), flush=True)
    return doc
