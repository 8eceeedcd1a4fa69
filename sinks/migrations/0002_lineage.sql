-- Lineage graph with validity times, so the graph as of any past instant can be queried.
-- Edges point downstream (src fed dst). lineage_edges is sorted for downstream walks,
-- lineage_edges_by_dst (filled by a materialized view) for upstream walks.
CREATE TABLE IF NOT EXISTS $db.lineage_nodes $on_cluster
(
    node_id String,
    node_type LowCardinality(String),
    name String,
    country Nullable(String),
    attributes Map(String, String),
    valid_from DateTime64(3, 'UTC'),
    event_id UUID
)
ENGINE = $replacing
ORDER BY (node_id, valid_from, event_id);

CREATE TABLE IF NOT EXISTS $db.lineage_edges $on_cluster
(
    src String,
    dst String,
    edge_type LowCardinality(String),
    valid_from DateTime64(3, 'UTC'),
    valid_to Nullable(DateTime64(3, 'UTC')),
    event_id UUID,
    attributes Map(String, String)
)
ENGINE = $replacing
ORDER BY (src, dst, edge_type, event_id);

CREATE TABLE IF NOT EXISTS $db.lineage_edges_by_dst $on_cluster
AS $db.lineage_edges
ENGINE = $replacing
ORDER BY (dst, src, edge_type, event_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS $db.lineage_edges_by_dst_mv $on_cluster
TO $db.lineage_edges_by_dst
AS SELECT src, dst, edge_type, valid_from, valid_to, event_id, attributes FROM $db.lineage_edges;
