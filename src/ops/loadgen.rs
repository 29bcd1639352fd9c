//! `cowork-ingest loadgen`: synthetic Claude Code and Cowork traffic for demos and load runs,
//! sent to any OTLP endpoint over http/protobuf, http/json or gRPC, optionally gzip'd, at a
//! target rate or as fast as the server answers.
//!
//! Sessions follow the shapes real clients produce (see `tools/otel-client/gen.mjs`, which made
//! the corpus): prompts, API requests with tokens and cost, tool decisions and results, errors;
//! each session in one attribute style (`v2` typed numbers, `strings` everything as text,
//! `last9` vendor aliases, `legacy` old names), so the pipeline's normalization is exercised.
//!
//! With `signals` including metrics, each session also sends what Claude Code's meter reports
//! for the same activity (the eight `claude_code.*` counters, DELTA, `asDouble`), and with
//! traces, its spans (`interaction`, `llm_request` with `ttft_ms`, `tool`,
//! `tool.blocked_on_user`, `tool.execution`), so the Productivity dashboard has data.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, ResourceSpans, ScopeSpans, Span, Status};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::otlp::Signal;

/// How requests travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    #[value(name = "http/protobuf")]
    HttpProtobuf,
    #[value(name = "http/json")]
    HttpJson,
    #[value(name = "grpc")]
    Grpc,
}

/// The attribute spellings a session uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Style {
    V2,
    Strings,
    Last9,
    Legacy,
}

#[derive(Debug, Clone)]
pub struct Options {
    /// `http://host:4318` for HTTP (the `/v1/logs` path is added), `http://host:4317` for gRPC.
    pub endpoint: String,
    pub protocol: Protocol,
    pub gzip: bool,
    pub api_key: String,
    /// Stop after this many sessions (0: no limit).
    pub sessions: u64,
    /// Stop after this long (None: no limit).
    pub duration: Option<Duration>,
    /// Target events per second (0: as fast as the server answers).
    pub rate: f64,
    /// Log records per request.
    pub batch: usize,
    /// Requests in flight.
    pub concurrency: usize,
    pub seed: u64,
    pub styles: Vec<Style>,
    /// Print progress to stderr every this often.
    pub progress: Option<Duration>,
    /// What to send: logs (the events), metrics, traces.
    pub signals: Vec<Signal>,
}

/// What was sent and what the server answered.
#[derive(Debug, Default, Clone)]
pub struct Report {
    pub sessions: u64,
    pub requests: u64,
    /// Events in requests the server accepted.
    pub events: u64,
    /// Events in requests the server refused or that failed.
    pub failed_events: u64,
    /// Answers: HTTP status codes, or gRPC codes as `grpc:<code>`, or `error` for transport failures.
    pub answers: BTreeMap<String, u64>,
    /// Accepted events by name.
    pub by_event: BTreeMap<String, u64>,
    /// Metric data points in accepted requests.
    pub points: u64,
    /// Spans in accepted requests.
    pub spans: u64,
    pub elapsed: Duration,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        writeln!(
            f,
            "sent {} sessions, {} requests, {} events accepted ({:.0} events/s), {} events refused or failed, in {:.1} s",
            self.sessions,
            self.requests,
            self.events,
            self.events as f64 / secs,
            self.failed_events,
            secs
        )?;
        let answers: Vec<String> = self.answers.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        writeln!(f, "answers: {}", answers.join(", "))?;
        let events: Vec<String> = self.by_event.iter().map(|(k, v)| format!("{k} {v}")).collect();
        write!(f, "events: {}", events.join(", "))?;
        if self.points > 0 || self.spans > 0 {
            write!(f, "\nmetric points: {}, spans: {}", self.points, self.spans)?;
        }
        Ok(())
    }
}

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn s(v: impl Into<String>) -> any_value::Value {
    any_value::Value::StringValue(v.into())
}

const MODELS: [(&str, f64, f64); 3] = [
    ("claude-opus-4-6", 15e-6, 75e-6),
    ("claude-sonnet-4-6", 3e-6, 15e-6),
    ("claude-haiku-4-5-20251001", 1e-6, 5e-6),
];
const TOOLS: [&str; 8] = ["Read", "Edit", "Write", "Bash", "Grep", "Glob", "WebFetch", "mcp_tool"];
const SERVICES: [(&str, f64); 3] = [("claude-code", 0.55), ("cowork", 0.35), ("claude-code-desktop", 0.10)];
const USERS: [&str; 12] = [
    "ana.müller@acme.example",
    "bo.o'neil@acme.example",
    "chen.smith@acme.example",
    "dara.nguyen@acme.example",
    "eli.müller@acme.example",
    "fay.o'neil@acme.example",
    "gus.smith@acme.example",
    "hana.nguyen@globex.example",
    "ivo.müller@globex.example",
    "june.o'neil@globex.example",
    "kai.smith@globex.example",
    "lu.nguyen@globex.example",
];

/// Generates sessions, one service's records at a time.
struct Generator {
    rng: StdRng,
    styles: Vec<Style>,
    index: u64,
}

impl Generator {
    fn uuid(&mut self) -> String {
        let b: [u8; 16] = self.rng.random();
        let h = hex::encode(b);
        format!(
            "{}-{}-4{}-a{}-{}",
            &h[0..8],
            &h[8..12],
            &h[13..16],
            &h[17..20],
            &h[20..32]
        )
    }

    /// One session: its service, its records, and what its meter and tracer report.
    fn session(&mut self) -> Session {
        let r: f64 = self.rng.random();
        let mut acc = 0.0;
        let mut service = SERVICES[0].0;
        for (name, p) in SERVICES {
            acc += p;
            if r < acc {
                service = name;
                break;
            }
        }
        let style = self.styles[(self.index % self.styles.len() as u64) as usize];
        self.index += 1;
        let user = USERS[self.rng.random_range(0..USERS.len())];
        let session_id = self.uuid();
        let terminal = match (service, style) {
            ("cowork", Style::Last9) => "cowork",
            ("cowork", _) => "non-interactive",
            _ => ["vscode", "iTerm.app", "tmux", "cursor"][self.rng.random_range(0..4)],
        };
        let host_paths = (service == "cowork").then(|| {
            vec![
                format!("/Users/{}/Documents", user.split('@').next().unwrap_or("me")),
                "/Volumes/Shared/Q3 Reports".to_string(),
            ]
        });
        let mut t_ms = crate::util::now_ms() as u64;
        let started_ms = t_ms;
        let mut act = Activity::default();
        let standard = vec![
            kv("session.id", s(&session_id)),
            kv("user.email", s(user)),
            kv("terminal.type", s(terminal)),
        ];
        let mut seq = 0i64;
        let mut records = Vec::new();
        let mut emit = |rng: &mut StdRng, name: &str, prompt_id: &str, mut attrs: Vec<KeyValue>| -> u64 {
            t_ms += rng.random_range(5..900);
            let mut base = vec![
                kv("event.name", s(name)),
                kv("event.sequence", any_value::Value::IntValue(seq)),
                kv("session.id", s(&session_id)),
                kv("user.email", s(user)),
                kv("terminal.type", s(terminal)),
                kv("app.version", s("2.1.240")),
                kv("prompt.id", s(prompt_id)),
            ];
            seq += 1;
            if let Some(paths) = &host_paths {
                base.push(kv(
                    "workspace.host_paths",
                    any_value::Value::ArrayValue(ArrayValue {
                        values: paths
                            .iter()
                            .map(|p| AnyValue {
                                value: Some(s(p.clone())),
                            })
                            .collect(),
                    }),
                ));
            }
            base.append(&mut attrs);
            records.push(LogRecord {
                time_unix_nano: t_ms * 1_000_000,
                observed_time_unix_nano: t_ms * 1_000_000,
                body: Some(AnyValue {
                    value: Some(s(format!("claude_code.{name}"))),
                }),
                attributes: base,
                ..Default::default()
            });
            t_ms
        };
        let num = |v: i64| match style {
            Style::V2 => any_value::Value::IntValue(v),
            _ => s(v.to_string()),
        };
        let rng = &mut self.rng;
        for _ in 0..rng.random_range(1..=6) {
            let prompt_id = {
                let b: [u8; 16] = rng.random();
                hex::encode(b)
            };
            let text_len = rng.random_range(10..400i64);
            let prompt = match style {
                Style::Last9 => vec![kv("prompt.length", s(text_len.to_string()))],
                _ => vec![
                    kv("prompt_length", s(text_len.to_string())),
                    kv("prompt", s("<REDACTED>")),
                ],
            };
            let prompt_at = emit(rng, "user_prompt", &prompt_id, prompt);
            act.user_s += f64::from(rng.random_range(10..240u32)) / 2.0;
            let trace: [u8; 16] = rng.random();
            let interaction: [u8; 8] = rng.random();
            let mut prompt_end = prompt_at;
            act.interactions += 1;
            for _ in 0..rng.random_range(1..=4) {
                let (model, in_p, out_p) = MODELS[rng.random_range(0..MODELS.len())];
                let (inp, out, cr, cc) = (
                    rng.random_range(3..40_000i64),
                    rng.random_range(1..4_000i64),
                    rng.random_range(0..100_000i64),
                    rng.random_range(0..20_000i64),
                );
                let cost =
                    ((inp as f64 * in_p + out as f64 * out_p + cr as f64 * in_p * 0.1 + cc as f64 * in_p * 1.25) * 1e6)
                        .round()
                        / 1e6;
                let duration = rng.random_range(300..60_000);
                let cost_value = match style {
                    Style::V2 => any_value::Value::DoubleValue(cost),
                    _ => s(format!("{cost}")),
                };
                let at = emit(
                    rng,
                    "api_request",
                    &prompt_id,
                    vec![
                        kv("model", s(model)),
                        kv("cost_usd", cost_value),
                        kv("input_tokens", num(inp)),
                        kv("output_tokens", num(out)),
                        kv("cache_read_tokens", num(cr)),
                        kv("cache_creation_tokens", num(cc)),
                        kv("duration_ms", num(duration)),
                    ],
                );
                prompt_end = prompt_end.max(at);
                act.cli_s += duration as f64 / 1000.0;
                let usage = act.usage.entry(model).or_default();
                usage.0 += cost;
                for (sum, n) in usage.1.iter_mut().zip([inp, out, cr, cc]) {
                    *sum += n as f64;
                }
                let stop = ["end_turn", "tool_use", "tool_use", "max_tokens"][rng.random_range(0..4)];
                act.spans.push(span_of(
                    &trace,
                    rng.random(),
                    &interaction,
                    "claude_code.llm_request",
                    at.saturating_sub(duration as u64),
                    at,
                    vec![
                        kv("span.type", s("llm_request")),
                        kv("model", s(model)),
                        kv("ttft_ms", any_value::Value::IntValue(rng.random_range(250..4_000))),
                        kv("input_tokens", any_value::Value::IntValue(inp)),
                        kv("output_tokens", any_value::Value::IntValue(out)),
                        kv("stop_reason", s(stop)),
                        kv("success", any_value::Value::BoolValue(true)),
                    ],
                    false,
                ));
                if rng.random_bool(0.5) {
                    let tool = TOOLS[rng.random_range(0..TOOLS.len())];
                    let accept = rng.random_bool(0.85);
                    let decision = if accept { "accept" } else { "reject" };
                    let source = if accept { "config" } else { "user_reject" };
                    let d = match style {
                        Style::Last9 => vec![
                            kv("tool.name", s(tool)),
                            kv("tool.decision", s(decision)),
                            kv("decision.source", s(source)),
                        ],
                        _ => vec![
                            kv("tool_name", s(tool)),
                            kv("decision", s(decision)),
                            kv("source", s(source)),
                        ],
                    };
                    let decided = emit(rng, "tool_decision", &prompt_id, d);
                    let tool_span: [u8; 8] = rng.random();
                    let waited = if source == "config" {
                        0
                    } else {
                        rng.random_range(400..30_000u64)
                    };
                    act.spans.push(span_of(
                        &trace,
                        tool_span,
                        &interaction,
                        "claude_code.tool",
                        decided.saturating_sub(waited),
                        decided + 50,
                        vec![kv("span.type", s("tool")), kv("tool_name", s(tool))],
                        false,
                    ));
                    if waited > 0 {
                        act.spans.push(span_of(
                            &trace,
                            rng.random(),
                            &tool_span,
                            "claude_code.tool.blocked_on_user",
                            decided - waited,
                            decided,
                            vec![
                                kv("span.type", s("tool.blocked_on_user")),
                                kv("decision", s(decision)),
                                kv("source", s(source)),
                            ],
                            false,
                        ));
                    }
                    if matches!(tool, "Edit" | "Write") {
                        let language = LANGUAGES[rng.random_range(0..LANGUAGES.len())];
                        *act.edits.entry((tool, decision, source, language)).or_default() += 1;
                        if accept {
                            act.lines_added += rng.random_range(1..120u32);
                            act.lines_removed += rng.random_range(0..40u32);
                        }
                    }
                    if accept {
                        let ok = rng.random_bool(0.9);
                        let dur = rng.random_range(2..30_000i64).to_string();
                        let mut tr = match style {
                            Style::Last9 => vec![
                                kv("tool.name", s(tool)),
                                kv("tool.success", s(ok.to_string())),
                                kv("duration_ms", s(dur)),
                            ],
                            Style::Legacy => vec![
                                kv("name", s(tool)),
                                kv("success", s(ok.to_string())),
                                kv("duration_ms", s(dur)),
                                kv("decision", s("accept")),
                                kv("source", s(source)),
                            ],
                            _ => vec![
                                kv("tool_name", s(tool)),
                                kv("success", any_value::Value::BoolValue(ok)),
                                kv("duration_ms", s(dur)),
                                kv("decision_type", s("accept")),
                                kv("decision_source", s(source)),
                            ],
                        };
                        if !ok {
                            tr.push(kv("error_type", s("Error:ENOENT")));
                        }
                        emit(rng, "tool_result", &prompt_id, tr);
                    }
                }
            }
            if rng.random_bool(0.15) {
                let status = [429, 500, 529, 401][rng.random_range(0..4)];
                let attempt = rng.random_range(1..=11);
                let model = MODELS[rng.random_range(0..MODELS.len())].0;
                let e = match style {
                    Style::Last9 => vec![
                        kv("model", s(model)),
                        kv("error.message", s(format!("HTTP {status}"))),
                        kv("http.status_code", s(status.to_string())),
                        kv("retry_attempt", s(attempt.to_string())),
                    ],
                    _ => vec![
                        kv("model", s(model)),
                        kv("error", s(format!("Request failed with status {status}"))),
                        kv("status_code", num(status)),
                        kv("attempt", num(attempt)),
                    ],
                };
                emit(rng, "api_error", &prompt_id, e);
            }
            let mut root = span_of(
                &trace,
                interaction,
                &[0; 8],
                "claude_code.interaction",
                prompt_at,
                prompt_end + 20,
                vec![
                    kv("span.type", s("interaction")),
                    kv(
                        "interaction.sequence",
                        any_value::Value::IntValue(i64::from(act.interactions)),
                    ),
                    kv("user_prompt_length", any_value::Value::IntValue(text_len)),
                ],
                false,
            );
            root.parent_span_id.clear();
            act.spans.push(root);
        }
        if rng.random_bool(0.3) {
            act.commits += 1;
        }
        if rng.random_bool(0.1) {
            act.pull_requests += 1;
        }
        let start_type = ["fresh", "fresh", "fresh", "resume", "continue"][rng.random_range(0..5)];
        let metrics = act.metrics(started_ms, t_ms, start_type, &standard);
        let spans = act
            .spans
            .into_iter()
            .map(|mut sp| {
                sp.attributes.extend(standard.iter().cloned());
                sp
            })
            .collect();
        Session {
            service,
            records,
            metrics,
            spans,
        }
    }
}

const LANGUAGES: [&str; 5] = ["TypeScript", "Python", "Rust", "Go", "Markdown"];

/// One generated session: its events, its meter's points and its spans.
struct Session {
    service: &'static str,
    records: Vec<LogRecord>,
    metrics: Vec<Metric>,
    spans: Vec<Span>,
}

/// What one session did, as Claude Code's meter counts it.
#[derive(Default)]
struct Activity {
    /// Per model: cost, and input, output, cache-read and cache-creation tokens.
    usage: BTreeMap<&'static str, (f64, [f64; 4])>,
    /// Per (tool, decision, source, language): edit decisions.
    edits: BTreeMap<(&'static str, &'static str, &'static str, &'static str), u64>,
    lines_added: u32,
    lines_removed: u32,
    commits: u32,
    pull_requests: u32,
    /// Prompts so far: the `interaction.sequence` of the next interaction span.
    interactions: u32,
    user_s: f64,
    cli_s: f64,
    spans: Vec<Span>,
}

impl Activity {
    /// The session's DELTA export: one point per counter and attribute set, from its start to
    /// `end_ms`.
    fn metrics(&self, start_ms: u64, end_ms: u64, start_type: &str, standard: &[KeyValue]) -> Vec<Metric> {
        let point = |value: f64, attrs: Vec<KeyValue>| NumberDataPoint {
            attributes: attrs.into_iter().chain(standard.iter().cloned()).collect(),
            start_time_unix_nano: start_ms * 1_000_000,
            time_unix_nano: end_ms * 1_000_000,
            value: Some(number_data_point::Value::AsDouble(value)),
            ..Default::default()
        };
        let counter = |name: &str, unit: &str, points: Vec<NumberDataPoint>| Metric {
            name: name.into(),
            unit: unit.into(),
            data: Some(metric::Data::Sum(Sum {
                data_points: points,
                aggregation_temporality: 1,
                is_monotonic: true,
            })),
            ..Default::default()
        };
        // Claude Code appends the context variant to metric model names.
        let model = |m: &str| {
            if m.starts_with("claude-opus") {
                format!("{m}[1m]")
            } else {
                m.to_string()
            }
        };
        let mut out = vec![counter(
            "claude_code.session.count",
            "",
            vec![point(1.0, vec![kv("start_type", s(start_type))])],
        )];
        let mut cost = Vec::new();
        let mut tokens = Vec::new();
        for (m, (usd, counts)) in &self.usage {
            let attrs = |extra: Vec<KeyValue>| {
                let mut a = vec![kv("model", s(model(m))), kv("query_source", s("main"))];
                a.extend(extra);
                a
            };
            cost.push(point((usd * 1e6).round() / 1e6, attrs(vec![])));
            for (kind, n) in ["input", "output", "cacheRead", "cacheCreation"].iter().zip(counts) {
                tokens.push(point(*n, attrs(vec![kv("type", s(*kind))])));
            }
        }
        if !cost.is_empty() {
            out.push(counter("claude_code.cost.usage", "USD", cost));
            out.push(counter("claude_code.token.usage", "tokens", tokens));
        }
        let main_model = self.usage.keys().next().map_or("claude-sonnet-4-6", |m| m);
        if self.lines_added + self.lines_removed > 0 {
            let attrs = |t: &str| vec![kv("type", s(t)), kv("model", s(model(main_model)))];
            out.push(counter(
                "claude_code.lines_of_code.count",
                "",
                vec![
                    point(f64::from(self.lines_added), attrs("added")),
                    point(f64::from(self.lines_removed), attrs("removed")),
                ],
            ));
        }
        if !self.edits.is_empty() {
            let points = self
                .edits
                .iter()
                .map(|((tool, decision, source, language), n)| {
                    point(
                        *n as f64,
                        vec![
                            kv("tool_name", s(*tool)),
                            kv("decision", s(*decision)),
                            kv("source", s(*source)),
                            kv("language", s(*language)),
                        ],
                    )
                })
                .collect();
            out.push(counter("claude_code.code_edit_tool.decision", "", points));
        }
        for (name, n) in [
            ("claude_code.commit.count", self.commits),
            ("claude_code.pull_request.count", self.pull_requests),
        ] {
            if n > 0 {
                out.push(counter(name, "", vec![point(f64::from(n), vec![])]));
            }
        }
        out.push(counter(
            "claude_code.active_time.total",
            "s",
            vec![
                point(self.user_s, vec![kv("type", s("user"))]),
                point((self.cli_s * 1000.0).round() / 1000.0, vec![kv("type", s("cli"))]),
            ],
        ));
        out
    }
}

/// A span of `trace` under `parent`, `start_ms` to `end_ms`.
#[allow(clippy::too_many_arguments)]
fn span_of(
    trace: &[u8; 16],
    id: [u8; 8],
    parent: &[u8; 8],
    name: &str,
    start_ms: u64,
    end_ms: u64,
    attributes: Vec<KeyValue>,
    failed: bool,
) -> Span {
    Span {
        trace_id: trace.to_vec(),
        span_id: id.to_vec(),
        parent_span_id: parent.to_vec(),
        name: name.into(),
        kind: span::SpanKind::Internal as i32,
        start_time_unix_nano: start_ms * 1_000_000,
        end_time_unix_nano: end_ms * 1_000_000,
        attributes,
        status: failed.then(|| Status {
            code: 2,
            message: "request failed".into(),
        }),
        ..Default::default()
    }
}

fn request(service: &str, records: Vec<LogRecord>) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(service),
            scope_logs: vec![ScopeLogs {
                scope: scope("com.anthropic.claude_code.events"),
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn resource(service: &str) -> Option<Resource> {
    Some(Resource {
        attributes: vec![
            kv("service.name", s(service)),
            kv(
                "service.version",
                s(if service == "cowork" { "1.17420.0" } else { "2.1.240" }),
            ),
        ],
        ..Default::default()
    })
}

fn scope(name: &str) -> Option<InstrumentationScope> {
    Some(InstrumentationScope {
        name: name.into(),
        version: "2.1.240".into(),
        ..Default::default()
    })
}

fn metrics_request(service: &str, metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(service),
            scope_metrics: vec![ScopeMetrics {
                scope: scope("com.anthropic.claude_code"),
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn traces_request(service: &str, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(service),
            scope_spans: vec![ScopeSpans {
                scope: scope("com.anthropic.claude_code.tracing"),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// One request to send, of any signal.
enum Outgoing {
    Logs(ExportLogsServiceRequest),
    Metrics(ExportMetricsServiceRequest),
    Traces(ExportTraceServiceRequest),
}

impl Outgoing {
    fn signal(&self) -> Signal {
        match self {
            Outgoing::Logs(_) => Signal::Logs,
            Outgoing::Metrics(_) => Signal::Metrics,
            Outgoing::Traces(_) => Signal::Traces,
        }
    }

    fn body(&self, json: bool) -> Vec<u8> {
        fn encode<M: prost::Message + serde::Serialize>(m: &M, json: bool) -> Vec<u8> {
            if json {
                serde_json::to_vec(m).expect("serializable")
            } else {
                m.encode_to_vec()
            }
        }
        match self {
            Outgoing::Logs(r) => encode(r, json),
            Outgoing::Metrics(r) => encode(r, json),
            Outgoing::Traces(r) => encode(r, json),
        }
    }

    /// What the request carries: event names (logs), or the number of points or spans.
    fn contents(&self) -> (Vec<String>, u64, u64) {
        match self {
            Outgoing::Logs(r) => (event_names(r), 0, 0),
            Outgoing::Metrics(r) => {
                let points = r
                    .resource_metrics
                    .iter()
                    .flat_map(|rm| &rm.scope_metrics)
                    .flat_map(|sm| &sm.metrics)
                    .map(|m| match &m.data {
                        Some(metric::Data::Sum(sum)) => sum.data_points.len() as u64,
                        _ => 0,
                    })
                    .sum();
                (Vec::new(), points, 0)
            }
            Outgoing::Traces(r) => {
                let spans = r
                    .resource_spans
                    .iter()
                    .flat_map(|rs| &rs.scope_spans)
                    .map(|ss| ss.spans.len() as u64)
                    .sum();
                (Vec::new(), 0, spans)
            }
        }
    }
}

/// gRPC clients, one per signal service, on one channel.
#[derive(Clone)]
struct Grpc {
    logs: LogsServiceClient<tonic::transport::Channel>,
    metrics: MetricsServiceClient<tonic::transport::Channel>,
    traces: TraceServiceClient<tonic::transport::Channel>,
}

fn event_names(req: &ExportLogsServiceRequest) -> Vec<String> {
    req.resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .flat_map(|s| &s.log_records)
        .filter_map(|r| {
            r.attributes
                .iter()
                .find(|a| a.key == "event.name")
                .and_then(|a| match &a.value {
                    Some(AnyValue {
                        value: Some(any_value::Value::StringValue(v)),
                    }) => Some(v.clone()),
                    _ => None,
                })
        })
        .collect()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).expect("writing to memory");
    e.finish().expect("writing to memory")
}

/// A gRPC request carrying the ingest key.
fn authorized<T>(msg: T, api_key: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    if let Ok(v) = format!("Bearer {api_key}").parse() {
        r.metadata_mut().insert("authorization", v);
    }
    r
}

/// Sends one request; returns the answer's label and whether it was accepted.
async fn send(opts: &Options, http: &reqwest::Client, grpc: &Option<Grpc>, req: Outgoing) -> (String, bool) {
    match opts.protocol {
        Protocol::Grpc => {
            let mut g = grpc.clone().expect("connected for gRPC");
            let key = &opts.api_key;
            let result = match req {
                Outgoing::Logs(r) => g.logs.export(authorized(r, key)).await.map(|_| ()),
                Outgoing::Metrics(r) => g.metrics.export(authorized(r, key)).await.map(|_| ()),
                Outgoing::Traces(r) => g.traces.export(authorized(r, key)).await.map(|_| ()),
            };
            match result {
                Ok(()) => ("grpc:ok".into(), true),
                Err(status) => (format!("grpc:{:?}", status.code()).to_lowercase(), false),
            }
        }
        Protocol::HttpProtobuf | Protocol::HttpJson => {
            let json = opts.protocol == Protocol::HttpJson;
            let content_type = if json {
                "application/json"
            } else {
                "application/x-protobuf"
            };
            let body = req.body(json);
            let path = req.signal().http_paths()[0];
            let mut r = http
                .post(format!("{}{path}", opts.endpoint.trim_end_matches('/')))
                .header("content-type", content_type)
                .header("authorization", format!("Bearer {}", opts.api_key));
            r = if opts.gzip {
                r.header("content-encoding", "gzip").body(gzip(&body))
            } else {
                r.body(body)
            };
            match r.send().await {
                Ok(resp) => (resp.status().as_u16().to_string(), resp.status().is_success()),
                Err(_) => ("error".into(), false),
            }
        }
    }
}

/// Generates and sends traffic until the session or time limit; returns what happened.
pub async fn run(opts: Options) -> anyhow::Result<Report> {
    anyhow::ensure!(
        opts.batch > 0 && opts.concurrency > 0,
        "batch and concurrency must be > 0"
    );
    anyhow::ensure!(!opts.styles.is_empty(), "at least one style");
    anyhow::ensure!(!opts.signals.is_empty(), "at least one signal");
    let http = reqwest::Client::new();
    let grpc = match opts.protocol {
        Protocol::Grpc => {
            let channel = tonic::transport::Endpoint::from_shared(opts.endpoint.clone())?
                .connect()
                .await?;
            let mut g = Grpc {
                logs: LogsServiceClient::new(channel.clone()),
                metrics: MetricsServiceClient::new(channel.clone()),
                traces: TraceServiceClient::new(channel),
            };
            if opts.gzip {
                let gz = tonic::codec::CompressionEncoding::Gzip;
                g.logs = g.logs.send_compressed(gz);
                g.metrics = g.metrics.send_compressed(gz);
                g.traces = g.traces.send_compressed(gz);
            }
            Some(g)
        }
        _ => None,
    };
    let report = Arc::new(Mutex::new(Report::default()));
    let (tx, rx) = tokio::sync::mpsc::channel::<Outgoing>(opts.concurrency * 2);
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let mut workers = Vec::new();
    for _ in 0..opts.concurrency {
        let (rx, report, opts, http, grpc) = (rx.clone(), report.clone(), opts.clone(), http.clone(), grpc.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let Some(req) = rx.lock().await.recv().await else {
                    return;
                };
                let (names, points, spans) = req.contents();
                let (answer, ok) = send(&opts, &http, &grpc, req).await;
                let mut r = report.lock().expect("not poisoned");
                r.requests += 1;
                *r.answers.entry(answer).or_default() += 1;
                if ok {
                    r.events += names.len() as u64;
                    r.points += points;
                    r.spans += spans;
                    for n in names {
                        *r.by_event.entry(n).or_default() += 1;
                    }
                } else {
                    // A refused point or span counts like a refused event: the run failed.
                    r.failed_events += names.len() as u64 + points + spans;
                }
            }
        }));
    }

    let started = Instant::now();
    let mut generator = Generator {
        rng: StdRng::seed_from_u64(opts.seed),
        styles: opts.styles.clone(),
        index: 0,
    };
    let mut pending: BTreeMap<&'static str, Vec<LogRecord>> = BTreeMap::new();
    let (mut generated, mut sessions) = (0u64, 0u64);
    let mut last_progress = Instant::now();
    loop {
        let done =
            (opts.sessions > 0 && sessions >= opts.sessions) || opts.duration.is_some_and(|d| started.elapsed() >= d);
        if done {
            break;
        }
        let Session {
            service,
            records,
            metrics,
            spans,
        } = generator.session();
        sessions += 1;
        if opts.signals.contains(&Signal::Logs) {
            generated += records.len() as u64;
            let queue = pending.entry(service).or_default();
            queue.extend(records);
            while queue.len() >= opts.batch {
                let rest = queue.split_off(opts.batch);
                let batch = std::mem::replace(queue, rest);
                if tx.send(Outgoing::Logs(request(service, batch))).await.is_err() {
                    anyhow::bail!("every sender stopped");
                }
            }
        }
        // A session's meter and tracer export once, when it ends.
        if opts.signals.contains(&Signal::Metrics)
            && tx
                .send(Outgoing::Metrics(metrics_request(service, metrics)))
                .await
                .is_err()
        {
            anyhow::bail!("every sender stopped");
        }
        if opts.signals.contains(&Signal::Traces)
            && tx.send(Outgoing::Traces(traces_request(service, spans))).await.is_err()
        {
            anyhow::bail!("every sender stopped");
        }
        if opts.rate > 0.0 {
            let due = Duration::from_secs_f64(generated as f64 / opts.rate);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
        if let Some(every) = opts.progress {
            if last_progress.elapsed() >= every {
                last_progress = Instant::now();
                let r = report.lock().expect("not poisoned").clone();
                eprintln!(
                    "loadgen: {:.0} s, {} events accepted ({:.0}/s), {} refused or failed, answers {:?}",
                    started.elapsed().as_secs_f64(),
                    r.events,
                    r.events as f64 / started.elapsed().as_secs_f64(),
                    r.failed_events,
                    r.answers
                );
            }
        }
    }
    for (service, records) in std::mem::take(&mut pending) {
        if !records.is_empty() {
            let _ = tx.send(Outgoing::Logs(request(service, records))).await;
        }
    }
    drop(tx);
    for w in workers {
        let _ = w.await;
    }
    let mut r = report.lock().expect("not poisoned").clone();
    r.sessions = sessions;
    r.elapsed = started.elapsed();
    Ok(r)
}
