//! The table catalogue: every table the consumer writes, its name and its column list. The DDL
//! (`schemas/`), the row encoder, retention, erasure, the configuration's retention keys and the
//! insert metrics all take their tables from here. A leaf: it depends on nothing in the crate.

use serde::Deserialize;

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
}

/// The identity columns every typed table starts with (a macro, so that `concat!` can use it).
macro_rules! identity {
    () => {
        "event_id, tenant, timestamp, event_day, session_id, prompt_id, user_email, service_name, terminal_type, "
    };
}

impl Table {
    /// How many tables there are: the size of every per-table array.
    pub const COUNT: usize = 8;

    pub const ALL: [Table; Table::COUNT] = [
        Table::Events,
        Table::ApiRequests,
        Table::ApiErrors,
        Table::UserPrompts,
        Table::ToolDecisions,
        Table::ToolResults,
        Table::MetricPoints,
        Table::Spans,
    ];

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
                 organization_id, app_version, workspace_host_paths, body, attribute_keys, attribute_values, \
                 resource_keys, resource_values, received_at, kafka_partition, kafka_offset, normalizer_version"
            }
            Table::ApiRequests => concat!(
                identity!(),
                "model, cost_usd, cost_usd_micros, input_tokens, output_tokens, cache_read_tokens, \
                 cache_creation_tokens, duration_ms, speed, query_source, request_id, normalizer_version"
            ),
            Table::ApiErrors => concat!(
                identity!(),
                "model, error, status_code, attempt, duration_ms, normalizer_version"
            ),
            Table::UserPrompts => concat!(identity!(), "prompt_length, prompt, command_name, normalizer_version"),
            Table::ToolDecisions => concat!(
                identity!(),
                "tool_name, tool_use_id, decision, source, tool_source, normalizer_version"
            ),
            Table::ToolResults => concat!(
                identity!(),
                "tool_name, tool_use_id, success, duration_ms, error_type, error, decision_type, decision_source, \
                 tool_input_size_bytes, tool_result_size_bytes, normalizer_version"
            ),
            Table::MetricPoints => {
                "point_id, series_id, tenant, timestamp, event_day, time_unix_nano, start_time_unix_nano, time_source, \
                 metric, unit, kind, temporality, monotonic, value, value_type, count, sum, min, max, bucket_counts, \
                 explicit_bounds, flags, service_name, service_version, terminal_type, session_id, user_email, user_id, \
                 user_account_uuid, user_account_id, organization_id, app_version, app_entrypoint, model, model_variant, \
                 type, start_type, tool_name, decision, source, language, query_source, speed, effort, agent_name, \
                 skill_name, plugin_name, marketplace_name, mcp_server_name, mcp_tool_name, attribute_keys, \
                 attribute_values, resource_keys, resource_values, scope_name, received_at, kafka_partition, \
                 kafka_offset, normalizer_version"
            }
            Table::Spans => {
                "trace_id, span_id, parent_span_id, tenant, timestamp, event_day, start_time_unix_nano, \
                 end_time_unix_nano, time_source, duration_ms, name, span_type, kind, status, status_message, \
                 service_name, service_version, terminal_type, session_id, prompt_id, user_email, user_id, \
                 user_account_uuid, organization_id, app_version, model, model_variant, query_source, speed, ttft_ms, \
                 stop_reason, input_tokens, output_tokens, cache_read_tokens, cache_creation_tokens, result_tokens, \
                 request_id, attempt, success, http_status_code, error, tool_name, tool_use_id, decision, source, \
                 interaction_sequence, user_prompt_length, user_prompt, agent_id, parent_agent_id, hook_event, \
                 hook_name, span_events, span_links, attribute_keys, attribute_values, resource_keys, resource_values, \
                 scope_name, received_at, kafka_partition, kafka_offset, normalizer_version"
            }
        }
    }
}

/// The rollup tables, refreshed by the consumer from the tables above ([`super::rollups`]), in
/// refresh order: `sessions` is re-aggregated from `sessions_daily`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rollup {
    CostDaily,
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
    pub const ALL: [Rollup; 11] = [
        Rollup::CostDaily,
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
        let err = serde_json::from_str::<Table>("\"evnts\"").unwrap_err().to_string();
        assert!(err.contains("evnts") && err.contains("tool_results"), "{err}");
    }
}
