from __future__ import annotations

import os
from pathlib import Path

import pytest

from auditline.codec import ConfluentCodec, SingleObjectCodec, make_codec
from auditline.errors import ConfigError
from auditline.events import AssetDeclared
from auditline.producer import AuditProducer
from auditline.producer.memory import InProcessBroker, InProcessTransport
from auditline.settings import load_settings, unknown_env_keys


def test_defaults_point_at_the_embedded_engine() -> None:
    settings = load_settings()
    assert settings.clickhouse.dsn.startswith("chdb://")
    assert settings.schema_registry.url is None
    assert isinstance(make_codec(settings), SingleObjectCodec)


def test_environment_layers_with_nested_delimiter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDITLINE_KAFKA__BOOTSTRAP_SERVERS", "b1:9092,b2:9092")
    monkeypatch.setenv("AUDITLINE_KAFKA__SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("AUDITLINE_KAFKA__SASL_PASSWORD", "s3cret")
    monkeypatch.setenv("AUDITLINE_KAFKA__EXTRA", '{"client.rack": "eu1"}')
    monkeypatch.setenv("AUDITLINE_TOPIC_PREFIX", "acme")
    settings = load_settings()
    conf = settings.kafka.client_conf()
    assert conf == {
        "bootstrap.servers": "b1:9092,b2:9092",
        "security.protocol": "SASL_SSL",
        "sasl.password": "s3cret",
        "client.rack": "eu1",
    }
    assert "s3cret" not in settings.model_dump_json()
    assert settings.topic_prefix == "acme"


def test_overrides_beat_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDITLINE_TOPIC_PREFIX", "env")
    assert load_settings(topic_prefix="arg").topic_prefix == "arg"


@pytest.mark.parametrize(
    "name",
    ["AUDITLINE_KAFKA__BOOTSTRAP_SERVER", "AUDITLINE_TOPICPREFIX", "AUDITLINE_KAFKA__EXTRA__X"],
)
def test_unknown_keys_fail_loudly(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv(name, "x")
    with pytest.raises(ConfigError, match=name):
        load_settings()


def test_test_harness_variables_are_reserved() -> None:
    assert unknown_env_keys({"AUDITLINE_TEST_KAFKA": "x", "PATH": "/bin"}) == []


def test_invalid_values_say_which_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDITLINE_CLICKHOUSE__DSN", "postgres://x")
    with pytest.raises(ConfigError, match=r"AUDITLINE_CLICKHOUSE__DSN.*chdb://PATH"):
        load_settings()


def test_unknown_constructor_keys_fail() -> None:
    with pytest.raises(ConfigError, match="topic_prefx"):
        load_settings(topic_prefx="x")


def test_registry_url_selects_confluent_framing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDITLINE_SCHEMA_REGISTRY__URL", "mock://settings")
    assert isinstance(make_codec(load_settings()), ConfluentCodec)


def test_defaults_do_not_depend_on_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 11 item 5: the same service started from another directory keeps its spool (and so
    its sequence and chain); the embedded store is found wherever a command runs."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    for name in [n for n in os.environ if n.startswith("AUDITLINE_")]:
        monkeypatch.delenv(name)
    seen = []
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        monkeypatch.chdir(tmp_path / folder)
        settings = load_settings(producer={"service": "svc", "instance": "i1",
                                           "transport": "memory"})  # fmt: skip
        with AuditProducer(settings, transport=InProcessTransport(InProcessBroker())) as p:
            seen.append(p.emit(AssetDeclared, **ASSET).sequence)
        assert settings.spool.path == tmp_path / "data" / "auditline" / "spool"
        assert settings.clickhouse.dsn == f"chdb://{tmp_path / 'data' / 'auditline' / 'clickhouse'}"
    assert seen == [0, 1]  # the second start continued the stream


ASSET = {"asset_id": "ds", "asset_kind": "dataset", "name": "ds", "owner": "t",
         "classification": "personal", "location": {"country": "DE"}}  # fmt: skip


def test_a_dsn_password_is_never_shown() -> None:
    from auditline.settings import redacted_dsn

    assert redacted_dsn("http://auditor:s3cret@ch:8123/db") == "http://auditor:***@ch:8123/db"
    assert redacted_dsn("http://ch:8123") == "http://ch:8123"
    assert redacted_dsn("chdb:///var/lib/x") == "chdb:///var/lib/x"
