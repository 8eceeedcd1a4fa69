"""Kafka → ClickHouse sink, DDL migrations and auditor queries (installed as auditline.sinks).

Needs the ``store`` extra. Depends only on the ``auditline`` core, never on ``auditline.streams``.
"""
