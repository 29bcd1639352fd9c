//! Erasure (GDPR): one user's rows of one tenant, deleted from every table.

use std::time::Duration;

use super::store::{Store, StoreError};
use super::tables::{Rollup, Table};

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

/// Deletes one person's rows of one tenant from every table, every rollup, the user directory
/// and the person's own budgets (GDPR erasure), waits for the deletions to finish, and returns the rows removed per
/// table. `user` is an e-mail address or any other `user_identity` (an `enduser.id`, a
/// `process.owner`, ...): a row goes when its `user_email` or its `user_identity` is `user`.
///
/// A rollup refresh that read the user's rows before the erasure may write them back into a
/// rollup after it, so the rollups are checked again [`RECHECK`] later and erased again.
pub async fn forget(store: &Store, tenant: &str, user: &str) -> Result<Vec<(&'static str, u64)>, EraseError> {
    let person = |table: &str| {
        let by_identity = format!("tenant = {} AND user_identity = {}", quote(tenant), quote(user));
        match table {
            // The tables that name the person by user_identity alone.
            "cost_attribution_daily" | USER_DIRECTORY => by_identity,
            // A budget of scope `user` names the person.
            BUDGETS => format!(
                "tenant = {} AND scope = 'user' AND scope_value = {}",
                quote(tenant),
                quote(user)
            ),
            _ => format!(
                "{by_identity} OR tenant = {} AND user_email = {}",
                quote(tenant),
                quote(user)
            ),
        }
    };
    let rollups: Vec<&'static str> = Rollup::ALL.map(Rollup::name).to_vec();
    let mut removed = erase(store, &person, &Table::ALL.map(Table::name)).await?;
    removed.extend(erase(store, &person, &rollups).await?);
    removed.extend(erase(store, &person, &[USER_DIRECTORY, BUDGETS]).await?);
    tokio::time::sleep(RECHECK).await;
    erase(store, &person, &rollups).await?;
    Ok(removed)
}

/// The user directory (`directory import`): the person's team, department, cost center and
/// manager.
const USER_DIRECTORY: &str = "user_directory";
/// The budgets (`budgets set`): a budget of scope `user` names its person.
const BUDGETS: &str = "budgets";

/// How long after the erasure the rollups are checked again: longer than one refresh of a day.
pub const RECHECK: Duration = Duration::from_secs(3);

async fn erase(
    store: &Store,
    filter_of: &dyn Fn(&str) -> String,
    tables: &[&'static str],
) -> Result<Vec<(&'static str, u64)>, EraseError> {
    let db = store.database();
    let mut removed = Vec::new();
    for &table in tables {
        let filter = filter_of(table);
        let n: u64 = store
            .scalar(&format!("SELECT count() FROM {db}.{table} WHERE {filter}"))
            .await?
            .parse()
            .unwrap_or(0);
        if n > 0 {
            store
                .execute(&format!(
                    "ALTER TABLE {}{} DELETE WHERE {filter}",
                    store.local(table),
                    store.on_cluster()
                ))
                .await?;
        }
        removed.push((table, n));
    }
    wait_for_mutations(store).await?;
    Ok(removed)
}

async fn wait_for_mutations(store: &Store) -> Result<(), EraseError> {
    let db = store.database();
    // ALTER ... DELETE is an asynchronous mutation on every version: wait until none is pending.
    for _ in 0..600 {
        let pending = store
            .rows(&format!(
                "SELECT count() FROM system.mutations WHERE database = '{db}' AND is_done = 0"
            ))
            .await?;
        if pending.first().and_then(|r| r.first()).is_some_and(|c| c == "0") {
            return Ok(());
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
