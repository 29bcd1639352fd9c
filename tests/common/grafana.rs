//! What Grafana and the grafana-clickhouse-datasource plugin do to a panel query before
//! ClickHouse sees it: `$__conditionalAll` in the browser, then template variables, then the
//! backend's macros (pkg/macros/macros.go) for a dashboard time range. Shared by
//! `tests/dashboards.rs` and `benches/month.rs`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The dashboard time range and `$__interval_s`, as the plugin's macros see them.
#[derive(Clone, Copy, Debug)]
pub struct Range {
    /// `$__fromTime`, Unix seconds.
    pub from_s: i64,
    /// `$__toTime`, Unix seconds.
    pub to_s: i64,
    /// `$__dateFilter`'s bounds, `YYYY-MM-DD`.
    pub from_date: &'static str,
    pub to_date: &'static str,
    pub interval_s: u32,
}

/// A template variable's current value.
#[derive(Clone, Debug)]
pub enum VarValue {
    One(String),
    Many(Vec<String>),
    /// "All" of a multi-value variable with no custom all value: Grafana expands it to every
    /// option, and the plugin's `$__conditionalAll` turns into `1=1`.
    All(Vec<String>),
}

pub type Vars = BTreeMap<String, VarValue>;

/// The arguments of a call whose `(` is at `open`, split at top-level commas, and the index just
/// past its `)`. This is the plugin's `getMacroArgs` (bracket counting, no quote awareness).
pub fn call_args(sql: &str, open: usize) -> (Vec<String>, usize) {
    assert_eq!(&sql[open..open + 1], "(", "a call starts at {open}: {sql}");
    let mut depth = 0;
    let mut args = Vec::new();
    let mut start = open + 1;
    for (i, c) in sql[open..].char_indices() {
        let i = open + i;
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    args.push(sql[start..i].to_string());
                    return (args, i + 1);
                }
            }
            ',' if depth == 1 => {
                args.push(sql[start..i].to_string());
                start = i + 1;
            }
            _ => {}
        }
    }
    panic!("unbalanced parentheses after {open} in:\n{sql}");
}

/// The plugin's `applyConditionalAll` (browser side, before variables are replaced): each
/// `$__conditionalAll(condition, $var)` becomes `1=1` when `var` is All (or empty), else the
/// condition, innermost-last as the plugin does (it works from the last occurrence backwards).
pub fn apply_conditional_all(sql: &str, vars: &Vars) -> String {
    const MACRO: &str = "$__conditionalAll(";
    let mut sql = sql.to_string();
    while let Some(at) = sql.rfind(MACRO) {
        let (args, end) = call_args(&sql, at + MACRO.len() - 1);
        assert_eq!(
            args.len(),
            2,
            "$__conditionalAll takes a condition and a variable: {}",
            &sql[at..end]
        );
        let name = args[1]
            .trim()
            .trim_start_matches('$')
            .trim_start_matches('{')
            .trim_end_matches('}')
            .to_string();
        let value = vars
            .get(&name)
            .unwrap_or_else(|| panic!("$__conditionalAll refers to unknown variable {name}"));
        let all = match value {
            VarValue::All(_) => true,
            VarValue::One(v) => v.is_empty(),
            VarValue::Many(v) => v.is_empty(),
        };
        let phrase = if all { "1=1".to_string() } else { args[0].clone() };
        sql.replace_range(at..end, &phrase);
    }
    sql
}

pub fn values(v: &VarValue) -> Vec<String> {
    match v {
        VarValue::One(s) => vec![s.clone()],
        VarValue::Many(v) | VarValue::All(v) => v.clone(),
    }
}

/// Grafana's template variable replacement with the plugin's formatter: `$var`, `${var}`,
/// `${var:format}` and `[[var]]`. Names starting with `__` (macros, built-ins) are left alone.
pub fn interpolate(sql: &str, vars: &Vars) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    loop {
        let next = [rest.find('$'), rest.find("[[")].into_iter().flatten().min();
        let Some(at) = next else {
            out.push_str(rest);
            return out;
        };
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let (name, format, len) = if let Some(body) = tail.strip_prefix("${") {
            let close = body.find('}').unwrap_or_else(|| panic!("unclosed ${{ in:\n{sql}"));
            let inner = &body[..close];
            let (name, format) = match inner.split_once(':') {
                Some((n, f)) => (n, Some(f)),
                None => (inner, None),
            };
            (name, format, close + 3)
        } else if let Some(body) = tail.strip_prefix("[[") {
            let close = body.find("]]").unwrap_or_else(|| panic!("unclosed [[ in:\n{sql}"));
            let inner = &body[..close];
            let (name, format) = match inner.split_once(':') {
                Some((n, f)) => (n, Some(f)),
                None => (inner, None),
            };
            (name, format, close + 4)
        } else {
            let body = &tail[1..];
            let n = body
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(body.len());
            (&body[..n], None, n + 1)
        };
        if name.starts_with("__") || name.is_empty() {
            out.push_str(&tail[..len]);
        } else {
            let value = vars
                .get(name)
                .unwrap_or_else(|| panic!("query uses variable {name}, which the dashboard does not define"));
            let vals = values(value);
            let text = match format {
                // The plugin's default formatter: arrays as 'a','b' (no escaping), scalars raw.
                None => match value {
                    VarValue::One(v) => v.clone(),
                    _ => format!("'{}'", vals.join("','")),
                },
                Some("singlequote") => vals
                    .iter()
                    .map(|v| format!("'{}'", v.replace('\'', "\\'")))
                    .collect::<Vec<_>>()
                    .join(","),
                Some("raw") => vals.join(","),
                Some(other) => panic!("variable format {other} is not supported by this test"),
            };
            out.push_str(&text);
        }
        rest = &tail[len..];
    }
}

/// The plugin backend's macros (pkg/macros/macros.go), for the dashboard time range. Only the
/// macros the dashboards may use are known; any other `$__` name fails the test.
pub fn expand_macros(sql: &str, range: &Range) -> String {
    let to_datetime = |s: i64| format!("toDateTime({s})");
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql.to_string();
    while let Some(at) = rest.find("$__") {
        out.push_str(&rest[..at]);
        let body = &rest[at + 3..];
        let n = body
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(body.len());
        let name = body[..n].to_string();
        let after = at + 3 + n;
        let (args, end) = if rest[after..].starts_with('(') {
            let (args, end) = call_args(&rest, after);
            (args.into_iter().map(|a| a.trim().to_string()).collect::<Vec<_>>(), end)
        } else {
            (Vec::new(), after)
        };
        let one = |args: &[String]| -> String {
            assert_eq!(args.len(), 1, "$__{name} takes one column");
            args[0].clone()
        };
        let text = match name.as_str() {
            "timeFilter" => {
                let c = one(&args);
                format!(
                    "{c} >= {} AND {c} <= {}",
                    to_datetime(range.from_s),
                    to_datetime(range.to_s)
                )
            }
            "dateFilter" => {
                let c = one(&args);
                format!(
                    "{c} >= toDate('{}') AND {c} <= toDate('{}')",
                    range.from_date, range.to_date
                )
            }
            "fromTime" if args.is_empty() => to_datetime(range.from_s),
            "toTime" if args.is_empty() => to_datetime(range.to_s),
            "interval_s" if args.is_empty() => range.interval_s.to_string(),
            _ => panic!("macro $__{name} is not one the dashboards may use (in:\n{sql})"),
        };
        out.push_str(&text);
        rest = rest[end..].to_string();
    }
    out.push_str(&rest);
    out
}

/// The SQL ClickHouse receives for `raw` under `vars`, for `range`.
pub fn render(raw: &str, vars: &Vars, range: &Range) -> String {
    let sql = expand_macros(&interpolate(&apply_conditional_all(raw, vars), vars), range);
    assert!(!sql.contains('$'), "something was left unexpanded in:\n{sql}");
    sql
}

/// Every dashboard of this checkout's `grafana/dashboards`: (file name, JSON model), by name.
pub fn dashboards() -> Vec<(String, serde_json::Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("grafana/dashboards");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&p).unwrap();
            let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} is not valid JSON: {e}"));
            (name, json)
        })
        .collect()
}
