"""The OpenAPI description matches the routes the app serves and is valid OpenAPI 3.1;
Prometheus metrics count requests by route template."""

from __future__ import annotations

from pathlib import Path

from openapi_spec_validator import validate

from hub.app import create_app
from hub.config import load_config
from hub.routes import ROUTES
from tests.integration.hub.conftest import RunningHub


def _served(data_dir: Path) -> set[tuple[str, str]]:
    """The API's routes the app serves (the web console's HTML pages under /ui are not
    part of the JSON API: ``hub.ui.pages.PAGES`` lists them)."""
    app = create_app(load_config(data_dir))
    return {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD"
        and route.resource is not None
        and not route.resource.canonical.startswith("/ui")
    }


def test_openapi_describes_exactly_the_served_routes(hub: RunningHub) -> None:
    status, doc = hub.call("GET", "/openapi.json")
    assert status == 200 and doc["openapi"] == "3.1.0"
    validate(doc)
    described = {(m.upper(), path) for path, ops in doc["paths"].items() for m in ops}
    assert described == _served(hub.data_dir)
    assert described == {(r.method, r.path) for r in ROUTES}
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert op["summary"] and op["x-permission"], (method, path)
            if op["x-permission"] != "public":
                assert "security" not in op or op["security"], (method, path)
            if method in ("post", "put") and "{index}" not in path and not path.endswith("/commit"):
                assert "requestBody" in op, (method, path)


def test_metrics_count_requests_by_route_template(hub: RunningHub) -> None:
    hub.call("GET", "/v1/me", hub.admin_token)
    hub.call("GET", "/v1/agreements/some-id", hub.admin_token)
    status, text = hub.call("GET", "/metrics")
    assert status == 200
    assert 'hub_requests_total{method="GET",route="/v1/me",status="200"} 1.0' in text
    assert 'route="/v1/agreements/{agreement_id}"' in text
    assert "some-id" not in text
