//! `cowork-ingest loadgen`: synthetic Claude Code and Cowork traffic for demos and load runs,
//! sent to any OTLP endpoint over http/protobuf, http/json or gRPC, optionally gzip'd, at a
//! target rate or as fast as the server answers.
//!
//! Sessions follow the shapes real clients produce (see `tools/otel-client/gen.mjs`, which made
//! the corpus): prompts, API requests with tokens and cost, tool decisions and results, errors;
//! each session in one attribute style (`v2` typed numbers, `strings` everything as text,
//! `last9` vendor aliases, `legacy` old names), so the pipeline's normalization is exercised.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message as _;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

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
        write!(f, "events: {}", events.join(", "))
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

    /// One session: its service and its records.
    fn session(&mut self) -> (&'static str, Vec<LogRecord>) {
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
        let mut seq = 0i64;
        let mut records = Vec::new();
        let mut emit = |rng: &mut StdRng, name: &str, prompt_id: &str, mut attrs: Vec<KeyValue>| {
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
            emit(rng, "user_prompt", &prompt_id, prompt);
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
                emit(
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
                    emit(rng, "tool_decision", &prompt_id, d);
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
        }
        (service, records)
    }
}

fn request(service: &str, records: Vec<LogRecord>) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", s(service)),
                    kv(
                        "service.version",
                        s(if service == "cowork" { "1.17420.0" } else { "2.1.240" }),
                    ),
                ],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                scope: Some(InstrumentationScope {
                    name: "com.anthropic.claude_code.events".into(),
                    version: "2.1.240".into(),
                    ..Default::default()
                }),
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
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

/// Sends one request; returns the answer's label and whether it was accepted.
async fn send(
    opts: &Options,
    http: &reqwest::Client,
    grpc: &Option<LogsServiceClient<tonic::transport::Channel>>,
    req: ExportLogsServiceRequest,
) -> (String, bool) {
    match opts.protocol {
        Protocol::Grpc => {
            let mut client = grpc.clone().expect("connected for gRPC");
            if opts.gzip {
                client = client.send_compressed(tonic::codec::CompressionEncoding::Gzip);
            }
            let mut r = tonic::Request::new(req);
            if let Ok(v) = format!("Bearer {}", opts.api_key).parse() {
                r.metadata_mut().insert("authorization", v);
            }
            match client.export(r).await {
                Ok(_) => ("grpc:ok".into(), true),
                Err(status) => (format!("grpc:{:?}", status.code()).to_lowercase(), false),
            }
        }
        Protocol::HttpProtobuf | Protocol::HttpJson => {
            let (content_type, body) = if opts.protocol == Protocol::HttpJson {
                ("application/json", serde_json::to_vec(&req).expect("serializable"))
            } else {
                ("application/x-protobuf", req.encode_to_vec())
            };
            let mut r = http
                .post(format!("{}/v1/logs", opts.endpoint.trim_end_matches('/')))
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
    let http = reqwest::Client::new();
    let grpc = match opts.protocol {
        Protocol::Grpc => Some(LogsServiceClient::connect(opts.endpoint.clone()).await?),
        _ => None,
    };
    let report = Arc::new(Mutex::new(Report::default()));
    let (tx, rx) = tokio::sync::mpsc::channel::<ExportLogsServiceRequest>(opts.concurrency * 2);
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let mut workers = Vec::new();
    for _ in 0..opts.concurrency {
        let (rx, report, opts, http, grpc) = (rx.clone(), report.clone(), opts.clone(), http.clone(), grpc.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let Some(req) = rx.lock().await.recv().await else {
                    return;
                };
                let names = event_names(&req);
                let (answer, ok) = send(&opts, &http, &grpc, req).await;
                let mut r = report.lock().expect("not poisoned");
                r.requests += 1;
                *r.answers.entry(answer).or_default() += 1;
                if ok {
                    r.events += names.len() as u64;
                    for n in names {
                        *r.by_event.entry(n).or_default() += 1;
                    }
                } else {
                    r.failed_events += names.len() as u64;
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
        let (service, records) = generator.session();
        sessions += 1;
        generated += records.len() as u64;
        let queue = pending.entry(service).or_default();
        queue.extend(records);
        while queue.len() >= opts.batch {
            let rest = queue.split_off(opts.batch);
            let batch = std::mem::replace(queue, rest);
            if tx.send(request(service, batch)).await.is_err() {
                anyhow::bail!("every sender stopped");
            }
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
            let _ = tx.send(request(service, records)).await;
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
