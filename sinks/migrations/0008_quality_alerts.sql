-- Data-quality alerts from the drift detector (missing values, values outside the training
-- range, values of the other kind), one row per episode opened or closed; the check's figures
-- in `statistics` (p_value, expected ...), the whole event in the audit log.
CREATE TABLE IF NOT EXISTS $db.quality_alerts $on_cluster
(
    alert_id String,
    event_id UUID,
    event_time DateTime64(3, 'UTC'),
    state LowCardinality(String),
    severity LowCardinality(String),
    model_name LowCardinality(String),
    model_version LowCardinality(String),
    feature String,
    check LowCardinality(String),
    rate Float64,
    reference_rate Float64,
    threshold Float64,
    affected UInt64,
    window_count UInt64,
    window_start DateTime64(3, 'UTC'),
    window_end DateTime64(3, 'UTC'),
    training_run_id String,
    statistics Map(String, Float64)
)
ENGINE = $replacing
ORDER BY (model_name, model_version, alert_id, state);
