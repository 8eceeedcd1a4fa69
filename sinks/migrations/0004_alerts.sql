-- Alerts from the stream processors; each keeps the evidence event ids for replay in SQL.
CREATE TABLE IF NOT EXISTS $db.violations $on_cluster
(
    violation_id String,
    event_id UUID,
    event_time DateTime64(3, 'UTC'),
    decision LowCardinality(String),
    severity LowCardinality(String),
    rule_id LowCardinality(String),
    rule_version String,
    policy_version String,
    subject_event_id String,
    message String,
    evidence_event_ids Array(String),
    facts Map(String, String)
)
ENGINE = $replacing
ORDER BY (rule_id, violation_id);

CREATE TABLE IF NOT EXISTS $db.drift_alerts $on_cluster
(
    alert_id String,
    event_id UUID,
    event_time DateTime64(3, 'UTC'),
    state LowCardinality(String),
    severity LowCardinality(String),
    model_name LowCardinality(String),
    model_version LowCardinality(String),
    feature Nullable(String),
    statistic LowCardinality(String),
    value Float64,
    threshold Float64,
    window_start DateTime64(3, 'UTC'),
    window_end DateTime64(3, 'UTC'),
    training_run_id String
)
ENGINE = $replacing
ORDER BY (model_name, model_version, alert_id, state);

CREATE TABLE IF NOT EXISTS $db.integrity_alerts $on_cluster
(
    alert_id String,
    event_id UUID,
    event_time DateTime64(3, 'UTC'),
    kind LowCardinality(String),
    severity LowCardinality(String),
    stream String,
    expected_sequence Nullable(UInt64),
    observed_sequence UInt64,
    subject_event_id String,
    detail String
)
ENGINE = $replacing
ORDER BY (stream, alert_id);
