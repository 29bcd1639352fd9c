//! `cowork-ingest readers create | list | revoke | sync`: per-tenant read-only ClickHouse users.
//!
//! A reader of tenant `A` is the ClickHouse user `cowork_reader_A` (the tenant verbatim: tenant
//! names are `[A-Za-z0-9._-]+`, and the name is always backquoted, so `a.b` and `a_b` never
//! collide). It can SELECT from exactly the tables and views of `clickhouse.database` that have
//! a `tenant` column, sees only its tenant's rows in each, and every query it runs is held to a
//! memory limit it cannot raise.
//!
//! ```text
//!   per table T of the database with a `tenant` column:
//!     ROW POLICY cowork_all_rows  ON db.T  PERMISSIVE  USING 1            TO ALL
//!     ROW POLICY cowork_reader_A  ON db.T  RESTRICTIVE USING tenant = 'A' TO cowork_reader_A
//!     GRANT SELECT ON db.T TO cowork_reader_A
//!   (in cluster mode every statement runs ON CLUSTER, and T ranges over the Distributed
//!   tables and their `_local` tables alike)
//!   rows a user sees = (OR of its permissive policies) AND (AND of its restrictive ones)
//!     cowork_reader_A: 1 AND tenant = 'A'      every other user: 1
//! ```
//!
//! Why a restrictive policy plus a `USING 1 TO ALL` one: once a table has a row policy,
//! ClickHouse shows the users that no permissive policy names no rows at all (unless the server
//! sets `users_without_row_policies_can_read_rows`), and a restrictive policy alone grants
//! nothing. `cowork_all_rows` keeps every other user (the consumer, `migrate`, an admin Grafana)
//! seeing everything, and the reader's own filter is ANDed on top of it. The alternative,
//! `USING 1 TO ALL EXCEPT <readers>`, would have to list every reader and be rewritten on each
//! `create` and `revoke`; excluding a role instead would let a reader escape with `SET ROLE NONE`.
//!
//! Why grants per table, not `GRANT SELECT ON db.*`: a table that a later migration adds has no
//! policy until `sync` runs, and with `db.*` the reader would see every tenant's rows in it
//! meanwhile. Per-table grants fail closed: a new table is unreadable until `sync` (which
//! `migrate` should run) covers it. The reader gets nothing else: no other database, no table
//! functions (they need grants it lacks: `remote()` could otherwise connect as another user),
//! no writes. Of `system` it sees only what ClickHouse shows every user.
//!
//! `readonly = 2` rather than 1: Grafana's ClickHouse plugin sends settings (such as
//! `max_execution_time`) with each query, which `readonly = 1` refuses. Writes are refused by the
//! missing grants either way, and `max_memory_usage` is a `CONST` constraint (`READONLY` in
//! the SQL, which every release since 20.4 accepts), so the limit holds with `readonly = 2`.
//!
//! Servers without SQL access control are refused. ClickHouse has `CREATE USER` and row
//! policies since 20.4; per-table `<filter>`s in users.xml arrived in 19.5 (ClickHouse PR
//! #4792); Debian's 18.16 has neither, and `<allow_databases>` alone would show a reader every
//! tenant's rows (a view in a database of its own does not help either: 18.16 checks the
//! reader's access to the tables the view reads). So on 18.16 `create`, `list` and `revoke`
//! fail with a sentence that says so, and `sync` does nothing (no reader can exist there), so
//! `migrate` can call it on every server.
//!
//! In cluster mode (`clickhouse.cluster`) the users, row policies and grants are made
//! `ON CLUSTER`, so that they exist on every node: a reader may connect to any of them, and a
//! query on a Distributed table reads the `_local` tables on every shard. Both kinds of table
//! have a `tenant` column, so both are covered: the Distributed table's policy filters the rows
//! on the node the reader is connected to, and the `_local` table's policy filters them on the
//! shards when those run the query as the reader (a cluster with an inter-server `<secret>`);
//! a cluster that sends shard queries as its configured `<user>` still gets the Distributed
//! table's filter.

use std::fmt;

use anyhow::Context;
use sha2::{Digest, Sha256};

use crate::clickhouse::store::{error_code, Store};

/// Every reader's ClickHouse user name starts with this; the tenant follows verbatim.
pub const USER_PREFIX: &str = "cowork_reader_";
/// The permissive `USING 1 TO ALL` policy on every covered table (see the module docs).
pub const ALL_ROWS_POLICY: &str = "cowork_all_rows";
/// Memory one query of a reader may use: 2 GB, a dashboard query's worth on a small server
/// without letting one tenant's ad-hoc query starve the consumer's inserts.
pub const DEFAULT_MAX_MEMORY_BYTES: u64 = 2_000_000_000;
/// The first release with `CREATE USER`, `CREATE ROW POLICY` and settings constraints in SQL,
/// as `(major, minor)` ([`Store::server_version`]).
pub const SQL_ACCESS_CONTROL_SINCE: (u32, u32) = (20, 4);
/// Random bytes in a generated password (hex-encoded: 48 characters, safe in URLs and YAML).
const PASSWORD_BYTES: usize = 24;
/// ClickHouse's "not enough privileges" code.
const ACCESS_DENIED: u32 = 497;

/// Whether a server of version `(major, minor)` (as [`Store::server_version`] reads it) can
/// host readers: it has `CREATE USER` and row policies.
pub fn has_sql_access_control(version: (u32, u32)) -> bool {
    version >= SQL_ACCESS_CONTROL_SINCE
}

/// One reader, as `list` finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reader {
    pub tenant: String,
    pub user: String,
    /// The tables of the database its filter covers, sorted.
    pub tables: Vec<String>,
}

/// A reader just created: its password is shown once and stored nowhere.
pub struct NewReader {
    pub user: String,
    pub password: String,
    pub tables: Vec<String>,
}

impl fmt::Debug for NewReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewReader")
            .field("user", &self.user)
            .field("tables", &self.tables)
            .finish_non_exhaustive()
    }
}

/// How a reader is made (the `readers create` flags).
#[derive(Debug, Clone)]
pub struct ReaderOptions {
    /// Memory one query may use, in bytes; the reader cannot raise it.
    pub max_memory_bytes: u64,
    /// Client addresses or networks (`10.0.0.0/8`) the reader may log in from; empty = any.
    pub hosts: Vec<String>,
}

impl Default for ReaderOptions {
    fn default() -> Self {
        ReaderOptions {
            max_memory_bytes: DEFAULT_MAX_MEMORY_BYTES,
            hosts: Vec::new(),
        }
    }
}

/// Refuses a tenant name outside `[A-Za-z0-9._-]+`: it becomes part of a user name and of a
/// SQL string literal.
pub fn validate_tenant(tenant: &str) -> anyhow::Result<()> {
    let ok = !tenant.is_empty()
        && tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    anyhow::ensure!(
        ok,
        "tenant name {tenant:?} is not allowed: use letters, digits, '.', '_' and '-' only"
    );
    Ok(())
}

/// The ClickHouse user of `tenant`'s reader: `cowork_reader_<tenant>`.
pub fn user_name(tenant: &str) -> String {
    format!("{USER_PREFIX}{tenant}")
}

/// A backquoted identifier.
fn ident(name: &str) -> String {
    format!("`{}`", name.replace('\\', "\\\\").replace('`', "\\`"))
}

/// A quoted string literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// ` ON CLUSTER name` in cluster mode, else nothing (as [`Store::on_cluster`] renders it).
fn on_cluster(cluster: Option<&str>) -> String {
    cluster.map(|c| format!(" ON CLUSTER {c}")).unwrap_or_default()
}

/// `CREATE USER` for a reader: a SHA-256 password, the hosts it may come from, `readonly = 2`
/// and a memory limit it cannot change; on every node of `cluster` in cluster mode.
pub fn create_user_sql(
    tenant: &str,
    password_sha256_hex: &str,
    options: &ReaderOptions,
    cluster: Option<&str>,
) -> String {
    let hosts = if options.hosts.is_empty() {
        "ANY".to_string()
    } else {
        options
            .hosts
            .iter()
            .map(|h| format!("IP {}", literal(h)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "CREATE USER {}{} IDENTIFIED WITH sha256_hash BY {} HOST {hosts} \
         SETTINGS readonly = 2, max_memory_usage = {} READONLY",
        ident(&user_name(tenant)),
        on_cluster(cluster),
        literal(password_sha256_hex),
        options.max_memory_bytes
    )
}

/// The statements that make `tenant`'s reader cover exactly `tables` of `database`, in the
/// order they must run: policies before grants, so no moment exists at which the reader can
/// read a table unfiltered; the all-rows policy before the reader's, so other users never lose
/// rows. `stale` are tables that carry the reader's policy but no longer have a `tenant`
/// column (or no longer exist). In cluster mode every statement runs on every node of
/// `cluster`, and `tables` holds the Distributed tables and their `_local` tables alike.
pub fn cover_sql(
    database: &str,
    tenant: &str,
    tables: &[String],
    stale: &[String],
    cluster: Option<&str>,
) -> Vec<String> {
    let user = ident(&user_name(tenant));
    let on_cluster = on_cluster(cluster);
    let table = |t: &str| format!("{}.{}", ident(database), ident(t));
    let mut sql = Vec::new();
    for t in tables {
        let on = table(t);
        sql.push(format!(
            "CREATE ROW POLICY IF NOT EXISTS {}{on_cluster} ON {on} AS PERMISSIVE FOR SELECT USING 1 TO ALL",
            ident(ALL_ROWS_POLICY)
        ));
        sql.push(format!(
            "CREATE ROW POLICY OR REPLACE {user}{on_cluster} ON {on} AS RESTRICTIVE FOR SELECT USING tenant = {} TO {user}",
            literal(tenant)
        ));
    }
    sql.push(format!("REVOKE{on_cluster} ALL ON *.* FROM {user}"));
    for t in stale {
        sql.push(format!("DROP ROW POLICY IF EXISTS {user} ON {}{on_cluster}", table(t)));
    }
    for t in tables {
        sql.push(format!("GRANT{on_cluster} SELECT ON {} TO {user}", table(t)));
    }
    sql
}

/// The statements that remove `tenant`'s reader: its policies on `(database, table)`, then the
/// user; on every node of `cluster` in cluster mode. The all-rows policies stay: they change
/// nothing for anyone.
pub fn revoke_sql(tenant: &str, policies: &[(String, String)], cluster: Option<&str>) -> Vec<String> {
    let user = ident(&user_name(tenant));
    let on_cluster = on_cluster(cluster);
    let mut sql: Vec<String> = policies
        .iter()
        .map(|(db, t)| {
            format!(
                "DROP ROW POLICY IF EXISTS {user} ON {}.{}{on_cluster}",
                ident(db),
                ident(t)
            )
        })
        .collect();
    sql.push(format!("DROP USER IF EXISTS {user}{on_cluster}"));
    sql
}

/// Fails unless the server has SQL access control (see the module docs for why 18.16 cannot
/// host readers at all).
async fn require_access_control(store: &Store) -> anyhow::Result<()> {
    let (major, minor) = store.server_version().await?;
    let (since_major, since_minor) = SQL_ACCESS_CONTROL_SINCE;
    anyhow::ensure!(
        has_sql_access_control((major, minor)),
        "ClickHouse {major}.{minor} cannot give a tenant read access: it has no row-level security \
         (row policies arrived in {since_major}.{since_minor}, per-table filters in users.xml in 19.5), \
         so a reader would see every tenant's rows. Upgrade ClickHouse (23.8 or later) to use `readers`"
    );
    Ok(())
}

/// Runs `sql` in order; an access error names the right the configured user lacks.
async fn run_all(store: &Store, sql: &[String]) -> anyhow::Result<()> {
    for stmt in sql {
        if let Err(e) = store.execute(stmt).await {
            let text = e.to_string();
            if error_code(&text) == Some(ACCESS_DENIED) {
                anyhow::bail!(
                    "the configured ClickHouse user cannot manage users and row policies \
                     (it needs `access_management = 1` in users.xml, or GRANT ACCESS MANAGEMENT, \
                     SELECT ON {}.* WITH GRANT OPTION): {text}",
                    store.database()
                );
            }
            return Err(e).with_context(|| format!("running {stmt}"));
        }
    }
    Ok(())
}

/// The tables and views of the store's database that have a `tenant` column, sorted. Nothing
/// is filtered by name or engine: in cluster mode that is the Distributed tables and their
/// `_local` tables (both created ON CLUSTER, so every node lists both), and on one server the
/// plain tables; views and a materialized view's inner table count like any other table.
pub async fn tenant_tables(store: &Store) -> anyhow::Result<Vec<String>> {
    let rows = store
        .rows(&format!(
            "SELECT DISTINCT table FROM system.columns WHERE database = {} AND name = 'tenant' ORDER BY table",
            literal(store.database())
        ))
        .await?;
    Ok(rows.into_iter().filter_map(|r| r.into_iter().next()).collect())
}

/// The tables of the store's database on which `user` has its own policy.
async fn covered_tables(store: &Store, user: &str) -> anyhow::Result<Vec<String>> {
    let rows = store
        .rows(&format!(
            "SELECT table FROM system.row_policies WHERE database = {} AND short_name = {} ORDER BY table",
            literal(store.database()),
            literal(user)
        ))
        .await?;
    Ok(rows.into_iter().filter_map(|r| r.into_iter().next()).collect())
}

/// The names of the reader users on the server, sorted.
async fn reader_users(store: &Store) -> anyhow::Result<Vec<String>> {
    let rows = store
        .rows(&format!(
            "SELECT name FROM system.users WHERE startsWith(name, {}) ORDER BY name",
            literal(USER_PREFIX)
        ))
        .await?;
    Ok(rows.into_iter().filter_map(|r| r.into_iter().next()).collect())
}

/// Points `tenant`'s reader at the current table list.
async fn cover(store: &Store, tenant: &str, tables: &[String]) -> anyhow::Result<()> {
    let covered = covered_tables(store, &user_name(tenant)).await?;
    let stale: Vec<String> = covered.into_iter().filter(|t| !tables.contains(t)).collect();
    run_all(
        store,
        &cover_sql(store.database(), tenant, tables, &stale, store.cluster()),
    )
    .await
}

/// Removes `tenant`'s user and its row policies in every database.
async fn remove(store: &Store, tenant: &str) -> anyhow::Result<()> {
    let policies: Vec<(String, String)> = store
        .rows(&format!(
            "SELECT database, table FROM system.row_policies WHERE short_name = {}",
            literal(&user_name(tenant))
        ))
        .await?
        .into_iter()
        .filter(|r| r.len() == 2)
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect();
    run_all(store, &revoke_sql(tenant, &policies, store.cluster())).await
}

/// Creates `tenant`'s reader with `password`, or a generated one. Fails if the reader exists:
/// revoke it first to change its password; `sync` updates its tables.
pub async fn create(
    store: &Store,
    tenant: &str,
    password: Option<String>,
    options: &ReaderOptions,
) -> anyhow::Result<NewReader> {
    validate_tenant(tenant)?;
    require_access_control(store).await?;
    let user = user_name(tenant);
    anyhow::ensure!(
        !reader_users(store).await?.contains(&user),
        "tenant {tenant} already has a reader ({user}): `readers sync` updates its tables, \
         `readers revoke --tenant {tenant}` removes it (to change its password, revoke and create)"
    );
    let password = match password {
        Some(p) => {
            anyhow::ensure!(!p.is_empty(), "the password file is empty");
            p
        }
        None => {
            let mut bytes = [0u8; PASSWORD_BYTES];
            rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
            hex::encode(bytes)
        }
    };
    let hash = hex::encode(Sha256::digest(password.as_bytes()));
    let tables = tenant_tables(store).await?;
    run_all(store, &[create_user_sql(tenant, &hash, options, store.cluster())]).await?;
    if let Err(e) = cover(store, tenant, &tables).await {
        // Leave no half-made reader behind (its policies so far, then the user): it could read
        // nothing yet (grants come last), but a second `create` would refuse.
        if let Err(cleanup) = remove(store, tenant).await {
            tracing::warn!(tenant, error = %cleanup, "could not remove the half-made reader");
        }
        return Err(e);
    }
    Ok(NewReader { user, password, tables })
}

/// Every reader on the server, with the tables of this database its filter covers.
pub async fn list(store: &Store) -> anyhow::Result<Vec<Reader>> {
    require_access_control(store).await?;
    let mut readers = Vec::new();
    for user in reader_users(store).await? {
        let tables = covered_tables(store, &user).await?;
        readers.push(Reader {
            tenant: user[USER_PREFIX.len()..].to_string(),
            user,
            tables,
        });
    }
    Ok(readers)
}

/// Removes `tenant`'s reader: its row policies in every database, then the user.
pub async fn revoke(store: &Store, tenant: &str) -> anyhow::Result<()> {
    validate_tenant(tenant)?;
    require_access_control(store).await?;
    let user = user_name(tenant);
    anyhow::ensure!(
        reader_users(store).await?.contains(&user),
        "tenant {tenant} has no reader ({user} does not exist)"
    );
    remove(store, tenant).await
}

/// Rewrites every reader's policies and grants to cover the tables that have a `tenant` column
/// now. `migrate` runs it after its migrations, so that a new table is readable (filtered)
/// and a dropped one leaves no policy behind. Returns the readers rewritten. It does nothing
/// (and returns 0) on a server without SQL access control (no reader can exist there), when
/// there are no readers, and when the configured user may not list users (`system.users`
/// fails: it then warns, since it could not have made readers either). Only rewriting readers
/// that exist can fail.
pub async fn sync(store: &Store) -> anyhow::Result<usize> {
    if !has_sql_access_control(store.server_version().await?) {
        return Ok(0);
    }
    let users = match reader_users(store).await {
        Ok(users) => users,
        Err(e) => {
            tracing::warn!(
                error = %e,
                "cannot list ClickHouse users, so tenant readers (if any) keep their row policies \
                 and grants; run `cowork-ingest readers sync` as a user with access management"
            );
            return Ok(0);
        }
    };
    if users.is_empty() {
        return Ok(0);
    }
    let tables = tenant_tables(store).await?;
    for user in &users {
        cover(store, &user[USER_PREFIX.len()..], &tables).await?;
    }
    Ok(users.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_names_are_held_to_a_safe_alphabet() {
        for ok in ["acme", "A", "a.b-c_d", "0"] {
            validate_tenant(ok).unwrap();
        }
        for bad in ["", "a b", "a'b", "a`b", "a;b", "ä", "a/b", "a\\b"] {
            let e = validate_tenant(bad).unwrap_err().to_string();
            assert!(e.contains("letters, digits"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn user_names_keep_the_tenant_verbatim() {
        assert_eq!(user_name("a.b"), "cowork_reader_a.b");
        assert_ne!(user_name("a.b"), user_name("a_b"));
    }

    #[test]
    fn access_control_starts_at_20_4() {
        use crate::clickhouse::store::parse_version;
        let at = |text: &str| has_sql_access_control(parse_version(text).unwrap());
        assert!(!at("18.16.1"));
        assert!(!at("19.17.4.11"));
        assert!(!at("20.3.21.2"));
        assert!(at("20.4.2.9"));
        assert!(at("20.10.1"));
        assert!(at("23.8.2.7\n"));
        assert!(at("26.9.2.1"));
    }

    #[test]
    fn the_user_has_a_hashed_password_readonly_2_and_a_fixed_memory_limit() {
        let sql = create_user_sql("acme", "ab12", &ReaderOptions::default(), None);
        assert_eq!(
            sql,
            "CREATE USER `cowork_reader_acme` IDENTIFIED WITH sha256_hash BY 'ab12' HOST ANY \
             SETTINGS readonly = 2, max_memory_usage = 2000000000 READONLY"
        );
        let hosts = ReaderOptions {
            max_memory_bytes: 5,
            hosts: vec!["10.0.0.0/8".into(), "192.168.1.7".into()],
        };
        let sql = create_user_sql("a", "h", &hosts, None);
        assert!(sql.contains("HOST IP '10.0.0.0/8', IP '192.168.1.7' SETTINGS"), "{sql}");
        assert!(sql.contains("max_memory_usage = 5 READONLY"), "{sql}");
    }

    #[test]
    fn in_cluster_mode_the_user_is_made_on_every_node() {
        let sql = create_user_sql("acme", "ab12", &ReaderOptions::default(), Some("c1"));
        assert!(
            sql.starts_with(
                "CREATE USER `cowork_reader_acme` ON CLUSTER c1 IDENTIFIED WITH sha256_hash BY 'ab12' HOST ANY"
            ),
            "{sql}"
        );
    }

    #[test]
    fn policies_come_before_grants_and_cover_every_table() {
        let tables = vec!["events".to_string(), ".inner.cost_daily".to_string()];
        let sql = cover_sql("cowork", "acme", &tables, &["gone".to_string()], None);
        assert_eq!(
            sql,
            [
                "CREATE ROW POLICY IF NOT EXISTS `cowork_all_rows` ON `cowork`.`events` AS PERMISSIVE FOR SELECT USING 1 TO ALL",
                "CREATE ROW POLICY OR REPLACE `cowork_reader_acme` ON `cowork`.`events` AS RESTRICTIVE FOR SELECT USING tenant = 'acme' TO `cowork_reader_acme`",
                "CREATE ROW POLICY IF NOT EXISTS `cowork_all_rows` ON `cowork`.`.inner.cost_daily` AS PERMISSIVE FOR SELECT USING 1 TO ALL",
                "CREATE ROW POLICY OR REPLACE `cowork_reader_acme` ON `cowork`.`.inner.cost_daily` AS RESTRICTIVE FOR SELECT USING tenant = 'acme' TO `cowork_reader_acme`",
                "REVOKE ALL ON *.* FROM `cowork_reader_acme`",
                "DROP ROW POLICY IF EXISTS `cowork_reader_acme` ON `cowork`.`gone`",
                "GRANT SELECT ON `cowork`.`events` TO `cowork_reader_acme`",
                "GRANT SELECT ON `cowork`.`.inner.cost_daily` TO `cowork_reader_acme`",
            ]
        );
    }

    #[test]
    fn in_cluster_mode_policies_and_grants_are_made_on_every_node_for_both_tables() {
        let tables = vec!["events".to_string(), "events_local".to_string()];
        let sql = cover_sql("cowork", "acme", &tables, &["gone_local".to_string()], Some("c1"));
        assert_eq!(
            sql,
            [
                "CREATE ROW POLICY IF NOT EXISTS `cowork_all_rows` ON CLUSTER c1 ON `cowork`.`events` AS PERMISSIVE FOR SELECT USING 1 TO ALL",
                "CREATE ROW POLICY OR REPLACE `cowork_reader_acme` ON CLUSTER c1 ON `cowork`.`events` AS RESTRICTIVE FOR SELECT USING tenant = 'acme' TO `cowork_reader_acme`",
                "CREATE ROW POLICY IF NOT EXISTS `cowork_all_rows` ON CLUSTER c1 ON `cowork`.`events_local` AS PERMISSIVE FOR SELECT USING 1 TO ALL",
                "CREATE ROW POLICY OR REPLACE `cowork_reader_acme` ON CLUSTER c1 ON `cowork`.`events_local` AS RESTRICTIVE FOR SELECT USING tenant = 'acme' TO `cowork_reader_acme`",
                "REVOKE ON CLUSTER c1 ALL ON *.* FROM `cowork_reader_acme`",
                "DROP ROW POLICY IF EXISTS `cowork_reader_acme` ON `cowork`.`gone_local` ON CLUSTER c1",
                "GRANT ON CLUSTER c1 SELECT ON `cowork`.`events` TO `cowork_reader_acme`",
                "GRANT ON CLUSTER c1 SELECT ON `cowork`.`events_local` TO `cowork_reader_acme`",
            ]
        );
    }

    #[test]
    fn revoke_drops_policies_then_the_user() {
        let policies = [("cowork".to_string(), "events".to_string())];
        assert_eq!(
            revoke_sql("a.b", &policies, None),
            [
                "DROP ROW POLICY IF EXISTS `cowork_reader_a.b` ON `cowork`.`events`",
                "DROP USER IF EXISTS `cowork_reader_a.b`",
            ]
        );
        assert_eq!(
            revoke_sql("a.b", &policies, Some("c1")),
            [
                "DROP ROW POLICY IF EXISTS `cowork_reader_a.b` ON `cowork`.`events` ON CLUSTER c1",
                "DROP USER IF EXISTS `cowork_reader_a.b` ON CLUSTER c1",
            ]
        );
    }

    #[test]
    fn identifiers_and_literals_are_escaped() {
        assert_eq!(ident("a`b\\c"), "`a\\`b\\\\c`");
        assert_eq!(literal("it's"), "'it\\'s'");
    }
}
