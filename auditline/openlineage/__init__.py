"""OpenLineage in and out: ingestion (HTTP, Kafka, files), mapping to audit events, export."""
