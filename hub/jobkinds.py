"""Which function runs each kind of job (imported only by worker processes: it pulls in
the linkage engine)."""

from __future__ import annotations

from hub.worker import Handler

__all__ = ["job_handlers"]


def job_handlers() -> dict[str, Handler]:
    from hub.extractjob import run_extract_job
    from hub.linkjob import run_link_job

    return {"link": run_link_job, "extract": run_extract_job}
