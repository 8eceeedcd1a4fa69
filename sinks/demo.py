"""The demo's store stage: the emitted events into the embedded engine, then auditor queries."""

from __future__ import annotations

from typing import IO

from auditline.catalogue import Catalogue
from auditline.codec import SingleObjectCodec
from auditline.demo import DEMO_KEY_HEX
from auditline.output import render
from auditline.producer.memory import InProcessBroker
from auditline.settings import load_settings

from .migrate import migrate
from .queries import Provenance
from .rows import Located
from .store import connect
from .verification import verify_log
from .writer import StoreWriter

DEMO_DATABASE = "auditline_demo"


def load_and_query(broker: InProcessBroker, out: IO[str]) -> bool:
    settings = load_settings().clickhouse.model_copy(update={"database": DEMO_DATABASE})
    store = connect(settings)
    store.command(f"DROP DATABASE IF EXISTS {DEMO_DATABASE}")
    migrate(store)
    codec = SingleObjectCodec(Catalogue())
    located = [
        Located(codec.decode(m.value), topic, 0, m.offset)
        for topic, messages in broker.topics.items()
        for m in messages
    ]
    stored, _ = StoreWriter(store).write(located)
    print(f"\nstored {stored} events in {settings.dsn} (database {DEMO_DATABASE})", file=out)
    provenance = Provenance(store)
    print("\n$ auditline lineage upstream model:churn:3", file=out)
    hits = provenance.upstream("model:churn:3")
    print(
        render(
            ["node", "depth", "edge", "via"], [(h.node, h.depth, h.edge_type, h.via) for h in hits]
        ),
        file=out,
    )
    print(
        "\n$ auditline query transfers --classification personal --from EEA --to '!adequate'",
        file=out,
    )
    columns, rows = provenance.transfers(
        classification="personal", source="EEA", destination="!adequate"
    )
    keep = ["event_time", "asset_id", "source_country", "destination_country", "mechanism"]
    print(render(keep, [[r[columns.index(c)] for c in keep] for r in rows]), file=out)
    print("\n$ auditline query predictions --derived-from ds:customers", file=out)
    print(render(*provenance.predictions_derived_from("ds:customers")), file=out)
    report = verify_log(store, keys={"demo": bytes.fromhex(DEMO_KEY_HEX)}, require_signature=True)
    print(f"\n$ auditline verify\nverified {report.events} events in {report.streams} streams: "
          f"{'intact' if report.ok else 'BROKEN'}", file=out)  # fmt: skip
    store.close()
    return report.ok and stored == len(located)
