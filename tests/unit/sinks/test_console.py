"""The console's API over a store holding the demo story and two other models (test_evidence's
platform): the graph marks exactly the violations the evidence bundle holds, on the hops that
broke the rules; filters, cursors, tokens and errors as docs/console.md says."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from uuid import uuid4

import pytest
from aiohttp.test_utils import TestClient, TestServer
from auditline.sinks.console.app import Console
from auditline.sinks.demo import _load
from auditline.sinks.evidence import evidence
from auditline.sinks.queries import Provenance
from auditline.sinks.rows import COLUMNS, Located, rows_for
from auditline.sinks.store import connect
from auditline.sinks.verification import VerifyOptions

from auditline.demo import DemoKeys, emit_and_verify, judge_and_alert
from auditline.events import DriftAlert, PolicyViolation
from auditline.integrity.keyring import read_keyring
from auditline.settings import ClickHouseSettings
from tests.unit.alerting.samples import envelope, violation
from tests.unit.sinks.test_evidence import emit_decoy, emit_sharer

T = TypeVar("T")
Client = TestClient[Any, Any]


@pytest.fixture
def provenance(store_settings: ClickHouseSettings, tmp_path: Path) -> Iterator[Provenance]:
    keys = DemoKeys.make(tmp_path / "keys")
    ok, broker = emit_and_verify(io.StringIO(), keys)
    emit_decoy(broker, keys)
    emit_sharer(broker, keys)
    judge_and_alert(broker, keys, io.StringIO())
    store = connect(store_settings)
    stored, expected = _load(store, broker)
    assert ok and stored == expected
    yield Provenance(store)
    store.close()


def call(
    provenance: Provenance, talk: Callable[[Client], Awaitable[T]], token: str | None = None
) -> T:
    async def run() -> T:
        console = Console(provenance, token=token, poll_s=0.05)
        async with TestClient(TestServer(console.app())) as client:
            return await talk(client)

    return asyncio.run(run())


def get(provenance: Provenance, path: str, **params: str) -> tuple[int, Any]:
    async def talk(client: Client) -> tuple[int, Any]:
        response = await client.get(path, params=params)
        return response.status, await response.json()

    return call(provenance, talk)


def marked(graph: dict[str, Any]) -> dict[str, set[tuple[str, str]]]:
    """(rule, judged event) of the violations by the graph element (edge or node) carrying them."""
    found: dict[str, set[tuple[str, str]]] = {}
    for item in graph["edges"] + graph["nodes"]:
        for v in item["violations"]:
            found.setdefault(item["id"], set()).add((v["rule"], v["subject_event_id"]))
    return found


def test_the_graph_marks_exactly_the_bundles_violations_on_their_hops(
    provenance: Provenance,
) -> None:
    status, graph = get(provenance, "/api/graph", node="model:churn:3")
    assert status == 200
    nodes = {n["id"] for n in graph["nodes"]}
    assert nodes == {
        "ds:customers", "ds:customers-us", "run:run-42", "model:churn:3", "deployment:dep-7"
    }  # fmt: skip
    assert {n["id"]: n["country"] for n in graph["nodes"]}["ds:customers"] == "DE"
    assert {n["id"]: n["classification"] for n in graph["nodes"]}["ds:customers"] == "personal"
    by_element = marked(graph)
    bundle = evidence(provenance, "churn:3")
    assert set().union(*by_element.values()) == {
        (v["rule_id"], v["event"]) for v in bundle["violations"]
    }
    rules = {element: {rule for rule, _ in marks} for element, marks in by_element.items()}
    assert rules["ds:customers|moved_to|ds:customers-us"] >= {"RES-PIN", "EU-3RD"}
    assert rules["ds:customers-us|trained_on|run:run-42"] == {"RES-PIN"}  # the `started` event's
    assert rules["model:churn:3|deployed_to|deployment:dep-7"] == {"RES-PIN"}
    assert rules["model:churn:3"] >= {"RES-PIN", "EU-US"}  # on its predictions
    assert "run:run-42|produced|model:churn:3" not in rules  # a hop that broke nothing


def test_the_graph_as_of_before_the_copy_has_no_copy(provenance: Provenance) -> None:
    status, graph = get(
        provenance, "/api/graph", node="ds:customers", direction="downstream",
        as_of="2026-03-02T09:00:30Z",
    )  # fmt: skip
    assert status == 200
    assert [n["id"] for n in graph["nodes"]] == ["ds:customers"] and graph["edges"] == []
    status, later = get(provenance, "/api/graph", node="ds:customers", direction="downstream")
    assert {e["kind"] for e in later["edges"]} >= {"moved_to", "trained_on", "produced"}
    assert all(n["distance"] > 0 for n in later["nodes"] if n["id"] != "ds:customers")


@pytest.mark.parametrize(
    ("path", "params", "status", "says"),
    [
        ("/api/graph", {"node": "ds:nowhere"}, 404, "no lineage node ds:nowhere"),
        ("/api/graph", {}, 400, "the node parameter is missing"),
        ("/api/graph", {"node": "ds:customers", "depth": "ten"}, 400, "depth ten is not"),
        ("/api/graph", {"node": "ds:customers", "depth": "99"}, 400, "depth 99"),
        ("/api/graph", {"node": "ds:customers", "direction": "sideways"}, 400, "direction"),
        ("/api/graph", {"node": "ds:customers", "as_of": "yesterday"}, 400, "not an ISO time"),
        ("/api/node", {"id": "run:nope"}, 404, "no lineage node run:nope"),
        ("/api/transfers", {"classification": "secret"}, 400, "classification secret"),
        ("/api/transfers", {"mechanism": "handshake"}, 400, "mechanism handshake"),
        ("/api/drift", {"model": "churn"}, 400, "give NAME:VERSION"),
        ("/api/drift", {"model": "ghost:9"}, 404, "no model version ghost:9"),
        ("/api/evidence", {"model": "ghost:9"}, 404, "no model version ghost:9"),
        ("/api/evidence", {"model": "churn:3", "format": "pdf"}, 400, "format pdf"),
        ("/api/alerts", {"min_severity": "loud"}, 400, "min_severity"),
        ("/api/alerts/stream", {"after": "soon"}, 400, "cursor soon"),
    ],
)
def test_bad_requests_get_one_line_errors(
    provenance: Provenance, path: str, params: dict[str, str], status: int, says: str
) -> None:
    got, body = get(provenance, path, **params)
    assert got == status and says in body["error"], body
    assert "\n" not in body["error"] and "Traceback" not in body["error"]


def test_node_events_transfers_streams_and_meta(provenance: Provenance) -> None:
    _, found = get(provenance, "/api/node", id="ds:customers-us")
    kinds = [e["kind"] for e in found["events"]]
    assert kinds[0] == "DataMovement" and "TrainingRun" in kinds
    move = found["events"][0]
    assert {v["rule"] for v in move["violations"]} >= {"RES-PIN", "EU-3RD"}
    assert move["time"].endswith("+00:00") and move["body"]["asset_id"] == "ds:customers"
    _, matrix = get(provenance, "/api/transfers")
    cell = next(c for c in matrix["cells"] if (c["from"], c["to"]) == ("DE", "US"))
    assert cell["movements"] == 2 and cell["violations"] == 2  # churn's copy and the decoy's
    _, public = get(provenance, "/api/transfers", classification="public")
    assert public["cells"] == [] and public["movements"] == 0
    _, streams = get(provenance, "/api/streams")
    assert streams["ok"] is False  # no keyring given: the demo's events are signed
    _, meta = get(provenance, "/api/meta")
    assert {"churn:3", "other:1", "shared:1"} <= set(meta["models"])
    assert "special_category" in meta["classifications"] and "scc" in meta["mechanisms"]


def test_streams_are_intact_with_the_keyring(provenance: Provenance, tmp_path: Path) -> None:
    keys = read_keyring(DemoKeys.make(tmp_path / "keys").keyring)

    async def talk(client: Client) -> Any:
        return await (await client.get("/api/streams")).json()

    async def run() -> Any:
        console = Console(provenance, VerifyOptions(keys, True))
        async with TestClient(TestServer(console.app())) as client:
            return await talk(client)

    found = asyncio.run(run())
    assert found["ok"] and all(s["ok"] for s in found["streams"])
    assert {s["service"] for s in found["streams"]} >= {"demo-platform", "decoy", "sharer"}


def test_alerts_filter_and_the_live_stream_resumes_from_its_cursor(
    provenance: Provenance,
) -> None:
    store = provenance.store
    _, everything = get(provenance, "/api/alerts")
    _, pins = get(provenance, "/api/alerts", kinds="violation", rules="RES-PIN")
    assert pins["alerts"] and {a["rule"] for a in pins["alerts"]} == {"RES-PIN"}
    assert len(pins["alerts"]) < len(everything["alerts"])
    _, churn = get(provenance, "/api/alerts", models="churn")
    assert churn["alerts"] and all("churn:3" in a["models"] for a in churn["alerts"])

    def alert(n: int, rule: str) -> PolicyViolation:
        return violation(n, violation_id=f"live-{n}", rule_id=rule, severity="critical")

    def insert(*events: PolicyViolation | DriftAlert) -> None:
        rows = rows_for([Located(e, "t", 0, 10_000 + i) for i, e in enumerate(events)])
        for table, values in rows.tables.items():
            store.insert(table, COLUMNS[table], values)

    async def talk(client: Client) -> tuple[list[str], list[str]]:
        response = await client.get("/api/alerts/stream", params={"rules": "LIVE"})
        await asyncio.sleep(0.2)  # the stream has read where the store ends
        await asyncio.to_thread(insert, alert(1, "OTHER"), alert(2, "LIVE"))
        first = await _events(response, 1)
        response.close()
        again = await client.get(
            "/api/alerts/stream",
            params={"rules": "LIVE"},
            headers={"Last-Event-ID": first[0][0]},
        )
        await asyncio.to_thread(insert, alert(3, "LIVE"))
        second = await _events(again, 2)  # within the overlap, the earlier one comes again
        again.close()
        return [data for _, data in first], [data for _, data in second]

    first, second = call(provenance, talk)
    assert ['"live-2"' in d for d in first] == [True]
    assert sorted('"live-3"' in d for d in second) == [False, True]  # live-2, then live-3
    assert not any('"live-1"' in d for d in first + second)  # filtered out


async def _events(response: Any, count: int) -> list[tuple[str, str]]:
    """The next ``count`` alert events (id, data) of an SSE response."""
    found: list[tuple[str, str]] = []
    current: dict[str, str] = {}
    async with asyncio.timeout(20):
        while len(found) < count:
            line = (await response.content.readline()).decode().rstrip("\n")
            if not line:
                if current.get("event") == "alert":
                    found.append((current["id"], current["data"]))
                current = {}
            elif not line.startswith(":"):
                key, _, value = line.partition(": ")
                current[key] = value
    return found


def test_evidence_downloads_and_drift_episodes(provenance: Provenance) -> None:
    async def talk(client: Client) -> tuple[str, str, str]:
        response = await client.get(
            "/api/evidence", params={"model": "churn:3", "format": "markdown", "download": "1"}
        )
        return (
            response.headers["Content-Disposition"],
            response.content_type,
            await response.text(),
        )

    disposition, kind, text = call(provenance, talk)
    assert disposition == 'attachment; filename="evidence-churn-3.md"'
    assert kind == "text/markdown" and "RES-PIN" in text
    _, drift = get(provenance, "/api/drift", model="churn:3")
    assert drift == {
        "model": "churn:3",
        "features": [],
        "episodes": [],
        "quality": [],
        "performance": [],
    }
    start, end = datetime(2026, 3, 2, 9, 0, tzinfo=UTC), datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    common = {
        "alert_id": "ep-1", "severity": "high", "model_name": "churn", "model_version": "3",
        "feature": "tenure", "statistic": "psi", "threshold": 0.2, "training_run_id": "run-42",
        "reference_count": 500, "window_count": 500,
    }  # fmt: skip
    later = {"window_start": end, "window_end": end + timedelta(hours=1)}
    events = [
        DriftAlert(
            envelope=envelope("w/1/alerts.drift"),
            state="opened",
            value=0.4,
            window_start=start,
            window_end=end,
            **common,
        ),
        DriftAlert(
            envelope=envelope("w/1/alerts.drift"), state="closed", value=0.05, **later, **common
        ),
    ]
    rows = rows_for([Located(e, "t", 0, 20_000 + i) for i, e in enumerate(events)])
    for table, values in rows.tables.items():
        provenance.store.insert(table, COLUMNS[table], values)
    _, drift = get(provenance, "/api/drift", model="churn:3")
    assert [f["feature"] for f in drift["features"]] == ["tenure"]
    assert [p["value"] for p in drift["features"][0]["points"]] == [0.4, 0.05]
    assert len(drift["episodes"]) == 1 and drift["episodes"][0]["severity"] == "high"
    assert drift["episodes"][0]["opened"] == "2026-03-02T09:00:00+00:00"
    assert drift["episodes"][0]["closed"] == "2026-03-02T11:00:00+00:00"
    _, listed = get(provenance, "/api/drift")
    assert {"model": "churn:3", "alerts": 2} in listed["models"]


def test_the_drift_view_lists_data_and_model_quality_alerts(provenance: Provenance) -> None:
    from auditline.events import PerformanceAlert
    from tests.unit.alerting.samples import T0, quality

    performance = PerformanceAlert(
        envelope=envelope("w/1/alerts.performance"), alert_id="p-1", state="opened",
        severity="high", model_name="fraud", model_version="2", metric="accuracy", value=0.71,
        baseline=0.86, threshold=0.76, window_start=T0, window_end=T0 + timedelta(hours=1),
        outcomes=800, coverage=0.93, label_delay_p50_s=3600.0, training_run_id="run-42",
    )  # fmt: skip
    missing = quality().model_copy(update={"model_name": "fraud", "model_version": "2"})
    rows = rows_for([Located(e, "t", 0, 70_000 + i) for i, e in enumerate([missing, performance])])
    for table, values in rows.tables.items():
        provenance.store.insert(table, COLUMNS[table], values)
    _, listed = get(provenance, "/api/drift")
    assert {"model": "fraud:2", "alerts": 2} in listed["models"]  # no prediction: alerts only
    _, found = get(provenance, "/api/drift", model="fraud:2")
    assert found["features"] == [] and found["episodes"] == []
    assert [(q["feature"], q["check"], q["state"]) for q in found["quality"]] == [
        ("tenure", "missing", "opened")
    ]
    assert [(p["metric"], p["value"], p["window_end"]) for p in found["performance"]] == [
        ("accuracy", 0.71, (T0 + timedelta(hours=1)).isoformat())
    ]


def test_a_token_guards_everything_but_health(provenance: Provenance) -> None:
    async def talk(client: Client) -> list[int]:
        statuses = [
            (await client.get("/api/meta")).status,
            (await client.get("/healthz")).status,
            (await client.get("/api/meta", headers={"Authorization": "Bearer s3cret"})).status,
            (await client.get("/", params={"token": "s3cret"})).status,
            (await client.get("/api/meta")).status,  # the cookie the last call set
        ]
        return statuses

    assert call(provenance, talk, token="s3cret") == [401, 200, 200, 200, 200]


def test_review_cases_reopened_hops_declarations_as_of_and_completion_only_runs(
    provenance: Provenance,
) -> None:
    store = provenance.store
    # a deployment retired, then deployed again: open now, as the lineage walk says
    t1, t2 = datetime(2026, 3, 3, tzinfo=UTC), datetime(2026, 3, 4, tzinfo=UTC)
    edge = ("model:churn:3", "deployment:dep-7", "deployed_to")
    store.insert("lineage_edges", COLUMNS["lineage_edges"], [
        (*edge, t1, t1, uuid4(), {}), (*edge, t2, None, uuid4(), {}),
    ])  # fmt: skip
    _, now = get(provenance, "/api/graph", node="model:churn:3", direction="downstream")
    assert "model:churn:3|deployed_to|deployment:dep-7" in {e["id"] for e in now["edges"]}
    _, retired = get(provenance, "/api/graph", node="model:churn:3", direction="downstream",
                     as_of="2026-03-03T12:00Z")  # fmt: skip
    assert retired["edges"] == []
    # a violation on a dataset's declaration marks the dataset, not a hop
    _, rows = store.rows(
        f"SELECT toString(event_id) FROM `{store.database}`.audit_log "
        "WHERE kind = 'AssetDeclared' AND asset_id = 'ds:customers'"
    )
    declared = violation(7, violation_id="decl-7", rule_id="RU-LOCAL", subject_event_id=rows[0][0])
    derived = rows_for([Located(declared, "t", 0, 30_000)])
    for table, values in derived.tables.items():
        store.insert(table, COLUMNS[table], values)
    _, graph = get(provenance, "/api/graph", node="model:churn:3")
    marks = marked(graph)
    assert ("RU-LOCAL", rows[0][0]) in marks["ds:customers"]
    assert all(rule != "RU-LOCAL" for e in graph["edges"] for rule, _ in marks.get(e["id"], ()))
    # as of a time before the predictions, their violations are not on the model
    _, before = get(provenance, "/api/graph", node="model:churn:3", as_of="2026-03-02T09:04:30Z")
    model = next(n for n in before["nodes"] if n["id"] == "model:churn:3")
    assert model["violations"] == []
    # a run that only reports completion: its training violations mark trained_on, not produced
    _, shared = get(provenance, "/api/graph", node="model:shared:1", direction="upstream")
    by_hop = marked(shared)
    assert {r for r, _ in by_hop["ds:customers-us|trained_on|run:run-s"]} >= {"RES-PIN"}
    assert "run:run-s|produced|model:shared:1" not in by_hop


def test_without_a_token_it_answers_only_to_localhost(provenance: Provenance) -> None:
    async def talk(client: Client) -> list[int]:
        return [
            (await client.get("/api/meta", headers={"Host": "evil.example:8765"})).status,
            (await client.get("/api/meta", headers={"Host": "localhost:8765"})).status,
            (await client.get("/api/meta", headers={"Host": "[::1]:8765"})).status,
        ]

    assert call(provenance, talk) == [403, 200, 200]


def test_the_evidence_page_can_hold_no_link_image_or_script(provenance: Provenance) -> None:
    store = provenance.store
    _, rows = store.rows(
        f"SELECT toString(event_id) FROM `{store.database}`.audit_log "
        "WHERE kind = 'DataMovement' AND asset_id = 'ds:customers' LIMIT 1"
    )
    planted = violation(
        8, violation_id="planted", subject_event_id=rows[0][0],
        message="[click](javascript:alert(1)) ![x](http://evil.example/x.png) <script>x</script>",
    )  # fmt: skip
    for table, values in rows_for([Located(planted, "t", 0, 40_000)]).tables.items():
        store.insert(table, COLUMNS[table], values)

    async def talk(client: Client) -> tuple[str, str]:
        response = await client.get("/api/evidence", params={"model": "churn:3", "format": "html"})
        return response.headers["Content-Security-Policy"], await response.text()

    policy, page = call(provenance, talk)
    assert "default-src 'none'" in policy
    assert "javascript:alert(1)" in page  # shown as text ...
    assert "<a " not in page and "<img" not in page and "<script" not in page  # ... never markup


def test_a_burst_larger_than_a_page_all_arrives_live(provenance: Provenance) -> None:
    burst = [violation(100 + n, violation_id=f"burst-{n}", rule_id="BURST") for n in range(700)]

    def insert() -> None:  # one insert: every row has the same ingestion time
        rows = rows_for([Located(e, "t", 0, 50_000 + i) for i, e in enumerate(burst)])
        for table, values in rows.tables.items():
            provenance.store.insert(table, COLUMNS[table], values)

    async def talk(client: Client) -> list[tuple[str, str]]:
        response = await client.get("/api/alerts/stream", params={"rules": "BURST"})
        await asyncio.sleep(0.2)
        await asyncio.to_thread(insert)
        found = await _events(response, 700)
        response.close()
        return found

    found = call(provenance, talk)
    assert len({data for _, data in found}) == 700
