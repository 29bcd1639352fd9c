-- cowork-ingest schema, migration 005: the user directory and the budgets. Both are edited by
-- operator commands (`cowork-ingest directory import`, `cowork-ingest budgets set|remove`),
-- never by the consumer. A template in the language of 003_v2.sql.
--
-- Every edit inserts new versions of the rows it changes (`version`: the server's clock in
-- microseconds when the edit began), and a removal inserts a tombstone (`deleted = 1`) instead
-- of deleting, so that an edit is one INSERT: readers see all of it or none of it. Read them
-- with `FINAL WHERE deleted = 0`. No partitions: both tables are small. In cluster mode they are
-- sharded by their sort key, so every version of a row meets its predecessors on one shard.

-- Who is in which team, per tenant: loaded from CSV by `directory import`, which replaces the
-- tenant's whole directory. The rollups fall back to it when the telemetry carries no team.
CREATE TABLE IF NOT EXISTS {database}.user_directory
(
    tenant {lc},
    user_identity String,
    team {lc},
    department {lc},
    cost_center {lc},
    manager String,
    imported_at DateTime('UTC'),
    version UInt64,
    deleted UInt8
)
ENGINE = {replacing version}
ORDER BY (tenant, user_identity)
SHARD BY cityHash64(tenant, user_identity);

-- Monthly spending limits in USD: for a whole tenant (scope `tenant`, scope_value ''), a team,
-- a cost center or one user (scope_value: the team, cost center or user_identity).
CREATE TABLE IF NOT EXISTS {database}.budgets
(
    tenant {lc},
    scope {lc},
    scope_value String,
    monthly_usd Decimal(18, 2),
    updated_at DateTime('UTC'),
    version UInt64,
    deleted UInt8
)
ENGINE = {replacing version}
ORDER BY (tenant, scope, scope_value)
SHARD BY cityHash64(tenant, scope, scope_value);
