"""The ingesting service's core: OpenLineage events in, sealed audit events out.

``Ingestor.ingest`` takes the raw bytes of a batch of OpenLineage events (one HTTP request, a
Kafka batch, a file), checks and converts each (``validation``, ``mapping``) and emits the audit
events of all the accepted ones through the service's own ``AuditProducer`` (its own producer
streams, signed and chained like any SDK's), one ``emit_many`` per kind. Guarantee: when
``ingest`` returns, every accepted event's audit events are in the producer's spool (the SDK's
durability point: the spool sends them on, across restarts); a rejected event emits nothing and
comes back with its reason. The evidence event of each OpenLineage event is emitted before any
event converted from it, in its own stream.

What an integration repeats is recorded once: a declaration equal to the last one this service
made of the dataset, a movement a run already reported (a streaming job's RUNNING events every
checkpoint, then its COMPLETE), a training run's state it already reported. The memory of it is
bounded (``REMEMBERED`` keys) and lost on a restart, after which each is recorded once more; the
evidence event of every OpenLineage event is always recorded.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from auditline.errors import InvalidEventError, OpenLineageError
from auditline.events import AssetDeclared, DataMovement, Event, OpenLineageEvent, TrainingRun
from auditline.openlineage.mapping import Converted, MappingConfig, convert
from auditline.openlineage.validation import check
from auditline.producer import AuditProducer

log = logging.getLogger(__name__)
EMIT_ORDER: tuple[type[Event], ...] = (OpenLineageEvent, AssetDeclared, TrainingRun, DataMovement)
"""Kinds in the order a batch emits them: the evidence first, declarations before what they
govern."""
REMEMBERED = 200_000
"""Repeats remembered (keys of declarations, movements and run states), least recent dropped."""


@dataclass(frozen=True)
class Outcome:
    """What became of one OpenLineage event: accepted (its audit event ids) or rejected."""

    accepted: bool
    reason: str = ""
    run_id: str | None = None
    event_ids: tuple[str, ...] = ()
    unplaced: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        if not self.accepted:
            return {"accepted": False, "error": self.reason}
        return {
            "accepted": True, "run_id": self.run_id, "event_ids": list(self.event_ids),
            "unplaced": list(self.unplaced), "notes": list(self.notes),
        }  # fmt: skip


MAX_ITEMS = 1_000
"""Events of one JSON array (an HTTP body, an exported file is read in such slices)."""


def array_items(data: bytes, limit: int | None = MAX_ITEMS) -> list[bytes]:
    """The items of a JSON array, each as the exact bytes it had in ``data`` (their digest is
    of what the producer sent, not of a re-serialisation); raises ``OpenLineageError``."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise OpenLineageError(f"the body is not UTF-8 text: {exc}") from None
    decoder, items = json.JSONDecoder(), list[bytes]()
    pos = _skip(text, text.index("[") + 1)
    while pos < len(text) and text[pos] != "]":
        if len(items) == limit:
            raise OpenLineageError(f"the array holds more than {limit} events: send fewer")
        try:
            _, end = decoder.raw_decode(text, pos)
        except (ValueError, RecursionError) as exc:
            raise OpenLineageError(f"the array is not JSON: {exc}") from None
        items.append(text[pos:end].encode())
        pos = _skip(text, end)
        if pos < len(text) and text[pos] == ",":
            pos = _skip(text, pos + 1)
        elif pos >= len(text) or text[pos] != "]":
            raise OpenLineageError(f"the array is not JSON: expected , or ] at character {pos}")
    if pos >= len(text) or text[pos + 1 :].strip():
        raise OpenLineageError("the array is not JSON: it does not end with ]")
    if not items:
        raise OpenLineageError("the array holds no events")
    return items


def _skip(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


class Ingestor:
    """Checks, converts and emits OpenLineage events (see the module docstring)."""

    def __init__(self, producer: AuditProducer, config: MappingConfig) -> None:
        self.producer = producer
        self.config = config
        self.recorded: OrderedDict[Hashable, str] = OrderedDict()

    def ingest(self, raws: Sequence[bytes]) -> list[Outcome]:
        """The outcome of each event, in order; accepted ones spooled when this returns."""
        converted: list[Converted | str] = []
        for raw in raws:
            try:
                item = convert(check(raw), raw, self.config)
                for model, body in item.events:
                    self.producer.validate(model, body)
            except OpenLineageError as exc:
                converted.append(str(exc))
            except InvalidEventError as exc:
                converted.append(f"the event converts to an invalid audit event: {exc}")
            except Exception as exc:
                # a shape the checks let through and the mapping cannot read: this event's
                # rejection, never the batch's failure
                log.warning("an OpenLineage event could not be converted", exc_info=True)
                converted.append(f"the event could not be read ({type(exc).__name__}: {exc})")
            else:
                converted.append(item)
        ids = self._emit([c for c in converted if isinstance(c, Converted)])
        accepted = iter(ids)
        return [
            Outcome(False, c)
            if isinstance(c, str)
            else Outcome(True, "", c.trace_id, next(accepted), c.unplaced, c.notes)
            for c in converted
        ]

    def _emit(self, batch: list[Converted]) -> list[tuple[str, ...]]:
        """Emit the batch kind by kind, repeats left out; the event ids of each converted event,
        in order."""
        ids: list[list[str]] = [[] for _ in batch]
        for model in EMIT_ORDER:
            owners, bodies, fresh = [], [], dict[Hashable, str]()
            for i, item in enumerate(batch):
                for kind, body in item.events:
                    if kind is not model:
                        continue
                    key, value = _identity(kind, body, item.trace_id)
                    if key is not None and (fresh.get(key) or self.recorded.get(key)) == value:
                        continue
                    if key is not None:
                        fresh[key] = value
                    owners.append(i)
                    bodies.append(
                        {**body, "event_time": item.event_time, "trace_id": item.trace_id}
                    )
            if bodies:
                receipts = self.producer.emit_many(model, bodies)
                for owner, receipt in zip(owners, receipts, strict=True):
                    ids[owner].append(str(receipt.event_id))
            self._remember(fresh)
        return [tuple(each) for each in ids]

    def _remember(self, fresh: dict[Hashable, str]) -> None:
        for key, value in fresh.items():
            self.recorded[key] = value
            self.recorded.move_to_end(key)
        while len(self.recorded) > REMEMBERED:
            self.recorded.popitem(last=False)


def _identity(
    kind: type[Event], body: dict[str, Any], run: str | None
) -> tuple[Hashable | None, str]:
    """What makes a converted event a repeat: (key, value); a None key is never one."""
    if kind is AssetDeclared:
        text = json.dumps(body, sort_keys=True, default=str)
        return ("declared", body["asset_id"]), hashlib.sha256(text.encode()).hexdigest()
    if kind is DataMovement and run is not None:  # what it is judged on: not its counts
        said = {k: v for k, v in body.items() if k not in ("records", "bytes")}
        text = json.dumps(said, sort_keys=True, default=str)
        key = ("moved", run, body["asset_id"], body["target_asset_id"])
        return key, hashlib.sha256(text.encode()).hexdigest()
    if kind is TrainingRun:
        return ("trained", body["run_id"]), str(body["status"])
    return None, ""
