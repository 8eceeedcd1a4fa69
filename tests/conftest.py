"""Shared fixtures: the real Kafka broker (session), unique names per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest

from auditline.testing.kafka_broker import BrokerError, LocalKafka


def _say(config: pytest.Config, line: str) -> None:
    """Print past pytest's capture, so the log shows the broker's life."""
    capture = config.pluginmanager.get_plugin("capturemanager")
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if capture is None or reporter is None:
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(line)


@pytest.fixture(scope="session")
def kafka_broker(request: pytest.FixtureRequest) -> Iterator[LocalKafka | None]:
    """The local broker this session started, or None when AUDITLINE_TEST_KAFKA names one."""
    if os.environ.get("AUDITLINE_TEST_KAFKA"):
        yield None
        return
    broker = LocalKafka()
    try:
        broker.start()
    except BrokerError as exc:  # a broker that fails to start is a failure, never a skip
        broker.close()
        pytest.fail(f"could not start the test Kafka broker: {exc}", pytrace=False)
    _say(request.config, f"\nKafka {broker.version} (KRaft) started at {broker.bootstrap}")
    try:
        yield broker
    finally:
        broker.close()
        _say(request.config, f"\nKafka at {broker.bootstrap} stopped")


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: LocalKafka | None) -> str:
    """Bootstrap address of the real broker for this test session."""
    external = os.environ.get("AUDITLINE_TEST_KAFKA")
    if external:
        return external
    assert kafka_broker is not None
    return kafka_broker.bootstrap


@pytest.fixture
def unique() -> str:
    """A short unique token for topic, group and database names of one test."""
    return uuid.uuid4().hex[:12]


@pytest.fixture
def topic_prefix(unique: str) -> str:
    return f"t{unique}.auditline"


@pytest.fixture(scope="session")
def chdb_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One embedded-engine folder per test session (chDB allows one path per process)."""
    return str(tmp_path_factory.mktemp("chdb") / "engine")


@pytest.fixture
def store_settings(chdb_path: str, unique: str, monkeypatch: pytest.MonkeyPatch) -> object:
    """ClickHouse settings for a database of this test's own, also exported for the CLI."""
    from auditline.settings import ClickHouseSettings

    monkeypatch.setenv("AUDITLINE_CLICKHOUSE__DSN", f"chdb://{chdb_path}")
    monkeypatch.setenv("AUDITLINE_CLICKHOUSE__DATABASE", f"t_{unique}")
    return ClickHouseSettings(dsn=f"chdb://{chdb_path}", database=f"t_{unique}")


@pytest.fixture
def say(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Print a figure into the test log, past pytest's capture (e.g. how many events spooled)."""
    return lambda line: _say(request.config, f"\n{line}")
