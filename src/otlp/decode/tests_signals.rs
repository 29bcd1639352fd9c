// Metrics and traces: both fast paths held to the reference, point by point and span by span.
// Included into `mod tests::signals` of `mod.rs`.

use base64::Engine as _;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1 as co;
use opentelemetry_proto::tonic::metrics::v1 as me;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1 as tr;
use prost::encoding::{self as enc, WireType};
use prost::Message;

use crate::otlp::decode::{json, proto, reference, Attr, Id, Number, Point, PointKind, Span, Temporality, Value};
use crate::otlp::wire::WireError;
use crate::otlp::MAX_DEPTH;

// ---- Collecting views past their buffers ----

type Points = Vec<(Vec<Attr<'static>>, Point<'static>)>;
type Spans = Vec<(Vec<Attr<'static>>, Span<'static>)>;

fn leak_str(s: &str) -> &'static str {
    Box::leak(s.to_string().into_boxed_str())
}

fn leak_value(v: &Value<'_>) -> Value<'static> {
    match v {
        Value::Empty => Value::Empty,
        Value::Str(s) => Value::Str(leak_str(s)),
        Value::Int(i) => Value::Int(*i),
        Value::Double(d) => Value::Double(*d),
        Value::Bool(b) => Value::Bool(*b),
        Value::Bytes(b) => Value::Bytes(Box::leak(b.to_vec().into_boxed_slice())),
        Value::Array(items) => Value::Array(items.iter().map(leak_value).collect()),
        Value::KvList(kvs) => Value::KvList(leak_attrs(kvs)),
    }
}

fn leak_attrs(attrs: &[Attr<'_>]) -> Vec<Attr<'static>> {
    attrs
        .iter()
        .map(|a| Attr {
            key: leak_str(a.key),
            value: leak_value(&a.value),
        })
        .collect()
}

fn leak_id(id: Id<'_>) -> Id<'static> {
    match id {
        Id::Empty => Id::Empty,
        Id::Raw(b) => Id::Raw(Box::leak(b.to_vec().into_boxed_slice())),
        Id::Hex(s) => Id::Hex(leak_str(s)),
    }
}

fn collect_points<'a>(out: &mut Points) -> impl FnMut(&[Attr<'a>], &Point<'a>) + '_ {
    move |resource: &[Attr<'a>], p: &Point<'a>| {
        out.push((
            leak_attrs(resource),
            Point {
                scope_name: leak_str(p.scope_name),
                metric: leak_str(p.metric),
                unit: leak_str(p.unit),
                kind: p.kind,
                temporality: p.temporality,
                monotonic: p.monotonic,
                start_time_unix_nano: p.start_time_unix_nano,
                time_unix_nano: p.time_unix_nano,
                number: p.number,
                count: p.count,
                sum: p.sum,
                min: p.min,
                max: p.max,
                bucket_counts: p.bucket_counts.clone(),
                explicit_bounds: p.explicit_bounds.clone(),
                flags: p.flags,
                attributes: leak_attrs(&p.attributes),
            },
        ))
    }
}

fn collect_spans<'a>(out: &mut Spans) -> impl FnMut(&[Attr<'a>], &Span<'a>) + '_ {
    move |resource: &[Attr<'a>], s: &Span<'a>| {
        out.push((
            leak_attrs(resource),
            Span {
                scope_name: leak_str(s.scope_name),
                trace_id: leak_id(s.trace_id),
                span_id: leak_id(s.span_id),
                parent_span_id: leak_id(s.parent_span_id),
                name: leak_str(s.name),
                kind: s.kind,
                start_time_unix_nano: s.start_time_unix_nano,
                end_time_unix_nano: s.end_time_unix_nano,
                attributes: leak_attrs(&s.attributes),
                status_code: s.status_code,
                status_message: leak_str(s.status_message),
                events: s.events,
                links: s.links,
            },
        ))
    }
}

// ---- Comparing: JSON views differ from the reference's in two documented ways ----
//
// - ids: the fast path keeps the hex text (`Id::Hex`); the reference's serde decodes it into
//   bytes (`Id::Raw`). They agree when their `to_hex()` does.
// - `bytesValue`: the fast path keeps the base64 text (`Value::Str`, as for logs); the
//   reference decodes it (`Value::Bytes`). They agree when the bytes re-encode to that text.

fn canon_value(v: &Value<'static>) -> Value<'static> {
    match v {
        Value::Bytes(b) => Value::Str(leak_str(&base64::engine::general_purpose::STANDARD.encode(b))),
        Value::Array(items) => Value::Array(items.iter().map(canon_value).collect()),
        Value::KvList(kvs) => Value::KvList(canon_attrs(kvs)),
        other => other.clone(),
    }
}

fn canon_attrs(attrs: &[Attr<'static>]) -> Vec<Attr<'static>> {
    attrs
        .iter()
        .map(|a| Attr {
            key: a.key,
            value: canon_value(&a.value),
        })
        .collect()
}

fn canon_id(id: Id<'static>) -> Id<'static> {
    match id {
        Id::Empty => Id::Empty,
        other => Id::Hex(leak_str(&other.to_hex())),
    }
}

fn canon_points(points: &Points) -> Points {
    points
        .iter()
        .map(|(r, p)| {
            (
                canon_attrs(r),
                Point {
                    attributes: canon_attrs(&p.attributes),
                    ..p.clone()
                },
            )
        })
        .collect()
}

fn canon_spans(spans: &Spans) -> Spans {
    spans
        .iter()
        .map(|(r, s)| {
            (
                canon_attrs(r),
                Span {
                    trace_id: canon_id(s.trace_id),
                    span_id: canon_id(s.span_id),
                    parent_span_id: canon_id(s.parent_span_id),
                    attributes: canon_attrs(&s.attributes),
                    ..s.clone()
                },
            )
        })
        .collect()
}

fn assert_same<T: PartialEq + std::fmt::Debug>(fast: &[T], slow: &[T], what: &str) {
    for (i, (f, s)) in fast.iter().zip(slow).enumerate() {
        assert_eq!(f, s, "{what}: item {i} differs");
    }
    assert_eq!(fast.len(), slow.len(), "{what}: counts differ");
}

fn ids_are(spans: &Spans, raw: bool) -> bool {
    spans.iter().all(|(_, s)| {
        [s.trace_id, s.span_id, s.parent_span_id].iter().all(|id| match id {
            Id::Empty => true,
            Id::Raw(_) => raw,
            Id::Hex(_) => !raw,
        })
    })
}

/// Both decodes of a protobuf metrics body; they must agree exactly.
fn metrics_pb(body: &[u8]) -> Points {
    let (mut fast, mut slow) = (Points::new(), Points::new());
    let n = proto::decode_metrics(body, &mut collect_points(&mut fast)).unwrap();
    let req = reference::decode_metrics_protobuf(body).unwrap();
    let m = reference::visit_metrics(&req, &mut collect_points(&mut slow));
    assert_eq!((n, m), (fast.len() as u64, slow.len() as u64));
    assert_same(&fast, &slow, "metrics, protobuf");
    fast
}

/// Both decodes of an OTLP/JSON metrics body; they must agree up to [`canon_points`].
fn metrics_json(body: &[u8]) -> Points {
    let (mut fast, mut slow) = (Points::new(), Points::new());
    let mut buf = body.to_vec();
    let n = json::decode_metrics(&mut buf, &mut collect_points(&mut fast)).unwrap();
    let req = reference::decode_metrics_json(body).unwrap();
    let m = reference::visit_metrics(&req, &mut collect_points(&mut slow));
    assert_eq!((n, m), (fast.len() as u64, slow.len() as u64));
    assert_same(&canon_points(&fast), &canon_points(&slow), "metrics, JSON");
    fast
}

fn traces_pb(body: &[u8]) -> Spans {
    let (mut fast, mut slow) = (Spans::new(), Spans::new());
    let n = proto::decode_traces(body, &mut collect_spans(&mut fast)).unwrap();
    let req = reference::decode_traces_protobuf(body).unwrap();
    let m = reference::visit_traces(&req, &mut collect_spans(&mut slow));
    assert_eq!((n, m), (fast.len() as u64, slow.len() as u64));
    assert!(ids_are(&fast, true), "protobuf ids are raw bytes");
    assert_same(&fast, &slow, "traces, protobuf");
    fast
}

fn traces_json(body: &[u8]) -> Spans {
    let (mut fast, mut slow) = (Spans::new(), Spans::new());
    let mut buf = body.to_vec();
    let n = json::decode_traces(&mut buf, &mut collect_spans(&mut fast)).unwrap();
    let req = reference::decode_traces_json(body).unwrap();
    let m = reference::visit_traces(&req, &mut collect_spans(&mut slow));
    assert_eq!((n, m), (fast.len() as u64, slow.len() as u64));
    assert!(ids_are(&fast, false), "JSON ids are hex text");
    assert!(ids_are(&slow, true), "the reference decodes JSON ids into bytes");
    assert_same(&canon_spans(&fast), &canon_spans(&slow), "traces, JSON");
    fast
}

// ---- Building requests ----

fn kv(key: &str, v: co::any_value::Value) -> co::KeyValue {
    co::KeyValue {
        key: key.into(),
        value: Some(co::AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

fn s(v: &str) -> co::any_value::Value {
    co::any_value::Value::StringValue(v.into())
}

fn int(v: i64) -> co::any_value::Value {
    co::any_value::Value::IntValue(v)
}

fn dbl(v: f64) -> co::any_value::Value {
    co::any_value::Value::DoubleValue(v)
}

fn boolean(v: bool) -> co::any_value::Value {
    co::any_value::Value::BoolValue(v)
}

fn arr(values: Vec<co::any_value::Value>) -> co::any_value::Value {
    co::any_value::Value::ArrayValue(co::ArrayValue {
        values: values.into_iter().map(|v| co::AnyValue { value: Some(v) }).collect(),
    })
}

/// An attribute of every `AnyValue` kind, nested ones included, and two empty values.
fn every_kind() -> Vec<co::KeyValue> {
    vec![
        kv("str", s("café \"quoted\" \\ \n")),
        kv("bool", boolean(true)),
        kv("int", int(-7)),
        kv("int.max", int(i64::MAX)),
        kv("double", dbl(0.25)),
        kv("double.whole", dbl(3.0)),
        kv(
            "array",
            arr(vec![s("/a"), int(2), dbl(-1.5), boolean(false), arr(vec![s("nested")])]),
        ),
        kv(
            "kvlist",
            co::any_value::Value::KvlistValue(co::KeyValueList {
                values: vec![
                    kv("a", s("x")),
                    kv(
                        "b",
                        co::any_value::Value::KvlistValue(co::KeyValueList {
                            values: vec![kv("c", int(1))],
                        }),
                    ),
                ],
            }),
        ),
        kv("bytes", co::any_value::Value::BytesValue(vec![0, 1, 0xfe, 0xff])),
        co::KeyValue {
            key: "empty".into(),
            value: Some(co::AnyValue { value: None }),
            ..Default::default()
        },
        co::KeyValue {
            key: "absent".into(),
            value: None,
            ..Default::default()
        },
    ]
}

fn resource(attrs: Vec<co::KeyValue>) -> Option<Resource> {
    Some(Resource {
        attributes: attrs,
        ..Default::default()
    })
}

fn scope(name: &str) -> Option<co::InstrumentationScope> {
    Some(co::InstrumentationScope {
        name: name.into(),
        version: "2.0.0".into(),
        ..Default::default()
    })
}

const T0: u64 = 1_795_000_000_000_000_000;
const T1: u64 = 1_795_000_060_000_000_000;

fn number(value: Option<me::number_data_point::Value>, attrs: Vec<co::KeyValue>) -> me::NumberDataPoint {
    me::NumberDataPoint {
        attributes: attrs,
        start_time_unix_nano: T0,
        time_unix_nano: T1,
        value,
        ..Default::default()
    }
}

fn as_int(i: i64) -> Option<me::number_data_point::Value> {
    Some(me::number_data_point::Value::AsInt(i))
}

fn as_double(d: f64) -> Option<me::number_data_point::Value> {
    Some(me::number_data_point::Value::AsDouble(d))
}

fn metric(name: &str, unit: &str, data: me::metric::Data) -> me::Metric {
    me::Metric {
        name: name.into(),
        description: format!("the {name}"),
        unit: unit.into(),
        data: Some(data),
        ..Default::default()
    }
}

fn sum(temporality: me::AggregationTemporality, monotonic: bool, points: Vec<me::NumberDataPoint>) -> me::metric::Data {
    me::metric::Data::Sum(me::Sum {
        data_points: points,
        aggregation_temporality: temporality as i32,
        is_monotonic: monotonic,
    })
}

fn metrics_request() -> ExportMetricsServiceRequest {
    use me::AggregationTemporality::{Cumulative, Delta};
    let exemplar = me::Exemplar {
        time_unix_nano: T1,
        span_id: vec![1; 8],
        trace_id: vec![2; 16],
        value: Some(me::exemplar::Value::AsDouble(0.3)),
        ..Default::default()
    };
    let scope_a = me::ScopeMetrics {
        scope: scope("com.anthropic.claude_code"),
        metrics: vec![
            metric(
                "claude_code.token.usage",
                "tokens",
                sum(
                    Delta,
                    true,
                    vec![
                        number(as_int(1200), vec![kv("type", s("input"))]),
                        me::NumberDataPoint {
                            flags: 1,
                            ..number(as_int(-3), vec![kv("type", s("output")), kv("model", s("opus"))])
                        },
                    ],
                ),
            ),
            metric(
                "claude_code.cost.usage",
                "USD",
                sum(Cumulative, true, vec![number(as_double(0.0123), every_kind())]),
            ),
            metric(
                "queue.depth",
                "1",
                sum(Cumulative, false, vec![number(as_double(-2.5), vec![])]),
            ),
            metric(
                "process.memory",
                "By",
                me::metric::Data::Gauge(me::Gauge {
                    data_points: vec![
                        number(as_int(i64::MIN), vec![kv("kind", s("rss"))]),
                        number(as_double(1e300), vec![kv("kind", s("heap"))]),
                        me::NumberDataPoint {
                            start_time_unix_nano: 0,
                            exemplars: vec![exemplar.clone()],
                            ..number(None, vec![kv("kind", s("none"))])
                        },
                    ],
                }),
            ),
            metric(
                "http.duration",
                "s",
                me::metric::Data::Histogram(me::Histogram {
                    aggregation_temporality: Delta as i32,
                    data_points: vec![
                        me::HistogramDataPoint {
                            attributes: vec![kv("route", s("/v1/messages"))],
                            start_time_unix_nano: T0,
                            time_unix_nano: T1,
                            count: 6,
                            sum: Some(4.75),
                            bucket_counts: vec![1, 2, 3],
                            explicit_bounds: vec![0.5, 1.0],
                            exemplars: vec![exemplar],
                            flags: 0,
                            min: Some(0.125),
                            max: Some(2.0),
                        },
                        me::HistogramDataPoint {
                            time_unix_nano: T1,
                            count: 0,
                            flags: 1,
                            ..Default::default()
                        },
                    ],
                }),
            ),
            metric(
                "latency",
                "ms",
                me::metric::Data::ExponentialHistogram(me::ExponentialHistogram {
                    aggregation_temporality: Cumulative as i32,
                    data_points: vec![me::ExponentialHistogramDataPoint {
                        attributes: vec![kv("op", s("read"))],
                        start_time_unix_nano: T0,
                        time_unix_nano: T1,
                        count: 10,
                        sum: Some(55.5),
                        scale: 3,
                        zero_count: 1,
                        positive: Some(me::exponential_histogram_data_point::Buckets {
                            offset: -2,
                            bucket_counts: vec![4, 5],
                        }),
                        negative: None,
                        flags: 0,
                        exemplars: vec![],
                        min: Some(0.0),
                        max: Some(20.25),
                        zero_threshold: 0.001,
                    }],
                }),
            ),
            metric(
                "gc.pause",
                "ms",
                me::metric::Data::Summary(me::Summary {
                    data_points: vec![
                        me::SummaryDataPoint {
                            attributes: vec![kv("gen", int(2))],
                            start_time_unix_nano: T0,
                            time_unix_nano: T1,
                            count: 4,
                            sum: 12.5,
                            quantile_values: vec![
                                me::summary_data_point::ValueAtQuantile {
                                    quantile: 0.5,
                                    value: 2.0,
                                },
                                me::summary_data_point::ValueAtQuantile {
                                    quantile: 1.0,
                                    value: 7.0,
                                },
                            ],
                            flags: 0,
                        },
                        me::SummaryDataPoint::default(),
                    ],
                }),
            ),
            me::Metric {
                name: "no.data".into(),
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let scope_none = me::ScopeMetrics {
        scope: None,
        metrics: vec![metric(
            "unscoped",
            "",
            me::metric::Data::Gauge(me::Gauge {
                data_points: vec![number(as_int(1), vec![])],
            }),
        )],
        ..Default::default()
    };
    let scope_b = me::ScopeMetrics {
        scope: scope("other"),
        metrics: vec![metric(
            "claude_code.session.count",
            "1",
            sum(Delta, true, vec![number(as_int(1), every_kind())]),
        )],
        ..Default::default()
    };
    ExportMetricsServiceRequest {
        resource_metrics: vec![
            me::ResourceMetrics {
                resource: resource(
                    [vec![kv("service.name", s("cowork"))], every_kind()]
                        .into_iter()
                        .flatten()
                        .collect(),
                ),
                scope_metrics: vec![scope_a, scope_none],
                ..Default::default()
            },
            me::ResourceMetrics {
                resource: resource(vec![kv("service.name", s("claude-code")), kv("host.arch", s("arm64"))]),
                scope_metrics: vec![scope_b],
                ..Default::default()
            },
            me::ResourceMetrics::default(),
        ],
    }
}

fn span(name: &str, trace: u8, id: u8, parent: Option<u8>) -> tr::Span {
    tr::Span {
        trace_id: vec![trace; 16],
        span_id: vec![id; 8],
        parent_span_id: parent.map(|p| vec![p; 8]).unwrap_or_default(),
        name: name.into(),
        start_time_unix_nano: T0,
        end_time_unix_nano: T1,
        ..Default::default()
    }
}

fn traces_request() -> ExportTraceServiceRequest {
    use tr::span::SpanKind;
    let root = tr::Span {
        kind: SpanKind::Server as i32,
        attributes: vec![
            kv("http.status_code", int(200)),
            kv("cached", boolean(false)),
            kv("ratio", dbl(0.75)),
            kv("tools", arr(vec![s("Bash"), s("Edit")])),
        ],
        status: Some(tr::Status {
            message: String::new(),
            code: tr::status::StatusCode::Ok as i32,
        }),
        flags: 0x301,
        trace_state: "vendor=1".into(),
        ..span("claude_code.interaction", 0xab, 0x01, None)
    };
    let child = tr::Span {
        kind: SpanKind::Client as i32,
        attributes: every_kind(),
        dropped_attributes_count: 2,
        events: vec![
            tr::span::Event {
                time_unix_nano: T0 + 5,
                name: "retry".into(),
                attributes: vec![kv("attempt", int(1))],
                dropped_attributes_count: 0,
            },
            tr::span::Event {
                time_unix_nano: T0 + 9,
                name: "exception".into(),
                ..Default::default()
            },
        ],
        dropped_events_count: 1,
        links: vec![tr::span::Link {
            trace_id: vec![0xcd; 16],
            span_id: vec![0x07; 8],
            trace_state: "k=v".into(),
            attributes: vec![kv("link.kind", s("follows"))],
            dropped_attributes_count: 0,
            flags: 1,
        }],
        status: Some(tr::Status {
            message: "rate limited: 429".into(),
            code: tr::status::StatusCode::Error as i32,
        }),
        ..span("claude_code.api_request", 0xab, 0x02, Some(0x01))
    };
    let unset = tr::Span {
        kind: SpanKind::Internal as i32,
        status: Some(tr::Status::default()),
        ..span("claude_code.tool", 0xab, 0x03, Some(0x02))
    };
    let anonymous = tr::Span {
        trace_id: vec![],
        span_id: vec![],
        ..Default::default()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![
            tr::ResourceSpans {
                resource: resource(
                    [vec![kv("service.name", s("cowork"))], every_kind()]
                        .into_iter()
                        .flatten()
                        .collect(),
                ),
                scope_spans: vec![
                    tr::ScopeSpans {
                        scope: scope("com.anthropic.claude_code.tracing"),
                        spans: vec![root, child, unset],
                        ..Default::default()
                    },
                    tr::ScopeSpans {
                        scope: None,
                        spans: vec![anonymous],
                        ..Default::default()
                    },
                ],
                ..Default::default()
            },
            tr::ResourceSpans {
                resource: resource(vec![kv("service.name", s("claude-code")), kv("os.type", s("darwin"))]),
                scope_spans: vec![tr::ScopeSpans {
                    scope: scope("other"),
                    spans: vec![tr::Span {
                        kind: SpanKind::Producer as i32,
                        ..span("enqueue", 0x11, 0x22, Some(0x33))
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            },
        ],
    }
}

// ---- Hand encodings, for field orders prost itself never writes ----

fn put_message(tag: u32, inner: &[u8], out: &mut Vec<u8>) {
    enc::encode_key(tag, WireType::LengthDelimited, out);
    enc::encode_varint(inner.len() as u64, out);
    out.extend_from_slice(inner);
}

fn put_string(tag: u32, s: &str, out: &mut Vec<u8>) {
    put_message(tag, s.as_bytes(), out);
}

fn put_varint(tag: u32, v: u64, out: &mut Vec<u8>) {
    enc::encode_key(tag, WireType::Varint, out);
    enc::encode_varint(v, out);
}

fn put_fixed64(tag: u32, v: u64, out: &mut Vec<u8>) {
    enc::encode_key(tag, WireType::SixtyFourBit, out);
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_kv(tag: u32, key: &str, value: &str, out: &mut Vec<u8>) {
    put_message(tag, &kv(key, s(value)).encode_to_vec(), out);
}

fn number_point_bytes(value: i64, label: &str) -> Vec<u8> {
    let mut dp = Vec::new();
    put_fixed64(6, value as u64, &mut dp); // as_int before the times and attributes
    put_fixed64(3, T1, &mut dp);
    put_kv(7, "label", label, &mut dp);
    put_fixed64(2, T0, &mut dp);
    dp
}

/// Resources after their scopes, scopes after their metrics, metric names after their data,
/// temporality after the points, a oneof sent several times, unpacked repeated doubles.
fn metrics_out_of_order() -> Vec<u8> {
    // Sum: points first, then monotonic, then temporality.
    let mut sum_a = Vec::new();
    put_message(1, &number_point_bytes(5, "a"), &mut sum_a);
    put_varint(3, 1, &mut sum_a);
    put_varint(2, 1, &mut sum_a);
    let mut sum_b = Vec::new();
    put_message(1, &number_point_bytes(6, "b"), &mut sum_b);
    put_varint(2, 2, &mut sum_b); // the merge keeps the last temporality: cumulative
    let mut gauge = Vec::new();
    put_message(1, &number_point_bytes(7, "dropped"), &mut gauge);
    // A histogram point: bucket counts unpacked, bounds half packed, half not, sum last.
    let mut hdp = Vec::new();
    put_fixed64(6, 1, &mut hdp);
    put_fixed64(6, 2, &mut hdp);
    enc::double::encode_packed(7, &[0.5, 1.0], &mut hdp);
    enc::double::encode(7, &2.0, &mut hdp);
    put_fixed64(6, 3, &mut hdp);
    put_fixed64(4, 6, &mut hdp);
    put_varint(10, 1, &mut hdp);
    put_fixed64(12, 9.5f64.to_bits(), &mut hdp);
    put_kv(9, "h", "1", &mut hdp);
    put_fixed64(5, 12.25f64.to_bits(), &mut hdp);
    let mut hist = Vec::new();
    put_message(1, &hdp, &mut hist);
    put_varint(2, 1, &mut hist);

    let mut m1 = Vec::new();
    put_message(5, &gauge, &mut m1); // replaced by the sums that follow
    put_message(7, &sum_a, &mut m1);
    put_string(2, "description after the data", &mut m1);
    put_message(7, &sum_b, &mut m1); // merged with sum_a
    put_string(3, "tokens", &mut m1);
    put_string(1, "late.name", &mut m1);
    let mut m2 = Vec::new();
    put_message(9, &hist, &mut m2);
    put_string(1, "hist", &mut m2);

    let mut sm = Vec::new();
    put_message(2, &m1, &mut sm);
    put_message(2, &m2, &mut sm);
    put_message(1, &scope("late.scope").unwrap().encode_to_vec(), &mut sm);
    let mut rm = Vec::new();
    put_message(2, &sm, &mut rm);
    put_message(
        1,
        &resource(vec![kv("service.name", s("late"))]).unwrap().encode_to_vec(),
        &mut rm,
    );
    put_message(
        1,
        &resource(vec![kv("merged", s("yes"))]).unwrap().encode_to_vec(),
        &mut rm,
    );
    let mut req = Vec::new();
    put_message(1, &rm, &mut req);
    req
}

fn traces_out_of_order() -> Vec<u8> {
    let mut sp = Vec::new();
    put_message(
        15,
        &tr::Status {
            message: "m".into(),
            code: 2,
        }
        .encode_to_vec(),
        &mut sp,
    );
    put_kv(9, "k", "v", &mut sp);
    put_message(11, &[], &mut sp);
    put_string(5, "late", &mut sp);
    put_message(2, &[9; 8], &mut sp);
    put_message(
        15,
        &tr::Status {
            message: String::new(),
            code: 1,
        }
        .encode_to_vec(),
        &mut sp,
    ); // merged: code 1, message "m"
    put_message(1, &[8; 16], &mut sp);
    put_message(13, &[], &mut sp);
    put_message(13, &[], &mut sp);
    put_varint(6, 3, &mut sp);
    let mut ss = Vec::new();
    put_message(2, &sp, &mut ss);
    put_message(1, &scope("late.scope").unwrap().encode_to_vec(), &mut ss);
    let mut rs = Vec::new();
    put_message(2, &ss, &mut rs);
    put_message(
        1,
        &resource(vec![kv("service.name", s("late"))]).unwrap().encode_to_vec(),
        &mut rs,
    );
    let mut req = Vec::new();
    put_message(1, &rs, &mut req);
    req
}

// ---- The tests ----

/// The `i`th point of metric `name`.
fn nth<'p>(points: &'p Points, name: &str, i: usize) -> &'p Point<'static> {
    &points.iter().filter(|(_, p)| p.metric == name).nth(i).unwrap().1
}

#[test]
fn metrics_fast_paths_agree_with_the_reference() {
    let req = metrics_request();
    let pb = metrics_pb(&req.encode_to_vec());
    let js = metrics_json(&serde_json::to_vec(&req).unwrap());
    assert_eq!(pb.len(), 14, "every data point");
    // The encodings agree too, up to the JSON forms of bytes.
    assert_same(&canon_points(&pb), &canon_points(&js), "protobuf against JSON");

    let point = |name: &str, i: usize| nth(&pb, name, i);
    let tokens = point("claude_code.token.usage", 1);
    assert_eq!(
        (
            tokens.kind,
            tokens.temporality,
            tokens.monotonic,
            tokens.number,
            tokens.flags
        ),
        (PointKind::Sum, Temporality::Delta, true, Number::Int(-3), 1)
    );
    assert_eq!(
        (tokens.scope_name, tokens.unit),
        ("com.anthropic.claude_code", "tokens")
    );
    assert_eq!(tokens.attributes[1].value, Value::Str("opus"));
    let cost = point("claude_code.cost.usage", 0);
    assert_eq!(
        (cost.temporality, cost.number),
        (Temporality::Cumulative, Number::Double(0.0123))
    );
    assert!(!point("queue.depth", 0).monotonic);
    let gauges: Vec<_> = (0..3).map(|i| point("process.memory", i).number).collect();
    assert_eq!(gauges, [Number::Int(i64::MIN), Number::Double(1e300), Number::None]);
    assert_eq!(point("process.memory", 0).temporality, Temporality::Unspecified);
    let h = point("http.duration", 0);
    assert_eq!((h.count, h.sum, h.min, h.max), (6, Some(4.75), Some(0.125), Some(2.0)));
    assert_eq!(
        (&h.bucket_counts[..], &h.explicit_bounds[..]),
        (&[1, 2, 3][..], &[0.5, 1.0][..])
    );
    let empty = point("http.duration", 1);
    assert_eq!((empty.sum, empty.min, empty.max, empty.flags), (None, None, None, 1));
    assert!(empty.bucket_counts.is_empty() && empty.attributes.is_empty());
    let e = point("latency", 0);
    assert_eq!(
        (e.kind, e.temporality, e.count, e.sum, e.min, e.max),
        (
            PointKind::ExponentialHistogram,
            Temporality::Cumulative,
            10,
            Some(55.5),
            Some(0.0),
            Some(20.25)
        )
    );
    assert!(e.bucket_counts.is_empty() && e.explicit_bounds.is_empty());
    let summary = point("gc.pause", 0);
    assert_eq!((summary.count, summary.sum, summary.max), (4, Some(12.5), None));
    assert_eq!(point("gc.pause", 1).sum, Some(0.0), "a summary's sum is not optional");
    assert_eq!(point("unscoped", 0).scope_name, "");
    assert!(pb.iter().all(|(_, p)| p.metric != "no.data"));
    let (last_resource, last) = pb.last().unwrap();
    assert_eq!(last_resource[0].value, Value::Str("claude-code"));
    assert_eq!(last.scope_name, "other");
    assert_eq!(last.attributes.len(), every_kind().len());
    assert_eq!(pb[0].0.len(), 1 + every_kind().len());
}

#[test]
fn traces_fast_paths_agree_with_the_reference() {
    let req = traces_request();
    let pb = traces_pb(&req.encode_to_vec());
    let js = traces_json(&serde_json::to_vec(&req).unwrap());
    assert_eq!(pb.len(), 5, "every span");
    assert_same(&canon_spans(&pb), &canon_spans(&js), "protobuf against JSON");

    let (resource, root) = &pb[0];
    assert_eq!(resource[0].value, Value::Str("cowork"));
    assert_eq!(root.trace_id, Id::Raw(&[0xab; 16]));
    assert_eq!(root.trace_id.to_hex(), "ab".repeat(16));
    assert_eq!(root.parent_span_id, Id::Empty);
    assert_eq!((root.kind, root.status_code, root.status_message), (2, 1, ""));
    let values: Vec<_> = root.attributes.iter().map(|a| a.value.clone()).collect();
    assert_eq!(
        values,
        [
            Value::Int(200),
            Value::Bool(false),
            Value::Double(0.75),
            Value::Array(vec![Value::Str("Bash"), Value::Str("Edit")])
        ]
    );
    let child = &pb[1].1;
    assert_eq!(child.parent_span_id, root.span_id);
    assert_eq!((child.status_code, child.status_message), (2, "rate limited: 429"));
    assert_eq!((child.events, child.links), (2, 1));
    assert_eq!(child.scope_name, "com.anthropic.claude_code.tracing");
    assert_eq!(js[1].1.trace_id, Id::Hex(&"ab".repeat(16)));
    let unset = &pb[2].1;
    assert_eq!((unset.kind, unset.status_code, unset.events, unset.links), (1, 0, 0, 0));
    let anonymous = &pb[3].1;
    assert_eq!(
        (anonymous.trace_id, anonymous.span_id, anonymous.scope_name),
        (Id::Empty, Id::Empty, "")
    );
    let (resource, last) = &pb[4];
    assert_eq!(resource[1].value, Value::Str("darwin"));
    assert_eq!(
        (last.kind, last.scope_name, last.parent_span_id.to_hex()),
        (4, "other", "33".repeat(8))
    );
}

#[test]
fn protobuf_fields_are_read_in_any_order() {
    let points = metrics_pb(&metrics_out_of_order());
    assert_eq!(points.len(), 3);
    let (resource, p) = &points[0];
    assert_eq!(
        resource.iter().map(|a| a.key).collect::<Vec<_>>(),
        ["service.name", "merged"],
        "the resource after its scopes, merged"
    );
    assert_eq!((p.scope_name, p.metric, p.unit), ("late.scope", "late.name", "tokens"));
    assert_eq!(
        (p.kind, p.temporality, p.monotonic),
        (PointKind::Sum, Temporality::Cumulative, true)
    );
    assert_eq!(
        (p.number, p.start_time_unix_nano, p.time_unix_nano),
        (Number::Int(5), T0, T1)
    );
    assert_eq!(
        points[1].1.number,
        Number::Int(6),
        "repeated sums merge; the gauge before them is dropped"
    );
    let h = &points[2].1;
    assert_eq!(
        (h.metric, h.kind, h.temporality),
        ("hist", PointKind::Histogram, Temporality::Delta)
    );
    assert_eq!(
        (&h.bucket_counts[..], &h.explicit_bounds[..]),
        (&[1, 2, 3][..], &[0.5, 1.0, 2.0][..])
    );
    assert_eq!(
        (h.count, h.sum, h.min, h.max, h.flags),
        (6, Some(12.25), None, Some(9.5), 1)
    );

    let spans = traces_pb(&traces_out_of_order());
    let (resource, s) = &spans[0];
    assert_eq!(resource[0].value, Value::Str("late"));
    assert_eq!((s.scope_name, s.name, s.kind), ("late.scope", "late", 3));
    assert_eq!((s.trace_id, s.span_id), (Id::Raw(&[8; 16]), Id::Raw(&[9; 8])));
    assert_eq!((s.status_code, s.status_message), (1, "m"), "statuses merge");
    assert_eq!((s.events, s.links), (1, 2));
}

#[test]
fn json_accepts_otlp_json_forms() {
    // int64 as numbers and strings, doubles as integers, keys in any order, the resource after
    // the scopes, unknown keys: all accepted by both decoders.
    let metrics = br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[
        {"sum":{"dataPoints":[{"asInt":5,"timeUnixNano":1795000060000000000,"startTimeUnixNano":"1795000000000000000",
            "attributes":[{"key":"k","value":{"stringValue":"v"}}],"flags":1,"future":{"x":1}}],
          "aggregationTemporality":1,"isMonotonic":true},"name":"n","unit":"1"},
        {"name":"h","histogram":{"aggregationTemporality":2,"dataPoints":[{"count":"3","sum":3,"min":0,"max":2.5,
            "bucketCounts":[1,"2"],"explicitBounds":[1,2.5],"timeUnixNano":"7"}]}},
        {"name":"g","gauge":{"dataPoints":[{"asDouble":7},{"asInt":"-9223372036854775808"},{}]}}],
      "scope":{"name":"s","version":"1"}}],
      "resource":{"attributes":[{"key":"service.name","value":{"stringValue":"cowork"}}]}}]}"#;
    let points = metrics_json(metrics);
    assert_eq!(points.len(), 5);
    let (resource, p) = &points[0];
    assert_eq!(resource[0].value, Value::Str("cowork"));
    assert_eq!((p.metric, p.unit, p.scope_name), ("n", "1", "s"));
    assert_eq!(
        (p.temporality, p.monotonic, p.number, p.flags),
        (Temporality::Delta, true, Number::Int(5), 1)
    );
    assert_eq!((p.start_time_unix_nano, p.time_unix_nano), (T0, T1));
    let h = &points[1].1;
    assert_eq!((h.count, h.sum, h.min, h.max), (3, Some(3.0), Some(0.0), Some(2.5)));
    assert_eq!(
        (&h.bucket_counts[..], &h.explicit_bounds[..]),
        (&[1, 2][..], &[1.0, 2.5][..])
    );
    let numbers: Vec<_> = points[2..].iter().map(|(_, p)| p.number).collect();
    assert_eq!(numbers, [Number::Double(7.0), Number::Int(i64::MIN), Number::None]);

    // Ids in upper case or with a 0x prefix: the fast path keeps the text, the reference
    // decodes the same bytes.
    let traces = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5B8EFFF798038103D269B633813FC60C",
        "spanId":"0xeee19b7ec3c1b174","parentSpanId":"","name":"x","kind":2,"startTimeUnixNano":1,
        "endTimeUnixNano":"2","status":{"code":2},"events":[{"name":"e"}],"links":[]}]}]}]}"#;
    let spans = traces_json(traces);
    let s = &spans[0].1;
    assert_eq!(s.trace_id, Id::Hex("5B8EFFF798038103D269B633813FC60C"));
    assert_eq!(s.trace_id.to_hex(), "5b8efff798038103d269b633813fc60c");
    assert_eq!((s.span_id, s.parent_span_id), (Id::Hex("eee19b7ec3c1b174"), Id::Empty));
    assert_eq!((s.kind, s.status_code, s.events, s.links), (2, 2, 1, 0));
    assert_eq!((s.start_time_unix_nano, s.end_time_unix_nano), (1, 2));
}

#[test]
fn json_fast_path_is_lenient_where_the_reference_is_strict() {
    // Doubles as strings (NaN and the infinities included) and snake_case keys: the fast path
    // takes them; the reference (plain serde f64, camelCase only) does not, or ignores them.
    let mut body = br#"{"resource_metrics":[{"scope_metrics":[{"metrics":[{"name":"h","histogram":{
        "aggregation_temporality":1,"data_points":[{"sum":"NaN","min":"-Infinity","max":"Infinity",
        "explicit_bounds":["1.5"],"bucket_counts":["1","2"],"count":3}]}}]}]}]}"#
        .to_vec();
    let mut got = Points::new();
    assert_eq!(
        json::decode_metrics(&mut body, &mut collect_points(&mut got)).unwrap(),
        1
    );
    let p = &got[0].1;
    assert!(p.sum.unwrap().is_nan());
    assert_eq!((p.min, p.max), (Some(f64::NEG_INFINITY), Some(f64::INFINITY)));
    assert_eq!(
        (p.temporality, &p.explicit_bounds[..], p.count),
        (Temporality::Delta, &[1.5][..], 3)
    );
    // The reference's serde cannot read "NaN" into a plain f64, and its `flatten` of the
    // metric's data turns that error into a metric without data: the point is lost silently.
    let req = reference::decode_metrics_json(
        br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"h","histogram":
        {"dataPoints":[{"sum":"NaN"}]}}]}]}]}"#,
    )
    .unwrap();
    assert!(req.resource_metrics[0].scope_metrics[0].metrics[0].data.is_none());
}

#[test]
fn json_enums_are_numbers_as_the_reference_wants() {
    // OTLP/JSON sends enums as integers; opentelemetry-proto's serde cannot read their names,
    // and the fast path refuses them.
    let bad = br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"sum":{
        "aggregationTemporality":"AGGREGATION_TEMPORALITY_DELTA","dataPoints":[{}]}}]}]}]}"#;
    // The reference drops the metric's data (see `broken_json_is_refused_naming_the_field`).
    assert_eq!(reference_points(bad), Some(0));
    let e = json::decode_metrics(&mut bad.to_vec(), &mut |_: &[Attr<'_>], _: &Point<'_>| {}).unwrap_err();
    assert!(e.to_string().contains("aggregationTemporality"), "{e}");
    for (bad, field) in [
        (
            &br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"kind":"SPAN_KIND_INTERNAL"}]}]}]}"#[..],
            "kind",
        ),
        (
            br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"status":{"code":"STATUS_CODE_ERROR"}}]}]}]}"#,
            "status.code",
        ),
    ] {
        assert!(reference::decode_traces_json(bad).is_err());
        let e = json::decode_traces(&mut bad.to_vec(), &mut |_: &[Attr<'_>], _: &Span<'_>| {}).unwrap_err();
        assert!(e.to_string().contains(field), "{e}");
    }
}

#[test]
fn broken_protobuf_is_refused() {
    let mut seen = 0;
    let mut count_points = |_: &[Attr<'_>], _: &Point<'_>| seen += 1;
    let metrics = ExportMetricsServiceRequest {
        resource_metrics: vec![metrics_request().resource_metrics.swap_remove(0)],
    }
    .encode_to_vec();
    // Every cut of a one-resource request is refused by both decoders, before any point is
    // visited (the resource's length is checked before it is read).
    for cut in 1..metrics.len() {
        let body = &metrics[..cut];
        assert!(reference::decode_metrics_protobuf(body).is_err(), "prost, cut at {cut}");
        assert!(proto::decode_metrics(body, &mut count_points).is_err(), "cut at {cut}");
    }
    assert_eq!(seen, 0);
    let traces = ExportTraceServiceRequest {
        resource_spans: vec![traces_request().resource_spans.swap_remove(0)],
    }
    .encode_to_vec();
    for cut in 1..traces.len() {
        let body = &traces[..cut];
        assert!(reference::decode_traces_protobuf(body).is_err(), "prost, cut at {cut}");
        assert!(
            proto::decode_traces(body, &mut |_: &[Attr<'_>], _: &Span<'_>| {}).is_err(),
            "cut at {cut}"
        );
    }

    fn wrap_point(metric_field: u32, dp: &[u8]) -> Vec<u8> {
        let mut data = Vec::new();
        put_message(1, dp, &mut data);
        let mut m = Vec::new();
        put_message(metric_field, &data, &mut m);
        let mut sm = Vec::new();
        put_message(2, &m, &mut sm);
        let mut rm = Vec::new();
        put_message(2, &sm, &mut rm);
        let mut req = Vec::new();
        put_message(1, &rm, &mut req);
        req
    }
    fn wrap_span(sp: &[u8]) -> Vec<u8> {
        let mut ss = Vec::new();
        put_message(2, sp, &mut ss);
        let mut rs = Vec::new();
        put_message(2, &ss, &mut rs);
        let mut req = Vec::new();
        put_message(1, &rs, &mut req);
        req
    }
    fn wire_type(message: &'static str, field: u32) -> impl Fn(&WireError) -> bool {
        move |e: &WireError| match e {
            WireError::WireType {
                message: m, field: f, ..
            } => *m == message && *f == field,
            _ => false,
        }
    }
    let mut packed7 = Vec::new();
    put_message(6, &[0; 7], &mut packed7);
    let mut deep = co::AnyValue { value: Some(s("leaf")) };
    for _ in 0..MAX_DEPTH + 1 {
        deep = co::AnyValue {
            value: Some(co::any_value::Value::ArrayValue(co::ArrayValue { values: vec![deep] })),
        };
    }
    let deep_point = me::NumberDataPoint {
        attributes: vec![co::KeyValue {
            key: "deep".into(),
            value: Some(deep),
            ..Default::default()
        }],
        ..Default::default()
    }
    .encode_to_vec();
    let mut time_as_varint = Vec::new();
    put_varint(3, 5, &mut time_as_varint);
    let mut count_as_varint = Vec::new();
    put_varint(4, 5, &mut count_as_varint);
    let mut bounds_as_varint = Vec::new();
    put_varint(7, 5, &mut bounds_as_varint);
    let mut exp_min_as_bytes = Vec::new();
    put_string(12, "x", &mut exp_min_as_bytes);
    let mut summary_sum_as_varint = Vec::new();
    put_varint(5, 1, &mut summary_sum_as_varint);
    let mut kind_as_fixed = Vec::new();
    put_fixed64(6, 1, &mut kind_as_fixed);
    let mut trace_id_as_varint = Vec::new();
    put_varint(1, 1, &mut trace_id_as_varint);
    let mut bad_utf8_name = Vec::new();
    put_message(5, &[0xff, 0xfe], &mut bad_utf8_name);
    let mut status_code_as_bytes = Vec::new();
    put_message(
        15,
        &{
            let mut st = Vec::new();
            put_string(3, "2", &mut st);
            st
        },
        &mut status_code_as_bytes,
    );

    type Check = Box<dyn Fn(&WireError) -> bool>;
    let metric_cases: Vec<(&str, Vec<u8>, Check)> = vec![
        (
            "number time as varint",
            wrap_point(5, &time_as_varint),
            Box::new(wire_type("NumberDataPoint", 3)),
        ),
        (
            "sum time as varint",
            wrap_point(7, &time_as_varint),
            Box::new(wire_type("NumberDataPoint", 3)),
        ),
        (
            "histogram count as varint",
            wrap_point(9, &count_as_varint),
            Box::new(wire_type("HistogramDataPoint", 4)),
        ),
        (
            "histogram bounds as varint",
            wrap_point(9, &bounds_as_varint),
            Box::new(wire_type("HistogramDataPoint", 7)),
        ),
        (
            "packed counts of 7 bytes",
            wrap_point(9, &packed7),
            Box::new(|e: &WireError| matches!(e, WireError::Truncated("HistogramDataPoint"))),
        ),
        (
            "exponential min as bytes",
            wrap_point(10, &exp_min_as_bytes),
            Box::new(wire_type("ExponentialHistogramDataPoint", 12)),
        ),
        (
            "summary sum as varint",
            wrap_point(11, &summary_sum_as_varint),
            Box::new(wire_type("SummaryDataPoint", 5)),
        ),
        (
            "attributes too deep",
            wrap_point(5, &deep_point),
            Box::new(|e: &WireError| *e == WireError::TooDeep),
        ),
    ];
    for (what, body, check) in metric_cases {
        let e =
            proto::decode_metrics(&body, &mut |_: &[Attr<'_>], _: &Point<'_>| panic!("{what}: visited")).unwrap_err();
        match &e {
            crate::otlp::decode::DecodeError::Protobuf(w) => assert!(check(w), "{what}: {e}"),
            other => panic!("{what}: {other}"),
        }
        if what != "attributes too deep" {
            assert!(
                reference::decode_metrics_protobuf(&body).is_err(),
                "prost refuses {what}"
            );
        }
    }
    let span_cases: Vec<(&str, Vec<u8>, Check)> = vec![
        (
            "kind as fixed64",
            wrap_span(&kind_as_fixed),
            Box::new(wire_type("Span", 6)),
        ),
        (
            "trace id as varint",
            wrap_span(&trace_id_as_varint),
            Box::new(wire_type("Span", 1)),
        ),
        (
            "name not UTF-8",
            wrap_span(&bad_utf8_name),
            Box::new(|e: &WireError| {
                matches!(
                    e,
                    WireError::Utf8 {
                        message: "Span",
                        field: 5
                    }
                )
            }),
        ),
        (
            "status code as bytes",
            wrap_span(&status_code_as_bytes),
            Box::new(wire_type("Status", 3)),
        ),
    ];
    for (what, body, check) in span_cases {
        let e = proto::decode_traces(&body, &mut |_: &[Attr<'_>], _: &Span<'_>| panic!("{what}: visited")).unwrap_err();
        match &e {
            crate::otlp::decode::DecodeError::Protobuf(w) => assert!(check(w), "{what}: {e}"),
            other => panic!("{what}: {other}"),
        }
        assert!(
            reference::decode_traces_protobuf(&body).is_err(),
            "prost refuses {what}"
        );
    }
}

#[test]
fn broken_json_is_refused_naming_the_field() {
    let metric = |inner: &str| format!(r#"{{"resourceMetrics":[{{"scopeMetrics":[{{"metrics":[{inner}]}}]}}]}}"#);
    let point = |kind: &str, dp: &str| metric(&format!(r#"{{"name":"m","{kind}":{{"dataPoints":[{dp}]}}}}"#));
    let span = |sp: &str| format!(r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{sp}]}}]}}]}}"#);
    let deep = format!(
        r#"{{"attributes":[{{"key":"k","value":{}{}}}]}}"#,
        r#"{"arrayValue":{"values":["#.repeat(MAX_DEPTH as usize + 1),
        r#"]}}"#.repeat(MAX_DEPTH as usize + 1)
    );
    // What the reference makes of each: spans and the structure around metrics are refused,
    // but a metric's data is a `#[serde(flatten)]` oneof, and serde turns an error inside a
    // flattened `Option` into `None`. So the reference drops the metric's data silently
    // (`Some(0)` points) or, inside a number point's `asInt`/`asDouble` (flattened too), blanks
    // the value (`Some(1)` point with no number). The fast path refuses them all.
    let metric_cases = [
        (metric(r#"{"name":"m","sum":{"dataPoints":3}}"#), "dataPoints", Some(0)),
        (metric(r#"{"name":"m","gauge":3}"#), "gauge", Some(0)),
        (metric("7"), "metric", None),
        (r#"{"resourceMetrics":[3]}"#.to_string(), "resourceMetrics", None),
        (
            r#"{"resourceMetrics":[{"resource":{"attributes":{}}}]}"#.to_string(),
            "attributes",
            None,
        ),
        (
            r#"{"resourceMetrics":[{"scopeMetrics":[{"scope":{"name":5}}]}]}"#.to_string(),
            "name",
            None,
        ),
        (point("sum", "1"), "data point", Some(0)),
        (point("sum", r#"{"asInt":true}"#), "asInt", Some(1)),
        (point("sum", r#"{"asInt":"1.5"}"#), "asInt", Some(1)),
        (point("gauge", r#"{"asDouble":"x"}"#), "asDouble", Some(1)),
        (point("gauge", r#"{"timeUnixNano":-1}"#), "timeUnixNano", Some(0)),
        (point("gauge", r#"{"flags":"x"}"#), "flags", Some(0)),
        (point("histogram", r#"{"bucketCounts":[1.5]}"#), "bucketCounts", Some(0)),
        (point("histogram", r#"{"explicitBounds":3}"#), "explicitBounds", Some(0)),
        (point("histogram", r#"{"count":true}"#), "count", Some(0)),
        (point("summary", r#"{"sum":[]}"#), "sum", Some(0)),
        (point("exponentialHistogram", r#"{"max":{}}"#), "max", Some(0)),
        (point("sum", &deep), "nested", None),
        (
            metric(r#"{"name":"m","sum":{"isMonotonic":1,"dataPoints":[]}}"#),
            "isMonotonic",
            Some(0),
        ),
    ];
    for (body, field, reference) in &metric_cases {
        let e = json::decode_metrics(&mut body.clone().into_bytes(), &mut |_: &[Attr<'_>], _: &Point<'_>| {
            panic!("{body}: visited")
        })
        .unwrap_err();
        assert!(matches!(e, crate::otlp::decode::DecodeError::Json(_)), "{body}");
        assert!(e.to_string().contains(field), "{body}: {e}");
        assert_eq!(reference_points(body.as_bytes()), *reference, "the reference on {body}");
    }
    let span_cases = [
        (span("1"), "span"),
        (span(r#"{"traceId":5}"#), "traceId"),
        (span(r#"{"spanId":["ab"]}"#), "spanId"),
        (span(r#"{"parentSpanId":"xyz1"}"#), "parentSpanId"),
        (span(r#"{"traceId":"abc"}"#), "traceId"),
        (span(r#"{"name":1}"#), "name"),
        (span(r#"{"startTimeUnixNano":"soon"}"#), "startTimeUnixNano"),
        (span(r#"{"events":{}}"#), "events"),
        (span(r#"{"links":[1]}"#), "link"),
        (span(r#"{"status":"error"}"#), "status"),
        (span(r#"{"status":{"message":2}}"#), "status.message"),
        (span(r#"{"kind":1.5}"#), "kind"),
        (
            span(r#"{"attributes":[{"key":"k","value":{"boolValue":"yes"}}]}"#),
            "boolValue",
        ),
        (r#"{"resourceSpans":[{"scopeSpans":[7]}]}"#.to_string(), "scopeSpans"),
        (r#"{"resourceSpans":{}}"#.to_string(), "resourceSpans"),
        ("{".to_string(), ""),
    ];
    for (body, field) in &span_cases {
        let e = json::decode_traces(&mut body.clone().into_bytes(), &mut |_: &[Attr<'_>], _: &Span<'_>| {
            panic!("{body}: visited")
        })
        .unwrap_err();
        assert!(matches!(e, crate::otlp::decode::DecodeError::Json(_)), "{body}");
        assert!(e.to_string().contains(field), "{body}: {e}");
        assert!(
            reference::decode_traces_json(body.as_bytes()).is_err(),
            "the reference refuses {body}"
        );
    }
    // Not an object: refused (serde would take `[]` as an empty struct, fields in sequence).
    let e = json::decode_traces(&mut b"[]".to_vec(), &mut |_: &[Attr<'_>], _: &Span<'_>| {}).unwrap_err();
    assert!(e.to_string().contains("not a JSON object"), "{e}");
}

/// How many points the reference makes of an OTLP/JSON metrics body; `None` if it refuses it.
fn reference_points(body: &[u8]) -> Option<u64> {
    let req = reference::decode_metrics_json(body).ok()?;
    let mut blank = true;
    let n = reference::visit_metrics(&req, &mut |_: &[Attr<'_>], p: &Point<'_>| {
        blank &= p.number == Number::None
    });
    assert!(blank || n == 0, "only blanked points");
    Some(n)
}

/// Real SDK payloads, when they have been captured into `tests/fixtures/signals`.
#[test]
fn fast_paths_agree_with_the_reference_on_the_signal_fixtures() {
    let folders = [
        "metrics-proto-delta",
        "metrics-json-cumulative",
        "traces-proto",
        "traces-json",
    ];
    if !crate::fixtures::signals_root().is_dir() {
        eprintln!(
            "SKIPPED: {} does not exist yet: no signal fixtures to check",
            crate::fixtures::signals_root().display()
        );
        return;
    }
    for folder in folders {
        let Some(bodies) = crate::fixtures::signal_bodies(folder) else {
            eprintln!("SKIPPED: no fixture folder {folder}");
            continue;
        };
        let mut total = 0;
        for (path, body) in &bodies {
            let json = path.extension().is_some_and(|e| e == "json");
            let n = match (folder.starts_with("metrics"), json) {
                (true, false) => metrics_pb(body).len(),
                (true, true) => metrics_json(body).len(),
                (false, false) => traces_pb(body).len(),
                (false, true) => traces_json(body).len(),
            };
            total += n;
        }
        eprintln!("{folder}: {} payloads, {total} points or spans", bodies.len());
        assert!(bodies.is_empty() || total > 0, "{folder}: nothing decoded");
    }
}
