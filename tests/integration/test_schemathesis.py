"""Property-based fuzzing of the live OpenAPI schema (schemathesis), authenticated.

Every operation, generated from the schema the server publishes, against a real
embedded-mode server: no 5xx, responses match their documented schemas and status
codes, content types and headers conform. ``positive_data_acceptance`` is left out on
purpose: cross-field rules (start before end, a dataset that exists) cannot be
expressed in JSON Schema, so schema-valid requests may rightly get a 400.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.integration.stack import EmbeddedServer, LiveUser

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api_schema(embedded_server: EmbeddedServer) -> Any:
    return schemathesis.openapi.from_url(f"{embedded_server.base_url}/openapi.json")


@pytest.fixture(scope="module")
def fuzz_user(embedded_server: EmbeddedServer) -> LiveUser:
    return embedded_server.make_user()


def _operations(schema: Any) -> list[Any]:
    return [result.ok() for result in schema.get_all_operations()]


def test_api_conforms_to_its_schema(api_schema: Any, fuzz_user: LiveUser) -> None:
    # One hypothesis run per operation (schemathesis' pytest plugin does not support
    # pytest 9 yet; this is its documented plugin-free form).
    # Logout revokes the token every case sends: it runs last, so it does not turn
    # the other operations' cases into 401s.
    operations = sorted(
        _operations(api_schema), key=lambda op: op.path == "/v1/auth/logout"
    )
    assert len(operations) >= 15
    cases = 0
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=12,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def check(case: Any) -> None:
            nonlocal cases
            cases += 1
            case.call_and_validate(
                headers=fuzz_user.headers, excluded_checks=[positive_data_acceptance]
            )

        check()
    print(f"\nschemathesis: {cases} cases over {len(operations)} operations")
