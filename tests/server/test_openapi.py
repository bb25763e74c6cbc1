"""Schemathesis drives every route of the OpenAPI document: no server error, no schema violation."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.server.conftest import key

EXAMPLES = 30
# No server error, and every answer documented (status, content type, body schema). The
# schema is looser than the rules of the library (NUL characters, sizes, nesting), so a
# schema-valid request may be refused with a documented 4xx: that is not checked here.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def test_every_route_answers_as_documented(live: str) -> None:
    """Generated requests (with a key) never get a 5xx or an undocumented response."""
    api = schemathesis.openapi.from_url(f"{live}/openapi.json")
    operations = [result.ok() for result in api.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 15

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case) -> None:  # type: ignore[type-arg]
            case.call_and_validate(headers=key("a-all") | dict(case.headers or {}), checks=CHECKS)

        check()
