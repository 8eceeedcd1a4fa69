-- server-only: access management does not exist in the embedded engine.
-- A read-only auditor role: SELECT on the audit database, readonly=1, bounded result size.
CREATE ROLE IF NOT EXISTS auditline_auditor $on_cluster;
GRANT $on_cluster SELECT ON $db.* TO auditline_auditor;
CREATE SETTINGS PROFILE IF NOT EXISTS auditline_auditor_profile $on_cluster
    SETTINGS readonly = 1, max_result_rows = 1000000, max_execution_time = 60
    TO auditline_auditor;
