"""The workload a kill interrupts, one class per scenario kind.

A step's ``run`` is what the clients do while the kill may land (it runs on a thread of its
own and swallows the errors the kill causes, recording them in the ledger); ``started`` is set
once the work the kill aims at is under way (the upload began, the run's or the extract's job
was claimed by a worker, the burst began); ``window`` is the range the kill's delay after
``started`` is drawn from; ``recover`` is what the clients do once the hub is back (resume the
upload with the connector, wait for the job to end) and ``mid_work`` says whether the kill
landed while the work was still going on.

* ``UploadStep``: one distinct encoded file per agency, uploaded at the same time with the
  connector's own code (``connectors.upload``), chunks then commit;
* ``RunStep``: a linkage run of the newest uploads;
* ``ExtractStep``: a record-level extract request, its approvals, and its build;
* ``AuditStep``: three clients sending audited requests as fast as the hub answers: upload
  sessions opened (a change and its entry in one transaction) and refused reads of unique
  paths (an entry through the batching writer).
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import OperationalError

from bench._faults.ledger import AckingClient, Ledger
from bench._faults.world import AGENCIES, PROJECT, World
from connectors.upload import UploadError, upload
from hub.client import HubAPIError
from hub.store.schema import extract_requests, jobs

__all__ = ["STEPS", "AuditStep", "ExtractStep", "RunStep", "Step", "UploadStep"]

TERMINAL = ("succeeded", "failed", "cancelled")


def _now_us() -> int:
    return int(time.time() * 1_000_000)


class Step:
    kind = ""

    def __init__(self, world: World, ledger: Ledger, engine: Engine) -> None:
        self.world = world
        self.ledger = ledger
        self.engine = engine
        self.started = threading.Event()
        self.started_at = 0.0  # when the work began (epoch seconds; a job: when it was claimed)
        self.done_us: int | None = None  # when the work ended (None: the kill stopped it)
        self.problem: str | None = None  # the step could not even start its work

    def run(self, url: str) -> None:
        raise NotImplementedError

    def window(self, timing: dict[str, float]) -> tuple[float, float]:
        raise NotImplementedError

    def recover(self, url: str, timeout: float) -> None:
        raise NotImplementedError

    def mid_work(self, kill_us: int) -> bool:
        return self.done_us is None or self.done_us > kill_us

    def begin(self) -> None:
        self.started_at = time.time()
        self.started.set()

    def _job(self, job_id: str) -> Any:
        """The job's row (read straight from the database, as an operator would); a
        database that is restarting is asked again for up to a minute."""
        for _ in range(120):
            try:
                with self.engine.connect() as conn:
                    return conn.execute(select(jobs).where(jobs.c.id == job_id)).first()
            except OperationalError:
                time.sleep(0.5)
        raise RuntimeError(f"the database did not answer for a minute (job {job_id})")

    def _wait_claimed(self, job_id: str, timeout: float) -> None:
        """Until a worker claims the job (``started``); ``done_us`` if it already ended."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self._job(job_id)
            if job is not None and job.status != "queued":
                if job.status in TERMINAL:
                    self.done_us = job.finished_us
                self.started_at = (job.started_us or _now_us()) / 1e6
                self.started.set()
                return
            time.sleep(0.02)
        self.problem = f"no worker claimed job {job_id} in {timeout:.0f} s"
        self.begin()

    def _job_done_us(self, job_id: str) -> int | None:
        job = self._job(job_id)
        return job.finished_us if job is not None and job.status in TERMINAL else None


class UploadStep(Step):
    kind = "upload"

    def __init__(self, world: World, ledger: Ledger, engine: Engine, rng: Any) -> None:
        super().__init__(world, ledger, engine)
        self.files = {a: world.variant(a, rng) for a in AGENCIES}
        self.finished: dict[str, int] = {}

    def _one(self, url: str, agency: str, retries: int) -> None:
        client = AckingClient(url, self.world.tokens[agency], self.ledger, retries=retries)
        upload(client, PROJECT, self.files[agency])
        self.finished[agency] = _now_us()

    def run(self, url: str) -> None:
        self.begin()
        threads = [
            threading.Thread(target=self._guarded, args=(url, a), daemon=True) for a in AGENCIES
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if len(self.finished) == len(AGENCIES):
            self.done_us = max(self.finished.values())

    def _guarded(self, url: str, agency: str) -> None:
        with contextlib.suppress(UploadError):  # the kill: the client recorded what it saw
            self._one(url, agency, retries=0)

    def window(self, timing: dict[str, float]) -> tuple[float, float]:
        return 0.0, 0.9 * timing["upload_s"]

    def recover(self, url: str, timeout: float) -> None:
        for agency in AGENCIES:
            if agency not in self.finished:
                try:
                    self._one(url, agency, retries=8)  # resumes from <file>.upload.json
                except UploadError as exc:
                    self.problem = f"{agency}'s upload could not be resumed: {exc}"


class RunStep(Step):
    kind = "run"

    def __init__(self, world: World, ledger: Ledger, engine: Engine) -> None:
        super().__init__(world, ledger, engine)
        self.run_id: str | None = None
        self.job_id: str | None = None

    def run(self, url: str) -> None:
        try:
            doc = self.world.api(url, "analyst").start_run(PROJECT)
        except HubAPIError as exc:
            self.ledger.error(exc)
            self.problem = f"the run could not be started: {exc}"
            self.begin()
            return
        self.run_id, self.job_id = doc["run"], doc["job"]
        self.ledger.ack(
            "run", doc["run"], audit_entry=doc["audit_entry"], resource=f"run/{doc['run']}"
        )
        self._wait_claimed(doc["job"], 90)

    def window(self, timing: dict[str, float]) -> tuple[float, float]:
        return 0.0, 0.6 * timing["run_s"]  # a run's length varies with the machine's load

    def recover(self, url: str, timeout: float) -> None:
        if self.run_id is None:
            return
        api = self.world.api(url, "analyst")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                api.wait_run(self.run_id, timeout=max(1.0, deadline - time.monotonic()))
                return
            except HubAPIError as exc:
                self.ledger.error(exc)
                if exc.code == "timeout":
                    return
                time.sleep(0.5)

    def mid_work(self, kill_us: int) -> bool:
        done = self._job_done_us(self.job_id) if self.job_id else None
        return done is None or done > kill_us


class ExtractStep(Step):
    kind = "extract"

    def __init__(self, world: World, ledger: Ledger, engine: Engine, run_id: str) -> None:
        super().__init__(world, ledger, engine)
        self.source_run = run_id
        self.extract_id: str | None = None
        self.job_id: str | None = None

    def run(self, url: str) -> None:
        try:
            self._request(url)
        except HubAPIError as exc:
            self.ledger.error(exc)
            self.problem = f"the extract could not be requested and approved: {exc}"
            self.begin()
            return
        with self.engine.connect() as conn:
            self.job_id = conn.execute(
                select(extract_requests.c.job_id).where(extract_requests.c.id == self.extract_id)
            ).scalar()
        if self.job_id is None:
            self.problem = f"extract {self.extract_id} was approved without a build job"
            self.begin()
            return
        self._wait_claimed(self.job_id, 90)

    def _request(self, url: str) -> None:
        analyst = self.world.api(url, "analyst")
        spec = self.world.extract_spec(self.source_run)
        doc = analyst.call("POST", f"/v1/projects/{PROJECT}/extracts", spec)
        ext = self.extract_id = doc["id"]
        self.ledger.ack(
            "request", f"{ext}#request", audit_entry=doc["audit_entry"], resource=f"extract/{ext}"
        )
        status = doc["status"]
        for who, capacity in self.world.approvers(doc["required"]):
            decided = self.world.api(url, who).call(
                "POST",
                f"/v1/extracts/{ext}/decisions",
                {"decision": "approve", "capacity": capacity},
            )
            self.ledger.ack(
                "request",
                f"{ext}#{capacity}",
                audit_entry=decided["audit_entry"],
                resource=f"extract/{ext}",
            )
            status = decided["status"]
        if status != "approved":
            raise HubAPIError(0, "not_approved", f"extract {ext} is {status} after approvals")
        self.ledger.ack("extract", ext)

    def window(self, timing: dict[str, float]) -> tuple[float, float]:
        return 0.0, 0.5 * timing["extract_s"]  # a build is short: its first half

    def recover(self, url: str, timeout: float) -> None:
        """Until the request is released or failed; a request whose build job has ended
        but that is still ``approved`` 5 s later is stuck, and waiting longer cannot help."""
        if self.extract_id is None or self.job_id is None:
            return
        api = self.world.api(url, "analyst")
        deadline = time.monotonic() + timeout
        job_ended: float | None = None
        while time.monotonic() < deadline:
            try:
                if api.call("GET", f"/v1/extracts/{self.extract_id}")["status"] not in (
                    "pending",
                    "approved",
                ):
                    return
            except HubAPIError as exc:
                self.ledger.error(exc)
            if job_ended is None and self._job_done_us(self.job_id) is not None:
                job_ended = time.monotonic()
            if job_ended is not None and time.monotonic() - job_ended > 5:
                return
            time.sleep(0.25)

    def mid_work(self, kill_us: int) -> bool:
        done = self._job_done_us(self.job_id) if self.job_id else None
        return done is None or done > kill_us


class AuditStep(Step):
    kind = "audit"
    clients = 3

    def __init__(self, world: World, ledger: Ledger, engine: Engine) -> None:
        super().__init__(world, ledger, engine)
        self.stop = threading.Event()

    def run(self, url: str) -> None:
        self.begin()
        threads = [
            threading.Thread(target=self._client, args=(url, n), daemon=True)
            for n in range(self.clients)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def _client(self, url: str, n: int) -> None:
        officer = self.world.api(url, "ae", timeout=10)
        analyst = self.world.api(url, "analyst", timeout=10)
        i = n
        while not self.stop.is_set():
            i += 1
            try:
                if i % 2:
                    doc = officer.call(
                        "POST",
                        f"/v1/projects/{PROJECT}/uploads",
                        {"size": 1000, "sha256": secrets.token_hex(32)},
                    )
                    self.ledger.ack(
                        "session",
                        doc["id"],
                        audit_entry=doc["audit_entry"],
                        resource=f"upload/{doc['id']}",
                    )
                else:
                    path = f"/v1/runs/run_fault{secrets.token_hex(8)}"
                    try:
                        analyst.call("GET", path)
                    except HubAPIError as exc:
                        if exc.status != 404:
                            raise
                        self.ledger.ack("request", path, resource=path)  # a refusal, audited
            except HubAPIError as exc:
                self.ledger.error(exc)
                return

    def window(self, timing: dict[str, float]) -> tuple[float, float]:
        return 0.2, 1.5

    def recover(self, url: str, timeout: float) -> None:
        self.stop.set()


#: the scenario kinds of the kill loop (``poison``, a job whose worker dies on every attempt,
#: is played by ``loop.Loop`` with a run or an extract step)
STEPS = ("upload", "run", "extract", "audit", "poison")
