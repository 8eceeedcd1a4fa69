-- The audit log: one row per event, envelope as columns, often-queried body fields typed,
-- the whole event as JSON (payload). Exactly once: the sink skips event ids already present,
-- and the engine replaces rows of the same sort key on merge as a second line of defence.
CREATE TABLE IF NOT EXISTS $db.audit_log $on_cluster
(
    event_id UUID,
    event_time DateTime64(3, 'UTC'),
    kind LowCardinality(String),
    stream String,
    sequence UInt64,
    prev_hash String,
    hash String,
    signature_key_id Nullable(String),
    signature Nullable(String),
    producer_service LowCardinality(String),
    producer_instance String,
    producer_country LowCardinality(String),
    tenant Nullable(String),
    trace_id Nullable(String),
    schema_version UInt16,
    asset_id Nullable(String),
    model_name Nullable(String),
    model_version Nullable(String),
    classification Nullable(String),
    source_country Nullable(String),
    destination_country Nullable(String),
    purpose Nullable(String),
    topic LowCardinality(String),
    partition UInt32,
    offset UInt64,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3),
    payload String,
    INDEX idx_event_id event_id TYPE bloom_filter GRANULARITY 4,
    INDEX idx_stream stream TYPE bloom_filter GRANULARITY 4
)
ENGINE = $replacing
PARTITION BY toYYYYMM(event_time)
ORDER BY (kind, event_time, event_id);
