//! One Kafka message to rows: read the edge's headers, decompress as they say, decode on the
//! fast path, normalize every record, and encode its rows. A message that cannot be read becomes
//! a [`DeadLetter`] and leaves no rows behind.

use std::borrow::Cow;

use rdkafka::message::Message;

use super::dead_letter::DeadLetter;
use crate::budget::Budget;
use crate::clickhouse::rows::{Origin, Rows};
use crate::envelope::{self, Envelope};
use crate::otlp::compression::{decompress, CompressionError};
use crate::otlp::decode::{json, proto, Attr, Point, Record, Span};
use crate::otlp::{ContentType, Signal};
use crate::telemetry::consumer::Stats;
use crate::telemetry::labels::{DeadLetterClass, EventKind, SecurityKind};
use crate::transform::attribution::{Attribution, Scope};
use crate::transform::content::ContentPolicy;
use crate::transform::normalize::{day_of, normalize, Cell, Detail, Event, TimeSource};
use crate::transform::signals::{is_cumulative, normalize_point, normalize_span};

/// Reads the edge's headers; a message whose headers cannot be read is a dead letter.
pub fn envelope<'m>(msg: &'m impl Message) -> Result<Envelope<'m>, DeadLetter> {
    Envelope::read(msg).map_err(|e| DeadLetter::new(DeadLetterClass::BadHeaders, e.0))
}

/// The event kind a normalized event is counted as.
fn kind(ev: &Event<'_>) -> EventKind {
    match ev.detail {
        // The bulk of the traffic, without a lookup by name.
        Detail::UserPrompt(_) => EventKind::UserPrompt,
        Detail::ApiRequest(_) => EventKind::ApiRequest,
        Detail::ApiError(_) => EventKind::ApiError,
        Detail::ToolDecision(_) => EventKind::ToolDecision,
        Detail::ToolResult(_) => EventKind::ToolResult,
        Detail::Kind(_) => EventKind::of_event(ev.event_name),
        Detail::Other => EventKind::Other,
    }
}

/// The security signal an event is, if any: the Claude Code docs' map of security questions
/// (a switch to `bypassPermissions`, a failed login, an MCP server that failed to connect, a
/// plugin from a marketplace that is not official, a hook that blocked an action, a refusal, a
/// rejected tool call).
fn security(ev: &Event<'_>) -> Option<SecurityKind> {
    let kind = match &ev.detail {
        Detail::ToolDecision(d) if d.decision == "reject" => return Some(SecurityKind::ToolReject),
        Detail::Kind(k) => k,
        _ => return None,
    };
    let is = |column: &str, want: Cell<'_>| kind.cell(column) == Some(want);
    let hit = match kind.kind.table {
        "permission_mode_changes" => {
            is("to_mode", Cell::Text("bypassPermissions")).then_some(SecurityKind::PermissionBypass)
        }
        "auth_events" => is("success", Cell::Bool(Some(false))).then_some(SecurityKind::AuthFailure),
        "mcp_server_connections" => is("status", Cell::Text("failed")).then_some(SecurityKind::McpConnectionFailure),
        "plugin_installs" => {
            is("marketplace_is_official", Cell::Bool(Some(false))).then_some(SecurityKind::PluginInstallUnofficial)
        }
        "hook_executions" => {
            matches!(kind.cell("num_blocking"), Some(Cell::Num(Some(n))) if n > 0).then_some(SecurityKind::HookBlock)
        }
        "api_refusals" => Some(SecurityKind::ApiRefusal),
        _ => None,
    };
    hit
}

/// Decodes payloads into rows, reusing its buffers from one payload to the next.
pub struct Decoder {
    budget: Budget,
    max_decompressed: usize,
    attribution: Attribution,
    json: Vec<u8>,
}

/// Above this, the JSON scratch buffer is released after use instead of kept for the next one.
const KEEP_JSON_BUFFER: usize = 4 * 1024 * 1024;

impl Decoder {
    pub fn new(max_decompressed: usize, attribution: Attribution) -> Decoder {
        Decoder {
            // Room for one payload at the limit plus the decompressor's read chunk. The budget
            // is the consumer's own: it reports to no gauge.
            budget: Budget::new(max_decompressed + 1024 * 1024, None),
            max_decompressed,
            attribution,
            json: Vec::new(),
        }
    }

    /// Encodes every record of `body` into `rows`. On failure, `rows` is as it was.
    pub fn rows_into(
        &mut self,
        env: &Envelope<'_>,
        body: &[u8],
        partition: i32,
        offset: i64,
        policy: &ContentPolicy,
        rows: &mut Rows,
    ) -> Result<Stats, DeadLetter> {
        let mut permit = self.budget.permit();
        let data: Cow<'_, [u8]> =
            decompress(env.compression, body, self.max_decompressed, &mut permit).map_err(|e| match e {
                CompressionError::TooLarge { .. } => DeadLetter::new(DeadLetterClass::TooLarge, e.to_string()),
                // One payload at the limit always fits the consumer's own budget.
                CompressionError::Budget => DeadLetter::new(DeadLetterClass::TooLarge, e.to_string()),
                CompressionError::Corrupt { .. } => DeadLetter::new(DeadLetterClass::BadCompression, e.to_string()),
            })?;
        let origin = Origin {
            tenant: env.tenant,
            received_at_ns: env.received_at_ns,
            partition,
            offset,
            policy,
        };
        let key_defaults = key_defaults(env)?;
        let scope = Scope {
            tenant: env.tenant,
            attribution: &self.attribution,
            key_defaults: &key_defaults,
        };
        let mark = rows.mark();
        let mut stats = Stats::default();
        let received_day = day_of(env.received_at_ns, TimeSource::Record);
        let json_buf = &mut self.json;
        let result = match env.signal {
            Signal::Logs => {
                let mut visit = |resource: &[Attr<'_>], record: &Record<'_>| {
                    let ev = normalize(&scope, resource, record, env.received_at_ns);
                    stats.count(kind(&ev), ev.event_day(), ev.time_source, ev.coercion_failures);
                    if let Some(signal) = security(&ev) {
                        stats.security_event(signal);
                    }
                    rows.push(&origin, resource, record, &ev);
                };
                match env.content_type {
                    ContentType::Protobuf => proto::decode(&data, &mut visit),
                    ContentType::Json => json::decode(json_copy(json_buf, &data), &mut visit),
                }
            }
            Signal::Metrics => {
                let mut visit = |resource: &[Attr<'_>], point: &Point<'_>| {
                    let p = normalize_point(&scope, resource, point, env.received_at_ns);
                    let day = p.event_day();
                    stats.count(EventKind::MetricPoint, day, p.time_source, p.coercion_failures);
                    // A cumulative point is part of the baseline of every later day of its
                    // series: a late one changes their increases too. Those days are marked, up
                    // to the day it was received (no later day exists yet) and at most
                    // LATE_CUMULATIVE_DAYS after its own (an on-time point marks none).
                    if is_cumulative(point) && day > 0 {
                        let last = received_day.min(day.saturating_add(LATE_CUMULATIVE_DAYS));
                        stats.days.extend(day.saturating_add(1)..=last);
                    }
                    rows.push_point(&origin, resource, point, &p);
                };
                match env.content_type {
                    ContentType::Protobuf => proto::decode_metrics(&data, &mut visit),
                    ContentType::Json => json::decode_metrics(json_copy(json_buf, &data), &mut visit),
                }
            }
            Signal::Traces => {
                let mut visit = |resource: &[Attr<'_>], span: &Span<'_>| {
                    let s = normalize_span(&scope, resource, span, env.received_at_ns);
                    stats.count(EventKind::Span, s.event_day(), s.time_source, s.coercion_failures);
                    rows.push_span(&origin, resource, span, &s);
                };
                match env.content_type {
                    ContentType::Protobuf => proto::decode_traces(&data, &mut visit),
                    ContentType::Json => json::decode_traces(json_copy(json_buf, &data), &mut visit),
                }
            }
        };
        if self.json.capacity() > KEEP_JSON_BUFFER {
            self.json = Vec::new();
        }
        match result {
            Ok(_) => Ok(stats),
            Err(e) => {
                rows.rollback(mark);
                Err(DeadLetter::new(DeadLetterClass::Undecodable, e.to_string()))
            }
        }
    }
}

/// The sending key's default attributes; a header that cannot be read is a dead letter.
fn key_defaults(env: &Envelope<'_>) -> Result<Vec<(String, String)>, DeadLetter> {
    envelope::key_attributes(env.key_attributes).map_err(|e| DeadLetter::new(DeadLetterClass::BadHeaders, e.0))
}

/// How many days after a late cumulative point's own day are refreshed again because of it.
pub const LATE_CUMULATIVE_DAYS: u16 = 31;

/// A mutable copy of `data` in the reused buffer: simd-json unescapes in place.
fn json_copy<'j>(json: &'j mut Vec<u8>, data: &[u8]) -> &'j mut [u8] {
    json.clear();
    json.extend_from_slice(data);
    json
}

#[cfg(test)]
mod tests {
    use rdkafka::message::{Header, OwnedHeaders, OwnedMessage, Timestamp};

    use super::*;

    #[test]
    fn the_security_signals_name_catalogue_tables_and_columns() {
        use crate::transform::kinds::KINDS;
        for (table, column) in [
            ("permission_mode_changes", "to_mode"),
            ("auth_events", "success"),
            ("mcp_server_connections", "status"),
            ("plugin_installs", "marketplace_is_official"),
            ("hook_executions", "num_blocking"),
            ("api_refusals", "model"),
        ] {
            let k = KINDS
                .iter()
                .find(|k| k.table == table)
                .unwrap_or_else(|| panic!("{table}"));
            assert!(k.columns.iter().any(|c| c.name == column), "{table}.{column}");
        }
    }
    use crate::envelope::header;
    use crate::otlp::Compression;

    fn message(headers: &[(&str, &str)], payload: &[u8]) -> OwnedMessage {
        let mut h = OwnedHeaders::new();
        for (k, v) in headers {
            h = h.insert(Header {
                key: k,
                value: Some(*v),
            });
        }
        OwnedMessage::new(
            Some(payload.to_vec()),
            None,
            "cowork-otlp-logs".into(),
            Timestamp::CreateTime(1_795_100_000_123),
            0,
            7,
            Some(h),
        )
    }

    const OK: [(&str, &str); 3] = [
        (header::TENANT, "acme"),
        (header::CONTENT_TYPE, "application/json"),
        (header::RECEIVED_AT_MS, "1795100000000"),
    ];

    #[test]
    fn the_edge_headers_say_how_to_read_a_payload() {
        let m = message(&OK, b"{}");
        let env = envelope(&m).unwrap();
        assert_eq!(env.tenant, "acme");
        assert_eq!(env.content_type, ContentType::Json);
        assert_eq!(
            env.compression,
            Compression::Identity,
            "no encoding header means identity"
        );
        assert_eq!(env.received_at_ns, 1_795_100_000_000_000_000);
    }

    #[test]
    fn without_a_receive_time_the_kafka_timestamp_is_used() {
        let m = message(&OK[..2], b"{}");
        assert_eq!(envelope(&m).unwrap().received_at_ns, 1_795_100_000_123_000_000);
    }

    #[test]
    fn a_receive_time_out_of_range_is_a_bad_header_not_a_crash() {
        let far = message(&[OK[0], OK[1], (header::RECEIVED_AT_MS, "99999999999999999")], b"{}");
        assert_eq!(envelope(&far).unwrap_err().class.as_str(), "bad_headers");
        let negative = message(&[OK[0], OK[1], (header::RECEIVED_AT_MS, "-5")], b"{}");
        assert_eq!(envelope(&negative).unwrap_err().class.as_str(), "bad_headers");
    }

    #[test]
    fn missing_or_unknown_headers_are_dead_lettered_with_a_reason() {
        let no_tenant = message(&OK[1..], b"{}");
        let e = envelope(&no_tenant).unwrap_err();
        assert_eq!(
            (e.class.as_str(), e.reason.as_str()),
            ("bad_headers", "no cowork-tenant header")
        );
        let xml = message(&[OK[0], (header::CONTENT_TYPE, "text/xml")], b"<x/>");
        let e = envelope(&xml).unwrap_err();
        assert_eq!(e.class.as_str(), "bad_headers");
        assert!(e.reason.contains("text/xml"), "{}", e.reason);
        let brotli = message(&[OK[0], OK[1], (header::CONTENT_ENCODING, "br")], b"");
        assert!(envelope(&brotli).unwrap_err().reason.contains("\"br\""));
    }

    #[test]
    fn bad_payloads_leave_no_rows_behind() {
        let policy = ContentPolicy::default();
        let mut decoder = Decoder::new(1024, Attribution::default());
        let mut rows = Rows::default();
        let env = |content_type, compression| Envelope {
            tenant: "acme",
            content_type,
            compression,
            received_at_ns: 1,
            ..Envelope::default()
        };
        // Two good records, then a broken one: the whole payload goes, and its rows with it.
        let json = br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"attributes":[]},{"attributes":[]},{"attributes":7}]}]}]}"#;
        let e = decoder
            .rows_into(
                &env(ContentType::Json, Compression::Identity),
                json,
                0,
                0,
                &policy,
                &mut rows,
            )
            .unwrap_err();
        assert_eq!(e.class.as_str(), "undecodable");
        assert_eq!(rows.mark(), crate::clickhouse::rows::Mark::default());
        let e = decoder
            .rows_into(
                &env(ContentType::Protobuf, Compression::Gzip),
                b"not gzip",
                0,
                0,
                &policy,
                &mut rows,
            )
            .unwrap_err();
        assert_eq!(e.class.as_str(), "bad_compression");
        let bomb = {
            use std::io::Write;
            let mut g = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            g.write_all(&[0u8; 4096]).unwrap();
            g.finish().unwrap()
        };
        let e = decoder
            .rows_into(
                &env(ContentType::Protobuf, Compression::Gzip),
                &bomb,
                0,
                0,
                &policy,
                &mut rows,
            )
            .unwrap_err();
        assert_eq!(e.class.as_str(), "too_large", "{}", e.reason);
    }

    #[test]
    fn a_late_cumulative_point_marks_every_later_day_up_to_its_arrival() {
        use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
        use opentelemetry_proto::tonic::metrics::v1::{
            metric, number_data_point, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
        };
        use prost::Message as _;
        const DAY: u64 = 86_400_000_000_000;
        let day = 20_788u64;
        let body = |temporality: i32| {
            ExportMetricsServiceRequest {
                resource_metrics: vec![ResourceMetrics {
                    scope_metrics: vec![ScopeMetrics {
                        metrics: vec![Metric {
                            name: "claude_code.commit.count".into(),
                            data: Some(metric::Data::Sum(Sum {
                                aggregation_temporality: temporality,
                                is_monotonic: true,
                                data_points: vec![NumberDataPoint {
                                    time_unix_nano: day * DAY + 3_600_000_000_000,
                                    value: Some(number_data_point::Value::AsDouble(1.0)),
                                    ..Default::default()
                                }],
                            })),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
            }
            .encode_to_vec()
        };
        let days = |temporality: i32, received_day: u64| {
            let env = Envelope {
                signal: Signal::Metrics,
                tenant: "acme",
                content_type: ContentType::Protobuf,
                received_at_ns: received_day * DAY + 1,
                ..Envelope::default()
            };
            let stats = Decoder::new(1 << 20, Attribution::default())
                .rows_into(
                    &env,
                    &body(temporality),
                    0,
                    0,
                    &ContentPolicy::default(),
                    &mut Rows::default(),
                )
                .unwrap();
            stats.days.into_iter().map(u64::from).collect::<Vec<_>>()
        };
        assert_eq!(days(2, day), [day], "on time: its own day");
        assert_eq!(
            days(2, day + 3),
            [day, day + 1, day + 2, day + 3],
            "late: every day up to its arrival"
        );
        assert_eq!(days(1, day + 3), [day], "a delta point is no one's baseline");
        assert_eq!(
            days(2, day + 400).len(),
            1 + usize::from(LATE_CUMULATIVE_DAYS),
            "at most a month on"
        );
    }
}
