-- Outcomes (ground truth known after the prediction), one row per Outcome event: `prediction_id`
-- is the prediction's id as the predictions table names it (a batch row's is
-- '<batch_id>:<row>'), so `predictions JOIN outcomes USING (model_name, model_version,
-- prediction_id)` pairs them; `batch_id` and `row` are set for a batch row, null otherwise.
CREATE TABLE IF NOT EXISTS $db.outcomes $on_cluster
(
    event_id UUID,
    event_time DateTime64(3, 'UTC'),
    model_name LowCardinality(String),
    model_version LowCardinality(String),
    prediction_id String,
    batch_id Nullable(String),
    row Nullable(UInt32),
    label Nullable(String),
    value Nullable(Float64)
)
ENGINE = $replacing
PARTITION BY toYYYYMMDD(event_time)
ORDER BY (model_name, model_version, prediction_id, event_id);

-- Model-quality alerts (a metric over predictions joined to their outcomes, degraded against the
-- training run's), one row per episode opened or closed; the window's figures in `statistics`.
CREATE TABLE IF NOT EXISTS $db.performance_alerts $on_cluster
(
    alert_id String,
    event_id UUID,
    event_time DateTime64(3, 'UTC'),
    state LowCardinality(String),
    severity LowCardinality(String),
    model_name LowCardinality(String),
    model_version LowCardinality(String),
    metric LowCardinality(String),
    value Float64,
    baseline Float64,
    threshold Float64,
    window_start DateTime64(3, 'UTC'),
    window_end DateTime64(3, 'UTC'),
    outcomes UInt64,
    coverage Float64,
    label_delay_p50_s Float64,
    training_run_id String,
    statistics Map(String, Float64)
)
ENGINE = $replacing
ORDER BY (model_name, model_version, alert_id, state);
