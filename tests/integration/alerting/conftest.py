"""The alerting integration fixtures of tests/integration/test_alerts.py (broker, env, prefix)."""

from tests.integration.test_alerts import setup

__all__ = ["setup"]
