//! Normalization of the two other signals: a metric data point becomes a [`MetricPoint`], a span
//! a [`SpanRecord`]. The spellings come from the one table in [`super::normalize`] (its
//! [`METRIC`] and [`SPAN`] contexts), so that a model, a user or a tool is read the same way in
//! every signal.
//!
//! Identities are deterministic, like `event_id`: a point's `series_id` hashes the tenant, the
//! metric, its kind and temporality, the series' start time and every attribute (resource and
//! point, in any order); its `point_id` adds the point's time. A resent or replayed export
//! therefore has the same ids and collapses; a cumulative series that restarts (new start time)
//! is a new series. A span is identified by its trace and span ids.

use xxhash_rust::xxh3::Xxh3;

use super::attribution::Scope;
use super::normalize::{day_of, field_of, sent_time, split_model, Field, Identity, Slots, TimeSource, METRIC, SPAN};
use crate::otlp::decode::{Attr, Id, Number, Point, PointKind, Span, Temporality, Value};

/// One metric data point, normalized.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricPoint<'a> {
    pub point_id: u128,
    pub series_id: u128,
    /// The point's time (or the receive time, see `time_source`).
    pub timestamp_ns: u64,
    pub time_source: TimeSource,
    pub identity: Identity<'a>,
    pub service_version: &'a str,
    pub app_entrypoint: &'a str,
    /// Without the context suffix metrics append (`claude-opus-4-6[1m]` → `claude-opus-4-6`).
    pub model: &'a str,
    /// The suffix itself (`1m`), or empty.
    pub model_variant: &'a str,
    pub kind_type: &'a str,
    pub start_type: &'a str,
    pub tool_name: &'a str,
    pub decision: &'a str,
    pub source: &'a str,
    pub language: &'a str,
    pub query_source: &'a str,
    pub speed: &'a str,
    pub effort: &'a str,
    pub agent_name: &'a str,
    pub skill_name: &'a str,
    pub plugin_name: &'a str,
    pub marketplace_name: &'a str,
    pub mcp_server_name: &'a str,
    pub mcp_tool_name: &'a str,
    /// A number point's value (`asDouble`, or `asInt` as a double); a histogram's or summary's
    /// sum; 0 when none was sent.
    pub value: f64,
    /// `double`, `int` or `none`.
    pub value_type: &'static str,
    pub coercion_failures: u32,
}

impl MetricPoint<'_> {
    pub fn event_day(&self) -> u16 {
        day_of(self.timestamp_ns, self.time_source)
    }
}

/// True when `key` is stored in a typed column of `metric_points` (for [`METRIC`]) or `spans`
/// (for [`SPAN`]): such keys are left out of the attribute arrays, every other key is kept there.
/// `gen_ai.response.finish_reasons` is kept too: `stop_reason` holds only its first reason.
pub fn is_typed(key: &str, context: &str) -> bool {
    use Field::*;
    let Some((field, _)) = field_of(key, context) else {
        return false;
    };
    let identity = matches!(
        field,
        ServiceName
            | ServiceVersion
            | TerminalType
            | SessionId
            | UserEmail
            | UserId
            | UserAccountUuid
            | OrganizationId
            | AppVersion
    );
    match context {
        METRIC => {
            identity
                || matches!(
                    field,
                    UserAccountId
                        | AppEntrypoint
                        | Model
                        | Type
                        | StartType
                        | ToolName
                        | Decision
                        | Source
                        | Language
                        | QuerySource
                        | Speed
                        | Effort
                        | AgentName
                        | SkillName
                        | PluginName
                        | MarketplaceName
                        | McpServerName
                        | McpToolName
                )
        }
        SPAN => {
            key != "gen_ai.response.finish_reasons"
                && (identity
                    || matches!(
                        field,
                        PromptId
                            | SpanType
                            | Model
                            | QuerySource
                            | Speed
                            | TtftMs
                            | StopReason
                            | InputTokens
                            | OutputTokens
                            | CacheReadTokens
                            | CacheCreationTokens
                            | ResultTokens
                            | RequestId
                            | Attempt
                            | Success
                            | StatusCode
                            | Error
                            | ToolName
                            | ToolUseId
                            | Decision
                            | Source
                            | InteractionSequence
                            | UserPromptLength
                            | UserPrompt
                            | AgentId
                            | ParentAgentId
                            | HookEvent
                            | HookName
                    ))
        }
        _ => false,
    }
}

/// Adds one attribute to an order-independent set hash: each attribute is hashed alone and the
/// hashes are summed, so the order a client sends them in does not matter.
fn attr_hash(a: &Attr<'_>, text: &mut String) -> u128 {
    let mut h = Xxh3::new();
    h.update(a.key.as_bytes());
    h.update(&[0x1e]);
    match &a.value {
        Value::Str(s) => h.update(s.as_bytes()),
        v => {
            text.clear();
            v.write_text(text);
            h.update(text.as_bytes());
        }
    }
    h.digest128()
}

/// The series of a point: tenant, metric, kind, temporality, start time and every attribute.
pub fn series_id(tenant: &str, resource: &[Attr<'_>], point: &Point<'_>) -> u128 {
    let mut text = String::new();
    let set = resource
        .iter()
        .chain(&point.attributes)
        .fold(0u128, |acc, a| acc.wrapping_add(attr_hash(a, &mut text)));
    let mut h = Xxh3::new();
    for part in [tenant, point.metric, point.kind.as_str(), point.temporality.as_str()] {
        h.update(part.as_bytes());
        h.update(&[0x1f]);
    }
    h.update(&point.start_time_unix_nano.to_le_bytes());
    h.update(&set.to_le_bytes());
    h.digest128()
}

/// Normalizes one data point. `received_at_ns` is the edge's receive time (Kafka header).
pub fn normalize_point<'a>(
    scope: &Scope<'a>,
    resource: &[Attr<'a>],
    point: &Point<'a>,
    received_at_ns: u64,
) -> MetricPoint<'a> {
    let mut s = Slots::merged(resource, &point.attributes, METRIC);
    let series = series_id(scope.tenant, resource, point);
    let mut h = Xxh3::new();
    h.update(&series.to_le_bytes());
    h.update(&point.time_unix_nano.to_le_bytes());
    let (timestamp_ns, time_source) = sent_time(point.time_unix_nano, received_at_ns);
    let (value, value_type) = match (point.kind, point.number) {
        (PointKind::Gauge | PointKind::Sum, Number::Double(d)) => (d, "double"),
        (PointKind::Gauge | PointKind::Sum, Number::Int(i)) => (i as f64, "int"),
        (PointKind::Gauge | PointKind::Sum, Number::None) => (0.0, "none"),
        (_, _) => match point.sum {
            Some(sum) => (sum, "double"),
            None => (0.0, "none"),
        },
    };
    let (model, model_variant) = split_model(s.str(Field::Model));
    MetricPoint {
        point_id: h.digest128(),
        series_id: series,
        timestamp_ns,
        time_source,
        identity: Identity::from_slots(&mut s, scope, &point.attributes, resource),
        service_version: s.str(Field::ServiceVersion),
        app_entrypoint: s.str(Field::AppEntrypoint),
        model,
        model_variant,
        kind_type: s.str(Field::Type),
        start_type: s.str(Field::StartType),
        tool_name: s.str(Field::ToolName),
        decision: s.str(Field::Decision),
        source: s.str(Field::Source),
        language: s.str(Field::Language),
        query_source: s.str(Field::QuerySource),
        speed: s.str(Field::Speed),
        effort: s.str(Field::Effort),
        agent_name: s.str(Field::AgentName),
        skill_name: s.str(Field::SkillName),
        plugin_name: s.str(Field::PluginName),
        marketplace_name: s.str(Field::MarketplaceName),
        mcp_server_name: s.str(Field::McpServerName),
        mcp_tool_name: s.str(Field::McpToolName),
        value,
        value_type,
        coercion_failures: s.failures,
    }
}

/// One span, normalized.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanRecord<'a> {
    pub trace_id: Id<'a>,
    pub span_id: Id<'a>,
    pub parent_span_id: Id<'a>,
    /// The start time (or the receive time, see `time_source`).
    pub timestamp_ns: u64,
    pub time_source: TimeSource,
    pub start_ns: u64,
    pub end_ns: u64,
    /// End minus start, in milliseconds; 0 when either is missing or the end comes first.
    pub duration_ms: f64,
    pub name: &'a str,
    /// `span.type`, else the name without its `claude_code.` prefix.
    pub span_type: &'a str,
    pub kind: &'static str,
    /// `unset`, `ok` or `error`.
    pub status: &'static str,
    pub status_message: &'a str,
    pub identity: Identity<'a>,
    pub service_version: &'a str,
    pub model: &'a str,
    pub model_variant: &'a str,
    pub query_source: &'a str,
    pub speed: &'a str,
    pub ttft_ms: Option<f64>,
    pub stop_reason: &'a str,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub cache_read_tokens: Option<u64>,
    pub cache_creation_tokens: Option<u64>,
    pub result_tokens: Option<u64>,
    pub request_id: &'a str,
    pub attempt: Option<u64>,
    pub success: Option<bool>,
    pub http_status_code: Option<u16>,
    pub error: &'a str,
    pub tool_name: &'a str,
    pub tool_use_id: &'a str,
    pub decision: &'a str,
    pub source: &'a str,
    pub interaction_sequence: Option<i64>,
    pub user_prompt_length: Option<u64>,
    /// Content: stored under the tenant's prompt policy.
    pub user_prompt: Option<&'a str>,
    pub agent_id: &'a str,
    pub parent_agent_id: &'a str,
    pub hook_event: &'a str,
    pub hook_name: &'a str,
    pub events: u32,
    pub links: u32,
    pub coercion_failures: u32,
}

impl SpanRecord<'_> {
    pub fn event_day(&self) -> u16 {
        day_of(self.timestamp_ns, self.time_source)
    }
}

/// A number sent as an int, a double or a numeric string.
fn float(s: &mut Slots<'_, '_>, f: Field) -> Option<f64> {
    let parsed = match s.get(f)? {
        Value::Int(i) => Some(*i as f64),
        Value::Double(d) => Some(*d),
        Value::Str(t) => t.trim().parse::<f64>().ok(),
        _ => None,
    };
    if parsed.is_none() {
        s.failures += 1;
    }
    parsed
}

fn span_kind(kind: i32) -> &'static str {
    match kind {
        1 => "internal",
        2 => "server",
        3 => "client",
        4 => "producer",
        5 => "consumer",
        _ => "unspecified",
    }
}

/// Normalizes one span. `received_at_ns` is the edge's receive time (Kafka header).
pub fn normalize_span<'a>(
    scope: &Scope<'a>,
    resource: &[Attr<'a>],
    span: &Span<'a>,
    received_at_ns: u64,
) -> SpanRecord<'a> {
    let mut s = Slots::merged(resource, &span.attributes, SPAN);
    let (timestamp_ns, time_source) = sent_time(span.start_time_unix_nano, received_at_ns);
    let duration_ms = if span.start_time_unix_nano > 0 && span.end_time_unix_nano >= span.start_time_unix_nano {
        (span.end_time_unix_nano - span.start_time_unix_nano) as f64 / 1e6
    } else {
        0.0
    };
    // `stop_reason` (v2.1.121), else the first of `gen_ai.response.finish_reasons` (an array).
    let stop_reason = match s.get(Field::StopReason) {
        Some(Value::Array(items)) => match items.first() {
            Some(Value::Str(r)) => r,
            _ => "",
        },
        _ => s.str(Field::StopReason),
    };
    let span_type = match s.str(Field::SpanType) {
        "" => span.name.strip_prefix("claude_code.").unwrap_or(span.name),
        t => t,
    };
    let (model, model_variant) = split_model(s.str(Field::Model));
    SpanRecord {
        trace_id: span.trace_id,
        span_id: span.span_id,
        parent_span_id: span.parent_span_id,
        timestamp_ns,
        time_source,
        start_ns: span.start_time_unix_nano,
        end_ns: span.end_time_unix_nano,
        duration_ms,
        name: span.name,
        span_type,
        kind: span_kind(span.kind),
        status: match span.status_code {
            1 => "ok",
            2 => "error",
            _ => "unset",
        },
        status_message: span.status_message,
        identity: Identity::from_slots(&mut s, scope, &span.attributes, resource),
        service_version: s.str(Field::ServiceVersion),
        model,
        model_variant,
        query_source: s.str(Field::QuerySource),
        speed: s.str(Field::Speed),
        ttft_ms: float(&mut s, Field::TtftMs),
        stop_reason,
        input_tokens: s.uint(Field::InputTokens),
        output_tokens: s.uint(Field::OutputTokens),
        cache_read_tokens: s.uint(Field::CacheReadTokens),
        cache_creation_tokens: s.uint(Field::CacheCreationTokens),
        result_tokens: s.uint(Field::ResultTokens),
        request_id: s.str(Field::RequestId),
        attempt: s.uint(Field::Attempt),
        success: s.bool(Field::Success),
        http_status_code: s.uint(Field::StatusCode).and_then(|c| u16::try_from(c).ok()),
        error: s.str(Field::Error),
        tool_name: s.str(Field::ToolName),
        tool_use_id: s.str(Field::ToolUseId),
        decision: s.str(Field::Decision),
        source: s.str(Field::Source),
        interaction_sequence: s.int(Field::InteractionSequence),
        user_prompt_length: s.uint(Field::UserPromptLength),
        user_prompt: Some(s.str(Field::UserPrompt)).filter(|p| !p.is_empty() && *p != "<REDACTED>"),
        agent_id: s.str(Field::AgentId),
        parent_agent_id: s.str(Field::ParentAgentId),
        hook_event: s.str(Field::HookEvent),
        hook_name: s.str(Field::HookName),
        events: span.events,
        links: span.links,
        coercion_failures: s.failures,
    }
}

/// True for a point whose value is a running total ([`Temporality::Cumulative`] sums).
pub fn is_cumulative(point: &Point<'_>) -> bool {
    point.kind == PointKind::Sum && point.temporality == Temporality::Cumulative
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr<'a>(key: &'a str, value: Value<'a>) -> Attr<'a> {
        Attr { key, value }
    }

    const RECEIVED: u64 = 1_795_100_000_000_000_000;

    fn point<'a>(attrs: Vec<Attr<'a>>) -> Point<'a> {
        Point {
            metric: "claude_code.lines_of_code.count",
            kind: PointKind::Sum,
            temporality: Temporality::Delta,
            monotonic: true,
            start_time_unix_nano: 1_795_000_000_000_000_000,
            time_unix_nano: 1_795_000_060_000_000_000,
            number: Number::Double(12.0),
            attributes: attrs,
            ..Point::default()
        }
    }

    #[test]
    fn points_read_the_documented_attributes_and_strip_the_model_suffix() {
        let p = point(vec![
            attr("type", Value::Str("added")),
            attr("model", Value::Str("claude-opus-4-6[1m]")),
            attr("session.id", Value::Str("s1")),
            attr("user.email", Value::Str("ana@acme.example")),
            attr("tool", Value::Str("Edit")),
            attr("language", Value::Str("Rust")),
        ]);
        let resource = [attr("service.name", Value::Str("claude-code"))];
        let n = normalize_point(&Scope::new("acme"), &resource, &p, RECEIVED);
        assert_eq!((n.model, n.model_variant), ("claude-opus-4-6", "1m"));
        assert_eq!((n.kind_type, n.tool_name, n.language), ("added", "Edit", "Rust"));
        assert_eq!(n.identity.service_name, "claude-code");
        assert_eq!((n.value, n.value_type), (12.0, "double"));
        assert_eq!(n.time_source, TimeSource::Record);
        assert_eq!(n.event_day(), (1_795_000_060u64 / 86_400) as u16);
        let mut int = p.clone();
        int.number = Number::Int(7);
        assert_eq!(
            normalize_point(&Scope::new("acme"), &resource, &int, RECEIVED).value_type,
            "int"
        );
    }

    #[test]
    fn ids_ignore_attribute_order_and_the_receive_time_but_not_the_start_time() {
        let a = point(vec![
            attr("type", Value::Str("added")),
            attr("session.id", Value::Str("s")),
        ]);
        let b = point(vec![
            attr("session.id", Value::Str("s")),
            attr("type", Value::Str("added")),
        ]);
        let (na, nb) = (
            normalize_point(&Scope::new("acme"), &[], &a, RECEIVED),
            normalize_point(&Scope::new("acme"), &[], &b, RECEIVED + 3_600_000_000_000),
        );
        assert_eq!((na.point_id, na.series_id), (nb.point_id, nb.series_id));
        let mut later = a.clone();
        later.time_unix_nano += 60_000_000_000;
        let nl = normalize_point(&Scope::new("acme"), &[], &later, RECEIVED);
        assert_eq!(nl.series_id, na.series_id, "the same series");
        assert_ne!(nl.point_id, na.point_id, "a later point");
        let mut restarted = a.clone();
        restarted.start_time_unix_nano += 1;
        assert_ne!(
            normalize_point(&Scope::new("acme"), &[], &restarted, RECEIVED).series_id,
            na.series_id
        );
        assert_ne!(
            normalize_point(&Scope::new("globex"), &[], &a, RECEIVED).series_id,
            na.series_id
        );
        let removed = point(vec![
            attr("type", Value::Str("removed")),
            attr("session.id", Value::Str("s")),
        ]);
        assert_ne!(
            normalize_point(&Scope::new("acme"), &[], &removed, RECEIVED).series_id,
            na.series_id
        );
    }

    #[test]
    fn only_attributes_with_a_column_leave_the_arrays() {
        for key in ["session.id", "model", "tool", "language", "user.account_id"] {
            assert!(is_typed(key, METRIC), "{key}");
        }
        // Known spellings without a column in metric_points stay in the arrays.
        for key in ["cost_usd", "prompt.id", "event.sequence", "duration_ms", "custom.team"] {
            assert!(!is_typed(key, METRIC), "{key}");
        }
        for key in [
            "ttft_ms",
            "stop_reason",
            "request_id",
            "user_prompt",
            "prompt.id",
            "span.type",
        ] {
            assert!(is_typed(key, SPAN), "{key}");
        }
        for key in [
            "duration_ms",
            "gen_ai.response.finish_reasons",
            "gen_ai.response.id",
            "error_type",
        ] {
            assert!(!is_typed(key, SPAN), "{key}");
        }
    }

    #[test]
    fn spans_type_their_attributes() {
        let span = Span {
            trace_id: Id::Raw(&[0xAB; 16]),
            span_id: Id::Hex("00F067AA0BA902B7"),
            name: "claude_code.llm_request",
            kind: 1,
            start_time_unix_nano: 1_795_000_000_000_000_000,
            end_time_unix_nano: 1_795_000_002_500_000_000,
            status_code: 2,
            attributes: vec![
                attr("model", Value::Str("claude-sonnet-4-6")),
                attr("ttft_ms", Value::Int(830)),
                attr(
                    "gen_ai.response.finish_reasons",
                    Value::Array(vec![Value::Str("max_tokens")]),
                ),
                attr("input_tokens", Value::Int(1200)),
                attr("success", Value::Bool(false)),
                attr("status_code", Value::Int(529)),
                attr("interaction.sequence", Value::Int(3)),
            ],
            ..Span::default()
        };
        let n = normalize_span(&Scope::new("acme"), &[], &span, RECEIVED);
        assert_eq!(n.span_type, "llm_request");
        assert_eq!(n.duration_ms, 2500.0);
        assert_eq!((n.ttft_ms, n.stop_reason), (Some(830.0), "max_tokens"));
        assert_eq!(
            (n.input_tokens, n.success, n.http_status_code),
            (Some(1200), Some(false), Some(529))
        );
        assert_eq!(
            (n.status, n.kind, n.interaction_sequence),
            ("error", "internal", Some(3))
        );
        assert_eq!(n.span_id.to_hex(), "00f067aa0ba902b7");
        assert_eq!(n.coercion_failures, 0);
        let blocked = Span {
            name: "claude_code.tool.blocked_on_user",
            attributes: vec![
                attr("span.type", Value::Str("tool.blocked_on_user")),
                attr("decision", Value::Str("accept")),
                attr("source", Value::Str("user_temporary")),
            ],
            ..Span::default()
        };
        let n = normalize_span(&Scope::new("acme"), &[], &blocked, RECEIVED);
        assert_eq!(
            (n.span_type, n.decision, n.source),
            ("tool.blocked_on_user", "accept", "user_temporary")
        );
        assert_eq!(
            (n.time_source, n.event_day(), n.duration_ms),
            (TimeSource::Received, 0, 0.0)
        );
    }
}
