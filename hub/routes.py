"""Every endpoint, its declared permission and its audit action, in one table.

``ROUTES`` is the API: ``setup_routes`` registers each one wrapped by ``guard``, which

1. authenticates the caller (unless the route is public); a failure is recorded as a
   ``login-failure`` entry and answered 401;
2. checks that one of the caller's roles grants the route's permission; a refusal is
   recorded (outcome ``refused``, with the reason) and answered 403;
3. runs the handler, which records its own entry (inside its write transaction for
   changes); if the handler refuses (a 4xx ``HubError``) or fails, the wrapper records the
   refusal or error; if it returns without recording anything, the wrapper records the
   route's action for it.

So every request except the public health checks leaves exactly one or more entries, and
the response goes out only after they are durable.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from audit.entry import Action, Outcome
from hub.auth import Principal, authenticate, parse_bearer
from hub.certificates import peer_fingerprint
from hub.context import Context, Services
from hub.errors import Forbidden, HubError, Unauthenticated
from hub.handlers import (
    agreements,
    audit_api,
    certificates,
    extracts,
    health,
    identity,
    meta,
    runs,
    uploads,
)
from hub.permissions import Permission

__all__ = ["ROUTES", "SERVICES", "Route", "guard", "setup_routes"]

Handler = Callable[[Context], Awaitable[web.StreamResponse]]
SERVICES = web.AppKey("services", Services)
OPENAPI = web.AppKey("openapi", dict[str, Any])


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    handler: Handler
    permission: Permission
    action: Action
    summary: str


ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "/openapi.json",
        meta.openapi_json,
        Permission.PUBLIC,
        "view",
        "this API's OpenAPI 3.1 description",
    ),
    Route("GET", "/metrics", meta.metrics, Permission.PUBLIC, "view", "Prometheus metrics"),
    Route("GET", "/healthz", health.healthz, Permission.PUBLIC, "view", "the process is up"),
    Route("GET", "/readyz", health.readyz, Permission.PUBLIC, "view", "ready to serve"),
    Route("GET", "/v1/me", identity.me, Permission.AUTHENTICATED, "view", "who am I"),
    Route(
        "GET",
        "/v1/agencies",
        identity.list_agencies,
        Permission.AGENCIES_READ,
        "view",
        "list agencies",
    ),
    Route(
        "POST",
        "/v1/agencies",
        identity.create_agency,
        Permission.AGENCIES_WRITE,
        "config-change",
        "register an agency",
    ),
    Route(
        "GET",
        "/v1/agencies/{agency_id}/certificates",
        certificates.list_certificates,
        Permission.AGENCIES_READ,
        "view",
        "an agency's client certificates (mutual TLS)",
    ),
    Route(
        "POST",
        "/v1/agencies/{agency_id}/certificates",
        certificates.add_certificate,
        Permission.AGENCIES_WRITE,
        "config-change",
        "register a client certificate to an agency",
    ),
    Route(
        "DELETE",
        "/v1/certificates/{certificate_id}",
        certificates.revoke_certificate,
        Permission.AGENCIES_WRITE,
        "config-change",
        "revoke a client certificate",
    ),
    Route("GET", "/v1/users", identity.list_users, Permission.USERS_READ, "view", "list users"),
    Route(
        "POST",
        "/v1/users",
        identity.create_user,
        Permission.USERS_WRITE,
        "user-change",
        "create a user with roles",
    ),
    Route(
        "POST",
        "/v1/users/{user_id}/tokens",
        identity.create_token,
        Permission.TOKENS_WRITE,
        "token-create",
        "issue an API token (shown once)",
    ),
    Route(
        "DELETE",
        "/v1/tokens/{token_id}",
        identity.revoke_token,
        Permission.TOKENS_WRITE,
        "token-revoke",
        "revoke an API token",
    ),
    Route(
        "GET",
        "/v1/agreements",
        agreements.list_agreements,
        Permission.AGREEMENTS_READ,
        "view",
        "list data sharing agreements (newest versions)",
    ),
    Route(
        "POST",
        "/v1/agreements",
        agreements.create_agreement,
        Permission.AGREEMENTS_WRITE,
        "agreement-change",
        "register a data sharing agreement",
    ),
    Route(
        "GET",
        "/v1/agreements/{agreement_id}",
        agreements.show_agreement,
        Permission.AGREEMENTS_READ,
        "view",
        "an agreement and its version history",
    ),
    Route(
        "PUT",
        "/v1/agreements/{agreement_id}",
        agreements.revise_agreement,
        Permission.AGREEMENTS_WRITE,
        "agreement-change",
        "a new version of an agreement",
    ),
    Route(
        "GET",
        "/v1/projects",
        agreements.list_projects,
        Permission.PROJECTS_READ,
        "view",
        "list linkage projects",
    ),
    Route(
        "POST",
        "/v1/projects",
        agreements.create_project,
        Permission.PROJECTS_WRITE,
        "config-change",
        "register a linkage project under an agreement",
    ),
    Route(
        "POST",
        "/v1/projects/{project_id}/uploads",
        uploads.create_upload,
        Permission.DATASETS_UPLOAD,
        "upload",
        "open an upload for your agency",
    ),
    Route(
        "GET",
        "/v1/uploads/{upload_id}",
        uploads.upload_status,
        Permission.DATASETS_UPLOAD,
        "view",
        "an upload's progress",
    ),
    Route(
        "PUT",
        "/v1/uploads/{upload_id}/chunks/{index}",
        uploads.put_chunk,
        Permission.DATASETS_UPLOAD,
        "upload",
        "send one chunk of an upload",
    ),
    Route(
        "POST",
        "/v1/uploads/{upload_id}/commit",
        uploads.commit_upload,
        Permission.DATASETS_UPLOAD,
        "upload",
        "validate and publish an upload",
    ),
    Route(
        "GET",
        "/v1/projects/{project_id}/datasets",
        uploads.list_datasets,
        Permission.DATASETS_READ,
        "view",
        "a project's dataset versions",
    ),
    Route(
        "DELETE",
        "/v1/datasets/{dataset_id}",
        uploads.erase_dataset,
        Permission.DATASETS_ERASE,
        "erase",
        "erase a dataset version (crypto-shred)",
    ),
    Route(
        "POST",
        "/v1/projects/{project_id}/runs",
        runs.start_run,
        Permission.RUNS_START,
        "link-run",
        "start a linkage run over dataset versions (a queued job)",
    ),
    Route(
        "GET",
        "/v1/projects/{project_id}/runs",
        runs.list_runs,
        Permission.RUNS_READ,
        "view",
        "a project's linkage runs with their jobs' progress",
    ),
    Route("GET", "/v1/runs/{run_id}", runs.show_run, Permission.RUNS_READ, "view", "one run"),
    Route(
        "POST",
        "/v1/runs/{run_id}/cancel",
        runs.cancel_run,
        Permission.RUNS_START,
        "link-run",
        "cancel a queued or running linkage run",
    ),
    Route(
        "GET",
        "/v1/runs/{run_id}/feedback",
        runs.feedback,
        Permission.FEEDBACK_READ,
        "download",
        "which of your agency's records link to other agencies (as the agreement allows)",
    ),
    Route(
        "POST",
        "/v1/projects/{project_id}/extracts",
        extracts.request_extract,
        Permission.EXTRACTS_REQUEST,
        "extract-request",
        "request a record-level extract or an aggregate table from a run",
    ),
    Route(
        "GET",
        "/v1/projects/{project_id}/extracts",
        extracts.list_extracts,
        Permission.EXTRACTS_READ,
        "view",
        "extract requests (analysts: their own)",
    ),
    Route(
        "GET",
        "/v1/extracts/{extract_id}",
        extracts.show_extract,
        Permission.EXTRACTS_READ,
        "view",
        "an extract request, its decisions and its release",
    ),
    Route(
        "POST",
        "/v1/extracts/{extract_id}/decisions",
        extracts.decide,
        Permission.EXTRACTS_DECIDE,
        "approve",
        "approve or refuse an extract request in a capacity it needs",
    ),
    Route(
        "GET",
        "/v1/extracts/{extract_id}/manifest",
        extracts.manifest,
        Permission.EXTRACTS_DOWNLOAD,
        "view",
        "the release's signed manifest with its audit proof bundle (requester only)",
    ),
    Route(
        "GET",
        "/v1/extracts/{extract_id}/files/{name}",
        extracts.download_file,
        Permission.EXTRACTS_DOWNLOAD,
        "download",
        "download one file of a release (requester only, until it expires)",
    ),
    Route(
        "GET",
        "/v1/releases/key",
        extracts.release_key,
        Permission.AUTHENTICATED,
        "view",
        "the public key that signs release manifests",
    ),
    Route(
        "GET",
        "/v1/audit/entries",
        audit_api.list_entries,
        Permission.AUDIT_READ,
        "audit-read",
        "audit entries, filtered and paged",
    ),
    Route(
        "GET",
        "/v1/audit/entries.jsonl",
        audit_api.raw_entries,
        Permission.AUDIT_READ,
        "audit-read",
        "canonical entry bytes, one per line, for verifiers",
    ),
    Route(
        "GET",
        "/v1/audit/checkpoint",
        audit_api.latest_checkpoint,
        Permission.AUDIT_READ,
        "audit-read",
        "the newest signed checkpoint with its cosignatures",
    ),
    Route(
        "GET",
        "/v1/audit/checkpoints",
        audit_api.list_checkpoints,
        Permission.AUDIT_READ,
        "audit-read",
        "every signed checkpoint, paged",
    ),
    Route(
        "GET",
        "/v1/audit/proofs/inclusion",
        audit_api.inclusion_proof,
        Permission.AUDIT_READ,
        "audit-read",
        "an inclusion proof",
    ),
    Route(
        "GET",
        "/v1/audit/proofs/consistency",
        audit_api.consistency_proof,
        Permission.AUDIT_READ,
        "audit-read",
        "a consistency proof",
    ),
    Route(
        "GET",
        "/v1/audit/bundles/{index}",
        audit_api.bundle,
        Permission.AUDIT_READ,
        "audit-read",
        "a tlog-proof bundle for one entry",
    ),
    Route(
        "POST",
        "/v1/audit/cosignatures",
        audit_api.add_cosignature,
        Permission.AUDIT_WITNESS,
        "audit-cosign",
        "store a witness's cosignature",
    ),
)


async def _principal(ctx: Context) -> Principal:
    services = ctx.services
    client_cert: str | bool | None = False
    if services.config.server.tls_client_ca is not None:
        client_cert = peer_fingerprint(ctx.request)
    try:
        token = parse_bearer(ctx.request.headers.get("Authorization"))
        async with services.store.read() as conn:
            return await conn.run_sync(authenticate, token, services.now_us(), client_cert)
    except Unauthenticated as exc:
        await record_refusal(ctx, exc, action="login-failure")
        raise


async def record_refusal(ctx: Context, exc: HubError, action: Action | None = None) -> None:
    """Audit a refused (4xx) or failed (5xx) request, with the reason for a refusal."""
    if action is not None:
        ctx.action = action
    outcome: Outcome = "refused" if exc.status < 500 else "error"
    reason = exc.message[:1000] if outcome == "refused" else None
    await ctx.audit(outcome, refusal_reason=reason)


def guard(route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The aiohttp handler for ``route`` (see the module docstring)."""

    async def handle(request: web.Request) -> web.StreamResponse:
        services = request.app[SERVICES]
        ctx = Context(request=request, services=services, action=route.action)
        if route.permission is Permission.PUBLIC:
            return await route.handler(ctx)
        ctx.principal = await _principal(ctx)
        if route.permission is Permission.AUTHENTICATED:
            ctx.role = min(ctx.principal.roles, default=None)
        else:
            ctx.role = ctx.principal.role_for(route.permission)
            if ctx.role is None:
                refusal = Forbidden(f"none of your roles grants {route.permission.value}")
                await record_refusal(ctx, refusal)
                raise refusal
        try:
            response = await route.handler(ctx)
        except HubError as exc:
            ctx.discard()
            await record_refusal(ctx, exc)
            raise
        except Exception as exc:
            ctx.discard()
            await ctx.audit("error")
            raise exc
        ctx.settle()
        if not ctx.audited:
            await ctx.audit()
        return response

    handle.__name__ = route.handler.__name__
    return handle


def setup_routes(app: web.Application) -> None:
    from hub import __version__
    from hub.openapi import openapi

    app[OPENAPI] = openapi(ROUTES, title="pprl hub", version=__version__)
    for route in ROUTES:
        app.router.add_route(route.method, route.path, guard(route))
