-- One row per prediction (batches exploded), partitioned by day, linked to the model version.
CREATE TABLE IF NOT EXISTS $db.predictions $on_cluster
(
    event_id UUID,
    row UInt32,
    prediction_id String,
    event_time DateTime64(3, 'UTC'),
    model_name LowCardinality(String),
    model_version LowCardinality(String),
    country LowCardinality(String),
    region Nullable(String),
    subject_jurisdiction Nullable(String),
    score Nullable(Float64),
    label Nullable(String),
    sample_rate Float64
)
ENGINE = $replacing
PARTITION BY toYYYYMMDD(event_time)
ORDER BY (model_name, model_version, event_time, event_id, row);
