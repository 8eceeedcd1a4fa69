"""Can this OpenLineage event be understood? (pure) ``check`` answers with the event, normalised,
or an ``OpenLineageError`` giving the one reason it cannot (docs/openlineage.md "What is
accepted").

The envelope (eventTime, producer, run id, job and dataset names) is checked by hand, for
speed and for reasons people can act on, then against the official OpenLineage schema
(``schemas/openlineage``, vendored: see its README) with the facets set aside; each facet of
the spec is then checked against its own schema. Schemas are compiled once, on first use.

Tolerated, as the integrations send it: an eventTime without a zone (read as UTC, noted);
facets without ``_producer``/``_schemaURL``; nulls (a null member is absent; a facet that fails
its schema only for its nulls is kept without them); a lower-case eventType. Removed: facets
marked ``_deleted: true`` (listed in ``Checked.deleted``). Dropped with a note, the event
kept: a facet that is not an object, fails its schema or is over ``FACET_MAX_BYTES``; a dataset
without a namespace or name. Rejected: what is not JSON or not an object, an event over
``EVENT_MAX_BYTES``, no eventTime or one that is no date-time, no producer, no run id or one
that is no UUID, no job namespace or name, no dataset on a DatasetEvent, an unknown eventType.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from importlib.resources import files
from typing import Any, Literal
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jsonschema_rs

from auditline.errors import OpenLineageError

EVENT_MAX_BYTES = 5 * 1024 * 1024
"""An event larger than this (its JSON text, in bytes) is rejected."""
FACET_MAX_BYTES = 64 * 1024
"""A facet larger than this (its compact JSON, in bytes) is dropped with a note."""
SPEC = "https://openlineage.io/spec/2-0-2/OpenLineage.json"
"""The OpenLineage spec version events are checked against (the one vendored)."""
EVENT_TYPES = ("START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER")

EventKind = Literal["run", "dataset", "job"]
_SLOTS = {"RunFacet": "run", "JobFacet": "job", "DatasetFacet": "dataset",
          "InputDatasetFacet": "input", "OutputDatasetFacet": "output"}  # fmt: skip
_BASE = ("_producer", "_schemaURL")
_PLACEHOLDER = "https://auditline.dev/unspecified"
_ZONE_ID = re.compile(r"\[([^\]]+)\]$")
_DECLARED = re.compile(r"/(Run|Dataset|Job)Event$")
_KINDS: dict[str, EventKind] = {"run": "run", "dataset": "dataset", "job": "job",
                                "Run": "run", "Dataset": "dataset", "Job": "job"}  # fmt: skip
_MISSING = {
    "run": "no run: a RunEvent names its run (run.runId, a UUID)",
    "dataset": "no dataset: a DatasetEvent names the dataset it describes (namespace and name)",
    "job": "no job: the event names its job (namespace and name)",
}
_SHOWN = 200


@dataclass(frozen=True)
class Checked:
    """An event that can be understood: its kind, the event normalised (a new dict: the caller
    may keep it), its time (UTC), notes for people, and the facets removed as ``_deleted``."""

    kind: EventKind
    event: dict[str, Any]
    event_time: datetime
    notes: tuple[str, ...] = ()
    deleted: tuple[str, ...] = field(default=())


def check(raw: bytes | bytearray | str | Mapping[str, Any]) -> Checked:
    """The event in ``raw`` (its JSON text, or the parsed object), checked and normalised;
    raises ``OpenLineageError`` with the reason when it cannot be understood."""
    data, size = _load(raw)
    work = _Work(measure=size > FACET_MAX_BYTES)
    event = dict(data)
    kind = _kind(event)
    when = _event_time(event, work)
    _producer(event, work)
    if kind == "dataset":
        event["dataset"] = _dataset(event.get("dataset"), "dataset", work, required=True)
    else:
        event["job"] = _job(event.get("job"))
        if kind == "run":
            event["run"] = _run(event.get("run"))
            _event_type(event, work)
        for key in ("inputs", "outputs"):
            _datasets(event, key, work)
    _against_spec(event, kind)
    for owner, key, slot, path in _containers(event):
        work.facets(owner, key, slot, path)
    work.summarise()
    return Checked(kind, event, when, tuple(work.notes), tuple(work.deleted))


def prepare() -> None:
    """Compile the schemas now (a service calls it at start), not on the first ``check``."""
    _schemas()


# ---- the envelope ----------------------------------------------------------------------------


def _load(raw: bytes | bytearray | str | Mapping[str, Any]) -> tuple[Mapping[str, Any], int]:
    """The event object and the size of its JSON text."""
    if isinstance(raw, Mapping):
        raw = dict(raw)
        try:
            text = json.dumps(raw, separators=(",", ":"), ensure_ascii=False, default=str)
        except (ValueError, RecursionError) as exc:
            raise OpenLineageError(f"the event cannot be written as JSON: {exc}") from None
        return raw, _bounded(len(text.encode()))
    size = _bounded(len(raw.encode()) if isinstance(raw, str) else len(raw))
    if isinstance(raw, bytes | bytearray) and raw[:3] == b"\xef\xbb\xbf":
        raw = raw[3:]  # a UTF-8 byte order mark, as some Windows tools write
    try:
        data = json.loads(raw)
    except RecursionError:
        raise OpenLineageError("the event's JSON is nested too deeply to read") from None
    except ValueError as exc:
        raise OpenLineageError(f"the event is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise OpenLineageError(f"the event is a JSON {_json_type(data)}, not an object")
    return data, size


def _bounded(size: int) -> int:
    if size > EVENT_MAX_BYTES:
        raise OpenLineageError(
            f"the event is {size} bytes, over the {EVENT_MAX_BYTES} bytes accepted: send large "
            "facets (logical plans, schemas of thousands of columns) trimmed or not at all"
        )
    return size


def _event_time(event: dict[str, Any], work: _Work) -> datetime:
    value = event.get("eventTime")
    if value is None:
        raise OpenLineageError(
            "no eventTime: every OpenLineage event needs one (ISO 8601, e.g. 2026-05-01T12:00:00Z)",
            field="eventTime",
        )
    when = (
        value
        if isinstance(value, datetime)
        else (_parse_time(value) if isinstance(value, str) else None)
    )
    if when is None:
        raise OpenLineageError(
            f"eventTime {_show(value)} is not an ISO 8601 date-time (e.g. 2026-05-01T12:00:00Z)",
            field="eventTime",
        )
    if when.tzinfo is None:
        work.notes.append(f"eventTime {value} has no time zone: read as UTC")
        when = when.replace(tzinfo=UTC)
    try:
        when = when.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:59-01:00: past the last instant Python represents
        raise OpenLineageError(
            f"eventTime {_show(value)} is out of range", field="eventTime"
        ) from None
    event["eventTime"] = when.isoformat()
    return when


def _parse_time(text: str) -> datetime | None:
    """An ISO 8601 date-time; a Java zone id after it (``...Z[UTC]``) is read too."""
    zone = _ZONE_ID.search(text)
    if zone is not None:
        text = text[: zone.start()]
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if "T" not in text.upper() and " " not in text.strip():
        return None  # a date alone says nothing of when in the day
    if zone is not None and when.tzinfo is None:
        try:
            when = when.replace(tzinfo=ZoneInfo(zone.group(1)))
        except (ZoneInfoNotFoundError, ValueError):
            return None
    return when


def _producer(event: dict[str, Any], work: _Work) -> None:
    producer = event.get("producer")
    if not isinstance(producer, str) or not producer.strip():
        raise OpenLineageError(
            "no producer: the event must name what sent it (a URI such as "
            "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/integration/spark)",
            field="producer",
        )
    if not isinstance(event.get("schemaURL"), str):
        event.pop("schemaURL", None)
        work.notes.append(f"no schemaURL: read as {SPEC}")


def _kind(event: dict[str, Any]) -> EventKind:
    """What the event says it is (its schemaURL; an eventType makes it a RunEvent), which must
    then have what that kind needs; else what it has."""
    declared = _declared(event)
    if declared is not None:
        if event.get(declared) is None:
            raise OpenLineageError(_MISSING[declared], field=declared)
        return declared
    found = next((_KINDS[k] for k in ("run", "dataset", "job") if event.get(k) is not None), None)
    if found is None:
        raise OpenLineageError(
            "neither run, job nor dataset: not an OpenLineage RunEvent, JobEvent or DatasetEvent"
        )
    return found


def _declared(event: dict[str, Any]) -> EventKind | None:
    url = event.get("schemaURL")
    match = _DECLARED.search(url) if isinstance(url, str) else None
    if match is not None:
        return _KINDS[match.group(1)]
    return "run" if event.get("eventType") is not None else None


def _run(value: Any) -> dict[str, Any]:
    run = _object(value, "run")
    run_id = run.get("runId")
    if run_id is None:
        raise OpenLineageError(
            "no run.runId: a RunEvent names its run by a UUID", field="run.runId"
        )
    try:
        run["runId"] = str(UUID(run_id))
    except (TypeError, ValueError, AttributeError):
        raise OpenLineageError(
            f"run.runId {_show(run_id)} is not a UUID", field="run.runId"
        ) from None
    return run


def _job(value: Any) -> dict[str, Any]:
    if value is None:
        raise OpenLineageError(_MISSING["job"], field="job")
    job = _object(value, "job")
    for key in _unnamed(job):
        raise OpenLineageError(
            f"no job.{key}: a job is named by namespace and name", field=f"job.{key}"
        )
    return job


def _event_type(event: dict[str, Any], work: _Work) -> None:
    value = event.get("eventType")
    if value is None:
        event.pop("eventType", None)
        return
    upper = value.strip().upper() if isinstance(value, str) else None
    if upper not in EVENT_TYPES:
        raise OpenLineageError(
            f"eventType {_show(value)} is not one of {', '.join(EVENT_TYPES)}", field="eventType"
        )
    if upper != value:
        work.notes.append(f"eventType {value} read as {upper}")
        event["eventType"] = upper


def _datasets(event: dict[str, Any], key: str, work: _Work) -> None:
    value = event.get(key)
    if value is None:
        event.pop(key, None)
        return
    if not isinstance(value, list):
        raise OpenLineageError(f"{key} is a JSON {_json_type(value)}, not a list", field=key)
    kept = (_dataset(d, f"{key}[{i}]", work) for i, d in enumerate(value))
    event[key] = [d for d in kept if d is not None]


def _dataset(
    value: Any, where: str, work: _Work, *, required: bool = False
) -> dict[str, Any] | None:
    what = f"is a JSON {_json_type(value)}, not an object"
    if isinstance(value, dict):
        dataset = _without_nulls(value)
        missing = _unnamed(dataset)
        if not missing:
            return dataset
        what = "has no " + " and no ".join(missing)
    if required:
        raise OpenLineageError(f"the DatasetEvent's dataset {what}", field=where)
    work.notes.append(f"{where} {what}: dropped (a dataset is named by namespace and name)")
    return None


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise OpenLineageError(f"{where} is a JSON {_json_type(value)}, not an object", field=where)
    return _without_nulls(value)


def _unnamed(value: dict[str, Any]) -> list[str]:
    return [k for k in ("namespace", "name") if not isinstance(value.get(k), str) or not value[k]]


def _without_nulls(value: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in value.items() if v is not None}


# ---- schemas -------------------------------------------------------------------------------


def _against_spec(event: dict[str, Any], kind: EventKind) -> None:
    """The envelope against the spec's RunEvent, DatasetEvent or JobEvent, facets set aside
    (each is checked on its own, tolerantly)."""
    skeleton = dict(event)
    for key in ("run", "job", "dataset"):
        if isinstance(skeleton.get(key), dict):
            skeleton[key] = _faceless(skeleton[key])
    for key in ("inputs", "outputs"):
        if isinstance(skeleton.get(key), list):
            skeleton[key] = [_faceless(d) for d in skeleton[key]]
    skeleton.setdefault("schemaURL", SPEC)
    validator = _schemas().events[kind]
    if validator.is_valid(skeleton):
        return
    for error in validator.iter_errors(skeleton):
        where = _path(error.instance_path)
        raise OpenLineageError(
            f"{where or 'the event'}: {_trim(error.message)} (OpenLineage {kind} event schema)",
            field=where or None,
        )


def _faceless(value: dict[str, Any]) -> dict[str, Any]:
    return {k: ({} if k in ("facets", "inputFacets", "outputFacets") else v)
            for k, v in value.items()}  # fmt: skip


@dataclass(frozen=True)
class _Schemas:
    events: dict[str, jsonschema_rs.Validator]
    facets: dict[tuple[str, str], jsonschema_rs.Validator]


@cache
def _schemas() -> _Schemas:
    """The vendored spec and facet schemas with ours, compiled once."""
    folder = files("auditline.openlineage") / "schemas"
    docs = [json.loads(f.read_text(encoding="utf-8")) for f in _json_files(folder)]
    registry = jsonschema_rs.Registry([(doc["$id"], doc) for doc in docs])

    def compile_ref(uri: str) -> jsonschema_rs.Validator:
        schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$ref": uri}
        return jsonschema_rs.validator_for(schema, registry=registry)

    events = {kind: compile_ref(f"{SPEC}#/$defs/{name}")
              for kind, name in (("run", "RunEvent"), ("dataset", "DatasetEvent"),
                                 ("job", "JobEvent"))}  # fmt: skip
    facets = {
        (slot, name): compile_ref(f"{doc['$id']}#/$defs/{definition}")
        for doc in docs
        if doc["$id"].startswith("https://openlineage.io/spec/facets/")
        for name, definition, slot in _facet_definitions(doc)
    }
    return _Schemas(events, facets)


def _json_files(folder: Any) -> Iterator[Any]:
    for entry in folder.iterdir():
        if entry.is_dir():
            yield from _json_files(entry)
        elif entry.name.endswith(".json"):
            yield entry


def _facet_definitions(doc: Mapping[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(facet name, definition, slot) of each facet a spec facet file defines: its top-level
    ``properties`` name facets, each a definition (or a choice of them) built on the spec's
    RunFacet, JobFacet, DatasetFacet, InputDatasetFacet or OutputDatasetFacet."""
    defs = doc["$defs"]

    def definitions(node: Mapping[str, Any]) -> Iterator[str]:
        if "$ref" in node:
            name = str(node["$ref"]).rsplit("/", 1)[-1]
            yield name
            yield from definitions({"anyOf": defs[name].get("oneOf", [])})
        for choice in (*node.get("anyOf", ()), *node.get("oneOf", ())):
            yield from definitions(choice)

    for name, node in doc.get("properties", {}).items():
        for definition in definitions(node):
            bases = [str(part.get("$ref", "")) for part in defs[definition].get("allOf", ())]
            for base in bases:
                slot = _SLOTS.get(base.rsplit("/", 1)[-1]) if base.startswith(SPEC) else None
                if slot is not None:
                    yield name, definition, slot


# ---- facets --------------------------------------------------------------------------------


def _containers(event: dict[str, Any]) -> Iterator[tuple[dict[str, Any], str, str, str]]:
    """(owner, key, slot, path) of each facet map of the event."""
    for key, slot in (("run", "run"), ("job", "job"), ("dataset", "dataset")):
        if isinstance(event.get(key), dict):
            yield event[key], "facets", slot, f"{key}.facets"
    for key, extra, slot in (("inputs", "inputFacets", "input"),
                             ("outputs", "outputFacets", "output")):  # fmt: skip
        for i, dataset in enumerate(event.get(key) or ()):
            yield dataset, "facets", "dataset", f"{key}[{i}].facets"
            yield dataset, extra, slot, f"{key}[{i}].{extra}"


class _Work:
    """Notes, deletions and the facet checks of one ``check``."""

    def __init__(self, *, measure: bool) -> None:
        self.measure = measure  # the event is over the facet bound: measure each facet
        self.notes: list[str] = []
        self.deleted: list[str] = []
        self.unattributed: list[str] = []
        self.schemas = _schemas()

    def facets(self, owner: dict[str, Any], key: str, slot: str, path: str) -> None:
        facets = owner.get(key)
        if facets is None:
            owner.pop(key, None)
            return
        if not isinstance(facets, dict):
            self.notes.append(f"{path} is a JSON {_json_type(facets)}, not an object: dropped")
            del owner[key]
            return
        kept = {}
        for name, facet in facets.items():
            checked = self.facet(slot, name, facet, f"{path}.{name}")
            if checked is not None:
                kept[name] = checked
        owner[key] = kept

    def facet(self, slot: str, name: str, facet: Any, where: str) -> dict[str, Any] | None:
        if facet is None:
            return None
        if not isinstance(facet, dict):
            self.notes.append(f"facet {where} is a JSON {_json_type(facet)}: dropped")
            return None
        if facet.get("_deleted") is True:
            self.deleted.append(where)
            return None
        if self.measure:
            size = len(json.dumps(facet, separators=(",", ":"), ensure_ascii=False).encode())
            if size > FACET_MAX_BYTES:
                self.notes.append(f"facet {where} is {size} bytes, over the {FACET_MAX_BYTES} "
                                  "bytes accepted for a facet: dropped")  # fmt: skip
                return None
        producer, schema_url = facet.get("_producer"), facet.get("_schemaURL")
        attributed = type(producer) is str and type(schema_url) is str
        if not attributed:
            self.unattributed.append(where)
        validator = self.schemas.facets.get((slot, name))
        if validator is None or validator.is_valid(facet if attributed else _attributed(facet)):
            return facet
        return self.without_nulls(validator, facet, where)

    def without_nulls(
        self, validator: jsonschema_rs.Validator, facet: dict[str, Any], where: str
    ) -> dict[str, Any] | None:
        """``facet`` without its nulls if that fits its schema; else None, noted."""
        cleaned = _strip_nulls(facet)
        if cleaned is not None and validator.is_valid(_attributed(cleaned)):
            return cleaned
        error = next(iter(validator.iter_errors(_attributed(cleaned or facet))), None)
        reason = (
            ""
            if error is None
            else (f" ({_path(error.instance_path) or 'the facet'}: {_trim(error.message)})")
        )
        self.notes.append(f"facet {where} does not fit its OpenLineage schema{reason}: dropped")
        return None

    def summarise(self) -> None:
        if self.unattributed:
            shown = ", ".join(self.unattributed[:5])
            more = f" and {len(self.unattributed) - 5} more" if len(self.unattributed) > 5 else ""
            self.notes.append(f"facets without _producer or _schemaURL accepted: {shown}{more}")


def _attributed(facet: dict[str, Any]) -> dict[str, Any]:
    """``facet`` with placeholders for a missing ``_producer``/``_schemaURL`` (tolerated)."""
    if all(isinstance(facet.get(k), str) for k in _BASE):
        return facet
    return {**facet, **{k: _PLACEHOLDER for k in _BASE if not isinstance(facet.get(k), str)}}


def _strip_nulls(value: dict[str, Any]) -> dict[str, Any] | None:
    """``value`` without null members and items, all the way down (None if too deep)."""
    try:
        return {k: _stripped(v) for k, v in value.items() if v is not None}
    except RecursionError:
        return None


def _stripped(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _stripped(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_stripped(v) for v in value if v is not None]
    return value


# ---- words ---------------------------------------------------------------------------------


def _path(parts: list[str | int]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _json_type(value: Any) -> str:
    names = ((bool, "boolean"), (int, "number"), (float, "number"), (str, "string"),
             (list, "array"), (dict, "object"))  # fmt: skip
    return next((name for kind, name in names if isinstance(value, kind)), "null")


def _show(value: Any) -> str:
    return _trim(json.dumps(value, ensure_ascii=False, default=str))


def _trim(text: str) -> str:
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."
