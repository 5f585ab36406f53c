"""/openapi.json matches real behaviour: schemathesis drives a real `litetask serve` with
generated (valid and invalid) requests; no 5xx, and every response conforms."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance
from starlette.routing import Route

from app.main import all_routes
from app.web import dashboard
from app.web.openapi import document
from tests.conftest import ServerProcess, running_server

TOKEN = "schemathesis-token-" + "x" * 20
AUTH = {"Authorization": f"Bearer {TOKEN}"}
REGISTRY_DEPENDENT = {
    ("POST", "/tasks"),
    ("POST", "/tasks/batch"),
    ("POST", "/webhooks/{task_type}"),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {
        "LITETASK_API_TOKEN": TOKEN,
        "LITETASK_WEBHOOK_SECRET": "whsec_c2VjcmV0",
        "LITETASK_WEBHOOK_TYPES": "demo.echo",
        # Periodic task types, so GET /schedules answers with a last and a next run.
        "LITETASK_TASK_MODULES": "tests.e2e.periodic_tasks",
    }
    with running_server(tmp_path_factory.mktemp("openapi"), **env) as process:
        yield process


# The same document the server serves (test_the_document_is_served checks that).
schema = schemathesis.openapi.from_dict(document())
# A body over LITETASK_MAX_BODY_BYTES is refused with 413 before it is parsed: for invalid
# data that is a rejection too (e.g. a batch over maxItems that is also over 1 MiB).
_rejection = schema.config.checks.negative_data_rejection
_rejection.expected_statuses = [*_rejection.expected_statuses, "413"]


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms(server: ServerProcess, case: schemathesis.Case) -> None:
    # Whether a schema-valid task is accepted depends on the registered functions'
    # signatures (a documented 422), so only those two skip the positive-data check.
    excluded = (
        [positive_data_acceptance]
        if (case.method, case.operation.path) in REGISTRY_DEPENDENT
        else []
    )
    case.call_and_validate(base_url=server.url, headers=AUTH, excluded_checks=excluded)


def test_every_route_is_documented() -> None:
    documented = set(document()["paths"])
    served = {r.path for r in all_routes() if isinstance(r, Route)}
    pages = {r.path for r in dashboard.routes if isinstance(r, Route)}  # HTML, not API
    assert served - documented <= {"/events", "/tasks/{task_id}/events", "/openapi.json", *pages}


def test_the_document_is_served(server: ServerProcess) -> None:
    response = httpx.get(server.url + "/openapi.json", headers=AUTH)
    assert response.json() == document()
