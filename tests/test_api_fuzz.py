"""Property-based requests against every documented route, with every schemathesis check on.

Generated requests that match the schema and ones that break it, on SQLite and PostgreSQL:
no 5xx, every status documented, every body (the 422 included) matching its schema, every
405 carrying `Allow`, schema-breaking input refused. One allowance, set in the config below:
a schema-valid request may get the documented 422 where validity depends on several fields
together (groups and channels, a kernel and the input size, an item's kind deciding what
an answer is), which OpenAPI cannot express.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig

from app.main import create_app
from app.settings import Settings

CONFIG = """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "422", "429"]
"""


@pytest.fixture
def api_schema(database_url: str, tmp_path: Path):
    app = create_app(
        Settings(DATA_DIR=tmp_path / "fuzz", DATABASE_URL=database_url, SECRET_KEY="fuzz")
    )
    config = SchemathesisConfig.from_str(CONFIG)
    return schemathesis.openapi.from_asgi("/openapi.json", app, config=config)


@pytest.mark.slow
def test_every_documented_route_passes_every_check(api_schema) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 10
    statuses: list[int] = []

    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=25,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def check(case) -> None:
                response = case.call_and_validate()
                statuses.append(response.status_code)

            try:
                check()
            except Unsatisfiable:
                # Nothing can break its schema (no parameters, or only free-form strings).
                assert mode is GenerationMode.NEGATIVE, operation.label
    # The requests reached the app, and not only its validation: some were answered 2xx.
    assert len(statuses) > 10 * len(operations)
    assert any(200 <= status < 300 for status in statuses)
    assert any(status == 422 for status in statuses)
