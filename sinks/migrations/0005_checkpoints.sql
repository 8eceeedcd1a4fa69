-- Verified chain heads per producer stream, signed when a checkpoint key is configured.
CREATE TABLE IF NOT EXISTS $db.chain_checkpoints $on_cluster
(
    stream String,
    sequence UInt64,
    hash String,
    verified_at DateTime64(3, 'UTC'),
    findings UInt32,
    signature Nullable(String)
)
ENGINE = $merge_tree
ORDER BY (stream, verified_at);
