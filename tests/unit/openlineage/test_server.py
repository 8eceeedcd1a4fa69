"""The HTTP endpoint over aiohttp's test server: token, gzip, arrays, reasons, batching."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from auditline.openlineage import server
from auditline.openlineage.ingest import Ingestor
from auditline.openlineage.server import PATH, application
from auditline.settings import OpenLineageSettings
from tests.unit.openlineage.samples import events, every_fixture, fixture

TOKEN = "t0ken"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def serve(ingestor: Ingestor, test: Callable[[TestClient[Any, Any]], Awaitable[None]]) -> None:
    settings = OpenLineageSettings(api_key=TOKEN, max_event_bytes=64 * 1024)

    async def run() -> None:
        async with TestClient(TestServer(application(ingestor, settings))) as client:
            await test(client)

    asyncio.run(run())


def test_gzip_single_events_and_arrays_are_accepted_with_their_ids(ingestor: Ingestor) -> None:
    spark = fixture("spark/cll_start_complete.json")

    async def test(client: TestClient[Any, Any]) -> None:
        headers = {**AUTH, "Content-Encoding": "gzip", "Content-Type": "application/json"}
        answer = await client.post(PATH, data=gzip.compress(spark[0]), headers=headers)
        assert answer.status == 201
        body = await answer.json()
        assert body["accepted"] and body["run_id"] and body["event_ids"]
        array = b"[" + b",".join(fixture("dbt/run_complete_models.json")) + b"]"
        answer = await client.post(PATH, data=array, headers=AUTH)
        assert answer.status == 201 and all(o["accepted"] for o in await answer.json())

    serve(ingestor, test)


def test_refusals_say_why(ingestor: Ingestor) -> None:
    async def test(client: TestClient[Any, Any]) -> None:
        answer = await client.post(PATH, data=fixture("static/job_event.json")[0])
        assert answer.status == 401 and "Bearer" in (await answer.json())["error"]
        answer = await client.post(PATH, data=b"{nope", headers=AUTH)
        assert answer.status == 400 and "JSON" in (await answer.json())["error"]
        answer = await client.post(PATH, data=b"x" * 70_000, headers=AUTH)
        assert answer.status == 413
        mixed = b"[" + fixture("static/job_event.json")[0] + b', {"producer": "p"}]'
        answer = await client.post(PATH, data=mixed, headers=AUTH)
        outcomes = await answer.json()
        assert answer.status == 400 and [o["accepted"] for o in outcomes] == [True, False]

    serve(ingestor, test)


def test_concurrent_requests_are_ingested_together_in_order(
    ingestor: Ingestor, broker: Any
) -> None:
    raws = every_fixture()
    calls: list[int] = []
    ingest = ingestor.ingest

    def counted(batch: Any) -> Any:
        calls.append(len(batch))
        return ingest(batch)

    ingestor.ingest = counted  # type: ignore[method-assign]

    async def test(client: TestClient[Any, Any]) -> None:
        answers = await asyncio.gather(*(client.post(PATH, data=r, headers=AUTH) for r in raws))
        assert [a.status for a in answers] == [201] * len(raws)
        ids = [json.loads(await a.read())["event_ids"][0] for a in answers]
        assert len(set(ids)) == len(raws)

    serve(ingestor, test)
    assert sum(calls) == len(raws) and len(calls) < len(raws)
    assert ingestor.producer.flush(10)
    assert len(events(broker)) >= len(raws)


def test_a_poison_event_fails_alone_and_odd_requests_get_clear_answers(
    ingestor: Ingestor, broker: Any
) -> None:
    good = fixture("static/job_event.json")[0]
    ingest = ingestor.ingest

    def fragile(batch: Any) -> Any:
        if b"poison" in b"".join(batch):
            raise RuntimeError("boom")
        return ingest(batch)

    ingestor.ingest = fragile  # type: ignore[method-assign]

    async def test(client: TestClient[Any, Any]) -> None:
        bodies = [good] * 5 + [good.replace(b'"producer"', b'"poison": 1, "producer"')]
        answers = await asyncio.gather(*(client.post(PATH, data=b, headers=AUTH) for b in bodies))
        assert sorted(a.status for a in answers) == [201] * 5 + [500]
        assert "RuntimeError" in (await answers[-1].json())["error"]
        broken = {**AUTH, "Content-Encoding": "gzip"}
        answer = await client.post(PATH, data=b"not gzip at all", headers=broken)
        assert answer.status == 400 and "could not be read" in (await answer.json())["error"]
        answer = await client.post(PATH, data=good, headers={"Authorization": "Bearer tökén"})
        assert answer.status == 401
        answer = await client.post(PATH, data=b"[" + b"[" * 60_000, headers=AUTH)
        assert answer.status == 400

    serve(ingestor, test)


def test_an_arrays_items_keep_the_bytes_their_producer_sent(
    ingestor: Ingestor, broker: Any
) -> None:
    item = (
        b'{ "eventTime":"2026-11-30T10:00:00Z" ,"producer":"p\\u00e9",'
        + b' "job": {"namespace": "n", "name": "j"}}'
    )
    body = b"\xef\xbb\xbf[ " + item + b" ,\n" + item + b"]"

    async def test(client: TestClient[Any, Any]) -> None:
        answer = await client.post(PATH, data=body, headers=AUTH)
        assert answer.status == 201, await answer.text()

    serve(ingestor, test)
    assert ingestor.producer.flush(10)
    evidence = [e for e in events(broker) if type(e).__name__ == "OpenLineageEvent"]
    assert [e.digest for e in evidence] == [hashlib.sha256(item).hexdigest()] * 2


def test_when_too_many_events_wait_the_answer_is_503_at_once(
    ingestor: Ingestor, monkeypatch: Any
) -> None:
    monkeypatch.setattr(server, "MAX_PENDING", 0)

    async def test(client: TestClient[Any, Any]) -> None:
        answer = await client.post(PATH, data=fixture("static/job_event.json")[0], headers=AUTH)
        assert answer.status == 503 and "busy" in (await answer.json())["error"]

    serve(ingestor, test)
