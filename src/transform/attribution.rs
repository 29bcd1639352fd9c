//! Who and which team: the person behind an event, metric point or span (`user_identity`), and
//! the team, department and cost center it is charged to.
//!
//! **The person** is the first present of `user.email`, `enduser.id`, `user.account_id`,
//! `process.owner` and `user.id` ([`IDENTITY_KEYS`]). First-party Claude Code sends
//! `user.email`; Bedrock, Vertex, Foundry and API-key deployments set `enduser.id` through
//! `OTEL_RESOURCE_ATTRIBUTES`; Claude Desktop sends `user.account_id`; third-party Cowork has only
//! the OS login, `process.owner`. A key present on the record beats the same key on the resource.
//!
//! **The team** (and department, cost center) is read from attribute keys configured per column
//! ([`Attribution`]). In order of precedence:
//! 1. the record's (data point's, span's) attributes;
//! 2. the resource's attributes;
//! 3. the API key's default attributes (`cowork-ingest keys create --attr team=...`), the only
//!    way to attribute Cowork, which cannot set resource attributes;
//! 4. in the rollups only, the `user_directory` table, by `user_identity`.
//!
//! Within one level, the earlier key in the configured list wins.

use serde::Deserialize;

use crate::otlp::decode::{Attr, Value};

/// The attributes that name the person, in order of precedence.
pub const IDENTITY_KEYS: [&str; 5] = [
    "user.email",
    "enduser.id",
    "user.account_id",
    "process.owner",
    "user.id",
];

/// `[attribution]`: which attribute keys carry the team, the department and the cost center.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Attribution {
    /// Keys read for `team`. Default `["team", "team.id", "team.name", "team_name"]`.
    pub team: Vec<String>,
    /// Keys read for `department`. Default `["department", "dept"]`.
    pub department: Vec<String>,
    /// Keys read for `cost_center`. Default `["cost_center", "cost.center", "costcenter"]`.
    pub cost_center: Vec<String>,
}

impl Default for Attribution {
    fn default() -> Self {
        let owned = |keys: &[&str]| keys.iter().map(|k| k.to_string()).collect();
        Attribution {
            team: owned(&["team", "team.id", "team.name", "team_name"]),
            department: owned(&["department", "dept"]),
            cost_center: owned(&["cost_center", "cost.center", "costcenter"]),
        }
    }
}

/// The team, department and cost center of one row ('' where nothing says).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Teams<'a> {
    pub team: &'a str,
    pub department: &'a str,
    pub cost_center: &'a str,
}

/// What normalization needs to know about where a payload came from.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'s> {
    /// The tenant that owns the payload (from the API key).
    pub tenant: &'s str,
    pub attribution: &'s Attribution,
    /// The API key's default attributes (`cowork-key-attributes` header).
    pub key_defaults: &'s [(String, String)],
}

impl<'s> Scope<'s> {
    /// A payload of `tenant` with the default attribution keys and no key defaults (tests,
    /// benches and tools that have no configuration).
    pub fn new(tenant: &'s str) -> Scope<'s> {
        static DEFAULT: std::sync::OnceLock<Attribution> = std::sync::OnceLock::new();
        Scope {
            tenant,
            attribution: DEFAULT.get_or_init(Attribution::default),
            key_defaults: &[],
        }
    }
}

impl Attribution {
    /// The team columns of one row: record over resource over the key's defaults.
    ///
    /// One pass over each attribute list finds all three columns; a 64-bit filter of the
    /// configured keys' lengths and first bytes turns most attributes away without a comparison.
    pub fn teams<'a>(
        &self,
        record: &[Attr<'a>],
        resource: &[Attr<'a>],
        key_defaults: &'a [(String, String)],
    ) -> Teams<'a> {
        let lists = [&self.team, &self.department, &self.cost_center];
        let mut filter = 0u64;
        for k in lists.iter().flat_map(|l| l.iter()) {
            filter |= bloom(k);
        }
        // Per column: the value and the position of its key in the column's list.
        let mut found: [(&'a str, usize); 3] = [("", usize::MAX); 3];
        for attrs in [record, resource] {
            if found.iter().all(|(v, _)| !v.is_empty()) {
                break;
            }
            // A column found on the record is not looked for on the resource.
            let level: [bool; 3] = std::array::from_fn(|c| found[c].0.is_empty());
            for a in attrs {
                if filter & bloom(a.key) == 0 {
                    continue;
                }
                let Value::Str(v) = a.value else { continue };
                let v = v.trim();
                if v.is_empty() {
                    continue;
                }
                for (c, keys) in lists.iter().enumerate() {
                    if !level[c] {
                        continue;
                    }
                    if let Some(pos) = keys.iter().position(|k| k == a.key) {
                        if pos < found[c].1 {
                            found[c] = (v, pos);
                        }
                    }
                }
            }
        }
        let pick = |c: usize| -> &'a str {
            if !found[c].0.is_empty() {
                return found[c].0;
            }
            lists[c]
                .iter()
                .find_map(|k| key_defaults.iter().find(|(dk, v)| dk == k && !v.is_empty()))
                .map_or("", |(_, v)| v.as_str())
        };
        Teams {
            team: pick(0),
            department: pick(1),
            cost_center: pick(2),
        }
    }

    /// Whether `key` is one the team columns are read from.
    pub fn is_team_key(&self, key: &str) -> bool {
        [&self.team, &self.department, &self.cost_center]
            .iter()
            .any(|keys| keys.iter().any(|k| k == key))
    }
}

/// One bit of a 64-bit filter for `key`, from its length and first byte.
#[inline]
fn bloom(key: &str) -> u64 {
    let first = key.as_bytes().first().copied().unwrap_or(0);
    1 << ((key.len() as u64).wrapping_mul(7).wrapping_add(u64::from(first)) & 63)
}

/// The person: the first of [`IDENTITY_KEYS`] with a value, and the key it came from. `values`
/// holds each key's value in that order ('' when absent), record over resource already applied.
pub fn identity(values: [&str; 5]) -> (&str, &'static str) {
    for (key, v) in IDENTITY_KEYS.iter().zip(values) {
        if !v.is_empty() {
            return (v, key);
        }
    }
    ("", "")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr<'a>(key: &'a str, v: &'a str) -> Attr<'a> {
        Attr {
            key,
            value: Value::Str(v),
        }
    }

    #[test]
    fn the_person_is_the_first_identity_key_present() {
        assert_eq!(identity(["a@x", "e", "", "", "u"]), ("a@x", "user.email"));
        assert_eq!(
            identity(["", "arn:aws:sts::1:x", "", "", "u"]),
            ("arn:aws:sts::1:x", "enduser.id")
        );
        assert_eq!(identity(["", "", "acct", "owner", ""]), ("acct", "user.account_id"));
        assert_eq!(identity(["", "", "", "jdoe", "u"]), ("jdoe", "process.owner"));
        assert_eq!(identity(["", "", "", "", "u"]), ("u", "user.id"));
        assert_eq!(identity([""; 5]), ("", ""));
    }

    #[test]
    fn record_beats_resource_beats_the_key_defaults_and_earlier_keys_win() {
        let a = Attribution::default();
        let defaults = vec![
            ("team".to_string(), "from-key".to_string()),
            ("cost_center".to_string(), "CC-KEY".to_string()),
        ];
        let resource = [attr("team.id", "res-team"), attr("dept", "res-dept")];
        let record = [attr("team.name", "rec-team"), attr("team", "rec-team-canonical")];
        let t = a.teams(&record, &resource, &defaults);
        assert_eq!(
            t,
            Teams {
                team: "rec-team-canonical",
                department: "res-dept",
                cost_center: "CC-KEY"
            }
        );
        // Nothing on the payload: the key's defaults.
        let t = a.teams(&[], &[], &defaults);
        assert_eq!((t.team, t.department, t.cost_center), ("from-key", "", "CC-KEY"));
        // Blank values do not count.
        let t = a.teams(&[attr("team", "  ")], &[attr("team", "res")], &[]);
        assert_eq!(t.team, "res");
    }

    #[test]
    fn key_lists_are_configurable() {
        let a = Attribution {
            team: vec!["squad".into()],
            ..Attribution::default()
        };
        let t = a.teams(&[attr("team", "ignored"), attr("squad", "blue")], &[], &[]);
        assert_eq!(t.team, "blue");
        assert!(a.is_team_key("squad") && a.is_team_key("dept") && !a.is_team_key("team"));
    }
}
