"""The embedded runner: the same detectors as the stream processors, driven in-process.

For the demo, ``auditline check`` style batch runs and tests: events from the in-process
transport are judged in event-time order against the policy (lineage state in a dict) and every
producer stream's chain is followed, with no broker and no faust.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from auditline.catalogue import Catalogue
from auditline.codec import Codec, SingleObjectCodec
from auditline.errors import DecodeError
from auditline.events import Event
from auditline.policy.decisions import Decision
from auditline.policy.engine import PolicyEngine
from auditline.producer.memory import InProcessBroker
from auditline.verify import ChainVerifier, Finding, StreamHead


@dataclass
class RunResult:
    decisions: list[Decision] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    dead_letters: list[tuple[str, str]] = field(default_factory=list)  # (topic, reason)


class EmbeddedRunner:
    def __init__(
        self, engine: PolicyEngine, keys: dict[str, bytes] | None = None, codec: Codec | None = None
    ) -> None:
        self.engine = engine
        self.codec = codec or SingleObjectCodec(Catalogue())
        self.state: dict[str, Any] = {}
        self.heads: dict[str, StreamHead] = {}
        self.verifier = ChainVerifier(self.heads, keys)

    def run_events(self, events: Iterable[Event], result: RunResult | None = None) -> RunResult:
        result = result or RunResult()
        for event in sorted(
            events, key=lambda e: (e.envelope.event_time, e.envelope.stream, e.envelope.sequence)
        ):
            result.findings += self.verifier.observe(event)
            result.decisions += self.engine.evaluate(event, self.state)
        return result

    def run_broker(self, broker: InProcessBroker) -> RunResult:
        result, events = RunResult(), []
        for topic, messages in broker.topics.items():
            for message in messages:
                try:
                    events.append(self.codec.decode(message.value))
                except DecodeError as exc:
                    result.dead_letters.append((topic, str(exc)))
        return self.run_events(events, result)
