"""The producer SDK: ``AuditProducer`` and its transports (Kafka, in-process)."""

from auditline.producer.core import AuditProducer, ProducerStats
from auditline.producer.helpers import RunHandle
from auditline.producer.records import Receipt
from auditline.producer.spool import SpoolFullError
from auditline.producer.transport import Transport, make_transport

__all__ = [
    "AuditProducer",
    "ProducerStats",
    "Receipt",
    "RunHandle",
    "SpoolFullError",
    "Transport",
    "make_transport",
]
