"""The compose stack, checked without Docker: docker-compose.yml, the Dockerfile and deploy/.

No Docker engine runs here, so `docker compose up` cannot be tried. What can go wrong in these
files is checked against the real things instead: the official Compose JSON schema (vendored,
tests/fixtures/README.md), auditline's own argument parser and settings, the subscriptions
loader, and the ports each process is configured to listen on (docs/deploy.md).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import jsonschema_rs
import pytest
import yaml
from pydantic import BaseModel

from auditline.alerting.subscriptions import load_subscriptions
from auditline.cli import _EXTRA_COMMANDS, build_parser
from auditline.errors import ConfigError
from auditline.integrity.signing import HmacSigner
from auditline.settings import (
    ENV_PREFIX,
    RESERVED_PREFIXES,
    AuditlineSettings,
    data_dir,
    load_settings,
    unknown_env_keys,
)

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
ENV_EXAMPLE = ROOT / "deploy" / "auditline.env.example"
SCHEMA = ROOT / "tests" / "fixtures" / "compose-spec.json"

THIRD_PARTY = ("kafka", "schema-registry", "clickhouse")
AUDITLINE = ("migrate", "worker", "sink", "alerts", "openlineage", "console")
LONG_RUNNING = ("worker", "sink", "alerts", "openlineage", "console")
DATA_DIR = "/var/lib/auditline"
CLICKHOUSE_HTTP = 8123  # the server image's HTTP port (its healthcheck and the DSN use it)
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEY|SIGNING_KEY|CHECKPOINT_KEY|USER_INFO|DSN")
URL = re.compile(r"https?://(?P<host>[\w.-]+):(?P<port>\d+)(?P<path>/[\w/.-]*)?")


@functools.cache
def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def services() -> dict[str, dict[str, Any]]:
    found = compose()["services"]
    assert isinstance(found, dict)
    return found


def env_file(path: Path) -> dict[str, str]:
    """A Compose env file of VARIABLE=value lines (comments and blank lines skipped)."""
    values = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        name, sep, value = text.partition("=")
        assert sep and re.fullmatch(r"[A-Z][A-Z0-9_]*", name), f"{path.name}:{number}: {line!r}"
        values[name] = value
    return values


def environment(service: str) -> dict[str, str]:
    """The service's own ``environment`` (the shared anchor merged in), as strings."""
    given = services()[service].get("environment", {})
    assert isinstance(given, dict), f"{service}: environment as a mapping"
    return {name: str(value) for name, value in given.items()}


def effective_env(service: str) -> dict[str, str]:
    """What the container gets with .env copied from the example: env_file, then environment."""
    merged = env_file(ENV_EXAMPLE) if services()[service].get("env_file") == ".env" else {}
    return {**merged, **environment(service)}


def command(service: str) -> list[str]:
    given = services()[service]["command"]
    return shlex.split(given) if isinstance(given, str) else [str(part) for part in given]


def parsed(service: str) -> argparse.Namespace:
    try:
        return build_parser().parse_args(command(service))
    except SystemExit:
        pytest.fail(f"{service}: `auditline {shlex.join(command(service))}` does not parse")


def settings_for(service: str, monkeypatch: pytest.MonkeyPatch) -> AuditlineSettings:
    """The settings the service's process loads, from its effective environment."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX) and not name.startswith(RESERVED_PREFIXES):
            monkeypatch.delenv(name)
    for name, value in effective_env(service).items():
        if name.startswith(ENV_PREFIX):
            monkeypatch.setenv(name, value)
    return load_settings()


def listening(service: str, monkeypatch: pytest.MonkeyPatch) -> tuple[str, int]:
    """The address the service's HTTP server binds, as its command and settings say."""
    args, settings = parsed(service), settings_for(service, monkeypatch)
    if args.command in ("sink", "worker"):
        assert settings.metrics.port is not None, f"{service}: set AUDITLINE_METRICS__PORT"
        return settings.metrics.host, settings.metrics.port
    if args.command == "alerts":
        return args.host, args.port
    if args.command == "openlineage":
        ol = settings.openlineage
        return args.host or ol.host, args.port or ol.port
    if args.command == "console":
        console = settings.console
        assert console.token is not None, f"{service}: serving beyond loopback needs a token"
        return args.host or console.host, console.port if args.port is None else args.port
    raise AssertionError(f"{service}: serves nothing")


def health_url(service: str) -> re.Match[str]:
    test = services()[service]["healthcheck"]["test"]
    match = URL.search(" ".join(test) if isinstance(test, list) else test)
    assert match, f"{service}: the healthcheck asks no http://HOST:PORT/PATH"
    return match


def published(service: str) -> list[tuple[str, int, int]]:
    """(host address, host port, container port) of the short ``ports`` syntax."""
    found = []
    for entry in services()[service].get("ports", []):
        host, port, target = str(entry).rsplit(":", 2)
        found.append((host, int(port), int(target)))
    return found


def setting_names(model: type[BaseModel] = AuditlineSettings, prefix: str = ENV_PREFIX) -> set[str]:
    """Every AUDITLINE_* variable that names a setting, built from the models' fields."""
    names = set()
    for name, field in model.model_fields.items():
        env = prefix + name.upper()
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names |= setting_names(annotation, env + "__")
        else:
            names.add(env)
    return names


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined and comments dropped."""
    logical, pending = [], ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        logical.append(pending)
        pending = ""
    assert not pending, "a continuation line ends the Dockerfile"
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1].strip()) for text in logical]


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile()
    last = max(i for i, (name, _) in enumerate(instructions) if name == "FROM")
    return instructions[last:]


def installed_extras() -> set[str]:
    args = [value for name, value in dockerfile() if name == "ARG"]
    default = next(a.split("=", 1)[1] for a in args if a.startswith("AUDITLINE_EXTRAS="))
    installs = [value for name, value in dockerfile() if name == "RUN" and "pip install" in value]
    assert any("[${AUDITLINE_EXTRAS}]" in run for run in installs), "pip install WHEEL[extras]"
    return set(default.split(","))


def needed_extras(service: str) -> set[str]:
    """The extras the service's command needs (auditline.cli names the extra of each command)."""
    args = parsed(service)
    needed = {extra for _, _, extra, names in _EXTRA_COMMANDS if args.command in names}
    if args.command == "alerts" and args.action == "serve":
        needed.add("alerts")  # aiohttp and prometheus-client (alerting/cli.py cmd_serve)
    if args.command == "worker":
        needed.add("drift")  # the worker runs the drift processors
    if effective_env(service).get("AUDITLINE_SCHEMA_REGISTRY__URL"):
        needed.add("registry")
    return needed


def test_the_compose_file_validates_against_the_compose_schema() -> None:
    validator = jsonschema_rs.validator_for(json.loads(SCHEMA.read_text(encoding="utf-8")))
    errors = [f"{list(e.instance_path)}: {e.message}" for e in validator.iter_errors(compose())]
    assert errors == []
    misspelt = json.loads(json.dumps(compose()))
    misspelt["services"]["sink"]["healthchek"] = misspelt["services"]["sink"].pop("healthcheck")
    assert not validator.is_valid(misspelt)  # the schema does catch a wrong key


def test_the_stack_has_its_services() -> None:
    assert set(services()) == {*THIRD_PARTY, *AUDITLINE}
    built = {name for name, service in services().items() if "build" in service}
    assert built == set(AUDITLINE)
    assert {services()[name]["image"] for name in AUDITLINE} == {"auditline:local"}


@pytest.mark.parametrize("service", AUDITLINE)
def test_every_auditline_command_parses_with_the_real_cli(service: str) -> None:
    args = parsed(service)
    assert args.run.__name__ != "_needs_extra", f"{service}: {args.command} is a placeholder"


def test_every_auditline_variable_names_a_setting() -> None:
    names = setting_names()
    assert {"AUDITLINE_KAFKA__BOOTSTRAP_SERVERS", "AUDITLINE_METRICS__PORT"} <= names
    given = set(env_file(ENV_EXAMPLE))
    for service in services():
        given |= set(environment(service))
    given |= set(compose()["x-auditline-env"])
    auditline = {name for name in given if name.startswith(ENV_PREFIX)}
    assert auditline - names == set()
    assert unknown_env_keys(dict.fromkeys(auditline, "")) == []


@pytest.mark.parametrize("service", AUDITLINE)
def test_each_service_gets_valid_settings_and_the_stack_store(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(service, monkeypatch)
    dsn = urlparse(settings.clickhouse.dsn)
    assert (dsn.scheme, dsn.hostname, dsn.port) == ("http", "clickhouse", CLICKHOUSE_HTTP)
    assert settings.kafka.bootstrap_servers == "kafka:29092"
    assert settings.schema_registry.url == "http://schema-registry:8081"


def test_no_credentials_inline_and_every_one_in_the_env_example() -> None:
    for name in services():
        inline = [key for key in environment(name) if SECRET_NAME.search(key)]
        assert inline == [], f"{name}: credentials belong in .env"
        for value in environment(name).values():
            assert not re.search(r"://[^/@\s]+:[^/@\s]+@", value), f"{name}: a password in a URL"
    takes_env = {name for name, service in services().items() if service.get("env_file")}
    assert takes_env == {"clickhouse", *AUDITLINE}
    assert {services()[name]["env_file"] for name in takes_env} == {".env"}
    example = env_file(ENV_EXAMPLE)
    for name in ("CLICKHOUSE_USER", "CLICKHOUSE_PASSWORD", "AUDITLINE_CLICKHOUSE__DSN",
                 "AUDITLINE_PRODUCER__SIGNING_KEY", "AUDITLINE_OPENLINEAGE__API_KEY"):  # fmt: skip
        assert example.get(name), f"{ENV_EXAMPLE.name} lacks {name}"


def test_the_env_example_is_consistent_and_its_placeholders_fail_loudly() -> None:
    example = env_file(ENV_EXAMPLE)
    dsn = urlparse(example["AUDITLINE_CLICKHOUSE__DSN"])
    user, password = example["CLICKHOUSE_USER"], example["CLICKHOUSE_PASSWORD"]
    assert (dsn.username, dsn.password) == (user, password)
    for name, value in example.items():
        assert "$" not in value and value[:1] not in "'\"", f"{name}: Compose would change it"
    with pytest.raises(ConfigError, match="must be hex"):  # a forgotten placeholder stops workers
        HmacSigner.from_hex("default", example["AUDITLINE_PRODUCER__SIGNING_KEY"])


@pytest.mark.parametrize("service", LONG_RUNNING)
def test_healthchecks_ask_the_port_the_service_listens_on(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    host, port = listening(service, monkeypatch)
    assert host == "0.0.0.0", f"{service}: bound to {host}, unreachable from other containers"
    url = health_url(service)
    assert services()[service]["healthcheck"]["test"][:2] == ["CMD", "python"]
    assert (url["host"], int(url["port"]), url["path"]) == ("127.0.0.1", port, "/healthz")
    assert {target for _, _, target in published(service)} <= {port}
    assert {int(p) for p in services()[service].get("expose", [])} <= {port}


def test_third_party_healthchecks_and_addresses_agree() -> None:
    kafka = environment("kafka")
    listeners = dict(re.findall(r"(\w+)://[\w.-]*:(\d+)", kafka["KAFKA_LISTENERS"]))
    advertised = re.findall(r"\w+://([\w.-]+:\d+)", kafka["KAFKA_ADVERTISED_LISTENERS"])
    probe = services()["kafka"]["healthcheck"]["test"]
    assert probe[probe.index("--bootstrap-server") + 1].split(":")[1] == listeners["PLAINTEXT"]
    assert environment("migrate")["AUDITLINE_KAFKA__BOOTSTRAP_SERVERS"] in advertised
    assert "kafka:" + listeners["INTERNAL"] in advertised
    registry = environment("schema-registry")["SCHEMA_REGISTRY_LISTENERS"]
    assert int(health_url("schema-registry")["port"]) == urlparse(registry).port == 8081
    assert int(health_url("clickhouse")["port"]) == CLICKHOUSE_HTTP
    for service in services():
        for host, _, _ in published(service):
            assert host == "127.0.0.1", f"{service}: published beyond this host"


def test_depends_on_names_exist_and_conditions_fit() -> None:
    for name, service in services().items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on with conditions"
        for other, how in depends.items():
            assert other in services(), f"{name} depends on unknown {other}"
            if how["condition"] == "service_healthy":
                assert "healthcheck" in services()[other], f"{other} has no healthcheck"
            else:
                assert how["condition"] == "service_completed_successfully"
                assert services()[other].get("restart", "no") == "no", f"{other} is not one-shot"
    assert services()["migrate"]["depends_on"]["clickhouse"]["condition"] == "service_healthy"
    for name in LONG_RUNNING:
        depends = services()[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["kafka"]["condition"] == "service_healthy"
        assert "healthcheck" in services()[name]


def test_the_worker_scales_and_the_single_services_keep_their_identity() -> None:
    worker = services()["worker"]
    assert not {"container_name", "hostname", "ports"} & set(worker)
    # each replica's producer instance (its spool folder) is its own host name, never one value
    assert "AUDITLINE_PRODUCER__INSTANCE" not in effective_env("worker")
    assert effective_env("sink").get("AUDITLINE_SINK__INSTANCE_ID")
    assert effective_env("openlineage").get("AUDITLINE_PRODUCER__INSTANCE")
    assert int(environment("kafka")["KAFKA_NUM_PARTITIONS"]) > 1


def test_volumes_and_mounted_files_exist() -> None:
    declared, used = set(compose().get("volumes", {})), set()
    for name, service in services().items():
        for volume in service.get("volumes", []):
            source, target = str(volume).split(":")[:2]
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), f"{name}: {source} does not exist"
            else:
                used.add(source)
            if "build" in service:
                assert target == DATA_DIR, f"{name}: the image's data volume is {DATA_DIR}"
    assert used == declared
    for config in compose().get("configs", {}).values():
        assert (ROOT / config["file"]).is_file(), config["file"]
    targets = {c["target"] for c in services()["alerts"]["configs"]}
    assert parsed("alerts").subscriptions in targets


def test_the_example_subscriptions_load_and_their_tokens_are_in_the_env_example(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (source,) = services()["alerts"]["configs"]
    subscriptions = load_subscriptions(ROOT / compose()["configs"][source["source"]]["file"])
    example = env_file(ENV_EXAMPLE)
    for name, value in example.items():
        monkeypatch.setenv(name, value)
    for subscription in subscriptions.subscriptions:
        if subscription.sse:
            assert subscription.sse.token_env, f"{subscription.name}: open to anyone on 0.0.0.0"
            assert subscription.sse.token()
        if subscription.webhook:
            assert subscription.webhook.secret()


def test_the_dockerfile_is_multi_stage_slim_and_non_root() -> None:
    stages = [value for name, value in dockerfile() if name == "FROM"]
    assert len(stages) >= 2 and stages[-1] == "python:3.11-slim AS runtime"
    assert stages[0] == "python:3.11-slim AS builder"  # the venv moves between equal Pythons
    final = dict(final_stage())
    user = final["USER"].split(":")[0]
    assert user not in ("root", "0") and user.isdigit()
    assert json.loads(final["ENTRYPOINT"]) == ["auditline"]
    assert json.loads(final["VOLUME"]) == [DATA_DIR]
    assert "XDG_DATA_HOME=/var/lib " in final["ENV"] + " "
    secrets = [v for name, v in dockerfile() if name in ("ENV", "ARG") and SECRET_NAME.search(v)]
    assert secrets == []


def test_the_data_volume_is_auditlines_data_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", "/var/lib")
    assert data_dir() == Path(DATA_DIR)


@pytest.mark.parametrize("service", AUDITLINE)
def test_the_image_installs_the_extras_each_service_needs(service: str) -> None:
    assert needed_extras(service) <= installed_extras()


def test_the_installed_extras_exist_and_the_context_holds_only_sources() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert installed_extras() <= set(pyproject["project"]["optional-dependencies"])
    rules = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert rules[0] == "*"  # an allow list: nothing enters the build context unless named
    allowed = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    copied = set()
    for name, value in dockerfile():
        if name == "COPY" and not value.startswith("--from"):
            copied |= {part.rstrip("/") for part in value.split()[:-1]}
    assert copied == allowed
    assert not {".env", "deploy", "tests", ".venv"} & allowed
