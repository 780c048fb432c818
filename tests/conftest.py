import os

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
