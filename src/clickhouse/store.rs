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
    insert_timeout: Duration,
}

impl Store {
    pub fn new(config: &ClickHouseConfig) -> Store {
        let client = clickhouse::Client::default()
            .with_url(&config.url)
            .with_user(&config.user)
            .with_password(&config.password)
            .with_validation(false)
            .with_compression(clickhouse::Compression::None);
        Store {
            client,
            database: config.database.clone(),
            insert_timeout: Duration::from_millis(config.insert_timeout_ms),
        }
    }

    pub fn database(&self) -> &str {
        &self.database
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
