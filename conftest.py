"""Shared pytest set-up: hypothesis profiles (select with --hypothesis-profile)."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

# "ci": more examples than the default and no per-example deadline (a shared
# 2-core CI machine has noisy timings); "dev" is quick for local runs.
settings.register_profile(
    "ci",
    max_examples=300,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=50, deadline=None)
