//! Normalization: the one place that knows every spelling of every attribute.
//!
//! A decoded record ([`crate::decode::Record`]) becomes an [`Event`]: its name, its identity, a
//! trustworthy timestamp, a deterministic `event_id`, and the typed fields of its kind. Every
//! decision below names the client version or vendor it serves, and has a unit test.
//!
//! Coercion never drops an event: a value that cannot be read as its type leaves the typed
//! field empty and is counted in [`Event::coercion_failures`]; the raw value stays in the
//! attribute arrays.

use std::borrow::Cow;
use std::sync::OnceLock;

use serde::Deserialize;

use super::attribution::{self, Scope, Teams};
use super::kinds::{self, Kind, Type};
use crate::otlp::decode::{Attr, Id, Record, Value};
use crate::util::lookup::KeyTable;

/// Bumped whenever normalization changes what a row holds. It is the replacing version of the
/// typed tables, so re-consuming after a fix supersedes old rows instead of adding to them.
pub const NORMALIZER_VERSION: u32 = 1;

/// The earliest sent time taken as the event's own: 2000-01-01T00:00:00Z.
pub const MIN_EVENT_NS: u64 = 946_684_800 * 1_000_000_000;
/// The first sent time no longer taken as the event's own: 2100-01-01T00:00:00Z.
pub const END_EVENT_NS: u64 = 4_102_444_800 * 1_000_000_000;
const DAY_NS: u64 = 86_400 * 1_000_000_000;

/// Which clock the stored timestamp came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeSource {
    /// `timeUnixNano`, as every Claude Code version sends it.
    Record,
    /// `observedTimeUnixNano`, when the event time is missing.
    Observed,
    /// The `event.timestamp` attribute (ISO 8601), when both OTLP times are missing.
    EventTimestamp,
    /// No time was sent: stored at the edge's receive time, filed under day 1970-01-01.
    Received,
    /// The sent time was outside 2000–2100: stored at the edge's receive time, filed under day
    /// 1970-01-01. The bounds are fixed, never relative to the receive time, so that a resend on
    /// another day is filed under the same day as its first copy.
    Clamped,
}

impl TimeSource {
    pub const ALL: [TimeSource; 5] = [
        TimeSource::Record,
        TimeSource::Observed,
        TimeSource::EventTimestamp,
        TimeSource::Received,
        TimeSource::Clamped,
    ];

    /// The `time_source` column's value (and the `source` label of the time-fallbacks counter).
    pub fn as_str(self) -> &'static str {
        match self {
            TimeSource::Record => "record",
            TimeSource::Observed => "observed",
            TimeSource::EventTimestamp => "event_timestamp",
            TimeSource::Received => "received",
            TimeSource::Clamped => "clamped",
        }
    }
}

/// Identity attributes. Claude Code puts them on each record; custom resource attributes and
/// other SDKs put them on the resource, so both are read, the record winning. The person and the
/// team follow [`attribution`]'s rules.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Identity<'a> {
    pub service_name: &'a str,
    pub terminal_type: &'a str,
    pub session_id: &'a str,
    pub prompt_id: &'a str,
    pub user_email: &'a str,
    pub user_id: &'a str,
    pub user_account_uuid: &'a str,
    pub user_account_id: &'a str,
    pub organization_id: &'a str,
    /// `app.version`, else `service.version` (which every Claude Code version sets).
    pub app_version: &'a str,
    /// The person ([`attribution::IDENTITY_KEYS`]) and the key it came from.
    pub user_identity: &'a str,
    pub user_identity_source: &'static str,
    pub team: &'a str,
    pub department: &'a str,
    pub cost_center: &'a str,
}

impl<'a> Identity<'a> {
    /// The identity fields of an event, a metric point or a span, as sorted into `s`, with the
    /// team columns resolved from its attributes and the key's defaults.
    pub(super) fn from_slots(
        s: &mut Slots<'_, 'a>,
        scope: &Scope<'a>,
        attrs: &[Attr<'a>],
        resource: &[Attr<'a>],
    ) -> Identity<'a> {
        let user_email = s.str(Field::UserEmail);
        let user_id = s.str(Field::UserId);
        let user_account_id = s.str(Field::UserAccountId);
        let (user_identity, user_identity_source) = attribution::identity([
            user_email,
            s.str(Field::EnduserId),
            user_account_id,
            s.str(Field::ProcessOwner),
            user_id,
        ]);
        let Teams {
            team,
            department,
            cost_center,
        } = scope.attribution.teams(attrs, resource, scope.key_defaults);
        Identity {
            service_name: s.str(Field::ServiceName),
            terminal_type: s.str(Field::TerminalType),
            session_id: s.str(Field::SessionId),
            prompt_id: s.str(Field::PromptId),
            user_email,
            user_id,
            user_account_uuid: s.str(Field::UserAccountUuid),
            user_account_id,
            organization_id: s.str(Field::OrganizationId),
            app_version: match s.str(Field::AppVersion) {
                "" => s.str(Field::ServiceVersion),
                v => v,
            },
            user_identity,
            user_identity_source,
            team,
            department,
            cost_center,
        }
    }
}

/// The spend attribution of API events (docs: "Cost monitoring"): which subagent, skill,
/// plugin, MCP server, effort level and workflow a request served.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Spend<'a> {
    pub agent_name: &'a str,
    pub skill_name: &'a str,
    pub plugin_name: &'a str,
    pub marketplace_name: &'a str,
    pub mcp_server_name: &'a str,
    pub mcp_tool_name: &'a str,
    pub effort: &'a str,
    pub workflow_run_id: &'a str,
    pub workflow_name: &'a str,
    pub client_request_id: &'a str,
}

impl<'a> Spend<'a> {
    fn from_slots(s: &mut Slots<'_, 'a>) -> Spend<'a> {
        Spend {
            agent_name: s.str(Field::AgentName),
            skill_name: s.str(Field::SkillName),
            plugin_name: s.str(Field::PluginName),
            marketplace_name: s.str(Field::MarketplaceName),
            mcp_server_name: s.str(Field::McpServerName),
            mcp_tool_name: s.str(Field::McpToolName),
            effort: s.str(Field::Effort),
            workflow_run_id: s.str(Field::WorkflowRunId),
            workflow_name: s.str(Field::WorkflowName),
            client_request_id: s.str(Field::ClientRequestId),
        }
    }
}

/// What `tool_parameters` (a JSON object sent as text on tool_result and tool_decision) says
/// about a tool call. The client sends it only with `OTEL_LOG_TOOL_DETAILS=1`, except Claude
/// Desktop's built-in MCP names (v2.1.214+). `bash_command` falls back to `full_command`.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct ToolParameters<'a> {
    #[serde(borrow)]
    pub mcp_server_name: Cow<'a, str>,
    #[serde(borrow)]
    pub mcp_tool_name: Cow<'a, str>,
    #[serde(borrow)]
    pub skill_name: Cow<'a, str>,
    #[serde(borrow)]
    pub subagent_type: Cow<'a, str>,
    #[serde(borrow)]
    pub git_commit_id: Cow<'a, str>,
    #[serde(borrow)]
    pub bash_command: Cow<'a, str>,
    #[serde(borrow)]
    pub full_command: Cow<'a, str>,
}

impl<'a> ToolParameters<'a> {
    /// Reads the attribute; text that is not a JSON object of strings is a coercion failure.
    fn read(v: Option<&Value<'a>>, failures: &mut u32) -> ToolParameters<'a> {
        let Some(Value::Str(text)) = v else {
            if v.is_some() {
                *failures += 1;
            }
            return ToolParameters::default();
        };
        match serde_json::from_str::<ToolParameters<'a>>(text) {
            Ok(mut p) => {
                if p.bash_command.is_empty() {
                    p.bash_command = std::mem::take(&mut p.full_command);
                }
                p
            }
            Err(_) => {
                *failures += 1;
                ToolParameters::default()
            }
        }
    }
}

/// `claude_code.api_request`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ApiRequest<'a> {
    pub model: &'a str,
    /// Exact cost in USD × 10⁹ (ClickHouse `Decimal(18, 9)`).
    pub cost_nanos: Option<i64>,
    /// `cost_usd_micros` as sent (v2.1.158+).
    pub cost_usd_micros: Option<i64>,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub cache_read_tokens: Option<u64>,
    pub cache_creation_tokens: Option<u64>,
    pub duration_ms: Option<u64>,
    pub speed: &'a str,
    pub query_source: &'a str,
    pub request_id: &'a str,
    pub spend: Spend<'a>,
}

/// `claude_code.api_error`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ApiError<'a> {
    pub model: &'a str,
    pub error: &'a str,
    pub status_code: Option<u16>,
    pub attempt: Option<u64>,
    pub duration_ms: Option<u64>,
    pub request_id: &'a str,
    pub query_source: &'a str,
    pub speed: &'a str,
    pub spend: Spend<'a>,
}

/// `claude_code.user_prompt`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct UserPrompt<'a> {
    pub prompt_length: Option<u64>,
    /// `None` when absent or redacted by the client (`<REDACTED>`).
    pub prompt: Option<&'a str>,
    pub command_name: &'a str,
}

/// `claude_code.tool_decision`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ToolDecision<'a> {
    pub tool_name: &'a str,
    pub tool_use_id: &'a str,
    pub decision: &'a str,
    pub source: &'a str,
    pub tool_source: &'a str,
    pub params: ToolParameters<'a>,
}

/// `claude_code.tool_result`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ToolResult<'a> {
    pub tool_name: &'a str,
    pub tool_use_id: &'a str,
    pub success: Option<bool>,
    pub duration_ms: Option<u64>,
    pub error_type: &'a str,
    pub error: &'a str,
    pub decision_type: &'a str,
    pub decision_source: &'a str,
    pub tool_input_size_bytes: Option<u64>,
    pub tool_result_size_bytes: Option<u64>,
    pub params: ToolParameters<'a>,
}

/// One value of a [`Kind`]'s column, as read for its [`Type`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell<'a> {
    /// Text, content included, as sent.
    Text(&'a str),
    /// A text column whose attribute was not sent ('' in a `String` column, NULL in a
    /// `Nullable(String)` one).
    Absent,
    /// A number (`None` when absent, or when it could not be read).
    Num(Option<u64>),
    Bool(Option<bool>),
}

/// An event of one of the documented kinds with a table of their own ([`kinds::KINDS`]): one
/// cell per column, in the catalogue's order.
#[derive(Debug, Clone, PartialEq)]
pub struct KindRow<'a> {
    /// The kind's index in [`kinds::KINDS`].
    pub index: usize,
    pub kind: &'static Kind,
    /// The variant column's value (`start`/`complete`, `request`/`response`), '' without one.
    pub variant: &'static str,
    pub cells: Vec<Cell<'a>>,
}

impl<'a> KindRow<'a> {
    /// Reads every column of `kind`: the record's attribute, else the resource's; numbers sent
    /// as strings become numbers.
    fn read(
        index: usize,
        variant: &'static str,
        attrs: &[Attr<'a>],
        resource: &[Attr<'a>],
        failures: &mut u32,
    ) -> Self {
        let kind = &kinds::KINDS[index];
        let cells = kind
            .columns
            .iter()
            .map(|c| {
                let v = [attrs, resource]
                    .into_iter()
                    .find_map(|list| c.keys.iter().find_map(|k| list.iter().find(|a| a.key == *k)))
                    .map(|a| &a.value);
                let (cell, ok) = match (c.ty, v) {
                    (Type::U16 | Type::U32 | Type::U64, None | Some(Value::Empty)) => (Cell::Num(None), true),
                    (Type::Bool, None | Some(Value::Empty)) => (Cell::Bool(None), true),
                    (_, None) => (Cell::Absent, true),
                    // Sent empty (protobuf cannot tell "" from an empty value).
                    (_, Some(Value::Empty)) => (Cell::Text(""), true),
                    (Type::Bool, Some(v)) => {
                        let b = bool_value(v);
                        (Cell::Bool(b), b.is_some())
                    }
                    (ty @ (Type::U16 | Type::U32 | Type::U64), Some(v)) => {
                        let max = match ty {
                            Type::U16 => u64::from(u16::MAX),
                            Type::U32 => u64::from(u32::MAX),
                            _ => u64::MAX,
                        };
                        match int_value(v) {
                            Ok(None) => (Cell::Num(None), true),
                            Ok(Some(i)) => {
                                let n = u64::try_from(i).ok().filter(|n| *n <= max);
                                (Cell::Num(n), n.is_some())
                            }
                            Err(()) => (Cell::Num(None), false),
                        }
                    }
                    (_, Some(Value::Str(s))) => (Cell::Text(s), true),
                    (_, Some(_)) => (Cell::Text(""), false),
                };
                if !ok {
                    *failures += 1;
                }
                cell
            })
            .collect();
        KindRow {
            index,
            kind,
            variant,
            cells,
        }
    }

    /// The cell of column `name`, for tests and counters.
    pub fn cell(&self, name: &str) -> Option<Cell<'a>> {
        let i = self.kind.columns.iter().position(|c| c.name == name)?;
        Some(self.cells[i])
    }
}

/// The typed part of an event, by kind. Unknown event names are kept as [`Detail::Other`].
#[derive(Debug, Clone, PartialEq)]
pub enum Detail<'a> {
    ApiRequest(ApiRequest<'a>),
    ApiError(ApiError<'a>),
    UserPrompt(UserPrompt<'a>),
    ToolDecision(ToolDecision<'a>),
    ToolResult(ToolResult<'a>),
    /// One of [`kinds::KINDS`].
    Kind(KindRow<'a>),
    Other,
}

/// One normalized event, borrowing from the decoded payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Event<'a> {
    /// Deterministic: the same for every copy of the event, however and whenever it is resent.
    pub event_id: u128,
    pub event_name: &'a str,
    pub timestamp_ns: u64,
    pub time_source: TimeSource,
    pub sequence: Option<i64>,
    pub identity: Identity<'a>,
    /// The record's trace context (`traceId`, `spanId`), when it was logged inside a span.
    pub trace_id: Id<'a>,
    pub span_id: Id<'a>,
    pub workspace_host_paths: Vec<&'a str>,
    pub detail: Detail<'a>,
    pub coercion_failures: u32,
}

impl Event<'_> {
    /// The event's day (days since 1970-01-01): the `event_day` column, its partition and the
    /// second column of every sort key. A function of the event as sent and nothing else: the
    /// day of its own time, or day 0 when it sent no usable time.
    pub fn event_day(&self) -> u16 {
        day_of(self.timestamp_ns, self.time_source)
    }
}

/// The day (days since 1970-01-01) a row is filed under: its own time's, or day 0 when it sent
/// no usable time. Shared by events, metric points and spans.
pub fn day_of(timestamp_ns: u64, source: TimeSource) -> u16 {
    match source {
        TimeSource::Received | TimeSource::Clamped => 0,
        _ => (timestamp_ns / DAY_NS) as u16,
    }
}

/// A sent time as the stored one: as sent when it lies in 2000–2100, else the receive time
/// (`Clamped`); the receive time (`Received`) when none was sent.
pub fn sent_time(sent_ns: u64, received_at_ns: u64) -> (u64, TimeSource) {
    if sent_ns == 0 {
        (received_at_ns, TimeSource::Received)
    } else if (MIN_EVENT_NS..END_EVENT_NS).contains(&sent_ns) {
        (sent_ns, TimeSource::Record)
    } else {
        (received_at_ns, TimeSource::Clamped)
    }
}

/// A model name as events spell it, and the context variant metrics append: `claude-opus-4-6[1m]`
/// is (`claude-opus-4-6`, `1m`). Events never carry the suffix.
pub fn split_model(model: &str) -> (&str, &str) {
    match model.strip_suffix(']').and_then(|m| m.rsplit_once('[')) {
        Some((base, variant)) => (base, variant),
        None => (model, ""),
    }
}

/// Every attribute the pipeline types, under one canonical name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
    EventName,
    EventTimestamp,
    EventSequence,
    SessionId,
    PromptId,
    UserEmail,
    UserId,
    UserAccountUuid,
    OrganizationId,
    AppVersion,
    TerminalType,
    ServiceName,
    HostPaths,
    Model,
    CostUsd,
    CostUsdMicros,
    InputTokens,
    OutputTokens,
    CacheReadTokens,
    CacheCreationTokens,
    DurationMs,
    Speed,
    QuerySource,
    RequestId,
    Error,
    StatusCode,
    Attempt,
    PromptLength,
    Prompt,
    CommandName,
    ToolName,
    ToolUseId,
    Decision,
    Source,
    ToolSource,
    Success,
    ErrorType,
    DecisionType,
    DecisionSource,
    ToolInputSize,
    ToolResultSize,
    // Metric data points and spans (the standard identity fields above apply to them too).
    ServiceVersion,
    AppEntrypoint,
    UserAccountId,
    Type,
    StartType,
    Language,
    Effort,
    AgentName,
    SkillName,
    PluginName,
    MarketplaceName,
    McpServerName,
    McpToolName,
    SpanType,
    TtftMs,
    StopReason,
    ResultTokens,
    InteractionSequence,
    UserPromptLength,
    UserPrompt,
    AgentId,
    ParentAgentId,
    HookEvent,
    HookName,
    // Attribution and tool details (issue 12).
    EnduserId,
    ProcessOwner,
    WorkflowRunId,
    WorkflowName,
    ClientRequestId,
    ToolParameters,
}

const FIELDS: usize = Field::ToolParameters as usize + 1;

/// What a [`Slots`] sorts: the spelling table differs between a log event (by its name), a
/// metric data point and a span.
pub const METRIC: &str = "\u{0}metric";
pub const SPAN: &str = "\u{0}span";

/// How a spelling ranks when several name the same field: the canonical name wins over a vendor
/// alias, which wins over a legacy name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Rank {
    Canonical,
    Alias,
    Legacy,
}

/// Which records a spelling applies to: some legacy spellings mean different fields on
/// different events.
#[derive(Debug, Clone, Copy)]
enum Ctx {
    Any,
    Events(&'static [&'static str]),
    Metric,
    Span,
    MetricOrSpan,
}

impl Ctx {
    fn matches(self, event: &str) -> bool {
        match self {
            Ctx::Any => true,
            Ctx::Events(names) => names.contains(&event),
            Ctx::Metric => event == METRIC,
            Ctx::Span => event == SPAN,
            Ctx::MetricOrSpan => event == METRIC || event == SPAN,
        }
    }
}

/// Every spelling of every typed attribute: the key, the records it applies to, the field, and
/// how it ranks. For one key, the first entry whose records match wins.
const SPELLINGS: &[(&str, Ctx, Field, Rank)] = {
    use Ctx::*;
    use Field::*;
    use Rank::*;
    &[
        ("event.name", Any, EventName, Canonical),
        ("event.timestamp", Any, EventTimestamp, Canonical),
        ("event.sequence", Any, EventSequence, Canonical),
        ("session.id", Any, SessionId, Canonical),
        ("session_id", Any, SessionId, Alias), // Loki / AxonFlow
        ("prompt.id", Any, PromptId, Canonical),
        ("prompt_id", Any, PromptId, Alias), // Loki
        ("user.email", Any, UserEmail, Canonical),
        ("user_email", Any, UserEmail, Alias), // Loki
        ("user.id", Any, UserId, Canonical),
        ("user.account_uuid", Any, UserAccountUuid, Canonical),
        ("organization.id", Any, OrganizationId, Canonical),
        ("app.version", Any, AppVersion, Canonical),
        ("terminal.type", Any, TerminalType, Canonical),
        ("service.name", Any, ServiceName, Canonical),
        ("workspace.host_paths", Any, HostPaths, Canonical),
        ("model", Any, Model, Canonical),
        ("cost_usd", Any, CostUsd, Canonical),
        ("cost_usd_micros", Any, CostUsdMicros, Canonical), // v2.1.158+
        ("input_tokens", Any, InputTokens, Canonical),
        ("output_tokens", Any, OutputTokens, Canonical),
        ("cache_read_tokens", Any, CacheReadTokens, Canonical),
        ("cache_creation_tokens", Any, CacheCreationTokens, Canonical),
        ("duration_ms", Any, DurationMs, Canonical),
        ("speed", Any, Speed, Canonical),
        ("query_source", Any, QuerySource, Canonical),
        ("request_id", Any, RequestId, Canonical),
        ("error", Any, Error, Canonical),
        ("error.message", Any, Error, Alias), // Last9
        ("status_code", Any, StatusCode, Canonical),
        ("http.status_code", Any, StatusCode, Alias), // Last9
        ("attempt", Any, Attempt, Canonical),
        ("retry_attempt", Any, Attempt, Alias), // Last9
        ("prompt_length", Any, PromptLength, Canonical),
        ("prompt.length", Any, PromptLength, Alias), // Last9
        ("prompt", Any, Prompt, Canonical),
        ("command_name", Any, CommandName, Canonical),
        ("tool_name", Any, ToolName, Canonical),
        ("tool.name", Any, ToolName, Alias), // Last9
        ("name", Events(&["tool_result", "tool_decision"]), ToolName, Legacy), // docs of 2025-06
        ("tool_use_id", Any, ToolUseId, Canonical),
        ("decision", Events(&["tool_decision"]), Decision, Canonical),
        ("tool.decision", Events(&["tool_decision"]), Decision, Alias), // Last9
        ("source", Events(&["tool_decision"]), Source, Canonical),
        ("decision.source", Events(&["tool_decision"]), Source, Alias), // Last9
        ("tool_source", Any, ToolSource, Canonical),
        ("success", Any, Success, Canonical),
        ("tool.success", Any, Success, Alias), // Last9
        ("error_type", Any, ErrorType, Canonical),
        ("decision_type", Any, DecisionType, Canonical),
        ("decision", Events(&["tool_result"]), DecisionType, Legacy), // until the doc change of 2026-02
        ("tool.decision", Events(&["tool_result"]), DecisionType, Alias),
        ("decision_source", Any, DecisionSource, Canonical),
        ("source", Events(&["tool_result"]), DecisionSource, Legacy), // until the doc change of 2026-02
        ("decision.source", Events(&["tool_result"]), DecisionSource, Alias),
        ("tool_input_size_bytes", Any, ToolInputSize, Canonical),
        ("tool_result_size_bytes", Any, ToolResultSize, Canonical),
        // Metric data points and spans. Claude Code sends its standard attributes on each point
        // and span; custom OTEL_RESOURCE_ATTRIBUTES keys come on the resource and, from v2.1.161,
        // on each point too.
        ("service.version", Any, ServiceVersion, Canonical),
        ("app.entrypoint", Any, AppEntrypoint, Canonical), // v2.1.152+, opt-in
        ("user.account_id", Any, UserAccountId, Canonical),
        ("type", Metric, Type, Canonical),
        ("start_type", Metric, StartType, Canonical),
        ("decision", MetricOrSpan, Decision, Canonical),
        ("source", MetricOrSpan, Source, Canonical),
        ("tool", Metric, ToolName, Legacy), // code_edit_tool.decision before the doc of 2026-02
        ("language", Metric, Language, Canonical),
        ("effort", Any, Effort, Canonical), // v2.1.117
        ("agent.name", Any, AgentName, Canonical),
        ("skill.name", Any, SkillName, Canonical),
        ("plugin.name", Any, PluginName, Canonical),
        ("marketplace.name", Any, MarketplaceName, Canonical),
        ("mcp_server.name", Any, McpServerName, Canonical),
        ("mcp_tool.name", Any, McpToolName, Canonical),
        ("span.type", Span, SpanType, Canonical),
        ("ttft_ms", Span, TtftMs, Canonical),
        ("stop_reason", Span, StopReason, Canonical), // v2.1.121
        ("gen_ai.response.finish_reasons", Span, StopReason, Alias),
        ("result_tokens", Span, ResultTokens, Canonical),
        ("interaction.sequence", Span, InteractionSequence, Canonical),
        ("user_prompt_length", Span, UserPromptLength, Canonical),
        ("user_prompt", Span, UserPrompt, Canonical),
        ("agent_id", Span, AgentId, Canonical), // v2.1.139
        ("parent_agent_id", Span, ParentAgentId, Canonical),
        ("hook_event", Span, HookEvent, Canonical),
        ("hook_name", Span, HookName, Canonical),
        ("enduser.id", Any, EnduserId, Canonical), // 3P Cowork/Desktop; Bedrock, Vertex, Foundry
        ("process.owner", Any, ProcessOwner, Canonical), // the OS login (3P Cowork)
        ("workflow.run_id", Any, WorkflowRunId, Canonical), // v2.1.202
        ("workflow.name", Any, WorkflowName, Canonical),
        ("client_request_id", Any, ClientRequestId, Canonical), // v2.1.214
        ("tool_parameters", Any, ToolParameters, Canonical),
    ]
};

/// [`SPELLINGS`] by key, built on first use.
fn spellings() -> &'static KeyTable<Vec<(Ctx, Field, Rank)>> {
    static TABLE: OnceLock<KeyTable<Vec<(Ctx, Field, Rank)>>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut keys: Vec<&str> = SPELLINGS.iter().map(|s| s.0).collect();
        keys.dedup();
        KeyTable::new(keys.into_iter().map(|k| {
            let entries = SPELLINGS.iter().filter(|s| s.0 == k).map(|&(_, c, f, r)| (c, f, r));
            (k, entries.collect())
        }))
    })
}

/// The spelling table. `event` is the normalized event name ([`METRIC`] for a metric data point,
/// [`SPAN`] for a span): some legacy spellings mean different fields on different events.
pub(super) fn field_of(key: &str, event: &str) -> Option<(Field, Rank)> {
    let entries = spellings().get(key)?;
    entries.iter().find(|(c, ..)| c.matches(event)).map(|&(_, f, r)| (f, r))
}

/// The attributes of one record, sorted into fields.
pub(super) struct Slots<'r, 'a> {
    slots: [Option<(&'r Value<'a>, Rank)>; FIELDS],
    pub(super) failures: u32,
}

impl<'r, 'a> Slots<'r, 'a> {
    pub(super) fn new() -> Self {
        Slots {
            slots: [None; FIELDS],
            failures: 0,
        }
    }

    pub(super) fn fill(&mut self, attrs: &'r [Attr<'a>], event: &str) {
        for a in attrs {
            if let Some((field, rank)) = field_of(a.key, event) {
                let slot = &mut self.slots[field as usize];
                if slot.is_none_or(|(_, r)| rank < r) {
                    *slot = Some((&a.value, rank));
                }
            }
        }
    }

    /// The resource's attributes, then `attrs` over them: the record's (point's, span's)
    /// spelling of a field wins at equal rank.
    pub(super) fn merged(resource: &'r [Attr<'a>], attrs: &'r [Attr<'a>], context: &str) -> Self {
        let mut s = Slots::new();
        let mut res = Slots::new();
        res.fill(resource, context);
        s.fill(attrs, context);
        for (i, slot) in res.slots.iter().enumerate() {
            if s.slots[i].is_none() {
                s.slots[i] = *slot;
            }
        }
        s
    }

    pub(super) fn get(&self, f: Field) -> Option<&'r Value<'a>> {
        self.slots[f as usize].map(|(v, _)| v).filter(|v| **v != Value::Empty)
    }

    pub(super) fn str(&mut self, f: Field) -> &'a str {
        match self.get(f) {
            None => "",
            Some(Value::Str(s)) => s,
            Some(_) => {
                self.failures += 1;
                ""
            }
        }
    }

    /// An integer sent as `intValue`, an integral `doubleValue`, or a string (all Claude Code
    /// versions before 2.1.122, and every non-API event since).
    pub(super) fn int(&mut self, f: Field) -> Option<i64> {
        int_value(self.get(f)?).unwrap_or_else(|()| {
            self.failures += 1;
            None
        })
    }

    pub(super) fn uint(&mut self, f: Field) -> Option<u64> {
        let i = self.int(f)?;
        u64::try_from(i).ok().or_else(|| {
            self.failures += 1;
            None
        })
    }

    /// `"true"`/`"false"` strings (tool_result.success in every version so far) or booleans.
    pub(super) fn bool(&mut self, f: Field) -> Option<bool> {
        let parsed = bool_value(self.get(f)?);
        if parsed.is_none() {
            self.failures += 1;
        }
        parsed
    }
}

/// An integer sent as `intValue`, an integral `doubleValue`, or a string; `Ok(None)` for the
/// strings that mean none, `Err` for a value that is not an integer.
fn int_value(v: &Value<'_>) -> Result<Option<i64>, ()> {
    let parsed = match v {
        Value::Int(i) => Some(*i),
        Value::Double(d) if d.fract() == 0.0 && d.abs() < 9.0e18 => Some(*d as i64),
        Value::Str(s) => {
            let s = s.trim();
            // api_error.status_code is the literal "undefined" for non-HTTP errors before
            // v2.1.122 (and in the Cowork doc): it means none, not a failure.
            if s.is_empty() || s == "undefined" {
                return Ok(None);
            }
            s.parse::<i64>()
                .ok()
                .or_else(|| s.parse::<f64>().ok().filter(|d| d.fract() == 0.0).map(|d| d as i64))
        }
        _ => None,
    };
    parsed.map(Some).ok_or(())
}

/// `"true"`/`"false"` strings (every non-API event so far) or booleans.
fn bool_value(v: &Value<'_>) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Int(i) => Some(*i != 0),
        Value::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Some(true),
            "false" | "0" | "no" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// Parses a decimal number exactly into units of 10⁻⁹, rounding half to even past 9 digits.
/// Accepts what JS `Number.toString` writes, exponents included (`"1e-7"`).
pub fn decimal_nanos(text: &str) -> Option<i64> {
    let text = text.trim();
    let (mantissa, exp) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], text[i + 1..].parse::<i32>().ok()?),
        None => (text, 0),
    };
    let (neg, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa.strip_prefix('+').unwrap_or(mantissa)),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    if !int_part.bytes().chain(frac_part.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    // digits × 10^(exp - frac_len) in units of 10⁻⁹ → shift by exp - frac_len + 9. The digits
    // are read where they lie: no copy of the text.
    let digits = || int_part.bytes().chain(frac_part.bytes()).map(|b| b - b'0');
    let total = int_part.len() + frac_part.len();
    let shift = exp - frac_part.len() as i32 + 9;
    let keep = if shift >= 0 {
        total
    } else {
        total.saturating_sub((-shift) as usize)
    };
    let mut value: i128 = 0;
    for d in digits().take(keep) {
        value = value.checked_mul(10)?.checked_add(i128::from(d))?;
    }
    if shift > 0 {
        if value != 0 {
            value = value.checked_mul(10i128.checked_pow(shift as u32)?)?;
        }
    } else if shift < 0 {
        // Round half to even on the dropped digits.
        let mut dropped = digits().skip(keep);
        let first = dropped.next().unwrap_or(0);
        let rest_nonzero = dropped.any(|d| d != 0);
        if first > 5 || (first == 5 && (rest_nonzero || value % 2 == 1)) {
            value += 1;
        }
    }
    let value = if neg { -value } else { value };
    i64::try_from(value).ok()
}

/// A double in units of 10⁻⁹, read through its shortest round-trip text (what the JS client's
/// `Number.toString` produced: 0.0995565 stays 0.0995565 exactly), written on the stack.
pub fn double_nanos(d: f64) -> Option<i64> {
    use std::fmt::Write as _;
    struct Text {
        buf: [u8; 48],
        len: usize,
    }
    impl std::fmt::Write for Text {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            let end = self.len + s.len();
            self.buf
                .get_mut(self.len..end)
                .ok_or(std::fmt::Error)?
                .copy_from_slice(s.as_bytes());
            self.len = end;
            Ok(())
        }
    }
    let mut t = Text { buf: [0; 48], len: 0 };
    match write!(t, "{d}") {
        Ok(()) => decimal_nanos(std::str::from_utf8(&t.buf[..t.len]).ok()?),
        // Longer than 48 characters: far beyond any cost (and beyond i64 nanos).
        Err(_) => decimal_nanos(&format!("{d}")),
    }
}

/// Parses `event.timestamp` (`2026-11-18T11:06:42.103Z`) into Unix nanoseconds.
fn rfc3339_ns(text: &str) -> Option<u64> {
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    u64::try_from(t.unix_timestamp_nanos()).ok()
}

/// The event name: `event.name`, else the body with its `claude_code.` prefix stripped, else
/// the OTLP `eventName` field (OTLP 1.5+). Any `claude_code.` prefix is stripped, so that both
/// spellings meet.
fn event_name<'a>(record: &Record<'a>) -> &'a str {
    let strip = |s: &'a str| s.strip_prefix("claude_code.").unwrap_or(s);
    for a in &record.attributes {
        if a.key == "event.name" {
            if let Value::Str(s) = a.value {
                if !s.is_empty() {
                    return strip(s);
                }
            }
        }
    }
    if let Some(Value::Str(s)) = record.body {
        if !s.is_empty() {
            return strip(s);
        }
    }
    strip(record.event_name)
}

fn host_paths<'a>(v: Option<&Value<'a>>, failures: &mut u32) -> Vec<&'a str> {
    match v {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|i| match i {
                Value::Str(s) => Some(*s),
                _ => {
                    *failures += 1;
                    None
                }
            })
            .collect(),
        // A single path sent as a string.
        Some(Value::Str(s)) => vec![*s],
        Some(_) => {
            *failures += 1;
            Vec::new()
        }
    }
}

/// The deterministic event id: a 128-bit hash of the tenant, `session.id`, `event.sequence`,
/// the event name and `timeUnixNano` as sent. Without a sequence, of the canonical record (every
/// attribute, sorted by key). Never the receive time, a fallback time or a Kafka coordinate, so
/// a resend and a replay produce the same id.
fn event_id(tenant: &str, name: &str, session: &str, sequence: Option<i64>, record: &Record<'_>) -> u128 {
    use xxhash_rust::xxh3::Xxh3;
    let mut h = Xxh3::new();
    for part in [tenant, name, session] {
        h.update(part.as_bytes());
        h.update(&[0x1f]);
    }
    h.update(&record.time_unix_nano.to_le_bytes());
    match sequence {
        Some(seq) => h.update(&seq.to_le_bytes()),
        None => {
            h.update(b"\x00canonical");
            let mut attrs: Vec<&Attr<'_>> = record.attributes.iter().collect();
            attrs.sort_by(|a, b| a.key.cmp(b.key));
            let mut text = String::new();
            for a in attrs {
                h.update(a.key.as_bytes());
                h.update(&[0x1e]);
                text.clear();
                a.value.write_text(&mut text);
                h.update(text.as_bytes());
                h.update(&[0x1f]);
            }
            if let Some(body) = &record.body {
                text.clear();
                body.write_text(&mut text);
                h.update(text.as_bytes());
            }
        }
    }
    h.digest128()
}

/// Normalizes one record. `received_at_ns` is the edge's receive time (Kafka header).
pub fn normalize<'a>(scope: &Scope<'a>, resource: &[Attr<'a>], record: &Record<'a>, received_at_ns: u64) -> Event<'a> {
    let name = event_name(record);
    let mut s = Slots::merged(resource, &record.attributes, name);

    let identity = Identity::from_slots(&mut s, scope, &record.attributes, resource);
    let sequence = s.int(Field::EventSequence);

    let (mut timestamp_ns, mut time_source) = if record.time_unix_nano > 0 {
        (record.time_unix_nano, TimeSource::Record)
    } else if record.observed_time_unix_nano > 0 {
        (record.observed_time_unix_nano, TimeSource::Observed)
    } else if let Some(t) = s.get(Field::EventTimestamp).and_then(|v| match v {
        Value::Str(t) => rfc3339_ns(t),
        _ => None,
    }) {
        (t, TimeSource::EventTimestamp)
    } else {
        (received_at_ns, TimeSource::Received)
    };
    if time_source != TimeSource::Received && !(MIN_EVENT_NS..END_EVENT_NS).contains(&timestamp_ns) {
        timestamp_ns = received_at_ns;
        time_source = TimeSource::Clamped;
    }

    let detail = match name {
        "api_request" => {
            let micros = s.int(Field::CostUsdMicros);
            let cost_text = s.get(Field::CostUsd);
            // Prefer cost_usd_micros (v2.1.158+): an integer, exact by construction.
            let cost_nanos = match (micros, cost_text) {
                (Some(m), _) => m.checked_mul(1000),
                (None, Some(Value::Str(t))) => decimal_nanos(t),
                // A double is read through its shortest round-trip text, which is what the JS
                // client's Number.toString produced: 0.0995565 stays 0.0995565 exactly.
                (None, Some(Value::Double(d))) => double_nanos(*d),
                // The JS transformer sends an integral cost (exactly 0) as intValue.
                (None, Some(Value::Int(i))) => i.checked_mul(1_000_000_000),
                (None, Some(_)) => None,
                (None, None) => None,
            };
            if cost_nanos.is_none() && (cost_text.is_some() || micros.is_some()) {
                s.failures += 1;
            }
            Detail::ApiRequest(ApiRequest {
                model: s.str(Field::Model),
                cost_nanos,
                cost_usd_micros: micros,
                input_tokens: s.uint(Field::InputTokens),
                output_tokens: s.uint(Field::OutputTokens),
                cache_read_tokens: s.uint(Field::CacheReadTokens),
                cache_creation_tokens: s.uint(Field::CacheCreationTokens),
                duration_ms: s.uint(Field::DurationMs),
                speed: s.str(Field::Speed),
                query_source: s.str(Field::QuerySource),
                request_id: s.str(Field::RequestId),
                spend: Spend::from_slots(&mut s),
            })
        }
        "api_error" => Detail::ApiError(ApiError {
            model: s.str(Field::Model),
            error: s.str(Field::Error),
            status_code: s.uint(Field::StatusCode).and_then(|c| u16::try_from(c).ok()),
            attempt: s.uint(Field::Attempt),
            duration_ms: s.uint(Field::DurationMs),
            request_id: s.str(Field::RequestId),
            query_source: s.str(Field::QuerySource),
            speed: s.str(Field::Speed),
            spend: Spend::from_slots(&mut s),
        }),
        "user_prompt" => Detail::UserPrompt(UserPrompt {
            prompt_length: s.uint(Field::PromptLength),
            prompt: Some(s.str(Field::Prompt)).filter(|p| !p.is_empty() && *p != "<REDACTED>"),
            command_name: s.str(Field::CommandName),
        }),
        "tool_decision" => Detail::ToolDecision(ToolDecision {
            tool_name: s.str(Field::ToolName),
            tool_use_id: s.str(Field::ToolUseId),
            decision: s.str(Field::Decision),
            source: s.str(Field::Source),
            tool_source: s.str(Field::ToolSource),
            params: ToolParameters::read(s.get(Field::ToolParameters), &mut s.failures),
        }),
        "tool_result" => Detail::ToolResult(ToolResult {
            tool_name: s.str(Field::ToolName),
            tool_use_id: s.str(Field::ToolUseId),
            success: s.bool(Field::Success),
            duration_ms: s.uint(Field::DurationMs),
            error_type: s.str(Field::ErrorType),
            error: s.str(Field::Error),
            decision_type: s.str(Field::DecisionType),
            decision_source: s.str(Field::DecisionSource),
            tool_input_size_bytes: s.uint(Field::ToolInputSize),
            tool_result_size_bytes: s.uint(Field::ToolResultSize),
            params: ToolParameters::read(s.get(Field::ToolParameters), &mut s.failures),
        }),
        other => match kinds::kind_of(other) {
            Some((i, variant)) => {
                Detail::Kind(KindRow::read(i, variant, &record.attributes, resource, &mut s.failures))
            }
            None => Detail::Other,
        },
    };
    let mut failures = s.failures;
    let workspace_host_paths = host_paths(s.get(Field::HostPaths), &mut failures);
    Event {
        event_id: event_id(scope.tenant, name, identity.session_id, sequence, record),
        event_name: name,
        timestamp_ns,
        time_source,
        sequence,
        identity,
        trace_id: record.trace_id,
        span_id: record.span_id,
        workspace_host_paths,
        detail,
        coercion_failures: failures,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otlp::decode::{json, proto, Attr, Record, Value};
    use crate::transform::attribution::Scope;
    use std::collections::{BTreeMap, HashMap, HashSet};

    const RECEIVED: u64 = 1_795_100_000_000_000_000; // a day after the corpus (2026-11-18)

    fn attr<'a>(key: &'a str, value: Value<'a>) -> Attr<'a> {
        Attr { key, value }
    }

    fn record<'a>(name: &'a str, attrs: Vec<Attr<'a>>) -> Record<'a> {
        let mut attributes = vec![
            attr("event.name", Value::Str(name)),
            attr("session.id", Value::Str("s-1")),
            attr("event.sequence", Value::Int(3)),
        ];
        attributes.extend(attrs);
        Record {
            time_unix_nano: RECEIVED - 1_000_000_000,
            observed_time_unix_nano: RECEIVED - 1_000_000_000,
            body: Some(Value::Str("claude_code.x")),
            event_name: "",
            attributes,
            ..Record::default()
        }
    }

    fn one<'a>(r: &Record<'a>) -> Event<'a> {
        normalize(&Scope::new("acme"), &[], r, RECEIVED)
    }

    #[test]
    fn v2_1_122_typed_numbers_and_older_strings_read_the_same() {
        // Before v2.1.122 api_request numbers were strings; from 2.1.122 ints and doubles.
        let typed = record(
            "api_request",
            vec![
                attr("cost_usd", Value::Double(0.0995565)),
                attr("input_tokens", Value::Int(387)),
                attr("duration_ms", Value::Int(2218)),
            ],
        );
        let strings = record(
            "api_request",
            vec![
                attr("cost_usd", Value::Str("0.0995565")),
                attr("input_tokens", Value::Str("387")),
                attr("duration_ms", Value::Str("2218")),
            ],
        );
        let (a, b) = (one(&typed), one(&strings));
        assert_eq!(a.detail, b.detail);
        let Detail::ApiRequest(r) = a.detail else { panic!() };
        assert_eq!(r.cost_nanos, Some(99_556_500));
        assert_eq!(r.input_tokens, Some(387));
        assert_eq!(a.coercion_failures, 0);
    }

    #[test]
    fn v2_1_100_js_float_strings_are_exact_and_v2_1_158_micros_win() {
        // 2.1.100 sent cost_usd as JS Number.toString: "0.004933450000000001".
        let r = one(&record(
            "api_request",
            vec![attr("cost_usd", Value::Str("0.004933450000000001"))],
        ));
        let Detail::ApiRequest(r) = r.detail else { panic!() };
        assert_eq!(r.cost_nanos, Some(4_933_450));
        // 2.1.158+ adds cost_usd_micros, an integer: it wins over the float.
        let r = one(&record(
            "api_request",
            vec![
                attr("cost_usd", Value::Double(0.1068663)),
                attr("cost_usd_micros", Value::Int(106_866)),
            ],
        ));
        let Detail::ApiRequest(r) = r.detail else { panic!() };
        assert_eq!((r.cost_nanos, r.cost_usd_micros), (Some(106_866_000), Some(106_866)));
        // The JS transformer sends an integral cost as intValue (a cost of exactly 0).
        let r = one(&record("api_request", vec![attr("cost_usd", Value::Int(0))]));
        let Detail::ApiRequest(r) = r.detail else { panic!() };
        assert_eq!(r.cost_nanos, Some(0));
    }

    #[test]
    fn decimals_parse_exactly() {
        assert_eq!(decimal_nanos("1"), Some(1_000_000_000));
        assert_eq!(decimal_nanos("0.000000001"), Some(1));
        assert_eq!(decimal_nanos("1e-7"), Some(100));
        assert_eq!(decimal_nanos("2.5E-9"), Some(2)); // half to even
        assert_eq!(decimal_nanos("3.5e-9"), Some(4));
        assert_eq!(decimal_nanos("-0.25"), Some(-250_000_000));
        // Below half a nanodollar, whatever the leading zeros: the digit at the rounding place.
        assert_eq!(decimal_nanos("0.00000000006"), Some(0));
        assert_eq!(decimal_nanos("0.0000000006"), Some(1));
        assert_eq!(decimal_nanos("0e400"), Some(0));
        assert_eq!(double_nanos(0.0995565), Some(99_556_500));
        assert_eq!(double_nanos(1e-7), Some(100));
        assert_eq!(double_nanos(1e300), None);
        assert_eq!(decimal_nanos("abc"), None);
        assert_eq!(decimal_nanos(""), None);
    }

    #[test]
    fn last9_aliases_map_to_canonical_fields() {
        // Last9's Claude Code & Cowork pages: tool.name, tool.decision, decision.source,
        // tool.success, prompt.length, error.message, http.status_code, retry_attempt.
        let d = one(&record(
            "tool_decision",
            vec![
                attr("tool.name", Value::Str("Bash")),
                attr("tool.decision", Value::Str("reject")),
                attr("decision.source", Value::Str("user_reject")),
            ],
        ));
        assert_eq!(
            d.detail,
            Detail::ToolDecision(ToolDecision {
                tool_name: "Bash",
                decision: "reject",
                source: "user_reject",
                ..Default::default()
            })
        );
        let r = one(&record(
            "tool_result",
            vec![
                attr("tool.name", Value::Str("Read")),
                attr("tool.success", Value::Str("false")),
            ],
        ));
        let Detail::ToolResult(r) = r.detail else { panic!() };
        assert_eq!((r.tool_name, r.success), ("Read", Some(false)));
        let p = one(&record("user_prompt", vec![attr("prompt.length", Value::Str("22"))]));
        assert_eq!(
            p.detail,
            Detail::UserPrompt(UserPrompt {
                prompt_length: Some(22),
                prompt: None,
                command_name: ""
            })
        );
        let e = one(&record(
            "api_error",
            vec![
                attr("error.message", Value::Str("HTTP 429")),
                attr("http.status_code", Value::Str("429")),
                attr("retry_attempt", Value::Str("4")),
            ],
        ));
        let Detail::ApiError(e) = e.detail else { panic!() };
        assert_eq!((e.error, e.status_code, e.attempt), ("HTTP 429", Some(429), Some(4)));
    }

    #[test]
    fn loki_and_axonflow_identity_aliases() {
        // Loki's OTLP ingest and AxonFlow flatten dots: session_id, prompt_id, user_email.
        let mut r = record("user_prompt", vec![]);
        r.attributes.retain(|a| a.key != "session.id");
        r.attributes.extend([
            attr("session_id", Value::Str("s-loki")),
            attr("prompt_id", Value::Str("p-loki")),
            attr("user_email", Value::Str("loki@x")),
        ]);
        let e = one(&r);
        assert_eq!(
            (e.identity.session_id, e.identity.prompt_id, e.identity.user_email),
            ("s-loki", "p-loki", "loki@x")
        );
    }

    #[test]
    fn canonical_names_win_over_aliases() {
        let r = one(&record(
            "tool_decision",
            vec![
                attr("tool.name", Value::Str("Alias")),
                attr("tool_name", Value::Str("Canon")),
            ],
        ));
        let Detail::ToolDecision(r) = r.detail else { panic!() };
        assert_eq!(r.tool_name, "Canon");
    }

    #[test]
    fn legacy_tool_result_names_from_2025_and_early_2026() {
        // tool_result: `name` until 2025-06/07; `decision`/`source` until the 2026-02 doc change.
        let r = one(&record(
            "tool_result",
            vec![
                attr("name", Value::Str("Edit")),
                attr("success", Value::Str("true")),
                attr("decision", Value::Str("accept")),
                attr("source", Value::Str("config")),
            ],
        ));
        let Detail::ToolResult(r) = r.detail else { panic!() };
        assert_eq!(
            (r.tool_name, r.success, r.decision_type, r.decision_source),
            ("Edit", Some(true), "accept", "config")
        );
    }

    #[test]
    fn status_code_undefined_means_none_before_2_1_122() {
        let e = one(&record("api_error", vec![attr("status_code", Value::Str("undefined"))]));
        let Detail::ApiError(e) = &e.detail else { panic!() };
        assert_eq!(e.status_code, None);
        assert_eq!(
            one(&record("api_error", vec![attr("status_code", Value::Str("undefined"))])).coercion_failures,
            0
        );
        // From 2.1.122 it is a number.
        let e = one(&record("api_error", vec![attr("status_code", Value::Int(529))]));
        let Detail::ApiError(e) = e.detail else { panic!() };
        assert_eq!(e.status_code, Some(529));
    }

    #[test]
    fn booleans_as_strings_or_booleans() {
        for (v, want) in [
            (Value::Str("true"), Some(true)),
            (Value::Bool(false), Some(false)),
            (Value::Str("TRUE"), Some(true)),
        ] {
            let r = one(&record("tool_result", vec![attr("success", v)]));
            let Detail::ToolResult(r) = r.detail else { panic!() };
            assert_eq!(r.success, want);
        }
    }

    #[test]
    fn failed_coercions_are_counted_and_never_drop_the_event() {
        let e = one(&record(
            "api_request",
            vec![
                attr("input_tokens", Value::Str("lots")),
                attr("cost_usd", Value::Str("free")),
            ],
        ));
        assert_eq!(e.coercion_failures, 2);
        let Detail::ApiRequest(r) = e.detail else { panic!() };
        assert_eq!((r.input_tokens, r.cost_nanos), (None, None));
    }

    #[test]
    fn event_name_falls_back_to_the_body_then_the_otlp_field() {
        let mut r = record("x", vec![]);
        r.attributes.remove(0);
        r.body = Some(Value::Str("claude_code.user_prompt"));
        assert_eq!(one(&r).event_name, "user_prompt");
        r.body = None;
        r.event_name = "claude_code.api_request";
        assert_eq!(one(&r).event_name, "api_request");
        // Unknown names are kept, never dropped.
        let u = one(&record("some_future_event", vec![]));
        assert_eq!((u.event_name, u.detail), ("some_future_event", Detail::Other));
    }

    #[test]
    fn identity_on_the_resource_counts_and_the_record_wins() {
        let resource = vec![
            attr("service.name", Value::Str("cowork")),
            attr("user.email", Value::Str("res@x")),
            attr("session.id", Value::Str("res-session")),
        ];
        let r = record("user_prompt", vec![attr("user.email", Value::Str("rec@x"))]);
        let e = normalize(&Scope::new("acme"), &resource, &r, RECEIVED);
        assert_eq!(e.identity.service_name, "cowork");
        assert_eq!(e.identity.user_email, "rec@x");
        assert_eq!(e.identity.session_id, "s-1");
    }

    #[test]
    fn timestamps_fall_back_and_days_do_not_depend_on_the_receive_time() {
        let mut r = record(
            "user_prompt",
            vec![attr("event.timestamp", Value::Str("2026-11-19T00:00:00.500Z"))],
        );
        assert_eq!(one(&r).time_source, TimeSource::Record);
        r.time_unix_nano = 0;
        assert_eq!(one(&r).time_source, TimeSource::Observed);
        r.observed_time_unix_nano = 0;
        let e = one(&r);
        assert_eq!(
            (e.time_source, e.timestamp_ns),
            (TimeSource::EventTimestamp, 1_795_046_400_500_000_000)
        );
        assert_eq!(e.event_day(), 20_776, "2026-11-19");
        r.attributes.pop();
        let e = one(&r);
        assert_eq!(
            (e.time_source, e.timestamp_ns, e.event_day()),
            (TimeSource::Received, RECEIVED, 0)
        );
        // Outside the fixed bounds: the receive time, filed under day 0.
        r.time_unix_nano = MIN_EVENT_NS - 1;
        let e = one(&r);
        assert_eq!(
            (e.time_source, e.timestamp_ns, e.event_day()),
            (TimeSource::Clamped, RECEIVED, 0)
        );
        r.time_unix_nano = END_EVENT_NS;
        assert_eq!(one(&r).time_source, TimeSource::Clamped);
        // A month old, or a day ahead of the receive time, is still the event's own time: a
        // resend weeks later must land on the same day as its first copy.
        for t in [RECEIVED - 30 * DAY_NS, RECEIVED + DAY_NS] {
            r.time_unix_nano = t;
            let (early, late) = (
                normalize(&Scope::new("acme"), &[], &r, RECEIVED),
                normalize(&Scope::new("acme"), &[], &r, RECEIVED + 40 * DAY_NS),
            );
            assert_eq!((early.time_source, early.timestamp_ns), (TimeSource::Record, t));
            assert_eq!(
                (early.event_day(), early.timestamp_ns),
                (late.event_day(), late.timestamp_ns)
            );
        }
    }

    #[test]
    fn event_ids_ignore_the_receive_time_and_depend_on_the_tenant() {
        let r = record("user_prompt", vec![]);
        let a = normalize(&Scope::new("acme"), &[], &r, RECEIVED);
        let b = normalize(&Scope::new("acme"), &[], &r, RECEIVED + 5_000_000_000);
        assert_eq!(a.event_id, b.event_id, "a resend hours later is the same event");
        assert_ne!(a.event_id, normalize(&Scope::new("globex"), &[], &r, RECEIVED).event_id);
        // Without a sequence, the canonical record decides: attribute order does not matter.
        let mut x = record("user_prompt", vec![attr("a", Value::Int(1)), attr("b", Value::Int(2))]);
        x.attributes.retain(|a| a.key != "event.sequence");
        let mut y = x.clone();
        y.attributes.reverse();
        assert_eq!(one(&x).event_id, one(&y).event_id);
        y.attributes.push(attr("c", Value::Int(3)));
        assert_ne!(one(&x).event_id, one(&y).event_id);
    }

    #[test]
    fn workspace_host_paths_is_an_array() {
        let e = one(&record(
            "user_prompt",
            vec![attr(
                "workspace.host_paths",
                Value::Array(vec![Value::Str("/a"), Value::Str("/b c")]),
            )],
        ));
        assert_eq!(e.workspace_host_paths, vec!["/a", "/b c"]);
    }

    /// Aggregates computed from normalized events, in the shape of the corpus's expected.json.
    fn aggregates(events: &[Event<'_>]) -> serde_json::Value {
        let mut by_event: BTreeMap<String, u64> = BTreeMap::new();
        let mut by_service: BTreeMap<String, u64> = BTreeMap::new();
        let mut cost: BTreeMap<String, i64> = BTreeMap::new();
        let mut tokens: BTreeMap<String, [u64; 5]> = BTreeMap::new();
        let mut decisions: BTreeMap<String, u64> = BTreeMap::new();
        let (mut success, mut failure) = (0u64, 0u64);
        let mut errors: BTreeMap<String, u64> = BTreeMap::new();
        let mut sessions: BTreeMap<String, HashSet<&str>> = BTreeMap::new();
        let mut cowork_paths: HashSet<&str> = HashSet::new();
        for e in events {
            *by_event.entry(e.event_name.into()).or_default() += 1;
            *by_service.entry(e.identity.service_name.into()).or_default() += 1;
            sessions
                .entry(e.identity.service_name.into())
                .or_default()
                .insert(e.identity.session_id);
            if e.identity.service_name == "cowork" && !e.workspace_host_paths.is_empty() {
                cowork_paths.insert(e.identity.session_id);
            }
            match &e.detail {
                Detail::ApiRequest(r) => {
                    *cost.entry(e.identity.user_email.into()).or_default() += r.cost_nanos.unwrap();
                    let t = tokens.entry(r.model.into()).or_default();
                    t[0] += r.input_tokens.unwrap();
                    t[1] += r.output_tokens.unwrap();
                    t[2] += r.cache_read_tokens.unwrap();
                    t[3] += r.cache_creation_tokens.unwrap();
                    t[4] += 1;
                }
                Detail::ToolDecision(d) => {
                    *decisions.entry(format!("{}|{}", d.tool_name, d.decision)).or_default() += 1
                }
                Detail::ToolResult(r) => match r.success.unwrap() {
                    true => success += 1,
                    false => failure += 1,
                },
                Detail::ApiError(e) => *errors.entry(e.status_code.unwrap().to_string()).or_default() += 1,
                _ => {}
            }
        }
        serde_json::json!({
            "events": events.len(),
            "by_event": by_event,
            "by_service": by_service,
            "cost_by_user": cost.iter().map(|(k, v)| (k.clone(), *v as f64 / 1e9)).collect::<BTreeMap<_, _>>(),
            "tokens_by_model": tokens.iter().map(|(k, t)| (k.clone(), serde_json::json!({
                "input": t[0], "output": t[1], "cache_read": t[2], "cache_creation": t[3], "requests": t[4]}))).collect::<BTreeMap<_, _>>(),
            "decisions": decisions,
            "tool_results": {"success": success, "failure": failure},
            "api_errors_by_status": errors,
            "prompts": by_event.get("user_prompt").copied().unwrap_or(0),
            "sessions_by_service": sessions.iter().map(|(k, v)| (k.clone(), v.len())).collect::<BTreeMap<_, _>>(),
            "cowork_host_paths_sessions": cowork_paths.len(),
        })
    }

    #[test]
    fn the_corpus_reproduces_expected_json_in_every_encoding() {
        let expected: serde_json::Value =
            serde_json::from_slice(&std::fs::read(crate::fixtures::root().join("expected.json")).unwrap()).unwrap();
        for folder in ["proto-none", "proto-gzip", "json-none", "json-gzip"] {
            let bodies = crate::fixtures::inflated(folder);
            // Payloads live for the whole test, so events can borrow from them ('static).
            let mut events: Vec<Event<'static>> = Vec::new();
            let mut seen = HashSet::new();
            for body in bodies {
                let body: &'static mut [u8] = Box::leak(body.into_boxed_slice());
                let mut push = |resource: &[Attr<'static>], r: &Record<'static>| {
                    let e = normalize(&Scope::new("acme"), resource, r, RECEIVED);
                    assert_eq!(e.coercion_failures, 0, "{folder}: {e:?}");
                    assert_eq!(e.time_source, TimeSource::Record);
                    if seen.insert(e.event_id) {
                        events.push(e);
                    }
                };
                if folder.starts_with("proto") {
                    proto::decode(body, &mut push).unwrap();
                } else {
                    json::decode(body, &mut push).unwrap();
                }
            }
            let got = aggregates(&events);
            for key in [
                "events",
                "by_event",
                "by_service",
                "tokens_by_model",
                "decisions",
                "tool_results",
                "api_errors_by_status",
                "prompts",
                "sessions_by_service",
                "cowork_host_paths_sessions",
            ] {
                assert_eq!(got[key], expected[key], "{folder}: {key}");
            }
            let want: HashMap<String, f64> = serde_json::from_value(expected["cost_by_user"].clone()).unwrap();
            let have: HashMap<String, f64> = serde_json::from_value(got["cost_by_user"].clone()).unwrap();
            assert_eq!(want.len(), have.len(), "{folder}");
            for (user, c) in &want {
                assert!((have[user] - c).abs() < 1e-6, "{folder}: {user}: {} vs {c}", have[user]);
            }
            // One prompt's events, in sequence order.
            let p = &expected["one_prompt"];
            let mut trail: Vec<&Event<'_>> = events
                .iter()
                .filter(|e| e.identity.prompt_id == p["prompt_id"])
                .collect();
            trail.sort_by_key(|e| e.sequence);
            let names: Vec<&str> = trail.iter().map(|e| e.event_name).collect();
            assert_eq!(serde_json::json!(names), p["events"], "{folder}");
            assert!(trail.iter().all(|e| e.identity.session_id == p["session_id"]));
        }
    }
}
