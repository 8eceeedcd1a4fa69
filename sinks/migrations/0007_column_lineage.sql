-- Column-level lineage (OpenLineage columnLineage): each output column with the input column it
-- was derived from, valid from the event that reported it. Sorted for upstream questions
-- ("where does this column come from?").
CREATE TABLE IF NOT EXISTS $db.column_lineage $on_cluster
(
    output_asset String,
    output_field String,
    input_asset String,
    input_field String,
    transformation Nullable(String),
    valid_from DateTime64(3, 'UTC'),
    event_id UUID,
    run_id Nullable(String)
)
ENGINE = $replacing
ORDER BY (output_asset, output_field, input_asset, input_field, event_id);
