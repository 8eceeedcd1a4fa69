"""Stream checkpoints: a producer's signed statement of where each of its streams ends."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from auditline.events.records import Event, Frozen
from auditline.events.types import HexDigest, NonEmpty


class CheckpointHead(Frozen):
    stream: NonEmpty
    sequence: int = Field(ge=0)
    hash: HexDigest


class StreamCheckpoint(Event):
    SCHEMA: ClassVar[str] = "auditline.events.StreamCheckpoint"
    heads: tuple[CheckpointHead, ...] = ()
    interval_ms: int = Field(ge=0)
    final: bool = False
