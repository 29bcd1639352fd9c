//! Erasure (GDPR): one user's rows of one tenant, deleted from every table.

use std::time::Duration;

use super::store::{Store, StoreError};
use super::tables::Table;

/// Why `forget` did not finish.
#[derive(Debug, thiserror::Error)]
pub enum EraseError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The deletions were accepted and go on in the background; run `forget` again to see the
    /// counts reach zero.
    #[error("deletions still running after {0} s; they will finish in the background")]
    StillRunning(u64),
}

/// A string literal for ClickHouse SQL.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Deletes one user's rows of one tenant from every table (GDPR erasure), waits for the
/// deletions to finish, and returns the rows removed per table. The rollup views read these
/// tables, so they forget the user too.
pub async fn forget(store: &Store, tenant: &str, user_email: &str) -> Result<Vec<(&'static str, u64)>, EraseError> {
    let db = store.database();
    let filter = format!("tenant = {} AND user_email = {}", quote(tenant), quote(user_email));
    let mut removed = Vec::new();
    for table in Table::ALL.map(Table::name) {
        let count = store
            .rows(&format!("SELECT count() FROM {db}.{table} WHERE {filter}"))
            .await?;
        let n: u64 = count
            .first()
            .and_then(|r| r.first())
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        if n > 0 {
            store
                .execute(&format!("ALTER TABLE {db}.{table} DELETE WHERE {filter}"))
                .await?;
        }
        removed.push((table, n));
    }
    // ALTER ... DELETE is an asynchronous mutation on every version: wait until none is pending.
    for _ in 0..600 {
        let pending = store
            .rows(&format!(
                "SELECT count() FROM system.mutations WHERE database = '{db}' AND is_done = 0"
            ))
            .await?;
        if pending.first().and_then(|r| r.first()).is_some_and(|c| c == "0") {
            return Ok(removed);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(EraseError::StillRunning(120))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_escapes_quotes_and_backslashes() {
        assert_eq!(quote("bo.o'neil@acme.example"), r"'bo.o\'neil@acme.example'");
        assert_eq!(quote(r"a\b"), r"'a\\b'");
    }
}
