//! ClickHouse: the [`tables`] catalogue, [`rows`] encoded as RowBinary, the [`store`] client,
//! [`schema`] migrations, [`retention`] and [`erasure`], and the tables operators edit: the
//! user [`directory`] and the [`budgets`]. The `[clickhouse]` section of the
//! configuration lives here, beside what reads it.

pub mod budgets;
pub mod directory;
pub mod erasure;
pub mod retention;
pub mod rollups;
pub mod rows;
pub mod schema;
pub mod store;
pub mod tables;

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

use crate::util::text;
pub use tables::Table;

/// ClickHouse's HTTP interface on the local machine.
pub const DEFAULT_CLICKHOUSE_URL: &str = "http://127.0.0.1:8123";
pub const DEFAULT_CLICKHOUSE_DATABASE: &str = "cowork";
/// A batch insert, including server-side work, must answer within this; past it the insert is
/// retried (ReplacingMergeTree makes the retry harmless).
pub const DEFAULT_INSERT_TIMEOUT_MS: u64 = 60_000;
/// How often the consumer refreshes the rollups of the days it wrote to.
pub const DEFAULT_ROLLUP_REFRESH_MS: u64 = 5_000;
/// How long after a day's newest rows its rollups are refreshed once more.
pub const DEFAULT_ROLLUP_SETTLE_MS: u64 = 10_000;
/// How often the consumer evaluates the budgets against the month's spend: a minute is well
/// inside the 5 minutes the budget alerts wait, and one query per minute per consumer is cheap.
pub const DEFAULT_BUDGET_CHECK_MS: u64 = 60_000;
/// How often retention looks for partitions to drop.
pub const DEFAULT_RETENTION_CHECK_MS: u64 = 3_600_000;

/// `[clickhouse]`: where the consumer writes, and how long data stays.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClickHouseConfig {
    /// HTTP(S) URL of ClickHouse. Default `http://127.0.0.1:8123`.
    #[serde(deserialize_with = "text::string")]
    pub url: String,
    /// Database holding the tables; `migrate` creates it. Default `cowork`.
    #[serde(deserialize_with = "text::string")]
    pub database: String,
    /// User. Default `default`.
    #[serde(deserialize_with = "text::string")]
    pub user: String,
    /// Password. Default empty. Never logged.
    #[serde(deserialize_with = "text::string")]
    pub password: String,
    /// Timeout of one insert. Default 60000 ms.
    pub insert_timeout_ms: u64,
    /// Days to keep each table, by table name (`events`, `api_requests`, `api_errors`,
    /// `user_prompts`, `tool_decisions`, `tool_results`); 0 or absent = forever. Whole days are
    /// dropped as partitions, by event date. An unknown table name is a startup error that names
    /// it. Default: keep everything.
    pub retention_days: BTreeMap<Table, u32>,
    /// How often retention runs in `consume`. Default 3600000 ms (hourly).
    pub retention_check_ms: u64,
    /// Cluster mode: the name of a cluster in the servers' `remote_servers`. Migrations run
    /// `ON CLUSTER`, tables are `Replicated` local tables (`NAME_local`) under `Distributed`
    /// tables (`NAME`), and inserts go through the Distributed tables synchronously. Empty = one
    /// server. Default empty.
    #[serde(deserialize_with = "text::string")]
    pub cluster: String,
    /// Cluster mode: replicas of a shard that must confirm each insert before it counts
    /// (`insert_quorum`); 0 or 1 = the one replica written (replication follows). Default 0.
    pub insert_quorum: u32,
    /// How often the consumer refreshes the rollups of the (tenant, day)s it wrote to. The
    /// refresh re-aggregates each such day from the deduplicated tables. Default 5000 ms.
    pub rollup_refresh_ms: u64,
    /// A (tenant, day) is refreshed again until one refresh begins this long after its newest
    /// rows were marked: in cluster mode, that covers a replica that had not fetched the rows
    /// yet when a refresh read it (after a failover). 0 is safe on one server. Default 10000 ms.
    pub rollup_settle_ms: u64,
    /// How often the consumer's rollup refresher evaluates every budget (`budgets set`) against
    /// the month's spend in `cost_daily` and updates the `cowork_budget_*` gauges that the budget
    /// alerts watch; checked after each refresh round, so it runs at most every
    /// `rollup_refresh_ms`. 0 turns the evaluation (and the gauges) off. Default 60000 ms.
    pub budget_check_ms: u64,
}

impl Default for ClickHouseConfig {
    fn default() -> Self {
        ClickHouseConfig {
            url: DEFAULT_CLICKHOUSE_URL.into(),
            database: DEFAULT_CLICKHOUSE_DATABASE.into(),
            user: "default".into(),
            password: String::new(),
            insert_timeout_ms: DEFAULT_INSERT_TIMEOUT_MS,
            retention_days: BTreeMap::new(),
            retention_check_ms: DEFAULT_RETENTION_CHECK_MS,
            cluster: String::new(),
            insert_quorum: 0,
            rollup_refresh_ms: DEFAULT_ROLLUP_REFRESH_MS,
            rollup_settle_ms: DEFAULT_ROLLUP_SETTLE_MS,
            budget_check_ms: DEFAULT_BUDGET_CHECK_MS,
        }
    }
}

impl fmt::Debug for ClickHouseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClickHouseConfig")
            .field("url", &self.url)
            .field("database", &self.database)
            .field("user", &self.user)
            .field("retention_days", &self.retention_days)
            .field("cluster", &self.cluster)
            .finish_non_exhaustive()
    }
}
