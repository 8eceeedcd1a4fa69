"""Codec throughput: both framings beside raw fastavro on the same events, in one run.

raw encode  = fastavro.schemaless_writer of the prepared record dicts (no model, no framing)
raw decode  = fastavro.schemaless_reader of the same bodies (dicts out, no validation)
sdk encode  = codec.encode(model)  (model -> record, header, body)
sdk decode  = codec.decode(bytes)  (header, schema lookup, body, validated frozen model)

Prints a table, then one JSON line; ``ratio`` is the worst SDK/raw ratio of the four paths.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from io import BytesIO
from typing import Any

from _report import report
from fastavro import schemaless_reader, schemaless_writer

from auditline.catalogue import Catalogue
from auditline.codec import ConfluentCodec, SingleObjectCodec
from auditline.codec.body import to_record
from auditline.codec.confluent import registry_client
from auditline.demo import demo_events

N = 30_000


def rate(fn: Callable[[], Any], n: int, repeat: int = 5) -> float:
    """Best of ``repeat`` runs, GC paused while timing (as timeit does), after one warm-up."""
    fn()  # warm up caches (schema ids, parsed schemas)
    best = 0.0
    for _ in range(repeat):
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            fn()
            best = max(best, n / (time.perf_counter() - start))
        finally:
            gc.enable()
    return best


def _each(fn: Callable[[Any], Any], items: list[Any]) -> None:
    """Like a consumer: each result is used once and dropped (no list of 30k live objects)."""
    for item in items:
        fn(item)


def main() -> None:
    catalogue = Catalogue()
    events = (demo_events() * (N // len(demo_events()) + 1))[:N]
    parsed = [catalogue.for_model(type(e)).schema.parsed for e in events]
    records = [to_record(e) for e in events]

    def raw_encode() -> list[bytes]:
        out = []
        for schema, record in zip(parsed, records, strict=True):
            buffer = BytesIO()
            schemaless_writer(buffer, schema, record)
            out.append(buffer.getvalue())
        return out

    bodies = raw_encode()

    def raw_decode() -> None:
        for schema, body in zip(parsed, bodies, strict=True):
            schemaless_reader(BytesIO(body), schema, None)

    def raw_encode_only() -> None:
        for schema, record in zip(parsed, records, strict=True):
            schemaless_writer(BytesIO(), schema, record)

    figures: dict[str, float] = {
        "raw_encode_eps": rate(raw_encode_only, N),
        "raw_decode_eps": rate(raw_decode, N),
    }
    codecs = {
        "single_object": SingleObjectCodec(catalogue),
        "confluent": ConfluentCodec(catalogue, registry_client("mock://bench")),
    }
    for name, codec in codecs.items():
        wires = [codec.encode(e) for e in events]
        figures[f"{name}_encode_eps"] = rate(lambda c=codec: _each(c.encode, events), N)
        figures[f"{name}_decode_eps"] = rate(lambda c=codec, w=wires: _each(c.decode, w), N)
        figures[f"{name}_encode_ratio"] = figures[f"{name}_encode_eps"] / figures["raw_encode_eps"]
        figures[f"{name}_decode_ratio"] = figures[f"{name}_decode_eps"] / figures["raw_decode_eps"]
    figures["ratio"] = min(v for k, v in figures.items() if k.endswith("_ratio"))
    report("codec", figures, events=N)


if __name__ == "__main__":
    main()
