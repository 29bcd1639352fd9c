//! ClickHouse access: one HTTP client, inserts of pre-encoded RowBinary, small queries, and the
//! classification of every failure by what the caller does next.
//!
//! The `clickhouse` crate runs with validation off: its schema check needs a server newer than
//! Debian's 18.16, and the rows are encoded by [`super::rows`] against an explicit column list.

use std::time::Duration;

use bytes::Bytes;

use super::ClickHouseConfig;

/// A failed ClickHouse call, by what the caller does next.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The server is down, overloaded, timed out, or the schema is not there yet: retry the
    /// same rows later. Nothing is lost, and the retry cannot double-count (ReplacingMergeTree).
    #[error("ClickHouse unavailable (retrying): {0}")]
    Retry(String),
    /// The server refused these rows: split the batch and dead-letter the payloads that fail.
    #[error("ClickHouse rejected the data: {0}")]
    Reject(String),
}

/// Server error codes that mean "these bytes are wrong", as opposed to "the server cannot take
/// them now": parse and type errors (6, 27, 33, 38, 41, 53, 69, 70, 72, 117, 128, 131, 321).
const DATA_ERROR_CODES: &[u32] = &[6, 27, 33, 38, 41, 53, 69, 70, 72, 117, 128, 131, 321];

/// The numeric code in a ClickHouse error text (`Code: 60, e.displayText() = ...` on 18.16,
/// `Code: 60. DB::Exception: ...` on current releases).
pub fn error_code(text: &str) -> Option<u32> {
    let rest = &text[text.find("Code: ")? + 6..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn classify(err: clickhouse::error::Error) -> StoreError {
    let text = err.to_string();
    match &err {
        clickhouse::error::Error::BadResponse(body)
            if error_code(body).is_some_and(|c| DATA_ERROR_CODES.contains(&c)) =>
        {
            StoreError::Reject(text)
        }
        _ => StoreError::Retry(text),
    }
}

/// A ClickHouse endpoint and the database the pipeline owns.
#[derive(Clone)]
pub struct Store {
    client: clickhouse::Client,
    database: String,
    cluster: Option<String>,
    insert_timeout: Duration,
}

impl Store {
    pub fn new(config: &ClickHouseConfig) -> Store {
        let mut client = clickhouse::Client::default()
            .with_url(&config.url)
            .with_user(&config.user)
            .with_password(&config.password)
            .with_validation(false)
            .with_compression(clickhouse::Compression::None);
        let cluster = Some(config.cluster.clone()).filter(|c| !c.is_empty());
        if cluster.is_some() {
            // An insert through a Distributed table returns only once every shard has its rows
            // (not once they are queued on the receiving node), so the offsets committed after it
            // are covered. A shard that is down fails the insert, and the consumer retries.
            client = client.with_option("insert_distributed_sync", "1");
            // Writes and reads go to the first healthy replica of each shard, in the order of
            // `remote_servers`: the rollup refresh reads the replica the rows were written to,
            // not one still fetching them (`clickhouse.rollup_settle_ms` covers a failover).
            client = client.with_option("load_balancing", "in_order");
            if config.insert_quorum > 1 {
                // Every quorum replica has the rows before the insert returns, and reads only go
                // to replicas that have every quorum insert.
                client = client
                    .with_option("insert_quorum", config.insert_quorum.to_string())
                    .with_option("insert_quorum_timeout", config.insert_timeout_ms.to_string())
                    .with_option("select_sequential_consistency", "1");
            }
        }
        Store {
            client,
            database: config.database.clone(),
            cluster,
            insert_timeout: Duration::from_millis(config.insert_timeout_ms),
        }
    }

    /// The same endpoint with one more setting on every query (for settings only some server
    /// versions know).
    pub fn with_setting(mut self, name: &str, value: &str) -> Store {
        self.client = self.client.with_option(name, value);
        self
    }

    pub fn database(&self) -> &str {
        &self.database
    }

    /// The cluster in cluster mode.
    pub fn cluster(&self) -> Option<&str> {
        self.cluster.as_deref()
    }

    /// ` ON CLUSTER name` in cluster mode, else nothing: for DDL and ALTERs.
    pub fn on_cluster(&self) -> String {
        self.cluster
            .as_ref()
            .map(|c| format!(" ON CLUSTER {c}"))
            .unwrap_or_default()
    }

    /// The table that holds `table`'s parts: `db.table`, or `db.table_local` in cluster mode
    /// (ALTERs, partitions and mutations act on the local tables, ON CLUSTER).
    pub fn local(&self, table: &str) -> String {
        format!("{}.{}", self.database, self.local_name(table))
    }

    /// [`Store::local`] without the database: the name in `system.tables` and `system.parts`.
    pub fn local_name(&self, table: &str) -> String {
        match self.cluster {
            Some(_) => format!("{table}_local"),
            None => table.to_string(),
        }
    }

    /// The server's version, as `(major, minor)`.
    pub async fn server_version(&self) -> Result<(u32, u32), StoreError> {
        let rows = self.rows("SELECT version()").await?;
        let text = rows.first().and_then(|r| r.first()).cloned().unwrap_or_default();
        parse_version(&text).ok_or_else(|| StoreError::Retry(format!("unreadable server version {text:?}")))
    }

    /// Runs one statement that returns nothing (DDL, ALTER).
    pub async fn execute(&self, sql: &str) -> Result<(), StoreError> {
        self.client.query(sql).execute().await.map_err(classify)
    }

    /// Runs a query and returns its rows as TabSeparated text fields (unescaped).
    pub async fn rows(&self, sql: &str) -> Result<Vec<Vec<String>>, StoreError> {
        let mut cursor = self.client.query(sql).fetch_bytes("TabSeparated").map_err(classify)?;
        let mut text = Vec::new();
        while let Some(chunk) = cursor.next().await.map_err(classify)? {
            text.extend_from_slice(&chunk);
        }
        let text = String::from_utf8_lossy(&text);
        Ok(text
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| l.split('\t').map(unescape_tsv).collect())
            .collect())
    }

    /// The first field of the first row of `sql` (empty when there is none).
    pub async fn scalar(&self, sql: &str) -> Result<String, StoreError> {
        Ok(self
            .rows(sql)
            .await?
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next())
            .unwrap_or_default())
    }

    /// Inserts pre-encoded RowBinary rows into `table` (in this store's database), for the
    /// columns named, in one INSERT.
    pub async fn insert(&self, table: &str, columns: &str, rows: Bytes) -> Result<(), StoreError> {
        let sql = format!("INSERT INTO {}.{table} ({columns}) FORMAT RowBinary", self.database);
        let mut insert = self
            .client
            .insert_formatted_with(sql)
            .with_timeouts(Some(self.insert_timeout), Some(self.insert_timeout));
        insert.send(rows).await.map_err(classify)?;
        insert.end().await.map_err(classify)
    }
}

/// `(major, minor)` of a version such as `18.16.1` or `24.8.4.13`.
pub fn parse_version(text: &str) -> Option<(u32, u32)> {
    let mut it = text.trim().split('.');
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

/// A TabSeparated field as text: ClickHouse escapes `\\`, `'`, tab, newline and a few others.
pub fn unescape_tsv(field: &str) -> String {
    if !field.contains('\\') {
        return field.to_string();
    }
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('0') => out.push('\0'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_read_from_both_server_generations() {
        assert_eq!(
            error_code("Code: 60, e.displayText() = DB::Exception: Table x doesn't exist"),
            Some(60)
        );
        assert_eq!(
            error_code("bad response: Code: 27. DB::Exception: Cannot parse input"),
            Some(27)
        );
        assert_eq!(error_code("connection refused"), None);
    }

    #[test]
    fn tsv_fields_are_unescaped() {
        assert_eq!(unescape_tsv(r"a\tb\\c\'d"), "a\tb\\c'd");
        assert_eq!(unescape_tsv("plain"), "plain");
    }
}
