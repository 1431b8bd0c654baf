"""``hub serve`` and ``hub worker`` processes for the fault loop.

Every process starts in a session (process group) of its own, so ``os.killpg`` SIGKILLs a
``hub serve`` together with the workers it supervises in one call, as a crash of the whole
service would, while ``os.kill`` reaches one process alone. Every process started here is
remembered and stopped at the end (``Fleet.close``), also when the bench itself fails.

Two shapes (``TOPOLOGIES``):

* ``serve+worker``: ``hub serve --workers 1``, the API supervising its own worker (it
  restarts a worker that dies);
* ``api+worker``: ``hub serve --workers 0`` and one separate ``hub worker`` process.

(``api``, the API without any worker, is for scenarios that need none.)
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from bench._common import REPO_DIR
from hub.local import free_port

__all__ = ["TARGETS", "TOPOLOGIES", "Fleet", "HubDidNotStart"]

TOPOLOGIES = ("serve+worker", "api+worker")
#: What a kill may hit, per shape: ``hub`` is the API process (in ``serve+worker`` with the
#: worker it supervises: the whole group), ``worker`` a worker alone, ``both`` the API and the
#: separate worker at the same instant.
TARGETS = {"serve+worker": ("hub", "worker"), "api+worker": ("hub", "worker", "both")}


class HubDidNotStart(RuntimeError):
    """``hub serve`` exited or did not answer ``/readyz`` in time."""


def _children(pid: int) -> list[int]:
    """Live child processes of ``pid`` (from /proc)."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text(encoding="utf-8")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 1 and int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


class Fleet:
    """The processes serving one data directory."""

    def __init__(self, data_dir: Path, logs: Path, *, ready_timeout: float = 60.0) -> None:
        self.data_dir = data_dir
        self.logs = logs
        self.ready_timeout = ready_timeout
        logs.mkdir(parents=True, exist_ok=True)
        self.topology: str | None = None
        self.hub: subprocess.Popen[bytes] | None = None
        self.worker: subprocess.Popen[bytes] | None = None
        self.url = ""
        self._started: list[subprocess.Popen[bytes]] = []
        self._count = 0

    # -- starting -------------------------------------------------------------------

    def _spawn(self, args: list[str], name: str) -> subprocess.Popen[bytes]:
        self._count += 1
        log = self.logs / f"{self._count:03d}-{name}.log"
        with log.open("ab") as sink:
            proc = subprocess.Popen(
                [sys.executable, "-m", "hub.cli", *args, "--data-dir", str(self.data_dir)],
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=sink,
                cwd=REPO_DIR,
                start_new_session=True,
            )
        self._started.append(proc)
        return proc

    def start(self, topology: str) -> float:
        """Start the API (and the separate worker) in ``topology``; seconds until ready."""
        if topology not in (*TOPOLOGIES, "api"):
            raise ValueError(f"unknown topology {topology!r}")
        self.topology = topology
        started = time.perf_counter()
        if topology == "api+worker" and not self.worker_alive():
            self.start_worker()
        self.start_hub()
        return time.perf_counter() - started

    def start_hub(self) -> None:
        workers = "1" if self.topology == "serve+worker" else "0"
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        args = ["serve", "--listen", f"127.0.0.1:{port}", "--workers", workers]
        self.hub = self._spawn(args, "hub")
        self.wait_ready()

    def start_worker(self) -> None:
        self.worker = self._spawn(["worker"], "worker")

    def wait_ready(self, timeout: float | None = None) -> None:
        """Until ``/readyz`` answers 200 (``HubDidNotStart`` if the hub exits first)."""
        assert self.hub is not None
        deadline = time.monotonic() + (timeout or self.ready_timeout)
        while time.monotonic() < deadline:
            if self.hub.poll() is not None:
                raise HubDidNotStart(f"hub serve exited with {self.hub.returncode}")
            if self.ready():
                return
            time.sleep(0.05)
        raise HubDidNotStart(f"hub serve did not become ready in {timeout or self.ready_timeout} s")

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/readyz", timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    # -- state ----------------------------------------------------------------------

    def hub_alive(self) -> bool:
        return self.hub is not None and self.hub.poll() is None

    def worker_alive(self) -> bool:
        return self.worker is not None and self.worker.poll() is None

    def supervised_workers(self) -> list[int]:
        """The worker processes ``hub serve`` runs itself (``serve+worker``)."""
        return _children(self.hub.pid) if self.hub_alive() and self.hub is not None else []

    # -- killing --------------------------------------------------------------------

    def kill(self, target: str) -> list[str]:
        """SIGKILL ``target`` (see ``TARGETS``); what was killed, e.g. ``["hub", "worker"]``."""
        killed: list[str] = []
        if target == "worker" and self.topology == "serve+worker":
            for pid in self.supervised_workers():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                killed.append("worker")
            return killed
        if target in ("hub", "both") and self.hub_alive() and self.hub is not None:
            # the API's own process group: with --workers 1 its worker dies in the same instant
            supervised = self.supervised_workers()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.hub.pid, signal.SIGKILL)
            self.hub.wait()
            killed += ["hub"] + ["worker"] * len(supervised)
        if target in ("worker", "both") and self.worker_alive() and self.worker is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.worker.pid, signal.SIGKILL)
            self.worker.wait()
            killed.append("worker")
        return killed

    def restart(self) -> float:
        """Start whatever of the topology is dead; seconds until the API is ready."""
        assert self.topology is not None
        started = time.perf_counter()
        if self.topology == "api+worker" and not self.worker_alive():
            self.start_worker()
        if not self.hub_alive():
            self.start_hub()
        else:
            self.wait_ready()
        return time.perf_counter() - started

    # -- stopping -------------------------------------------------------------------

    def restart_api(self) -> None:
        """Stop the API gracefully and start it again (its start-up sweep runs); a separate
        worker keeps running."""
        if self.hub is not None and self.hub.poll() is None:
            self.hub.send_signal(signal.SIGTERM)
            try:
                self.hub.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(self.hub.pid, signal.SIGKILL)
                self.hub.wait()
        self.start_hub()

    def stop(self) -> None:
        """SIGTERM everything alive (the API stops its own workers), SIGKILL after 40 s."""
        for proc in (self.hub, self.worker):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in (self.hub, self.worker):
            if proc is None:
                continue
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.hub = self.worker = None
        self.topology = None

    def close(self) -> None:
        """Stop everything this fleet started that still runs, whatever state it is in (a
        group is killed by its id only while its leader, our child, is alive: a reaped
        leader's id may belong to someone else by now)."""
        with contextlib.suppress(Exception):
            self.stop()
        for proc in self._started:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)
