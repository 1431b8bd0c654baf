"""Who may do what: the one table of roles and permissions.

Every endpoint declares one ``Permission`` (``hub.routes``); a request is allowed when one
of the caller's roles grants it. The dataset permissions hold only for the caller's own
agency: the upload and erasure handlers check the resource's agency. ``PUBLIC`` endpoints
(health, metrics, the API description) need no credentials; ``AUTHENTICATED`` ones any valid
token.

Principles the table encodes: admins manage agencies, users, tokens, agreements and
projects but read no data and no audit log; auditors read the audit log (and co-sign it as
witnesses) but no data; data officers act only for their own agency (their uploads, runs
over their project, feedback about their own records); analysts start runs and request
extracts, and download only their own approved releases; approvers decide on extract
requests (never their own, and only for their own agency's data or as information
governance); nobody's role lets them read another agency's records.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

__all__ = ["ROLE_PERMISSIONS", "Permission", "Role", "roles_granting"]


class Role(StrEnum):
    DATA_OFFICER = "data_officer"
    ANALYST = "analyst"
    APPROVER = "approver"
    AUDITOR = "auditor"
    ADMIN = "admin"


class Permission(StrEnum):
    PUBLIC = "public"
    AUTHENTICATED = "authenticated"
    AGENCIES_READ = "agencies:read"
    AGENCIES_WRITE = "agencies:write"
    USERS_READ = "users:read"
    USERS_WRITE = "users:write"
    TOKENS_WRITE = "tokens:write"
    AGREEMENTS_READ = "agreements:read"
    AGREEMENTS_WRITE = "agreements:write"
    PROJECTS_READ = "projects:read"
    PROJECTS_WRITE = "projects:write"
    DATASETS_UPLOAD = "datasets:upload"
    DATASETS_READ = "datasets:read"
    DATASETS_ERASE = "datasets:erase"
    RUNS_START = "runs:start"
    RUNS_READ = "runs:read"
    FEEDBACK_READ = "feedback:read"
    EXTRACTS_REQUEST = "extracts:request"
    EXTRACTS_READ = "extracts:read"
    EXTRACTS_DECIDE = "extracts:decide"
    EXTRACTS_DOWNLOAD = "extracts:download"
    AUDIT_READ = "audit:read"
    AUDIT_WITNESS = "audit:witness"


ROLE_PERMISSIONS: Final[dict[Role, frozenset[Permission]]] = {
    Role.ADMIN: frozenset(
        {
            Permission.AGENCIES_READ,
            Permission.AGENCIES_WRITE,
            Permission.USERS_READ,
            Permission.USERS_WRITE,
            Permission.TOKENS_WRITE,
            Permission.AGREEMENTS_READ,
            Permission.AGREEMENTS_WRITE,
            Permission.PROJECTS_READ,
            Permission.PROJECTS_WRITE,
        }
    ),
    Role.AUDITOR: frozenset(
        {
            Permission.AGENCIES_READ,
            Permission.USERS_READ,
            Permission.AUDIT_READ,
            Permission.AUDIT_WITNESS,
            Permission.AGREEMENTS_READ,
            Permission.PROJECTS_READ,
        }
    ),
    Role.DATA_OFFICER: frozenset(
        {
            Permission.AGENCIES_READ,
            Permission.AGREEMENTS_READ,
            Permission.PROJECTS_READ,
            Permission.DATASETS_UPLOAD,
            Permission.DATASETS_READ,
            Permission.DATASETS_ERASE,
            Permission.RUNS_START,
            Permission.RUNS_READ,
            Permission.FEEDBACK_READ,
        }
    ),
    Role.ANALYST: frozenset(
        {
            Permission.AGENCIES_READ,
            Permission.AGREEMENTS_READ,
            Permission.PROJECTS_READ,
            Permission.DATASETS_READ,
            Permission.RUNS_START,
            Permission.RUNS_READ,
            Permission.EXTRACTS_REQUEST,
            Permission.EXTRACTS_READ,
            Permission.EXTRACTS_DOWNLOAD,
        }
    ),
    Role.APPROVER: frozenset(
        {
            Permission.AGENCIES_READ,
            Permission.AGREEMENTS_READ,
            Permission.PROJECTS_READ,
            Permission.RUNS_READ,
            Permission.EXTRACTS_READ,
            Permission.EXTRACTS_DECIDE,
        }
    ),
}


def roles_granting(permission: Permission) -> frozenset[Role]:
    """The roles whose holders may use ``permission``."""
    return frozenset(role for role, perms in ROLE_PERMISSIONS.items() if permission in perms)
