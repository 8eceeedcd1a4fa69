"""Helpers for testing code that uses auditline: a real local Kafka broker (no Docker needed)."""
