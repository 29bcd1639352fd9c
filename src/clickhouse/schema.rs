//! The ClickHouse schema: numbered, forward-only migrations (`schemas/NNN_name.sql`), the
//! migrations table, and the version check `consume` runs at startup.
//!
//! Only `cowork-ingest migrate` changes the schema. Consumers check it and refuse to start on an
//! older one: consumers that migrated at startup would race each other.

use std::collections::BTreeMap;

use super::store::{Store, StoreError};

/// Applied migrations are recorded here, in the pipeline's database.
pub const MIGRATIONS_TABLE: &str = "schema_migrations";

/// One migration file, embedded in the binary.
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub sql: &'static str,
}

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "001_tables",
        sql: include_str!("../../schemas/001_tables.sql"),
    },
    Migration {
        version: 2,
        name: "002_rollups",
        sql: include_str!("../../schemas/002_rollups.sql"),
    },
];

/// The newest migration this build writes through: `consume` needs every migration up to it.
pub const REQUIRED_VERSION: u32 = 2;

impl Migration {
    /// The statements of this migration for `database`, without comments.
    pub fn statements(&self, database: &str) -> Vec<String> {
        let text: String = self
            .sql
            .lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n")
            .replace("{database}", database);
        text.split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    }

    /// Identifies the file's text: an applied migration whose file changed is refused.
    pub fn checksum(&self) -> String {
        format!("{:016x}", xxhash_rust::xxh3::xxh3_64(self.sql.as_bytes()))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the schema in database `{database}` is older than this consumer needs: missing migration(s) {missing}; run `cowork-ingest migrate`")]
    Missing { database: String, missing: String },
    #[error("migration {name} was applied with different contents; migrations are forward-only: add a new file instead of editing an applied one")]
    Changed { name: &'static str },
}

fn bootstrap(database: &str) -> [String; 2] {
    [
        format!("CREATE DATABASE IF NOT EXISTS {database}"),
        format!(
            "CREATE TABLE IF NOT EXISTS {database}.{MIGRATIONS_TABLE} (version UInt32, name String, checksum String, applied_at DateTime('UTC')) ENGINE = MergeTree ORDER BY version"
        ),
    ]
}

/// Every statement `migrate` would run on an empty server, as one SQL script.
pub fn render(database: &str) -> String {
    let mut out = String::new();
    for s in bootstrap(database) {
        out.push_str(&s);
        out.push_str(";\n\n");
    }
    for m in MIGRATIONS {
        out.push_str(&format!("-- migration {}\n", m.name));
        for s in m.statements(database) {
            out.push_str(&s);
            out.push_str(";\n\n");
        }
    }
    out
}

/// Applied migrations: version to checksum. Empty when the database or table does not exist.
async fn applied(store: &Store) -> Result<BTreeMap<u32, String>, StoreError> {
    let db = store.database();
    let exists = store
        .rows(&format!(
            "SELECT count() FROM system.tables WHERE database = '{db}' AND name = '{MIGRATIONS_TABLE}'"
        ))
        .await?;
    if exists.first().and_then(|r| r.first()).is_none_or(|c| c == "0") {
        return Ok(BTreeMap::new());
    }
    let rows = store
        .rows(&format!(
            "SELECT version, any(checksum) FROM {db}.{MIGRATIONS_TABLE} GROUP BY version"
        ))
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| Some((r.first()?.parse().ok()?, r.get(1)?.clone())))
        .collect())
}

/// Applies the migrations not yet applied, in order, and returns their names. Each statement is
/// idempotent (`IF NOT EXISTS`), so a migration interrupted half-way is simply run again.
pub async fn migrate(store: &Store) -> Result<Vec<&'static str>, SchemaError> {
    for s in bootstrap(store.database()) {
        store.execute(&s).await?;
    }
    let done = applied(store).await?;
    let mut ran = Vec::new();
    for m in MIGRATIONS {
        match done.get(&m.version) {
            Some(sum) if *sum == m.checksum() => continue,
            Some(_) => return Err(SchemaError::Changed { name: m.name }),
            None => {}
        }
        for s in m.statements(store.database()) {
            store.execute(&s).await?;
        }
        store
            .execute(&format!(
                "INSERT INTO {}.{MIGRATIONS_TABLE} (version, name, checksum, applied_at) VALUES ({}, '{}', '{}', now())",
                store.database(),
                m.version,
                m.name,
                m.checksum()
            ))
            .await?;
        ran.push(m.name);
    }
    Ok(ran)
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
    use crate::clickhouse::tables::Table;

    #[test]
    fn statements_are_split_and_rendered_for_the_database() {
        let s = MIGRATIONS[0].statements("db1");
        assert_eq!(s.len(), Table::COUNT);
        for (stmt, table) in s.iter().zip(Table::ALL.map(Table::name)) {
            assert!(
                stmt.starts_with(&format!("CREATE TABLE IF NOT EXISTS db1.{table}")),
                "{stmt}"
            );
        }
        let all = render("db1");
        assert!(!all.contains("{database}"));
        assert!(all.starts_with("CREATE DATABASE IF NOT EXISTS db1;"));
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
