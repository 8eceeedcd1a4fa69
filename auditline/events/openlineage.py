"""An OpenLineage event as auditline's ingestion received it: the evidence behind the audit
events converted from it (``auditline.openlineage``)."""

from __future__ import annotations

from typing import ClassVar

from auditline.events.records import Event, Frozen
from auditline.events.types import HexDigest, NonEmpty


class DatasetAlias(Frozen):
    asset_id: NonEmpty
    alias: NonEmpty
    alias_type: str | None = None


class ColumnEdge(Frozen):
    output_asset: NonEmpty
    output_field: NonEmpty
    input_asset: NonEmpty
    input_field: NonEmpty
    transformation: str | None = None


class OpenLineageEvent(Event):
    SCHEMA: ClassVar[str] = "auditline.events.OpenLineageEvent"
    event_type: NonEmpty
    producer: str
    schema_url: str
    run_id: str | None = None
    job: str | None = None
    parent_run_id: str | None = None
    parent_job: str | None = None
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    aliases: tuple[DatasetAlias, ...] = ()
    column_lineage: tuple[ColumnEdge, ...] = ()
    unplaced: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    digest: HexDigest
    original: str | None = None
