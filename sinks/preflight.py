"""Pre-flight decisions over the audit store: an asset's upstream events, read from the store,
replayed through the engine before a proposed transfer is judged (``auditline.policy.preflight``).

The store holds every event the sink wrote; the asset's lineage (its node and every node it
derives from, as of the proposal's day) names the events that built its constraints: the
declarations of those nodes and the movements between them. ``auditline check --transfer`` and
``AuditProducer.check`` call ``check_transfer``.
"""

from __future__ import annotations

from auditline.catalogue import Catalogue
from auditline.events import Event
from auditline.policy.engine import PolicyEngine
from auditline.policy.preflight import Preflight, Proposal, preflight
from auditline.settings import AuditlineSettings

from .queries import Provenance
from .store import open_existing

UPSTREAM_DEPTH = 50


def upstream_events(provenance: Provenance, proposal: Proposal) -> list[Event]:
    """The events the asset's constraints come from, as stored (``NotFoundError``: no such
    asset in the store)."""
    asset = proposal.asset_id
    provenance.require_node(asset)
    hits = provenance.upstream(asset, depth=UPSTREAM_DEPTH, as_of=proposal.on)
    ids = provenance.node_events({asset, *(hit.node for hit in hits)})
    models = {entry.model.__name__: entry.model for entry in Catalogue()}
    return [
        models[row["kind"]].model_validate_json(row["payload"])
        for row in provenance.events(ids)
        if row["kind"] in models
    ]


def check_transfer(settings: AuditlineSettings, proposal: Proposal) -> Preflight:
    """The decisions ``proposal`` would get, from the store ``settings`` name."""
    store = open_existing(settings.clickhouse)
    try:
        provenance = Provenance(store)
        engine = PolicyEngine(provenance.policy)
        return preflight(engine, upstream_events(provenance, proposal), proposal)
    finally:
        store.close()
