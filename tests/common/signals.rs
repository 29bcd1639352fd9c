//! The captured SDK metrics and spans (`tests/fixtures/signals`) and what they must add up to
//! in `productivity_daily`, shared by the signals and cluster tests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cowork_ingest::config::Config;
use serde_json::Value;

use super::clickhouse::rows;

pub const PRODUCTIVITY: [&str; 14] = [
    "lines_added",
    "lines_removed",
    "commits",
    "pull_requests",
    "active_time_user_s",
    "active_time_cli_s",
    "sessions",
    "edits_accepted",
    "edits_rejected",
    "cost_usd",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_creation_tokens",
];

pub type PerUser = BTreeMap<String, BTreeMap<String, f64>>;

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/signals")
}

pub fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The per-user productivity figures a generator run promised.
pub fn expected_users(expected: &Value) -> PerUser {
    let users = expected["users"].as_object().expect("expected.users");
    users
        .iter()
        .map(|(user, v)| {
            let figures = PRODUCTIVITY
                .iter()
                .map(|c| {
                    (
                        c.to_string(),
                        v[*c].as_f64().unwrap_or_else(|| panic!("users.{user}.{c}")),
                    )
                })
                .collect();
            (user.clone(), figures)
        })
        .collect()
}

/// `productivity_daily` of `tenant`, summed over its days, per user.
pub async fn productivity(config: &Config, tenant: &str) -> PerUser {
    let sums: Vec<String> = PRODUCTIVITY.iter().map(|c| format!("sum({c})")).collect();
    rows(
        config,
        &format!(
            "SELECT user_email, {} FROM {{db}}.productivity_daily WHERE tenant = '{tenant}' GROUP BY user_email",
            sums.join(", ")
        ),
    )
    .await
    .into_iter()
    .map(|r| {
        let figures = PRODUCTIVITY
            .iter()
            .zip(&r[1..])
            .map(|(c, v)| (c.to_string(), v.parse::<f64>().unwrap()))
            .collect();
        (r[0].clone(), figures)
    })
    .collect()
}

/// Equal users and figures; money and seconds to within a nano-unit (floating-point sums).
pub fn assert_same(got: &PerUser, want: &PerUser, context: &str) {
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{context}: users"
    );
    for (user, figures) in want {
        for (c, w) in figures {
            let g = got[user][c];
            assert!((g - w).abs() < 1e-6, "{context}: {user} {c}: got {g}, want {w}");
        }
    }
}

/// [`assert_same`] as a test: for waiting until the figures arrive.
pub fn same(got: &PerUser, want: &PerUser) -> bool {
    got.keys().eq(want.keys())
        && want
            .iter()
            .all(|(user, figures)| figures.iter().all(|(c, w)| (got[user][c] - w).abs() < 1e-6))
}
