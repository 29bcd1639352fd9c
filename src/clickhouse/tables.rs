//! The table catalogue: every table the consumer writes, its name and its column list. The DDL
//! (`schemas/`), the row encoder, retention, erasure, the configuration's retention keys and the
//! insert metrics all take their tables from here. The tables of the documented event kinds
//! beyond the original five take their columns from the kind catalogue
//! ([`crate::transform::kinds`]), which this module depends on and nothing else in the crate.

use std::sync::OnceLock;

use serde::Deserialize;

use crate::transform::kinds::KINDS;

/// The pipeline's tables, in the order rows are inserted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Table {
    Events,
    ApiRequests,
    ApiErrors,
    UserPrompts,
    ToolDecisions,
    ToolResults,
    MetricPoints,
    Spans,
    // The documented event kinds with tables of their own, in `kinds::KINDS` order.
    AssistantResponses,
    ApiRefusals,
    PermissionModeChanges,
    AuthEvents,
    McpServerConnections,
    PluginInstalls,
    PluginLoads,
    SkillActivations,
    HookRegistrations,
    HookExecutions,
    Compactions,
    SubagentRuns,
    ApiRetriesExhausted,
    InternalErrors,
    FeedbackSurveys,
    RetentionSweeps,
    AtMentions,
    ApiBodies,
}

/// The identity columns every typed table starts with (a macro, so that `concat!` can use it).
macro_rules! identity {
    () => {
        "event_id, tenant, timestamp, event_day, session_id, prompt_id, user_email, service_name, terminal_type, \
         user_identity, user_identity_source, user_account_id, app_version, team, department, cost_center, "
    };
}

/// The spend attribution columns of `api_requests` and `api_errors`.
macro_rules! spend {
    () => {
        "agent_name, skill_name, plugin_name, marketplace_name, mcp_server_name, mcp_tool_name, effort, \
         workflow_run_id, workflow_name, client_request_id, "
    };
}

/// The columns read from `tool_parameters` on `tool_decisions` and `tool_results`.
macro_rules! tool_parameters {
    () => {
        "mcp_server_name, mcp_tool_name, skill_name, subagent_type, git_commit_id, bash_command, "
    };
}

/// The identity columns of every typed table, as [`Table::columns`] lists them.
pub const TYPED_IDENTITY: &str = identity!();

impl Table {
    /// How many tables there are: the size of every per-table array.
    pub const COUNT: usize = 26;

    pub const ALL: [Table; Table::COUNT] = [
        Table::Events,
        Table::ApiRequests,
        Table::ApiErrors,
        Table::UserPrompts,
        Table::ToolDecisions,
        Table::ToolResults,
        Table::MetricPoints,
        Table::Spans,
        Table::AssistantResponses,
        Table::ApiRefusals,
        Table::PermissionModeChanges,
        Table::AuthEvents,
        Table::McpServerConnections,
        Table::PluginInstalls,
        Table::PluginLoads,
        Table::SkillActivations,
        Table::HookRegistrations,
        Table::HookExecutions,
        Table::Compactions,
        Table::SubagentRuns,
        Table::ApiRetriesExhausted,
        Table::InternalErrors,
        Table::FeedbackSurveys,
        Table::RetentionSweeps,
        Table::AtMentions,
        Table::ApiBodies,
    ];

    /// The first of the kind tables: `Table::ALL[KIND_BASE + i]` is `kinds::KINDS[i]`'s.
    const KIND_BASE: usize = Table::AssistantResponses as usize;

    /// The table of `kinds::KINDS[i]`.
    pub fn of_kind(i: usize) -> Table {
        Table::ALL[Table::KIND_BASE + i]
    }

    /// This table's index in `kinds::KINDS`, when it is a kind table.
    pub fn kind(self) -> Option<usize> {
        (self as usize).checked_sub(Table::KIND_BASE)
    }

    /// The tables that hold one row per event of a typed kind (every table but `events`,
    /// `metric_points` and `spans`).
    pub fn is_typed_event(self) -> bool {
        !matches!(self, Table::Events | Table::MetricPoints | Table::Spans)
    }

    /// The event tables of schema v1 (migrations 001 and 002), which the v2 upgrade copies.
    pub const V1: [Table; 6] = [
        Table::Events,
        Table::ApiRequests,
        Table::ApiErrors,
        Table::UserPrompts,
        Table::ToolDecisions,
        Table::ToolResults,
    ];

    /// The table's name in ClickHouse.
    pub fn name(self) -> &'static str {
        match self {
            Table::Events => "events",
            Table::ApiRequests => "api_requests",
            Table::ApiErrors => "api_errors",
            Table::UserPrompts => "user_prompts",
            Table::ToolDecisions => "tool_decisions",
            Table::ToolResults => "tool_results",
            Table::MetricPoints => "metric_points",
            Table::Spans => "spans",
            t => KINDS[t.kind().expect("a kind table")].table,
        }
    }

    /// Index into per-table arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The columns, in the order the row encoder writes them (fixed text: no formatting per insert).
    pub fn columns(self) -> &'static str {
        match self {
            Table::Events => {
                "event_id, tenant, timestamp, event_day, timestamp_ns, time_source, event_name, service_name, \
                 terminal_type, session_id, prompt_id, event_sequence, user_email, user_id, user_account_uuid, \
                 organization_id, app_version, user_identity, user_identity_source, user_account_id, team, \
                 department, cost_center, trace_id, span_id, workspace_host_paths, body, attribute_keys, \
                 attribute_values, resource_keys, resource_values, received_at, kafka_partition, kafka_offset, \
                 normalizer_version"
            }
            Table::ApiRequests => concat!(
                identity!(),
                "model, cost_usd, cost_usd_micros, input_tokens, output_tokens, cache_read_tokens, \
                 cache_creation_tokens, duration_ms, speed, query_source, request_id, ",
                spend!(),
                "normalizer_version"
            ),
            Table::ApiErrors => concat!(
                identity!(),
                "model, error, status_code, attempt, duration_ms, request_id, query_source, speed, ",
                spend!(),
                "normalizer_version"
            ),
            Table::UserPrompts => concat!(identity!(), "prompt_length, prompt, command_name, normalizer_version"),
            Table::ToolDecisions => concat!(
                identity!(),
                "tool_name, tool_use_id, decision, source, tool_source, ",
                tool_parameters!(),
                "normalizer_version"
            ),
            Table::ToolResults => concat!(
                identity!(),
                "tool_name, tool_use_id, success, duration_ms, error_type, error, decision_type, decision_source, \
                 tool_input_size_bytes, tool_result_size_bytes, ",
                tool_parameters!(),
                "normalizer_version"
            ),
            Table::MetricPoints => {
                "point_id, series_id, tenant, timestamp, event_day, time_unix_nano, start_time_unix_nano, time_source, \
                 metric, unit, kind, temporality, monotonic, value, value_type, count, sum, min, max, bucket_counts, \
                 explicit_bounds, flags, service_name, service_version, terminal_type, session_id, user_email, user_id, \
                 user_account_uuid, user_account_id, organization_id, app_version, user_identity, \
                 user_identity_source, team, department, cost_center, app_entrypoint, model, model_variant, \
                 type, start_type, tool_name, decision, source, language, query_source, speed, effort, agent_name, \
                 skill_name, plugin_name, marketplace_name, mcp_server_name, mcp_tool_name, attribute_keys, \
                 attribute_values, resource_keys, resource_values, scope_name, received_at, kafka_partition, \
                 kafka_offset, normalizer_version"
            }
            Table::Spans => {
                "trace_id, span_id, parent_span_id, tenant, timestamp, event_day, start_time_unix_nano, \
                 end_time_unix_nano, time_source, duration_ms, name, span_type, kind, status, status_message, \
                 service_name, service_version, terminal_type, session_id, prompt_id, user_email, user_id, \
                 user_account_uuid, organization_id, app_version, user_identity, user_identity_source, user_account_id, \
                 team, department, cost_center, model, model_variant, query_source, speed, ttft_ms, \
                 stop_reason, input_tokens, output_tokens, cache_read_tokens, cache_creation_tokens, result_tokens, \
                 request_id, attempt, success, http_status_code, error, tool_name, tool_use_id, decision, source, \
                 interaction_sequence, user_prompt_length, user_prompt, agent_id, parent_agent_id, hook_event, \
                 hook_name, span_events, span_links, attribute_keys, attribute_values, resource_keys, resource_values, \
                 scope_name, received_at, kafka_partition, kafka_offset, normalizer_version"
            }
            t => kind_columns(t.kind().expect("a kind table")),
        }
    }
}

/// A kind table's columns: the typed identity, its variant column, its own columns in catalogue
/// order, and `normalizer_version`. Built once.
fn kind_columns(i: usize) -> &'static str {
    static COLUMNS: OnceLock<Vec<String>> = OnceLock::new();
    &COLUMNS.get_or_init(|| {
        KINDS
            .iter()
            .map(|k| {
                let mut text = String::from(TYPED_IDENTITY);
                for name in k.variant.iter().copied().chain(k.columns.iter().map(|c| c.name)) {
                    text.push_str(name);
                    text.push_str(", ");
                }
                text.push_str("normalizer_version");
                text
            })
            .collect()
    })[i]
}

/// The rollup tables, refreshed by the consumer from the tables above ([`super::rollups`]), in
/// refresh order: `sessions` is re-aggregated from `sessions_daily`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rollup {
    CostDaily,
    CostAttributionDaily,
    ApiRequestsHourly,
    ApiErrorsHourly,
    ToolDecisionsHourly,
    ToolResultsHourly,
    SessionsHourly,
    WorkspacePathsDaily,
    SessionsDaily,
    Sessions,
    MetricsDaily,
    SpansHourly,
}

impl Rollup {
    pub const ALL: [Rollup; 12] = [
        Rollup::CostDaily,
        Rollup::CostAttributionDaily,
        Rollup::ApiRequestsHourly,
        Rollup::ApiErrorsHourly,
        Rollup::ToolDecisionsHourly,
        Rollup::ToolResultsHourly,
        Rollup::SessionsHourly,
        Rollup::WorkspacePathsDaily,
        Rollup::SessionsDaily,
        Rollup::Sessions,
        Rollup::MetricsDaily,
        Rollup::SpansHourly,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Rollup::CostDaily => "cost_daily",
            Rollup::CostAttributionDaily => "cost_attribution_daily",
            Rollup::ApiRequestsHourly => "api_requests_hourly",
            Rollup::ApiErrorsHourly => "api_errors_hourly",
            Rollup::ToolDecisionsHourly => "tool_decisions_hourly",
            Rollup::ToolResultsHourly => "tool_results_hourly",
            Rollup::SessionsHourly => "sessions_hourly",
            Rollup::WorkspacePathsDaily => "workspace_paths_daily",
            Rollup::SessionsDaily => "sessions_daily",
            Rollup::Sessions => "sessions",
            Rollup::MetricsDaily => "metrics_daily",
            Rollup::SpansHourly => "spans_hourly",
        }
    }
}

/// Which (tenant, day)s received rows since their last refresh.
pub const ROLLUP_DIRTY: &str = "rollup_dirty";
/// When each (tenant, day)'s rollups were last refreshed.
pub const ROLLUP_STATE: &str = "rollup_state";

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_keys_are_the_table_names() {
        for t in Table::ALL {
            let key: Table = serde_json::from_str(&format!("\"{}\"", t.name())).unwrap();
            assert_eq!(key, t);
            assert_eq!(Table::ALL[t.index()], t);
        }
        for (i, k) in KINDS.iter().enumerate() {
            assert_eq!(Table::of_kind(i).name(), k.table);
            assert_eq!(Table::of_kind(i).kind(), Some(i));
        }
        assert_eq!(Table::ALL.len(), Table::KIND_BASE + KINDS.len());
        assert!(Table::HookExecutions.columns().contains("phase, hook_event, hook_name"));
        let err = serde_json::from_str::<Table>("\"evnts\"").unwrap_err().to_string();
        assert!(err.contains("evnts") && err.contains("tool_results"), "{err}");
    }
}
