"""Alert episodes over judged windows (pure): one alert when a problem starts, one when it ends.

A window's results (``FeatureResult``: a feature, the level it reached or None, the statistic
that decided) step one episode per (feature, level): it opens when the feature reached that
level (or above) in ``open_k`` of the last ``open_n`` judged windows and closes after ``close_m``
judged windows in a row without it. An open episode is held by a weaker bar than the one that
opened it (hysteresis, ``Lifecycle._holds``), so a steady problem hovering about its threshold is
one episode, not one per crossing. Drift (``auditline.drift.detector``) and data quality
(``auditline.drift.quality``) each keep their own ``Lifecycle``; quality's names its episodes by
check as well and has its own holding bar. Both are JSON-able for a changelog table. Model
quality (``auditline.performance``) steps the same episodes (``Episodes``) under its own rules.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, Protocol, Self, TypeVar

from auditline.drift import sequential

if TYPE_CHECKING:
    from auditline.drift.detector import DriftConfig

LEVELS = ("medium", "high")


class EpisodeRules(Protocol):
    """What stepping episodes needs of a configuration (``DriftConfig`` has it)."""

    @property
    def open_k(self) -> int: ...

    @property
    def open_n(self) -> int: ...

    @property
    def close_m(self) -> int: ...


RulesT = TypeVar("RulesT", bound=EpisodeRules)


@dataclass(frozen=True)
class FeatureResult:
    feature: str | None  # None: the model-level result
    level: str | None  # None, "medium" or "high"
    statistic: str  # what decided (a drift statistic, or a quality check)
    value: float
    threshold: float
    reference_count: int
    window_count: int
    statistics: dict[str, float]


@dataclass
class Episode:
    history: list[bool] = field(default_factory=list)  # the last open_n judged windows
    open: bool = False
    clean: int = 0  # judged windows in a row without drift at this level, while open
    gradual: bool = False  # opened by a CUSUM chart (``sequential``)


@dataclass(frozen=True)
class Transition:
    state: str  # "opened" or "closed"
    level: str
    result: FeatureResult
    window_start_ms: int
    window_end_ms: int


class Episodes(Generic[RulesT]):
    """Episodes per (feature, level) over judged windows; JSON-able for a changelog table.
    Subclasses name episodes (``_key``), choose the levels a result can have (``_levels``) and
    say the bar that holds an open episode (``_holds``)."""

    def __init__(self, config: RulesT, episodes: dict[str, Episode] | None = None) -> None:
        self.config = config
        self.episodes = episodes or {}

    def step(self, results: list[FeatureResult], start_ms: int, end_ms: int) -> list[Transition]:
        out = []
        for result in results:
            for level in self._levels(result):
                reached = result.level is not None and LEVELS.index(result.level) >= LEVELS.index(
                    level
                )
                episode = self.episodes.setdefault(self._key(result, level), Episode())
                episode.history = [*episode.history, reached][-self.config.open_n :]
                if not episode.open and sum(episode.history) >= self.config.open_k:
                    episode.open, episode.clean = True, 0
                    episode.gradual = sequential.gradual(result)
                    out.append(Transition("opened", level, result, start_ms, end_ms))
                elif episode.open:
                    holding = reached or self._holds(result, level, episode)
                    episode.clean = 0 if holding else episode.clean + 1
                    if episode.clean >= self.config.close_m:
                        episode.open, episode.history = False, []
                        out.append(Transition("closed", level, result, start_ms, end_ms))
        return out

    def _key(self, result: FeatureResult, level: str) -> str:
        return f"{result.feature or ''}|{level}"

    def _levels(self, result: FeatureResult) -> tuple[str, ...]:
        return LEVELS

    def _holds(self, result: FeatureResult, level: str, episode: Episode) -> bool:
        """Whether an open episode's window is still over its closing bar."""
        raise NotImplementedError

    def open_episodes(self) -> list[str]:
        return sorted(key for key, episode in self.episodes.items() if episode.open)

    def to_json(self) -> dict[str, Any]:
        return {k: [e.history, e.open, e.clean, e.gradual] for k, e in self.episodes.items()}

    @classmethod
    def from_json(cls, config: RulesT, data: Mapping[str, Any]) -> Self:
        """Also the three-item form written before gradual episodes existed."""
        return cls(
            config,
            {k: Episode(list(v[0]), v[1], v[2], bool(v[3]) if len(v) > 3 else False)
             for k, v in data.items()},
        )  # fmt: skip


class Lifecycle(Episodes["DriftConfig"]):
    """Drift episodes per (feature, level); see the module for the holding bar."""

    config: DriftConfig

    def _holds(self, result: FeatureResult, level: str, episode: Episode) -> bool:
        """Whether an open episode's window is still over its closing threshold: the statistic
        at ``close_ratio`` of the threshold of the episode's level; a gradual episode's also
        while the window shows the feature away from its reference (``hold_z``)."""
        config = self.config
        if result.feature is None:  # the model: the share of drifting features
            return result.value >= config.model_share * config.close_ratio
        if episode.gradual and sequential.away(result.statistics, config.hold_z):
            return True
        threshold = config.psi_alert if level == "high" else config.psi_warn
        return result.statistics.get("psi", 0.0) >= threshold * config.close_ratio


def alert_id(*parts: str) -> str:
    """A deterministic id (a replay after a restart repeats it): 32 hex digits of SHA-256."""
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


def utc(millis: int) -> datetime:
    return datetime.fromtimestamp(millis / 1000, tz=UTC)
