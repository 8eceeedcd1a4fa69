"""A producing process for crash tests: emits predictions and prints progress, until killed.

python -m tests.integration.producer_child BOOTSTRAP SPOOL PREFIX COUNT [--flush]
"""

from __future__ import annotations

import sys

from auditline.demo import demo_events
from auditline.events import Prediction
from auditline.producer import AuditProducer
from auditline.settings import AuditlineSettings


def main() -> None:
    bootstrap, spool, prefix, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    settings = AuditlineSettings(
        kafka={"bootstrap_servers": bootstrap},
        topic_prefix=prefix,
        producer={"service": "child", "instance": "slot-1", "signing_key": "22" * 32},
        spool={"path": spool, "fsync": "never"},
    )
    body = next(e for e in demo_events() if isinstance(e, Prediction)).model_dump(
        exclude={"envelope"}
    )
    producer = AuditProducer(settings)
    print("ready", flush=True)
    for i in range(count):
        producer.emit(Prediction, **body)
        if i % 100 == 99:
            print(f"emitted {i + 1} delivered {producer.stats.delivered}", flush=True)
    if "--flush" in sys.argv:
        done = producer.close(timeout=120)
        print(f"closed {done} {producer.stats}", flush=True)
    else:
        print("done", flush=True)
        sys.stdin.read()  # wait to be killed


if __name__ == "__main__":
    main()
