"""Subscriptions: who wants which alerts, and how they get them (a YAML file, docs/alerts.md).

```yaml
subscriptions:
  - name: dpo-pager
    filters: {kinds: [violation], min_severity: high, rules: [RES-PIN], jurisdictions: [US]}
    webhook:
      url: https://hooks.example.com/auditline
      secret_env: DPO_WEBHOOK_SECRET      # HMAC-SHA256 key, from the environment
      format: json                        # json | slack | cloudevents
  - name: console
    filters: {kinds: [drift], states: [opened]}
    sse: {token_env: CONSOLE_SSE_TOKEN, max_clients: 32}   # both optional
```

Each subscription is its own consumer group (``<prefix>-alerts-<name>``): a slow or failing
subscriber never delays another, and a restarted one resumes where it stopped.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from auditline.alerting.view import SEVERITIES, AlertView
from auditline.errors import ConfigError
from auditline.yamlfile import load_model

_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Filters(_Frozen):
    """Every filter set must match (an empty one matches everything); lists match any member."""

    kinds: tuple[Literal["violation", "drift", "quality", "performance", "integrity"], ...] = ()
    min_severity: Literal["info", "low", "medium", "high", "critical"] = "info"
    rules: tuple[str, ...] = ()
    jurisdictions: tuple[str, ...] = ()
    models: tuple[str, ...] = ()  # "name" or "name:version"
    assets: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    states: tuple[str, ...] = ()  # drift, quality, performance: opened | closed; violations: deny …

    def matches(self, alert: AlertView) -> bool:
        return (
            (not self.kinds or alert.kind in self.kinds)
            and _rank(alert.severity) >= _rank(self.min_severity)
            and (not self.rules or alert.rule in self.rules)
            and (not self.jurisdictions or bool(alert.jurisdictions & set(self.jurisdictions)))
            and (not self.models or any(_model_hit(f, alert.models) for f in self.models))
            and (not self.assets or bool(alert.assets & set(self.assets)))
            and (not self.services or bool(alert.services & set(self.services)))
            and (not self.states or alert.state in self.states)
        )


def _rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else 0


def _model_hit(wanted: str, models: frozenset[str]) -> bool:
    return wanted in models or any(m.split(":", 1)[0] == wanted for m in models)


class Webhook(_Frozen):
    url: str = Field(pattern=r"^https?://")
    secret_env: str | None = Field(
        default=None, description="Environment variable holding the HMAC-SHA256 signing key."
    )
    format: Literal["json", "slack", "cloudevents"] = "json"
    timeout_s: float = Field(default=10.0, gt=0)
    retries: int = Field(default=8, ge=0, description="Attempts after the first, then dead letter.")
    backoff_s: float = Field(default=0.5, gt=0, description="First retry delay; doubles, jittered.")
    max_backoff_s: float = Field(default=60.0, gt=0)
    max_per_second: float = Field(default=50.0, gt=0, description="Rate cap of this subscription.")

    def secret(self) -> bytes | None:
        return _from_env(self.secret_env, "webhook secret", "secret_env")


class Sse(_Frozen):
    """Served by ``auditline alerts serve`` at ``/subscriptions/NAME/events``."""

    token_env: str | None = Field(
        default=None,
        min_length=1,
        description="Environment variable holding the bearer token a client must send; "
        "without it the stream is open to whoever reaches the address.",
    )
    max_clients: int = Field(
        default=32, ge=1, description="Concurrent streams of this subscription; more get 503."
    )

    def token(self) -> bytes | None:
        return _from_env(self.token_env, "SSE token", "token_env")


def _from_env(name: str | None, what: str, key: str) -> bytes | None:
    """The value of the environment variable ``name`` (None when no variable is named)."""
    if name is None:
        return None
    value = os.environ.get(name)
    if not value:
        raise ConfigError(
            f"{what}: the environment variable {name} is unset or empty: set it, or remove {key}"
        )
    return value.encode()


class Terminal(_Frozen):
    """For ``auditline alerts tail --subscription NAME``."""


class Subscription(_Frozen):
    name: str = Field(pattern=_NAME)
    start: Literal["latest", "earliest"] = Field(
        default="latest",
        description="Where a new subscription starts (later starts resume where it stopped).",
    )
    filters: Filters = Field(default_factory=Filters)
    webhook: Webhook | None = None
    sse: Sse | None = None
    terminal: Terminal | None = None

    @model_validator(mode="after")
    def _one_delivery(self) -> Subscription:
        chosen = [d for d in (self.webhook, self.sse, self.terminal) if d is not None]
        if len(chosen) != 1:
            raise ValueError("give exactly one delivery: webhook, sse or terminal")
        return self

    def group(self, topic_prefix: str) -> str:
        return f"{topic_prefix}-alerts-{self.name}"


class SubscriptionsFile(_Frozen):
    subscriptions: tuple[Subscription, ...]

    @field_validator("subscriptions")
    @classmethod
    def _unique(cls, value: tuple[Subscription, ...]) -> tuple[Subscription, ...]:
        names = [s.name for s in value]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"subscription names must be unique: {', '.join(twice)}")
        return value

    def named(self, name: str) -> Subscription:
        for subscription in self.subscriptions:
            if subscription.name == name:
                return subscription
        known = ", ".join(s.name for s in self.subscriptions)
        raise ConfigError(f"no subscription named {name} (known: {known})")


def load_subscriptions(path: Path) -> SubscriptionsFile:
    return load_model(path, SubscriptionsFile, ConfigError, "subscriptions file")


def parse_duration(text: str) -> float:
    """Seconds of ``30s``, ``15m``, ``2h``, ``1d`` (``--since``)."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd])", text.strip())
    if not match:
        raise ConfigError(f"{text} is not a duration: give e.g. 30s, 15m, 2h or 1d")
    return float(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
