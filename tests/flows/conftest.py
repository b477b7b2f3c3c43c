"""One temporary Prefect API for every in-process flow test (session-scoped, as Prefect recommends)."""

import pytest


@pytest.fixture(scope="session")
def harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
