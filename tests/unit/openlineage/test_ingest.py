"""The ingesting service over an in-process broker: the integrations' events become sealed audit
events, judged by the same policy engine, with the OpenLineage run id on the violation."""

from __future__ import annotations

import json

from auditline.catalogue import Catalogue
from auditline.codec import SingleObjectCodec
from auditline.events import DataMovement, OpenLineageEvent
from auditline.integrity.chain import canonical_from_body
from auditline.openlineage.ingest import Ingestor
from auditline.policy.engine import PolicyEngine
from auditline.policy.model import load_policy
from auditline.producer.memory import InProcessBroker
from auditline.runner import EmbeddedRunner
from tests.unit.openlineage.samples import events, every_fixture, fixture


def test_every_integration_fixture_is_accepted(ingestor: Ingestor) -> None:
    outcomes = ingestor.ingest(every_fixture())
    assert [o.reason for o in outcomes if not o.accepted] == []
    assert all(o.event_ids for o in outcomes)


def test_a_residency_breach_inside_a_spark_job_is_flagged_with_its_run_id(
    ingestor: Ingestor, broker: InProcessBroker
) -> None:
    raws = fixture("spark/residency_breach_de_to_us.json")
    run_id = json.loads(raws[-1])["run"]["runId"]
    outcomes = ingestor.ingest(raws)
    assert all(o.accepted for o in outcomes) and outcomes[-1].run_id == run_id
    assert ingestor.producer.flush(10)
    decoded = events(broker)
    [move] = [e for e in decoded if isinstance(e, DataMovement)]
    assert (move.source.country, move.destination.country) == ("DE", "US")
    assert move.envelope.trace_id == run_id
    runner = EmbeddedRunner(PolicyEngine(load_policy()))
    result = runner.run_events(decoded)
    assert result.findings == []
    breach = [d for d in result.decisions if d.subject_event_id == str(move.envelope.event_id)]
    assert "RES-PIN" in {d.rule_id for d in breach}


def test_the_evidence_is_sealed_in_its_own_stream_and_names_the_bytes_received(
    ingestor: Ingestor, broker: InProcessBroker
) -> None:
    raws = fixture("spark/cll_start_complete.json")
    ingestor.ingest(raws)
    assert ingestor.producer.flush(10)
    codec = SingleObjectCodec(Catalogue())
    topic = Catalogue().for_model(OpenLineageEvent).topic
    evidence = []
    for message in broker.topics[topic]:
        event, body = codec.decode_with_body(message.value)
        assert body is not None and canonical_from_body(body, 2)  # hashed like any event
        evidence.append(event)
    assert [e.envelope.sequence for e in evidence] == [0, 1]
    assert all(isinstance(e, OpenLineageEvent) for e in evidence)
    assert [json.loads(e.original or "") for e in evidence] == [json.loads(r) for r in raws]
    assert evidence[-1].column_lineage and evidence[-1].aliases


def test_a_bad_event_is_rejected_with_its_reason_and_the_others_kept(
    ingestor: Ingestor, broker: InProcessBroker
) -> None:
    good = fixture("static/job_event.json")[0]
    outcomes = ingestor.ingest([b"{not json", good, b'{"eventTime": "2026-11-30T10:00:00Z"}'])
    assert [o.accepted for o in outcomes] == [False, True, False]
    assert "JSON" in outcomes[0].reason and outcomes[2].reason
    assert ingestor.producer.flush(10)
    assert len([e for e in events(broker) if isinstance(e, OpenLineageEvent)]) == 1


def test_what_an_integration_repeats_is_recorded_once(
    ingestor: Ingestor, broker: InProcessBroker
) -> None:
    raws = fixture("spark/residency_breach_de_to_us.json")
    running = json.loads(raws[-1])
    running["eventType"] = "RUNNING"
    again = [json.dumps(running).encode(), *raws]  # a checkpoint, then START and COMPLETE
    assert all(o.accepted for o in ingestor.ingest(again))
    assert all(o.accepted for o in ingestor.ingest(raws))  # the integration retries
    assert ingestor.producer.flush(10)
    kinds = [type(e).__name__ for e in events(broker)]
    assert kinds.count("OpenLineageEvent") == 5  # the evidence of every event received
    assert kinds.count("DataMovement") == 1  # the one flow of the run
    assert kinds.count("AssetDeclared") == 1  # the input, the one dataset with the facet
