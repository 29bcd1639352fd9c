//! Every label vocabulary of the pipeline's metrics, as enums. Each has `ALL` (what the
//! describe functions register at 0, so `rate()` works from the first scrape) and `as_str`
//! (the label value). Code that emits a metric takes one of these, never a string, so a value
//! cannot drift from the list the dashboards and alerts are written against.

/// Declares a label enum with its values, `ALL` and `as_str`.
macro_rules! label {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $value:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $value,)+
                }
            }
        }
    };
}

label! {
    /// Why a request was not accepted: the `reason` label of `cowork_edge_rejections_total`.
    RejectReason {
        Unauthenticated => "unauthenticated",
        Forbidden => "forbidden",
        UnsupportedMediaType => "unsupported_media_type",
        UnsupportedEncoding => "unsupported_encoding",
        BodyTooLarge => "body_too_large",
        DecompressedTooLarge => "decompressed_too_large",
        BadCompression => "bad_compression",
        InvalidPayload => "invalid_payload",
        BodyTimeout => "body_timeout",
        RateLimited => "rate_limited",
        Overloaded => "overloaded",
        KafkaUnavailable => "kafka_unavailable",
        KafkaRejected => "kafka_rejected",
    }
}

label! {
    /// How a request ended: the `outcome` label of `cowork_edge_requests_total`.
    RequestOutcome {
        Accepted => "accepted",
        Rejected => "rejected",
        Backoff => "backoff",
    }
}

label! {
    /// Which OTLP transport carried a request.
    Transport {
        Http => "http",
        Grpc => "grpc",
    }
}

label! {
    /// Body bytes as sent or after decompression: `cowork_edge_received_bytes_total{stage}`.
    BytesStage {
        Wire => "wire",
        Decompressed => "decompressed",
    }
}

label! {
    /// Which per-key limit refused a request: `cowork_edge_rate_limited_total{limit}`.
    RateLimit {
        Events => "events",
        Bytes => "bytes",
    }
}

label! {
    /// Kafka produce error classes: `cowork_edge_kafka_produce_errors_total{class}`.
    ProduceErrorClass {
        QueueFull => "queue_full",
        Timeout => "timeout",
        TooLarge => "too_large",
        Unavailable => "unavailable",
    }
}

label! {
    /// Why a payload was dead-lettered: the `class` label of
    /// `cowork_consumer_dead_letters_total` and the `cowork-dlq-class` header.
    DeadLetterClass {
        BadHeaders => "bad_headers",
        BadCompression => "bad_compression",
        TooLarge => "too_large",
        Undecodable => "undecodable",
        ClickhouseRejected => "clickhouse_rejected",
    }
}

label! {
    /// What became of a Kafka message: `cowork_consumer_messages_total{outcome}`.
    MessageOutcome {
        Inserted => "inserted",
        DeadLettered => "dead_lettered",
    }
}

label! {
    /// Event names with their own value on `cowork_consumer_events_total{event}`; anything else
    /// is `other`.
    EventKind {
        UserPrompt => "user_prompt",
        ApiRequest => "api_request",
        ApiError => "api_error",
        ToolDecision => "tool_decision",
        ToolResult => "tool_result",
        Other => "other",
        /// A metric data point (`metric_points`).
        MetricPoint => "metric_point",
        /// A span (`spans`).
        Span => "span",
        // The documented events with tables of their own beyond the first five
        // (`transform::kinds`).
        AssistantResponse => "assistant_response",
        ApiRefusal => "api_refusal",
        PermissionModeChanged => "permission_mode_changed",
        Auth => "auth",
        McpServerConnection => "mcp_server_connection",
        PluginInstalled => "plugin_installed",
        PluginLoaded => "plugin_loaded",
        SkillActivated => "skill_activated",
        HookRegistered => "hook_registered",
        HookExecutionStart => "hook_execution_start",
        HookExecutionComplete => "hook_execution_complete",
        Compaction => "compaction",
        SubagentCompleted => "subagent_completed",
        ApiRetriesExhausted => "api_retries_exhausted",
        InternalError => "internal_error",
        FeedbackSurvey => "feedback_survey",
        RetentionSweep => "retention_sweep",
        AtMention => "at_mention",
        ApiRequestBody => "api_request_body",
        ApiResponseBody => "api_response_body",
    }
}

impl EventKind {
    /// The label of a normalized event name: its own value, or `other`.
    pub fn of_event(name: &str) -> EventKind {
        EventKind::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == name && !matches!(k, EventKind::MetricPoint | EventKind::Span))
            .unwrap_or(EventKind::Other)
    }
}

impl EventKind {
    /// Index into per-kind counters.
    pub fn index(self) -> usize {
        self as usize
    }
}

label! {
    /// A failed insert, by what the consumer does next: `cowork_consumer_insert_errors_total{class}`.
    InsertErrorClass {
        /// Back off and send the same rows again.
        Retry => "retry",
        /// Bisect the batch and dead-letter what fails alone.
        Reject => "reject",
    }
}

label! {
    /// `cowork_consumer_rebalances_total{kind}`.
    RebalanceKind {
        Assign => "assign",
        Revoke => "revoke",
    }
}

label! {
    /// A security-relevant event a record reports: `cowork_consumer_security_events_total{kind}`.
    /// The seven signals of Claude Code's security map that the telemetry carries.
    SecurityKind {
        /// `permission_mode_changed` to `bypassPermissions`.
        PermissionBypass => "permission_bypass",
        /// `auth` with `success` false.
        AuthFailure => "auth_failure",
        /// `mcp_server_connection` with a failed status.
        McpConnectionFailure => "mcp_connection_failure",
        /// `plugin_installed` from a marketplace that is not official.
        PluginInstallUnofficial => "plugin_install_unofficial",
        /// `hook_execution_complete` with `num_blocking` > 0.
        HookBlock => "hook_block",
        /// `api_refusal`.
        ApiRefusal => "api_refusal",
        /// `tool_decision` with `decision` reject.
        ToolReject => "tool_reject",
    }
}

impl SecurityKind {
    /// Index into per-kind counters.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Label names of the budget gauges (`cowork_budget_*`), in this order: the budget's tenant,
/// its scope (`tenant`, `team`, `cost_center` or `user`: [`crate::clickhouse::budgets::Scope`])
/// and the team, cost center or user_identity it limits (empty for scope `tenant`). Bounded by
/// the configured budgets: one series per live budget, gone when it is removed.
pub const BUDGET_LABELS: [&str; 3] = ["tenant", "scope", "scope_value"];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn label_values_are_distinct_snake_case() {
        let lists: [Vec<&str>; 6] = [
            RejectReason::ALL.iter().map(|l| l.as_str()).collect(),
            DeadLetterClass::ALL.iter().map(|l| l.as_str()).collect(),
            ProduceErrorClass::ALL.iter().map(|l| l.as_str()).collect(),
            EventKind::ALL.iter().map(|l| l.as_str()).collect(),
            InsertErrorClass::ALL.iter().map(|l| l.as_str()).collect(),
            SecurityKind::ALL.iter().map(|l| l.as_str()).collect(),
        ];
        for list in lists {
            assert_eq!(list.iter().collect::<HashSet<_>>().len(), list.len(), "{list:?}");
            for v in list {
                assert!(v.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{v}");
            }
        }
        for (i, k) in EventKind::ALL.iter().enumerate() {
            assert_eq!(k.index(), i);
        }
        // Every documented kind with a table of its own has its own value.
        for k in crate::transform::kinds::KINDS {
            for (event, _) in k.events {
                assert_eq!(EventKind::of_event(event).as_str(), *event);
            }
        }
        assert_eq!(EventKind::of_event("some_future_event"), EventKind::Other);
        for (i, k) in SecurityKind::ALL.iter().enumerate() {
            assert_eq!(k.index(), i);
        }
        assert_eq!(
            SecurityKind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
            [
                "permission_bypass",
                "auth_failure",
                "mcp_connection_failure",
                "plugin_install_unofficial",
                "hook_block",
                "api_refusal",
                "tool_reject"
            ],
            "the kinds the alerts and the README name"
        );
    }
}
