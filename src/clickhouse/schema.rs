//! The ClickHouse schema: numbered, forward-only migrations (`schemas/NNN_name.sql`), the
//! migrations table, and the version check `consume` runs at startup.
//!
//! Only `cowork-ingest migrate` changes the schema. Consumers check it and refuse to start on an
//! older one: consumers that migrated at startup would race each other.

use std::collections::BTreeMap;

use super::store::{Store, StoreError};
use super::tables::Table;

/// Applied migrations are recorded here, in the pipeline's database.
pub const MIGRATIONS_TABLE: &str = "schema_migrations";

/// What a server supports, detected from its version at migrate time. ClickHouse 18.16 gets the
/// plain forms; current releases (users run 23.8 and later) get all of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Features {
    /// `LowCardinality(String)` for strings with few distinct values (19.x experimental; 20.1+).
    pub low_cardinality: bool,
    /// Column codecs: DoubleDelta, T64, ZSTD (20.1+ for all three).
    pub codecs: bool,
    /// Table TTL, used for retention instead of dropping partitions (20.1+).
    pub ttl: bool,
    /// Data-skipping indexes: bloom filters on `prompt_id` and `user_email` (20.1+).
    pub skip_indexes: bool,
    /// `max_partitions_per_insert_block` exists (and defaults to 100, which a backfill's batch
    /// can exceed).
    pub partitions_per_insert_limit: bool,
}

impl Features {
    /// The forms for server version `(major, minor)`.
    pub fn for_version((major, _minor): (u32, u32)) -> Features {
        let current = major >= 20;
        Features {
            low_cardinality: current,
            codecs: current,
            ttl: current,
            skip_indexes: current,
            partitions_per_insert_limit: major >= 19,
        }
    }
}

/// Where the schema is rendered for: a server's features and, in cluster mode, the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub features: Features,
    pub cluster: Option<String>,
}

impl Target {
    /// Detects the server behind `store`.
    pub async fn detect(store: &Store) -> Result<Target, StoreError> {
        Ok(Target {
            features: Features::for_version(store.server_version().await?),
            cluster: store.cluster().map(String::from),
        })
    }
}

/// How a migration's statements run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Every statement in order; each is idempotent (`IF NOT EXISTS`).
    Plain,
    /// Schema v2: a template rendered for the server ([`render_statement`]); on a database with
    /// v1 tables, each table is copied into its v2 form and swapped in ([`upgrade_to_v2`]).
    V2,
    /// A later migration in v2's template language: every statement rendered for the server and
    /// run in order; each is idempotent.
    Template,
}

/// One migration file, embedded in the binary.
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub sql: &'static str,
    pub kind: Kind,
}

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "001_tables",
        sql: include_str!("../../schemas/001_tables.sql"),
        kind: Kind::Plain,
    },
    Migration {
        version: 2,
        name: "002_rollups",
        sql: include_str!("../../schemas/002_rollups.sql"),
        kind: Kind::Plain,
    },
    Migration {
        version: 3,
        name: "003_v2",
        sql: include_str!("../../schemas/003_v2.sql"),
        kind: Kind::V2,
    },
    Migration {
        version: 4,
        name: "004_signals",
        sql: include_str!("../../schemas/004_signals.sql"),
        kind: Kind::Template,
    },
    Migration {
        version: 5,
        name: "005_directory_budgets",
        sql: include_str!("../../schemas/005_directory_budgets.sql"),
        kind: Kind::Template,
    },
    Migration {
        version: 6,
        name: "006_attribution",
        sql: include_str!("../../schemas/006_attribution.sql"),
        kind: Kind::Template,
    },
];

/// The newest migration this build writes through: `consume` needs every migration up to it.
pub const REQUIRED_VERSION: u32 = 6;

impl Migration {
    /// The statements of this migration as written, without comments.
    fn raw_statements(&self) -> Vec<&'static str> {
        self.sql
            .split(";\n")
            .map(|s| s.trim().trim_end_matches(';'))
            .filter(|s| {
                s.lines()
                    .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with("--"))
            })
            .collect()
    }

    /// The statements of this migration for `database` on `target`, without comments.
    pub fn statements(&self, database: &str, target: &Target) -> Vec<String> {
        self.raw_statements()
            .into_iter()
            .flat_map(|s| match self.kind {
                Kind::Plain => vec![strip_comments(s).replace("{database}", database)],
                Kind::V2 | Kind::Template => render_statement(s, database, target, None),
            })
            .collect()
    }

    /// Identifies the file's text: an applied migration whose file changed is refused.
    pub fn checksum(&self) -> String {
        format!("{:016x}", xxhash_rust::xxh3::xxh3_64(self.sql.as_bytes()))
    }
}

fn strip_comments(s: &str) -> String {
    s.lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

/// The table a `CREATE TABLE IF NOT EXISTS {database}.NAME` statement creates.
fn created_table(stmt: &str) -> Option<String> {
    let text = strip_comments(stmt);
    let head = text.strip_prefix("CREATE TABLE IF NOT EXISTS {database}.")?;
    let end = head.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))?;
    Some(head[..end].to_string())
}

/// Renders one statement of the v2 template for `target` (see `schemas/003_v2.sql` for the
/// placeholders). `rename` creates the table under another name (the upgrade's `NAME_v2`). In
/// cluster mode a table becomes two statements: the replicated local table and the Distributed
/// table over it.
pub fn render_statement(stmt: &str, database: &str, target: &Target, rename: Option<&str>) -> Vec<String> {
    let f = target.features;
    let name = created_table(stmt).unwrap_or_default().to_string();
    let mut shard_by = None;
    let mut lines = Vec::new();
    for line in strip_comments(stmt).lines() {
        let t = line.trim();
        if let Some(expr) = t.strip_prefix("SHARD BY ") {
            shard_by = Some(expr.to_string());
            continue;
        }
        if let Some(index) = t.strip_prefix("{index ") {
            if f.skip_indexes {
                let body = index.trim_end_matches(',').trim_end_matches('}');
                lines.push(format!("    INDEX {body},"));
            }
            continue;
        }
        lines.push(line.to_string());
    }
    // A column list may now end in a comma (a dropped index line, or the last index line's).
    let mut text = String::new();
    for (i, line) in lines.iter().enumerate() {
        let closes = lines.get(i + 1).is_some_and(|next| next.trim() == ")");
        text.push_str(if closes { line.trim_end_matches(',') } else { line });
        text.push('\n');
    }
    let lc = if f.low_cardinality {
        "LowCardinality(String)"
    } else {
        "String"
    };
    let codec = |c: &str| {
        if f.codecs {
            format!(" CODEC({c})")
        } else {
            String::new()
        }
    };
    let mut text = text
        .trim_end()
        .replace("{lc}", lc)
        .replace("{codec_time}", &codec("DoubleDelta, ZSTD(1)"))
        .replace("{codec_int}", &codec("T64, ZSTD(1)"))
        .replace("{codec_text}", &codec("ZSTD(3)"));
    let created = rename.unwrap_or(&name).to_string();
    let local = match &target.cluster {
        Some(_) => format!("{created}_local"),
        None => created.clone(),
    };
    if let Some(at) = text.find("{replacing") {
        let end = at + text[at..].find('}').expect("a closing brace");
        let version = text[at + "{replacing".len()..end].trim().to_string();
        let engine = match &target.cluster {
            Some(_) => format!(
                "ReplicatedReplacingMergeTree('/clickhouse/tables/{{shard}}/{database}/{local}', '{{replica}}'{}{version})",
                if version.is_empty() { "" } else { ", " }
            ),
            None => format!("ReplacingMergeTree({version})"),
        };
        text.replace_range(at..=end, &engine);
    }
    if name.is_empty() {
        let on_cluster = target
            .cluster
            .as_ref()
            .map(|c| format!(" ON CLUSTER {c}"))
            .unwrap_or_default();
        let mut text = text.replace("{on_cluster}", &on_cluster);
        while let Some(at) = text.find("{local:") {
            let end = at + text[at..].find('}').expect("a closing brace");
            let table = text[at + "{local:".len()..end].to_string();
            let local = if target.cluster.is_some() {
                format!("{table}_local")
            } else {
                table
            };
            text.replace_range(at..=end, &local);
        }
        let text = text.replace("{database}", database);
        // {tables:NAME}: the statement for NAME. In cluster mode, for NAME_local ON CLUSTER,
        // and then for the Distributed table NAME: dropped too, or, after an ALTER, dropped and
        // created again over the altered local table (ClickHouse refuses ALTER ... ON CLUSTER
        // of a table that is not replicated on a cluster whose shards are).
        if let Some(at) = text.find("{tables:") {
            let end = at + text[at..].find('}').expect("a closing brace");
            let table = &text[at + "{tables:".len()..end];
            let with = |name: &str| format!("{}{name}{}", &text[..at], &text[end + 1..]);
            return match &target.cluster {
                None => vec![with(table)],
                Some(c) => {
                    let mut out = vec![with(&format!("{table}_local ON CLUSTER {c}"))];
                    out.push(format!("DROP TABLE IF EXISTS {database}.{table} ON CLUSTER {c}"));
                    if text.starts_with("ALTER TABLE") {
                        out.push(format!(
                            "CREATE TABLE IF NOT EXISTS {database}.{table} ON CLUSTER {c} AS {database}.{table}_local \
                             ENGINE = Distributed({c}, {database}, {table}_local, {})",
                            shard_key(table)
                        ));
                    }
                    out
                }
            };
        }
        return vec![text];
    }
    let head = format!("{{database}}.{name}");
    match &target.cluster {
        None => vec![text.replacen(&head, &format!("{database}.{local}"), 1)],
        Some(cluster) => {
            let local_ddl = text.replacen(&head, &format!("{database}.{local} ON CLUSTER {cluster}"), 1);
            let shard = shard_by.unwrap_or_else(|| "rand()".into());
            vec![
                local_ddl,
                format!(
                    "CREATE TABLE IF NOT EXISTS {database}.{created} ON CLUSTER {cluster} AS {database}.{local} \
                     ENGINE = Distributed({cluster}, {database}, {local}, {shard})"
                ),
            ]
        }
    }
}

/// The `SHARD BY` expression the migration that created `table` gives it (`rand()` without one).
fn shard_key(table: &str) -> String {
    MIGRATIONS
        .iter()
        .flat_map(|m| m.raw_statements())
        .filter(|s| created_table(s).as_deref() == Some(table))
        .find_map(|s| {
            s.lines()
                .find_map(|l| l.trim().strip_prefix("SHARD BY ").map(String::from))
        })
        .unwrap_or_else(|| "rand()".into())
}

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the schema in database `{database}` is older than this consumer needs: missing migration(s) {missing}; run `cowork-ingest migrate`")]
    Missing { database: String, missing: String },
    #[error("migration {name} was applied with different contents; migrations are forward-only: add a new file instead of editing an applied one")]
    Changed { name: &'static str },
    /// The upgrade found something it will not guess about; nothing was dropped.
    #[error("upgrade to schema v2 stopped: {0}")]
    Upgrade(String),
}

fn bootstrap(database: &str, target: &Target) -> Vec<String> {
    match &target.cluster {
        None => vec![
            format!("CREATE DATABASE IF NOT EXISTS {database}"),
            format!(
                "CREATE TABLE IF NOT EXISTS {database}.{MIGRATIONS_TABLE} (version UInt32, name String, checksum String, applied_at DateTime('UTC')) ENGINE = MergeTree ORDER BY version"
            ),
        ],
        // One copy on every node of the cluster (one ZooKeeper path for all shards), so that a
        // consumer connected to any node sees the same schema version.
        Some(c) => vec![
            format!("CREATE DATABASE IF NOT EXISTS {database} ON CLUSTER {c}"),
            format!(
                "CREATE TABLE IF NOT EXISTS {database}.{MIGRATIONS_TABLE} ON CLUSTER {c} (version UInt32, name String, checksum String, applied_at DateTime('UTC')) ENGINE = ReplicatedMergeTree('/clickhouse/tables/all/{database}/{MIGRATIONS_TABLE}', '{{replica}}') ORDER BY version"
            ),
        ],
    }
}

/// Every statement `migrate` would run on an empty server of `target`, as one SQL script. An
/// empty database gets schema v2 directly; migrations 001 and 002 are recorded as superseded.
pub fn render(database: &str, target: &Target) -> String {
    let mut out = format!(
        "-- cowork-ingest schema v{REQUIRED_VERSION} for {}: LowCardinality {}, codecs {}, TTL {}, skip indexes {}\n\n",
        match &target.cluster {
            Some(c) => format!("cluster {c}"),
            None => "one server".into(),
        },
        yes(target.features.low_cardinality),
        yes(target.features.codecs),
        yes(target.features.ttl),
        yes(target.features.skip_indexes),
    );
    for s in bootstrap(database, target) {
        out.push_str(&s);
        out.push_str(";\n\n");
    }
    for m in MIGRATIONS.iter().filter(|m| m.kind != Kind::Plain) {
        out.push_str(&format!("-- migration {}\n", m.name));
        for s in m.statements(database, target) {
            out.push_str(&s);
            out.push_str(";\n\n");
        }
    }
    out
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// The engine of `db.table`, or `None` when it does not exist.
async fn engine(store: &Store, table: &str) -> Result<Option<String>, StoreError> {
    let db = store.database();
    let rows = store
        .rows(&format!(
            "SELECT engine FROM system.tables WHERE database = '{db}' AND name = '{table}'"
        ))
        .await?;
    Ok(rows.into_iter().next().and_then(|r| r.into_iter().next()))
}

async fn has_column(store: &Store, table: &str, column: &str) -> Result<bool, StoreError> {
    Ok(columns(store, table).await?.contains(column))
}

/// The columns `db.table` has.
async fn columns(store: &Store, table: &str) -> Result<std::collections::HashSet<String>, StoreError> {
    let db = store.database();
    Ok(store
        .rows(&format!(
            "SELECT name FROM system.columns WHERE database = '{db}' AND table = '{table}'"
        ))
        .await?
        .into_iter()
        .filter_map(|r| r.into_iter().next())
        .collect())
}

/// The table an `ALTER TABLE db.t [ON CLUSTER c] ADD COLUMN ...` statement adds columns to.
fn added_columns(stmt: &str) -> Option<String> {
    let rest = stmt.strip_prefix("ALTER TABLE ")?;
    if !stmt.contains("ADD COLUMN ") {
        return None;
    }
    let target = rest.split_whitespace().next()?;
    Some(target.rsplit('.').next()?.to_string())
}

/// The statement with only the `ADD COLUMN` clauses (one per line) for columns not in
/// `existing`; `None` when every column is there. ClickHouse 18.16 has no `ADD COLUMN IF NOT
/// EXISTS`: this makes an interrupted migration safe to run again.
fn without_existing_columns(stmt: &str, existing: &std::collections::HashSet<String>) -> Option<String> {
    let mut lines = stmt.lines();
    let head = lines.next()?;
    let clauses: Vec<&str> = lines
        .map(|l| l.trim().trim_end_matches(','))
        .filter(|c| {
            let name = c.strip_prefix("ADD COLUMN ").and_then(|r| r.split_whitespace().next());
            name.is_none_or(|n| !existing.contains(n))
        })
        .collect();
    if clauses.is_empty() {
        return None;
    }
    Some(format!("{head}\n    {}", clauses.join(",\n    ")))
}

/// Applied migrations: version to checksum. Empty when the database or table does not exist.
async fn applied(store: &Store) -> Result<BTreeMap<u32, String>, StoreError> {
    if engine(store, MIGRATIONS_TABLE).await?.is_none() {
        return Ok(BTreeMap::new());
    }
    let rows = store
        .rows(&format!(
            "SELECT version, any(checksum) FROM {}.{MIGRATIONS_TABLE} GROUP BY version",
            store.database()
        ))
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| Some((r.first()?.parse().ok()?, r.get(1)?.clone())))
        .collect())
}

async fn record(store: &Store, m: &Migration) -> Result<(), StoreError> {
    store
        .execute(&format!(
            "INSERT INTO {}.{MIGRATIONS_TABLE} (version, name, checksum, applied_at) VALUES ({}, '{}', '{}', now())",
            store.database(),
            m.version,
            m.name,
            m.checksum()
        ))
        .await
}

/// Applies the migrations not yet applied, in order, and returns their names (with `progress`
/// told about long steps). An empty database gets schema v2 directly. Every step can be run
/// again after an interruption.
pub async fn migrate(
    store: &Store,
    target: &Target,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<&'static str>, SchemaError> {
    for s in bootstrap(store.database(), target) {
        store.execute(&s).await?;
    }
    let done = applied(store).await?;
    for m in MIGRATIONS {
        if done.get(&m.version).is_some_and(|sum| *sum != m.checksum()) {
            return Err(SchemaError::Changed { name: m.name });
        }
    }
    let fresh = done.is_empty() && engine(store, Table::Events.name()).await?.is_none();
    let mut ran = Vec::new();
    if fresh {
        for m in MIGRATIONS.iter().filter(|m| m.kind != Kind::Plain) {
            for s in m.statements(store.database(), target) {
                store.execute(&s).await?;
            }
        }
        for m in MIGRATIONS {
            record(store, m).await?;
            ran.push(m.name);
        }
        return Ok(ran);
    }
    for m in MIGRATIONS.iter().filter(|m| !done.contains_key(&m.version)) {
        match m.kind {
            Kind::Plain if target.cluster.is_some() => {
                return Err(SchemaError::Upgrade(
                    "cluster mode starts from an empty database; this one holds a v1 schema".into(),
                ))
            }
            Kind::Plain | Kind::Template => {
                for s in m.statements(store.database(), target) {
                    match added_columns(&s) {
                        Some(table) => {
                            let existing = columns(store, &table).await?;
                            if let Some(s) = without_existing_columns(&s, &existing) {
                                store.execute(&s).await?;
                            }
                        }
                        None => store.execute(&s).await?,
                    }
                }
            }
            Kind::V2 => upgrade_to_v2(store, target, m, progress).await?,
        }
        record(store, m).await?;
        ran.push(m.name);
    }
    Ok(ran)
}

/// The `event_day` of a v1 row, as v2 would have filed it: the day of its timestamp, or day 0
/// when the event had no time of its own (v1 stored those at the receive time).
fn v1_event_day(table: Table, database: &str) -> String {
    let fallback = "time_source IN ('received', 'clamped')";
    match table {
        Table::Events => format!("if({fallback}, toDate('1970-01-01'), toDate(timestamp))"),
        _ => format!(
            "if(event_id IN (SELECT event_id FROM {database}.events WHERE {fallback}), toDate('1970-01-01'), toDate(timestamp))"
        ),
    }
}

/// Upgrades a v1 database (migrations 001 and 002) to v2 without losing a row:
/// - each base table is copied, one v1 day partition at a time, into `NAME_v2`, then swapped in
///   (`NAME` → `NAME_v1`, `NAME_v2` → `NAME`); `NAME_v1` is dropped once the new table holds at
///   least as many distinct events;
/// - the `sessions` and `cost_daily` views are replaced by tables; the caller rebuilds the
///   rollups.
///
/// Every step checks what is there first, so an interrupted upgrade is simply run again.
async fn upgrade_to_v2(
    store: &Store,
    target: &Target,
    m: &Migration,
    progress: &mut dyn FnMut(&str),
) -> Result<(), SchemaError> {
    let db = store.database().to_string();
    let statements = m.raw_statements();
    let template = |table: &str| {
        statements
            .iter()
            .find(|s| created_table(s).as_deref() == Some(table))
            .copied()
            .expect("every table has a statement")
    };
    for table in Table::V1 {
        let name = table.name();
        let (v1, v2) = (format!("{name}_v1"), format!("{name}_v2"));
        let current = engine(store, name).await?;
        if current.is_none() && engine(store, &v2).await?.is_some() {
            // Interrupted between the two renames.
            store.execute(&format!("RENAME TABLE {db}.{v2} TO {db}.{name}")).await?;
        } else if current.is_some() && !has_column(store, name, "event_day").await? {
            if engine(store, &v1).await?.is_some() {
                return Err(SchemaError::Upgrade(format!(
                    "both {db}.{name} (v1) and {db}.{v1} exist; compare them and drop one"
                )));
            }
            store.execute(&format!("DROP TABLE IF EXISTS {db}.{v2}")).await?;
            for s in render_statement(template(name), &db, target, Some(&v2)) {
                store.execute(&s).await?;
            }
            let days = store
                .rows(&format!(
                    "SELECT DISTINCT partition FROM system.parts WHERE database = '{db}' AND table = '{name}' AND active ORDER BY partition"
                ))
                .await?;
            // v1's columns (and event_day, which v1 did not have): columns that later migrations
            // add are not there yet.
            let had = columns(store, name).await?;
            let columns = table
                .columns()
                .split(", ")
                .filter(|c| *c == "event_day" || had.contains(*c))
                .collect::<Vec<_>>()
                .join(", ");
            let select = columns.replace("event_day", &format!("{} AS event_day", v1_event_day(table, &db)));
            for (i, day) in days.iter().filter_map(|r| r.first()).enumerate() {
                progress(&format!("{name}: copying day {day} ({} of {})", i + 1, days.len()));
                store
                    .execute(&format!(
                        "INSERT INTO {db}.{v2} ({columns}) SELECT {select} FROM {db}.{name} WHERE toDate(timestamp) = toDate('{day}')"
                    ))
                    .await?;
            }
            store
                .execute(&format!(
                    "RENAME TABLE {db}.{name} TO {db}.{v1}, {db}.{v2} TO {db}.{name}"
                ))
                .await?;
        } else if current.is_none() {
            for s in render_statement(template(name), &db, target, None) {
                store.execute(&s).await?;
            }
        }
        if engine(store, &v1).await?.is_some() {
            let (old, new) = (distinct_events(store, &v1).await?, distinct_events(store, name).await?);
            if new < old {
                return Err(SchemaError::Upgrade(format!(
                    "{db}.{name} holds {new} distinct events, fewer than the {old} of {db}.{v1}; {v1} is kept"
                )));
            }
            store.execute(&format!("DROP TABLE {db}.{v1}")).await?;
            progress(&format!("{name}: upgraded ({new} distinct events)"));
        }
    }
    for view in ["sessions", "cost_daily"] {
        if engine(store, view).await?.as_deref() == Some("View") {
            store.execute(&format!("DROP TABLE {db}.{view}")).await?;
        }
    }
    for s in m.statements(&db, target) {
        store.execute(&s).await?;
    }
    // The materialized view sees only new inserts: index the prompts already there.
    store
        .execute(&format!(
            "INSERT INTO {db}.prompt_sessions SELECT tenant, prompt_id, event_day, session_id FROM {db}.user_prompts WHERE prompt_id != ''"
        ))
        .await?;
    // Every day of history needs its rollups: marked, so that the consumers' refreshers build
    // them even if `migrate`'s own rebuild is interrupted after this migration is recorded.
    store
        .execute(&format!(
            "INSERT INTO {db}.rollup_dirty (tenant, day) SELECT DISTINCT tenant, event_day FROM {db}.events"
        ))
        .await?;
    Ok(())
}

async fn distinct_events(store: &Store, table: &str) -> Result<u64, StoreError> {
    let sql = format!("SELECT uniqExact(event_id) FROM {}.{table}", store.database());
    Ok(store.scalar(&sql).await?.parse().unwrap_or(0))
}

/// Fails unless every migration up to [`REQUIRED_VERSION`] is applied, naming the missing ones.
pub async fn check(store: &Store) -> Result<(), SchemaError> {
    let done = applied(store).await?;
    let missing: Vec<&str> = MIGRATIONS
        .iter()
        .filter(|m| m.version <= REQUIRED_VERSION && !done.contains_key(&m.version))
        .map(|m| m.name)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(SchemaError::Missing {
            database: store.database().to_string(),
            missing: missing.join(", "),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(major: u32, cluster: Option<&str>) -> Target {
        Target {
            features: Features::for_version((major, 8)),
            cluster: cluster.map(String::from),
        }
    }

    #[test]
    fn v1_statements_are_split_and_rendered_for_the_database() {
        let s = MIGRATIONS[0].statements("db1", &target(18, None));
        assert_eq!(s.len(), Table::V1.len());
        for (stmt, table) in s.iter().zip(Table::V1.map(Table::name)) {
            assert!(
                stmt.starts_with(&format!("CREATE TABLE IF NOT EXISTS db1.{table}")),
                "{stmt}"
            );
            assert!(!stmt.ends_with(';'));
        }
    }

    #[test]
    fn v2_renders_plain_forms_for_18_16_and_current_forms_for_current_servers() {
        let old = MIGRATIONS[2].statements("db1", &target(18, None)).join(";\n");
        assert!(!old.contains('{') && !old.contains("SHARD BY"), "{old}");
        for absent in [
            "LowCardinality",
            "CODEC",
            "INDEX",
            "Replicated",
            "Distributed",
            "ON CLUSTER",
        ] {
            assert!(!old.contains(absent), "{absent} in the 18.16 form");
        }
        assert!(old.contains("ORDER BY (tenant, event_day, session_id, event_id)"));
        assert!(!old.contains(",\n)"), "no trailing comma before a closing parenthesis");
        let new = render("db1", &target(24, None));
        for present in [
            "tenant LowCardinality(String)",
            "CODEC(DoubleDelta, ZSTD(1))",
            "INDEX idx_prompt_id prompt_id TYPE bloom_filter",
        ] {
            assert!(new.contains(present), "{present} missing from the current form");
        }
        assert!(!new.contains(",\n)"));
        // Every v2 table has a tenant column (per-tenant readers filter on it).
        for s in MIGRATIONS[2].statements("db1", &target(24, None)) {
            assert!(s.contains("tenant"), "{s}");
        }
        assert!(old.contains("CREATE MATERIALIZED VIEW IF NOT EXISTS db1.prompt_sessions_mv TO db1.prompt_sessions AS\nSELECT tenant, prompt_id, event_day, session_id\nFROM db1.user_prompts\n"), "{old}");
        assert!(old.contains("ENGINE = ReplacingMergeTree()\nPARTITION BY toYYYYMM(event_day)"));
    }

    #[test]
    fn cluster_mode_makes_replicated_local_tables_under_distributed_ones() {
        let sql = MIGRATIONS[2].statements("db1", &target(18, Some("c1")));
        let events: Vec<&String> = sql.iter().filter(|s| s.contains("db1.events")).collect();
        assert_eq!(events.len(), 2, "{events:?}");
        assert!(events[0].starts_with("CREATE TABLE IF NOT EXISTS db1.events_local ON CLUSTER c1"));
        assert!(events[0].contains(
            "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db1/events_local', '{replica}', normalizer_version)"
        ));
        assert!(events[1]
            .ends_with("AS db1.events_local ENGINE = Distributed(c1, db1, events_local, cityHash64(event_id))"));
        assert!(sql.iter().any(|s| s.starts_with(
            "CREATE MATERIALIZED VIEW IF NOT EXISTS db1.prompt_sessions_mv ON CLUSTER c1 TO db1.prompt_sessions AS"
        ) && s.contains("FROM db1.user_prompts_local")));
        assert!(sql.iter().any(|s| s.contains(
            "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db1/prompt_sessions_local', '{replica}')"
        )));
        let rendered = render("db1", &target(18, Some("c1")));
        assert!(rendered.contains("CREATE DATABASE IF NOT EXISTS db1 ON CLUSTER c1"));
        assert!(rendered.contains("ReplicatedMergeTree('/clickhouse/tables/all/db1/schema_migrations', '{replica}')"));
    }

    #[test]
    fn the_upgrade_renames_and_versions_are_detected() {
        let s = render_statement(
            MIGRATIONS[2].raw_statements()[0],
            "db1",
            &target(18, None),
            Some("events_v2"),
        );
        assert!(
            s[0].starts_with("CREATE TABLE IF NOT EXISTS db1.events_v2\n("),
            "{}",
            s[0]
        );
        assert!(!Features::for_version((18, 16)).ttl);
        assert!(Features::for_version((23, 8)).ttl);
    }

    #[test]
    fn the_kind_tables_of_006_have_the_catalogue_columns() {
        let m = MIGRATIONS.iter().find(|m| m.name == "006_attribution").unwrap();
        for t in Table::ALL.into_iter().filter(|t| t.kind().is_some()) {
            let stmt = m
                .raw_statements()
                .into_iter()
                .find(|s| created_table(s).as_deref() == Some(t.name()))
                .unwrap_or_else(|| panic!("006 creates {t}"));
            let body = strip_comments(stmt);
            let ddl: Vec<&str> = body
                .lines()
                .map(str::trim)
                .skip_while(|l| *l != "(")
                .skip(1)
                .take_while(|l| !l.starts_with(')'))
                .filter(|l| !l.starts_with('{'))
                .filter_map(|l| l.split_whitespace().next())
                .collect();
            let listed: Vec<&str> = t.columns().split(", ").collect();
            assert_eq!(ddl, listed, "{t}: the DDL of 006 and the catalogue differ");
            // And the types: every catalogue column with its type.
            let k = &crate::transform::kinds::KINDS[t.kind().unwrap()];
            for c in k.columns {
                let line = format!("{} {}", c.name, c.ty.sql());
                assert!(
                    body.lines().any(|l| l.trim().trim_end_matches(',') == line),
                    "{t}: {line}"
                );
            }
        }
    }

    #[test]
    fn alter_statements_skip_the_columns_a_table_has() {
        let target = target(18, None);
        let m = MIGRATIONS.iter().find(|m| m.name == "006_attribution").unwrap();
        let stmts = m.statements("cowork", &target);
        let alter = stmts
            .iter()
            .find(|s| s.starts_with("ALTER TABLE cowork.user_prompts\n"))
            .unwrap();
        assert_eq!(added_columns(alter).as_deref(), Some("user_prompts"));
        let some: std::collections::HashSet<String> = ["user_identity".to_string()].into();
        let rest = without_existing_columns(alter, &some).unwrap();
        assert!(
            !rest.contains("ADD COLUMN user_identity String") && rest.contains("ADD COLUMN team"),
            "{rest}"
        );
        let all: std::collections::HashSet<String> = [
            "user_identity",
            "user_identity_source",
            "user_account_id",
            "app_version",
            "team",
            "department",
            "cost_center",
        ]
        .map(String::from)
        .into();
        assert_eq!(without_existing_columns(alter, &all), None);
        // In cluster mode, the local table, then its Distributed table made again over it.
        let c = m.statements("cowork", &super::tests::target(24, Some("c1")));
        let at = c
            .iter()
            .position(|s| s.starts_with("ALTER TABLE cowork.user_prompts_local ON CLUSTER c1"))
            .unwrap();
        assert_eq!(c[at + 1], "DROP TABLE IF EXISTS cowork.user_prompts ON CLUSTER c1");
        assert_eq!(
            c[at + 2],
            "CREATE TABLE IF NOT EXISTS cowork.user_prompts ON CLUSTER c1 AS cowork.user_prompts_local \
             ENGINE = Distributed(c1, cowork, user_prompts_local, cityHash64(event_id))"
        );
    }

    #[test]
    fn the_directory_and_budgets_render_for_one_server_and_for_a_cluster() {
        let m = &MIGRATIONS[4];
        assert_eq!(m.name, "005_directory_budgets");
        let one = m.statements("db1", &target(18, None));
        assert_eq!(one.len(), 2, "{one:?}");
        assert!(
            one[0].starts_with("CREATE TABLE IF NOT EXISTS db1.user_directory\n("),
            "{}",
            one[0]
        );
        assert!(one[0].contains("ENGINE = ReplacingMergeTree(version)\nORDER BY (tenant, user_identity)"));
        assert!(
            one[1].starts_with("CREATE TABLE IF NOT EXISTS db1.budgets\n("),
            "{}",
            one[1]
        );
        assert!(one[1].contains("monthly_usd Decimal(18, 2)"));
        assert!(one[1].contains("ORDER BY (tenant, scope, scope_value)"));
        for s in &one {
            assert!(
                !s.contains('{') && !s.contains("SHARD BY") && !s.contains("PARTITION"),
                "{s}"
            );
            assert!(!s.contains(",\n)"), "{s}");
        }
        let current = m.statements("db1", &target(24, None)).join("\n");
        assert!(current.contains("scope LowCardinality(String)") && current.contains("team LowCardinality(String)"));

        let cluster = m.statements("db1", &target(18, Some("c1")));
        assert_eq!(cluster.len(), 4, "{cluster:?}");
        assert!(cluster[0].starts_with("CREATE TABLE IF NOT EXISTS db1.user_directory_local ON CLUSTER c1"));
        assert!(cluster[0].contains(
            "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db1/user_directory_local', '{replica}', version)"
        ));
        assert!(cluster[1].ends_with(
            "AS db1.user_directory_local ENGINE = Distributed(c1, db1, user_directory_local, cityHash64(tenant, user_identity))"
        ));
        assert!(cluster[2].contains(
            "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db1/budgets_local', '{replica}', version)"
        ));
        assert!(cluster[3].ends_with(
            "AS db1.budgets_local ENGINE = Distributed(c1, db1, budgets_local, cityHash64(tenant, scope, scope_value))"
        ));
        assert!(render("db1", &target(18, Some("c1"))).contains("-- migration 005_directory_budgets"));
    }

    #[test]
    fn migrations_are_numbered_in_order() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1);
            assert!(m.name.starts_with(&format!("{:03}_", m.version)));
        }
        assert_eq!(MIGRATIONS.last().map(|m| m.version), Some(REQUIRED_VERSION));
    }
}
