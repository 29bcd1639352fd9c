//! The documented event kinds that have a typed table of their own beyond the five original ones:
//! for each, its table, the event names it takes, and every column with the attribute keys it is
//! read from and its type. This catalogue is the one home of those tables: normalization reads
//! attributes by it, the row encoder writes columns by it, and the DDL (migration
//! `005_attribution`) and the README's column lists are generated from it.
//!
//! Column names are the documented attribute names with dots as underscores (`skill.name` →
//! `skill_name`). Every table also has the identity, team and session columns every typed table
//! has (`super::normalize::Identity`). An event that nobody has documented yet goes to `events`
//! alone.

/// How a column is read from its attribute and stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    /// Text as sent (`String`).
    Text,
    /// Text from a small set of values (`LowCardinality(String)` where the server has it).
    Lc,
    /// A count or a size; a number sent as a string is read as a number (`Nullable(UInt32)`).
    U32,
    /// A duration, a token count (`Nullable(UInt64)`).
    U64,
    /// An HTTP status (`Nullable(UInt16)`).
    U16,
    /// `true`/`false`, sent as a boolean or as a string (`Nullable(UInt8)`): NULL is unknown.
    Bool,
    /// Content under the tenant's content policy, by the attribute's key (`String`: empty when
    /// absent or dropped, `sha256:<hex>` when hashed).
    Content,
    /// Long content under the policy (`Nullable(String)`: NULL when absent or dropped).
    LongContent,
}

impl Type {
    /// The column's type in the DDL template (`{lc}` is rendered per server).
    pub fn sql(self) -> &'static str {
        match self {
            Type::Text | Type::Content => "String",
            Type::Lc => "{lc}",
            Type::U32 => "Nullable(UInt32)",
            Type::U64 => "Nullable(UInt64)",
            Type::U16 => "Nullable(UInt16)",
            Type::Bool => "Nullable(UInt8)",
            Type::LongContent => "Nullable(String){codec_text}",
        }
    }
}

/// One typed column: its name, the attribute keys it is read from (the first present wins), its
/// type, and what it holds, for the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub keys: &'static [&'static str],
    pub ty: Type,
}

/// One documented event kind with a table of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    pub table: &'static str,
    /// The event names (without `claude_code.`) it takes, each with the value of
    /// [`Kind::variant`] it stores (empty when the table has no variant column).
    pub events: &'static [(&'static str, &'static str)],
    /// A column that says which of several events a row came from (`phase`, `direction`).
    pub variant: Option<&'static str>,
    pub columns: &'static [Column],
    /// What one row is, for the README.
    pub doc: &'static str,
}

const fn col(name: &'static str, keys: &'static [&'static str], ty: Type) -> Column {
    Column { name, keys, ty }
}

use Type::*;

use crate::util::lookup::KeyTable;

/// The attribution set of API events (docs: "Cost monitoring").
macro_rules! attribution {
    () => {
        [
            col("agent_name", &["agent.name"], Lc),
            col("skill_name", &["skill.name"], Lc),
            col("plugin_name", &["plugin.name"], Lc),
            col("marketplace_name", &["marketplace.name"], Lc),
            col("mcp_server_name", &["mcp_server.name"], Lc),
            col("mcp_tool_name", &["mcp_tool.name"], Lc),
        ]
    };
}

const API_REFUSAL: &[Column] = &{
    let a = attribution!();
    [
        col("model", &["model"], Lc),
        col("request_id", &["request_id"], Text),
        col("query_source", &["query_source"], Lc),
        col("speed", &["speed"], Lc),
        col("attempt", &["attempt"], U32),
        col("effort", &["effort"], Lc),
        col("server_fallback_hop", &["server_fallback_hop"], Bool),
        col("has_category", &["has_category"], Bool),
        col("has_explanation", &["has_explanation"], Bool),
        col("category", &["category"], Lc),
        a[0],
        a[1],
        a[2],
        a[3],
        a[4],
        a[5],
    ]
};

/// Every kind, in table order.
pub const KINDS: &[Kind] = &[
    Kind {
        table: "assistant_responses",
        events: &[("assistant_response", "")],
        variant: None,
        doc: "`assistant_response`: one model reply (Cowork and Claude Code v2.1.193+)",
        columns: &[
            col("model", &["model"], Lc),
            col("request_id", &["request_id"], Text),
            col("message_uuid", &["message.uuid"], Text),
            col("query_source", &["query_source"], Lc),
            col("response_length", &["response_length"], U64),
            col("response", &["response"], LongContent),
        ],
    },
    Kind {
        table: "api_refusals",
        events: &[("api_refusal", "")],
        variant: None,
        doc: "`api_refusal`: a request the API refused on safety grounds (no `api_error` fires for it)",
        columns: API_REFUSAL,
    },
    Kind {
        table: "permission_mode_changes",
        events: &[("permission_mode_changed", "")],
        variant: None,
        doc: "`permission_mode_changed`: a switch between `default`, `plan`, `acceptEdits`, `auto` and `bypassPermissions`",
        columns: &[
            col("from_mode", &["from_mode"], Lc),
            col("to_mode", &["to_mode"], Lc),
            col("trigger", &["trigger"], Lc),
        ],
    },
    Kind {
        table: "auth_events",
        events: &[("auth", "")],
        variant: None,
        doc: "`auth`: a login or logout, and whether it worked",
        columns: &[
            col("action", &["action"], Lc),
            col("success", &["success"], Bool),
            col("auth_method", &["auth_method"], Lc),
            col("error_category", &["error_category"], Lc),
            col("status_code", &["status_code"], U16),
        ],
    },
    Kind {
        table: "mcp_server_connections",
        events: &[("mcp_server_connection", "")],
        variant: None,
        doc: "`mcp_server_connection`: an MCP server connected, failed or disconnected",
        columns: &[
            col("status", &["status"], Lc),
            col("transport_type", &["transport_type"], Lc),
            col("server_scope", &["server_scope"], Lc),
            col("duration_ms", &["duration_ms"], U64),
            col("error_code", &["error_code"], Lc),
            col("is_plugin", &["is_plugin"], Bool),
            col("plugin_id_hash", &["plugin_id_hash"], Text),
            col("plugin_name", &["plugin.name"], Lc),
            col("server_name", &["server_name"], Content),
            col("error", &["error"], Content),
        ],
    },
    Kind {
        table: "plugin_installs",
        events: &[("plugin_installed", "")],
        variant: None,
        doc: "`plugin_installed`: a plugin installed, from which marketplace",
        columns: &[
            col("plugin_name", &["plugin.name"], Lc),
            col("plugin_version", &["plugin.version"], Lc),
            col("marketplace_name", &["marketplace.name"], Lc),
            col("marketplace_is_official", &["marketplace.is_official"], Bool),
            col("install_trigger", &["install.trigger"], Lc),
        ],
    },
    Kind {
        table: "plugin_loads",
        events: &[("plugin_loaded", "")],
        variant: None,
        doc: "`plugin_loaded`: a plugin loaded at session start (the fleet's plugin inventory)",
        columns: &[
            col("plugin_name", &["plugin.name"], Lc),
            col("plugin_version", &["plugin.version"], Lc),
            col("marketplace_name", &["marketplace.name"], Lc),
            col("plugin_scope", &["plugin.scope"], Lc),
            col("enabled_via", &["enabled_via"], Lc),
            col("plugin_id_hash", &["plugin_id_hash"], Text),
            col("has_hooks", &["has_hooks"], Bool),
            col("has_mcp", &["has_mcp"], Bool),
            col("host_owned_mcp", &["host_owned_mcp"], Bool),
            col("skill_path_count", &["skill_path_count"], U32),
            col("command_path_count", &["command_path_count"], U32),
            col("agent_path_count", &["agent_path_count"], U32),
            col("safe_mode", &["safe_mode"], Bool),
        ],
    },
    Kind {
        table: "skill_activations",
        events: &[("skill_activated", "")],
        variant: None,
        doc: "`skill_activated`: a skill used, by the user (slash command) or by Claude",
        columns: &[
            col("skill_name", &["skill.name"], Lc),
            col("skill_source", &["skill.source"], Lc),
            col("skill_kind", &["skill.kind"], Lc),
            col("invocation_trigger", &["invocation_trigger"], Lc),
            col("plugin_name", &["plugin.name"], Lc),
            col("marketplace_name", &["marketplace.name"], Lc),
        ],
    },
    Kind {
        table: "hook_registrations",
        events: &[("hook_registered", "")],
        variant: None,
        doc: "`hook_registered`: a hook configured (including hooks from `policySettings`)",
        columns: &[
            col("hook_event", &["hook_event"], Lc),
            col("hook_type", &["hook_type"], Lc),
            col("hook_source", &["hook_source"], Lc),
            col("safe_mode", &["safe_mode"], Bool),
            col("hook_matcher", &["hook_matcher"], Content),
            col("plugin_name", &["plugin.name"], Lc),
            col("plugin_id_hash", &["plugin_id_hash"], Text),
        ],
    },
    Kind {
        table: "hook_executions",
        events: &[("hook_execution_start", "start"), ("hook_execution_complete", "complete")],
        variant: Some("phase"),
        doc: "`hook_execution_start` (`phase` `start`) and `hook_execution_complete` (`complete`): hooks run for one hook event; `num_blocking` > 0 is a hook that blocked an action",
        columns: &[
            col("hook_event", &["hook_event"], Lc),
            col("hook_name", &["hook_name"], Lc),
            col("hook_source", &["hook_source"], Lc),
            col("num_hooks", &["num_hooks"], U32),
            col("managed_only", &["managed_only"], Bool),
            col("safe_mode", &["safe_mode"], Bool),
            col("num_success", &["num_success"], U32),
            col("num_blocking", &["num_blocking"], U32),
            col("num_non_blocking_error", &["num_non_blocking_error"], U32),
            col("num_cancelled", &["num_cancelled"], U32),
            col("total_duration_ms", &["total_duration_ms"], U64),
            col("hook_definitions", &["hook_definitions"], LongContent),
        ],
    },
    Kind {
        table: "compactions",
        events: &[("compaction", "")],
        variant: None,
        doc: "`compaction`: the context compacted, automatically or by `/compact`",
        columns: &[
            col("trigger", &["trigger"], Lc),
            col("success", &["success"], Bool),
            col("duration_ms", &["duration_ms"], U64),
            col("pre_tokens", &["pre_tokens"], U64),
            col("post_tokens", &["post_tokens"], U64),
            col("precompute_reuse", &["precompute_reuse"], Lc),
            col("error", &["error"], Content),
        ],
    },
    Kind {
        table: "subagent_runs",
        events: &[("subagent_completed", "")],
        variant: None,
        doc: "`subagent_completed`: one subagent run, its tokens, tool uses and time",
        columns: &[
            col("agent_type", &["agent_type"], Lc),
            col("agent_source", &["agent.source"], Lc),
            col("is_built_in", &["is_built_in"], Bool),
            col("is_async", &["is_async"], Bool),
            col("model", &["model"], Lc),
            col("final_model", &["final_model"], Lc),
            col("model_swapped", &["model_swapped"], Bool),
            col("total_tokens", &["total_tokens"], U64),
            col("total_tool_uses", &["total_tool_uses"], U32),
            col("duration_ms", &["duration_ms"], U64),
            col("plugin_name", &["plugin.name"], Lc),
            col("plugin_id_hash", &["plugin_id_hash"], Text),
        ],
    },
    Kind {
        table: "api_retries_exhausted",
        events: &[("api_retries_exhausted", "")],
        variant: None,
        doc: "`api_retries_exhausted`: a request that failed after its last retry",
        columns: &[
            col("model", &["model"], Lc),
            col("speed", &["speed"], Lc),
            col("status_code", &["status_code"], U16),
            col("total_attempts", &["total_attempts"], U32),
            col("total_retry_duration_ms", &["total_retry_duration_ms"], U64),
            col("query_source", &["query_source"], Lc),
            col("effort", &["effort"], Lc),
            col("error", &["error"], Content),
        ],
    },
    Kind {
        table: "internal_errors",
        events: &[("internal_error", "")],
        variant: None,
        doc: "`internal_error`: a client-side error (stability by version)",
        columns: &[
            col("error_name", &["error_name"], Lc),
            col("error_code", &["error_code"], Lc),
        ],
    },
    Kind {
        table: "feedback_surveys",
        events: &[("feedback_survey", "")],
        variant: None,
        doc: "`feedback_survey`: a session-quality survey shown or answered",
        columns: &[
            col("event_type", &["event_type"], Lc),
            col("survey_type", &["survey_type"], Lc),
            col("appearance_id", &["appearance_id"], Text),
            col("response", &["response"], Lc),
            col("enabled_via_override", &["enabled_via_override"], Bool),
        ],
    },
    Kind {
        table: "retention_sweeps",
        events: &[("retention_sweep", "")],
        variant: None,
        doc: "`retention_sweep`: the client's data-retention cleanup ran (v2.1.227+)",
        columns: &[
            col("result", &["result"], Lc),
            col("skip_reason", &["skip_reason"], Lc),
            col("period_days", &["period_days"], U32),
            col("used_default", &["used_default"], Bool),
            col("transcripts_deleted", &["transcripts_deleted"], U64),
            col("session_files_deleted", &["session_files_deleted"], U64),
            col("artifacts_deleted", &["artifacts_deleted"], U64),
            col("files_retained_fresh", &["files_retained_fresh"], U64),
            col("files_past_cutoff", &["files_past_cutoff"], U64),
            col("error_count", &["error_count"], U64),
        ],
    },
    Kind {
        table: "at_mentions",
        events: &[("at_mention", "")],
        variant: None,
        doc: "`at_mention`: an @-mention in a prompt",
        columns: &[
            col("mention_type", &["mention_type"], Lc),
            col("success", &["success"], Bool),
        ],
    },
    Kind {
        table: "api_bodies",
        events: &[("api_request_body", "request"), ("api_response_body", "response")],
        variant: Some("direction"),
        doc: "`api_request_body` (`direction` `request`) and `api_response_body` (`response`): raw API bodies, under the `body` policy",
        columns: &[
            col("model", &["model"], Lc),
            col("query_source", &["query_source"], Lc),
            col("request_id", &["request_id"], Text),
            col("body_length", &["body_length"], U64),
            col("body_truncated", &["body_truncated"], Bool),
            col("body", &["body"], LongContent),
            col("body_ref", &["body_ref"], Content),
        ],
    },
];

/// The kind an event name belongs to, and its variant value.
pub fn kind_of(event_name: &str) -> Option<(usize, &'static str)> {
    static BY_EVENT: std::sync::OnceLock<KeyTable<(usize, &'static str)>> = std::sync::OnceLock::new();
    let table = BY_EVENT.get_or_init(|| {
        let events = KINDS.iter().enumerate();
        KeyTable::new(events.flat_map(|(i, k)| k.events.iter().map(move |&(name, variant)| (name, (i, variant)))))
    });
    table.get(event_name).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_are_unique_and_follow_the_attributes() {
        let mut tables = HashSet::new();
        let mut events = HashSet::new();
        for k in KINDS {
            assert!(tables.insert(k.table), "{} twice", k.table);
            let mut cols = HashSet::new();
            for c in k.columns {
                assert!(cols.insert(c.name), "{}.{} twice", k.table, c.name);
                assert!(!c.keys.is_empty());
                // The documented name, dots as underscores (`skill.name` → `skill_name`).
                assert_eq!(c.name, c.keys[0].replace('.', "_"), "{}", k.table);
            }
            for (e, _) in k.events {
                assert!(events.insert(*e), "{e} in two kinds");
            }
            assert_eq!(k.variant.is_some(), k.events.len() > 1, "{}", k.table);
        }
        assert_eq!(KINDS.len(), 18);
        assert_eq!(
            kind_of("hook_execution_complete").map(|(i, v)| (KINDS[i].table, v)),
            Some(("hook_executions", "complete"))
        );
        assert_eq!(kind_of("some_future_event"), None);
    }
}
