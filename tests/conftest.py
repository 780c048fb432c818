import os

import pytest
from hypothesis import HealthCheck, settings

# Sympy evaluation inside property tests is slow and uneven: no per-example deadline. On CI the
# examples are derandomised so a failure reproduces from the log.
settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.register_profile(
    "ci",
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile("ci" if os.environ.get("CI") else "default")


@pytest.fixture(scope="session")
def quick_suite_records():
    """The quick verification suite at seed 0 as JSON-ready records, run once per session: several
    tests (the CLI, the report, distributed execution) compare their own run with this one."""
    from dropmuon.verification import run_suite

    return [r.as_dict() for r in run_suite("quick", seed=0, progress=False)]
