"""The agreement a project's actions stand on: the newest version of the project's data
sharing agreement, which must be in force for anything to happen under it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.agreements import Agreement, parse_agreement
from hub.errors import Forbidden, NotFound
from hub.handlers.agreements import latest_version
from hub.store.schema import projects

__all__ = ["ProjectTerms", "project_terms"]


@dataclass(frozen=True, slots=True)
class ProjectTerms:
    project: Any
    agreement: Agreement
    agreement_id: str
    version: int


async def project_terms(conn: AsyncConnection, project_id: str) -> ProjectTerms:
    """The project and the agreement version in force for it; ``NotFound`` for no such
    project, ``Forbidden`` when its agreement is not in force (suspended, ended, draft or
    past its review date)."""
    project = (await conn.execute(select(projects).where(projects.c.id == project_id))).first()
    if project is None:
        raise NotFound(f"no project {project_id!r}")
    newest = await latest_version(conn, project.agreement_id)
    agreement = parse_agreement(json.loads(newest.document))
    if not agreement.in_force(datetime.now(UTC).date()):
        raise Forbidden(
            f"agreement {project.agreement_id} version {newest.version} is not in force "
            f"(status {agreement.status}, review date {agreement.review_date})"
        )
    return ProjectTerms(project, agreement, project.agreement_id, newest.version)
