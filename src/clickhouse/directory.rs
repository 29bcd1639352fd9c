//! The user directory (`user_directory`, migration 005): who is in which team, department and
//! cost center, and who their manager is, per tenant. The rollups fall back to it when the
//! telemetry carries no team.
//!
//! `cowork-ingest directory import FILE --tenant T` replaces the tenant's whole directory with a
//! CSV file ([`parse_csv`]):
//!
//! ```text
//!   file rows          new version of every row (deleted = 0)        ─┐ one INSERT, so readers
//!   identities gone    a tombstone at the same version (deleted = 1) ─┘ see all of it or none
//!   then               every (tenant, day) of the tenant's cost_daily marked for a refresh
//! ```
//!
//! Readers take each identity's newest version: `user_directory FINAL WHERE deleted = 0`. The
//! version is the server's clock in microseconds ([`rollups::version_now`]), so imports from
//! different hosts order by when they ran.

use std::collections::{BTreeMap, HashMap};

use super::erasure::quote;
use super::rollups;
use super::store::{Store, StoreError};

/// The table's name.
pub const TABLE: &str = "user_directory";

/// The CSV header `directory import` requires, in this order.
pub const CSV_HEADER: [&str; 5] = ["user_identity", "team", "department", "cost_center", "manager"];

/// How many problems of a refused file are listed; the rest are counted.
const LISTED_PROBLEMS: usize = 10;

/// One person's directory entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    /// The person as `user_identity` names them: user.email, else enduser.id, else
    /// user.account_id, else process.owner, else user.id.
    pub user_identity: String,
    pub team: String,
    pub department: String,
    pub cost_center: String,
    pub manager: String,
}

impl Entry {
    fn fields(&self) -> [&str; 4] {
        [&self.team, &self.department, &self.cost_center, &self.manager]
    }
}

/// One thing wrong with a directory file, at the line where its record begins.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsvProblem {
    #[error("the file is empty; its first line must be the header `{}`", CSV_HEADER.join(","))]
    Empty,
    #[error("line {line}: the header must be `{}`, not `{found}`", CSV_HEADER.join(","))]
    Header { line: usize, found: String },
    #[error("line {line}: {found} field(s), expected 5 ({})", CSV_HEADER.join(","))]
    Fields { line: usize, found: usize },
    #[error("line {line}: user_identity is empty")]
    EmptyIdentity { line: usize },
    #[error("line {line}: user_identity `{identity}` is already on line {first}")]
    Duplicate {
        line: usize,
        identity: String,
        first: usize,
    },
    #[error("line {line}: a quoted field is not closed before the end of the file")]
    Unterminated { line: usize },
    #[error(
        "line {line}: a `\"` inside an unquoted field (quote the whole field and double the quote: \"a \"\"b\"\"\")"
    )]
    StrayQuote { line: usize },
    #[error("line {line}: text after the closing quote of a field")]
    AfterQuote { line: usize },
}

/// A refused directory file: every problem found, by line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvErrors(pub Vec<CsvProblem>);

impl std::fmt::Display for CsvErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the directory file was refused, nothing was imported:")?;
        for p in self.0.iter().take(LISTED_PROBLEMS) {
            write!(f, "\n  {p}")?;
        }
        if self.0.len() > LISTED_PROBLEMS {
            write!(f, "\n  ... and {} more", self.0.len() - LISTED_PROBLEMS)?;
        }
        Ok(())
    }
}

impl std::error::Error for CsvErrors {}

/// RFC 4180 records of `text`, each with the line it begins on (1-based). Fields are separated
/// by commas and records by CRLF or LF; a field in double quotes may hold commas, line breaks and
/// doubled quotes (`""`). Blank lines are skipped. Spaces around a quoted field are allowed (the
/// values are trimmed anyway).
fn records(text: &str) -> Result<Vec<(usize, Vec<String>)>, CsvProblem> {
    let mut out = Vec::new();
    let mut record: Vec<String> = Vec::new();
    let mut field = String::new();
    let (mut line, mut start) = (1, 1);
    let (mut quoted, mut closed) = (false, false);
    let mut chars = text.chars().peekable();
    let mut finish = |record: &mut Vec<String>, field: &mut String, closed: bool, start: usize| {
        record.push(std::mem::take(field));
        let blank = record.len() == 1 && !closed && record[0].trim().is_empty();
        let record = std::mem::take(record);
        if !blank {
            out.push((start, record));
        }
    };
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => (quoted, closed) = (false, true),
                '\n' => {
                    line += 1;
                    field.push('\n');
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if !closed && field.trim().is_empty() => {
                field.clear();
                quoted = true;
            }
            '"' => return Err(CsvProblem::StrayQuote { line }),
            ',' => {
                record.push(std::mem::take(&mut field));
                closed = false;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                finish(&mut record, &mut field, closed, start);
                closed = false;
                line += 1;
                start = line;
            }
            _ if closed && c.is_whitespace() => {}
            _ if closed => return Err(CsvProblem::AfterQuote { line }),
            _ => field.push(c),
        }
    }
    if quoted {
        return Err(CsvProblem::Unterminated { line: start });
    }
    if !field.is_empty() || !record.is_empty() || closed {
        finish(&mut record, &mut field, closed, start);
    }
    Ok(out)
}

/// A directory file: the header `user_identity,team,department,cost_center,manager`, then one
/// person per record (RFC 4180 quoting, values trimmed). Refused, with every problem and its
/// line, when the header is wrong, a record has another number of fields, an identity is empty
/// or appears twice. Identities are compared exactly, as the telemetry sends them.
pub fn parse_csv(text: &str) -> Result<Vec<Entry>, CsvErrors> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let records = records(text).map_err(|p| CsvErrors(vec![p]))?;
    let mut records = records.into_iter();
    let Some((line, header)) = records.next() else {
        return Err(CsvErrors(vec![CsvProblem::Empty]));
    };
    let names: Vec<&str> = header.iter().map(|h| h.trim()).collect();
    let matches =
        names.len() == CSV_HEADER.len() && names.iter().zip(CSV_HEADER).all(|(n, h)| n.eq_ignore_ascii_case(h));
    if !matches {
        return Err(CsvErrors(vec![CsvProblem::Header {
            line,
            found: names.join(","),
        }]));
    }
    let mut problems = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut entries = Vec::new();
    for (line, fields) in records {
        if fields.len() != CSV_HEADER.len() {
            problems.push(CsvProblem::Fields {
                line,
                found: fields.len(),
            });
            continue;
        }
        let mut it = fields.iter().map(|f| f.trim().to_string());
        let mut next = || it.next().unwrap_or_default();
        let entry = Entry {
            user_identity: next(),
            team: next(),
            department: next(),
            cost_center: next(),
            manager: next(),
        };
        if entry.user_identity.is_empty() {
            problems.push(CsvProblem::EmptyIdentity { line });
            continue;
        }
        if let Some(&first) = seen.get(&entry.user_identity) {
            problems.push(CsvProblem::Duplicate {
                line,
                identity: entry.user_identity,
                first,
            });
            continue;
        }
        seen.insert(entry.user_identity.clone(), line);
        entries.push(entry);
    }
    if problems.is_empty() {
        Ok(entries)
    } else {
        Err(CsvErrors(problems))
    }
}

/// What an import changed, against the tenant's directory before it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Identities that were not in the directory.
    pub added: usize,
    /// Identities whose team, department, cost center or manager changed.
    pub updated: usize,
    pub unchanged: usize,
    /// Identities no longer in the file: tombstoned.
    pub removed: usize,
    /// The version the import wrote; 0 when nothing changed and nothing was written.
    pub version: u64,
    /// (tenant, day)s of `cost_daily` marked for a rollup refresh.
    pub days_marked: usize,
}

impl ImportReport {
    pub fn changed(&self) -> bool {
        self.added + self.updated + self.removed > 0
    }
}

/// A directory entry as stored: the entry and when it was imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub entry: Entry,
    /// `YYYY-MM-DD hh:mm:ss`, UTC.
    pub imported_at: String,
}

/// The tenant's directory as readers see it (newest version of each identity, tombstones left
/// out), by identity.
pub async fn list(store: &Store, tenant: &str) -> Result<Vec<Stored>, StoreError> {
    // The tenant is a sort-key column, so filtering on it before FINAL is exact; `deleted` is
    // filtered after it.
    let rows = store
        .rows(&format!(
            "SELECT user_identity, team, department, cost_center, manager, toString(imported_at) \
             FROM {}.{TABLE} FINAL WHERE tenant = {} AND deleted = 0 ORDER BY user_identity",
            store.database(),
            quote(tenant)
        ))
        .await?;
    Ok(rows
        .into_iter()
        .filter(|r| r.len() == 6)
        .map(|mut r| {
            let imported_at = r.pop().unwrap_or_default();
            let mut it = r.into_iter();
            let mut next = || it.next().unwrap_or_default();
            Stored {
                entry: Entry {
                    user_identity: next(),
                    team: next(),
                    department: next(),
                    cost_center: next(),
                    manager: next(),
                },
                imported_at,
            }
        })
        .collect())
}

/// What `entries` changes in a directory that holds `current`: the report's counts, and the
/// identities to tombstone (with their current entries).
fn diff<'a>(current: &'a [Stored], entries: &[Entry]) -> (ImportReport, Vec<&'a Entry>) {
    let before: BTreeMap<&str, &Entry> = current
        .iter()
        .map(|s| (s.entry.user_identity.as_str(), &s.entry))
        .collect();
    let mut report = ImportReport::default();
    for e in entries {
        match before.get(e.user_identity.as_str()) {
            None => report.added += 1,
            Some(old) if old.fields() != e.fields() => report.updated += 1,
            Some(_) => report.unchanged += 1,
        }
    }
    let kept: std::collections::HashSet<&str> = entries.iter().map(|e| e.user_identity.as_str()).collect();
    let gone: Vec<&Entry> = before
        .into_iter()
        .filter(|(id, _)| !kept.contains(id))
        .map(|(_, e)| e)
        .collect();
    report.removed = gone.len();
    (report, gone)
}

/// The INSERT of one import: every entry at `version` (deleted = 0), then a tombstone for each
/// of `gone` (deleted = 1), imported at `imported_at` (`YYYY-MM-DD hh:mm:ss`).
fn insert_sql(
    database: &str,
    tenant: &str,
    entries: &[Entry],
    gone: &[&Entry],
    imported_at: &str,
    version: u64,
) -> String {
    let mut sql = format!(
        "INSERT INTO {database}.{TABLE} (tenant, user_identity, team, department, cost_center, manager, \
         imported_at, version, deleted) VALUES "
    );
    let (tenant, at) = (quote(tenant), quote(imported_at));
    let rows = entries.iter().map(|e| (e, 0)).chain(gone.iter().map(|e| (*e, 1)));
    for (i, (e, deleted)) in rows.enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!(
            "({tenant}, {}, {}, {}, {}, {}, {at}, {version}, {deleted})",
            quote(&e.user_identity),
            quote(&e.team),
            quote(&e.department),
            quote(&e.cost_center),
            quote(&e.manager)
        ));
    }
    sql
}

/// Replaces the tenant's directory with `entries` (from [`parse_csv`]) and marks every day of
/// the tenant's `cost_daily` for a rollup refresh, so the rollups resolve teams again. Nothing
/// is written when nothing changed.
pub async fn import(store: &Store, tenant: &str, entries: &[Entry]) -> Result<ImportReport, StoreError> {
    let current = list(store, tenant).await?;
    let (mut report, gone) = diff(&current, entries);
    if !report.changed() {
        return Ok(report);
    }
    let (version, server_s) = rollups::version_now(store).await?;
    let imported_at = datetime_text(server_s);
    store
        .execute(&insert_sql(
            store.database(),
            tenant,
            entries,
            &gone,
            &imported_at,
            version,
        ))
        .await?;
    report.version = version;
    report.days_marked = mark_team_days(store, tenant).await?;
    Ok(report)
}

/// Marks every (tenant, day) the tenant has in the rollups that resolve teams (`cost_daily`,
/// `sessions_daily`, `metrics_daily`) for a refresh, so that they re-resolve; returns how
/// many.
pub async fn mark_team_days(store: &Store, tenant: &str) -> Result<usize, StoreError> {
    let days: Vec<u16> = store
        .rows(&format!(
            "SELECT DISTINCT toUInt16(day) FROM (SELECT day FROM {db}.cost_daily WHERE tenant = {t} \
             UNION ALL SELECT day FROM {db}.sessions_daily WHERE tenant = {t} \
             UNION ALL SELECT day FROM {db}.metrics_daily WHERE tenant = {t}) ORDER BY 1",
            db = store.database(),
            t = quote(tenant)
        ))
        .await?
        .into_iter()
        .filter_map(|r| r.first()?.parse().ok())
        .collect();
    let touched: Vec<(&str, u16)> = days.iter().map(|d| (tenant, *d)).collect();
    rollups::mark(store, &touched).await?;
    Ok(days.len())
}

/// `YYYY-MM-DD hh:mm:ss` of Unix seconds, UTC.
pub fn datetime_text(unix_s: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(unix_s as i64).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "user_identity,team,department,cost_center,manager\n";

    fn entry(id: &str, team: &str) -> Entry {
        Entry {
            user_identity: id.into(),
            team: team.into(),
            ..Entry::default()
        }
    }

    #[test]
    fn rfc_4180_quoting_crlf_and_trimming() {
        let text = "\u{feff}User_Identity, team ,department,cost_center,manager\r\n\
                    \"a@x.com\",\"Pay, ments\",Eng,CC-1,\"Bo \"\"the boss\"\"\"\r\n\
                    \r\n\
                    \"b@x.com\" , \" line\nbreak \",,,\n\
                      c@x.com ,  infra  ,,CC-2,";
        let got = parse_csv(text).unwrap();
        assert_eq!(
            got,
            vec![
                Entry {
                    user_identity: "a@x.com".into(),
                    team: "Pay, ments".into(),
                    department: "Eng".into(),
                    cost_center: "CC-1".into(),
                    manager: "Bo \"the boss\"".into(),
                },
                Entry {
                    user_identity: "b@x.com".into(),
                    team: "line\nbreak".into(),
                    ..Entry::default()
                },
                Entry {
                    user_identity: "c@x.com".into(),
                    team: "infra".into(),
                    cost_center: "CC-2".into(),
                    ..Entry::default()
                },
            ]
        );
        assert_eq!(
            parse_csv(HEADER).unwrap(),
            vec![],
            "a header alone is an empty directory"
        );
    }

    #[test]
    fn bad_files_are_refused_with_the_line_of_each_problem() {
        let err = |text: &str| parse_csv(text).unwrap_err().0;
        assert_eq!(err(""), vec![CsvProblem::Empty]);
        assert_eq!(
            err("\nemail,team\na,b\n"),
            vec![CsvProblem::Header {
                line: 2,
                found: "email,team".into()
            }]
        );
        let text = format!("{HEADER}a,t,,,\n,t,,,\nb,t,,\na,u,,,\n\"c\nd\",,,,\nc\nd,,,,\n");
        assert_eq!(
            err(&text),
            vec![
                CsvProblem::EmptyIdentity { line: 3 },
                CsvProblem::Fields { line: 4, found: 4 },
                CsvProblem::Duplicate {
                    line: 5,
                    identity: "a".into(),
                    first: 2
                },
                CsvProblem::Fields { line: 8, found: 1 },
            ]
        );
        assert_eq!(
            err(&format!("{HEADER}a,\"t,,,\n")),
            vec![CsvProblem::Unterminated { line: 2 }]
        );
        assert_eq!(
            err(&format!("{HEADER}a,t\"x,,,\n")),
            vec![CsvProblem::StrayQuote { line: 2 }]
        );
        assert_eq!(
            err(&format!("{HEADER}a,\"t\"x,,,\n")),
            vec![CsvProblem::AfterQuote { line: 2 }]
        );
        let many = format!("{HEADER}{}", ",,,,\n".repeat(12));
        let text = parse_csv(&many).unwrap_err().to_string();
        assert!(
            text.starts_with("the directory file was refused, nothing was imported:\n  line 2: user_identity is empty"),
            "{text}"
        );
        assert!(
            text.ends_with("line 11: user_identity is empty\n  ... and 2 more"),
            "{text}"
        );
    }

    #[test]
    fn a_reimport_counts_additions_changes_and_removals() {
        let stored = |e: Entry| Stored {
            entry: e,
            imported_at: String::new(),
        };
        let current = vec![
            stored(entry("a", "t1")),
            stored(entry("b", "t1")),
            stored(entry("c", "t1")),
        ];
        let (report, gone) = diff(&current, &[entry("a", "t1"), entry("b", "t2"), entry("d", "t1")]);
        assert_eq!(
            (report.added, report.updated, report.unchanged, report.removed),
            (1, 1, 1, 1)
        );
        assert_eq!(gone, vec![&entry("c", "t1")]);
        let (same, gone) = diff(&current, &[entry("a", "t1"), entry("b", "t1"), entry("c", "t1")]);
        assert!(!same.changed() && gone.is_empty());
    }

    #[test]
    fn one_insert_holds_the_new_versions_and_the_tombstones() {
        let gone = entry("o'ld", "t");
        let sql = insert_sql("db1", "acme", &[entry("a", "t")], &[&gone], "2026-12-01 10:00:00", 7);
        assert_eq!(
            sql,
            "INSERT INTO db1.user_directory (tenant, user_identity, team, department, cost_center, manager, \
             imported_at, version, deleted) VALUES ('acme', 'a', 't', '', '', '', '2026-12-01 10:00:00', 7, 0), \
             ('acme', 'o\\'ld', 't', '', '', '', '2026-12-01 10:00:00', 7, 1)"
        );
        assert_eq!(datetime_text(1_796_000_000), "2026-11-30 00:53:20");
    }
}
