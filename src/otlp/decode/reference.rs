//! The reference decode: prost's owned `opentelemetry-proto` structs (serde_json for JSON),
//! presented through the same views as the fast paths (logs, metrics and traces). Tests compare
//! the two event by event.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

use super::{
    Attr, DecodeError, Id, Number, Point, PointKind, Record, Span, Temporality, Value, Visit, VisitPoints, VisitSpans,
};

pub fn decode_protobuf(buf: &[u8]) -> Result<ExportLogsServiceRequest, DecodeError> {
    ExportLogsServiceRequest::decode(buf).map_err(|e| DecodeError::Json(format!("prost: {e}")))
}

pub fn decode_json(buf: &[u8]) -> Result<ExportLogsServiceRequest, DecodeError> {
    serde_json::from_slice(buf).map_err(|e| DecodeError::Json(e.to_string()))
}

pub fn decode_metrics_protobuf(buf: &[u8]) -> Result<ExportMetricsServiceRequest, DecodeError> {
    ExportMetricsServiceRequest::decode(buf).map_err(|e| DecodeError::Json(format!("prost: {e}")))
}

pub fn decode_metrics_json(buf: &[u8]) -> Result<ExportMetricsServiceRequest, DecodeError> {
    serde_json::from_slice(buf).map_err(|e| DecodeError::Json(e.to_string()))
}

pub fn decode_traces_protobuf(buf: &[u8]) -> Result<ExportTraceServiceRequest, DecodeError> {
    ExportTraceServiceRequest::decode(buf).map_err(|e| DecodeError::Json(format!("prost: {e}")))
}

pub fn decode_traces_json(buf: &[u8]) -> Result<ExportTraceServiceRequest, DecodeError> {
    serde_json::from_slice(buf).map_err(|e| DecodeError::Json(e.to_string()))
}

fn value(v: &AnyValue) -> Value<'_> {
    match &v.value {
        None => Value::Empty,
        Some(any_value::Value::StringValue(s)) => Value::Str(s),
        Some(any_value::Value::BoolValue(b)) => Value::Bool(*b),
        Some(any_value::Value::IntValue(i)) => Value::Int(*i),
        Some(any_value::Value::DoubleValue(d)) => Value::Double(*d),
        Some(any_value::Value::ArrayValue(a)) => Value::Array(a.values.iter().map(value).collect()),
        Some(any_value::Value::KvlistValue(l)) => Value::KvList(l.values.iter().map(attr).collect()),
        Some(any_value::Value::BytesValue(b)) => Value::Bytes(b),
        Some(_) => Value::Empty,
    }
}

fn attr(kv: &KeyValue) -> Attr<'_> {
    Attr {
        key: &kv.key,
        value: kv.value.as_ref().map_or(Value::Empty, value),
    }
}

/// Visits every record of an owned request.
pub fn visit<'a>(req: &'a ExportLogsServiceRequest, visit: &mut impl Visit<'a>) -> u64 {
    let mut count = 0;
    for rl in &req.resource_logs {
        let resource: Vec<Attr<'a>> = rl
            .resource
            .as_ref()
            .map(|r| r.attributes.iter().map(attr).collect())
            .unwrap_or_default();
        for sl in &rl.scope_logs {
            for lr in &sl.log_records {
                let record = Record {
                    time_unix_nano: lr.time_unix_nano,
                    observed_time_unix_nano: lr.observed_time_unix_nano,
                    body: lr.body.as_ref().map(value),
                    event_name: &lr.event_name,
                    attributes: lr.attributes.iter().map(attr).collect(),
                    trace_id: id(&lr.trace_id),
                    span_id: id(&lr.span_id),
                };
                visit.record(&resource, &record);
                count += 1;
            }
        }
    }
    count
}

fn resource(r: &Option<Resource>) -> Vec<Attr<'_>> {
    r.as_ref()
        .map(|r| r.attributes.iter().map(attr).collect())
        .unwrap_or_default()
}

fn scope_name(s: &Option<InstrumentationScope>) -> &str {
    s.as_ref().map_or("", |s| &s.name)
}

/// Visits every data point of an owned request.
pub fn visit_metrics<'a>(req: &'a ExportMetricsServiceRequest, visit: &mut impl VisitPoints<'a>) -> u64 {
    let mut count = 0;
    for rm in &req.resource_metrics {
        let resource = resource(&rm.resource);
        for sm in &rm.scope_metrics {
            for m in &sm.metrics {
                let base = Point {
                    scope_name: scope_name(&sm.scope),
                    metric: &m.name,
                    unit: &m.unit,
                    ..Point::default()
                };
                let mut emit = |p: Point<'a>| {
                    visit.point(&resource, &p);
                    count += 1;
                };
                let number =
                    |base: &Point<'a>, dp: &'a opentelemetry_proto::tonic::metrics::v1::NumberDataPoint| Point {
                        start_time_unix_nano: dp.start_time_unix_nano,
                        time_unix_nano: dp.time_unix_nano,
                        number: match dp.value {
                            None => Number::None,
                            Some(number_data_point::Value::AsDouble(d)) => Number::Double(d),
                            Some(number_data_point::Value::AsInt(i)) => Number::Int(i),
                        },
                        flags: dp.flags,
                        attributes: dp.attributes.iter().map(attr).collect(),
                        ..base.clone()
                    };
                match &m.data {
                    None => {}
                    Some(metric::Data::Gauge(g)) => {
                        let base = Point {
                            kind: PointKind::Gauge,
                            ..base
                        };
                        for dp in &g.data_points {
                            emit(number(&base, dp));
                        }
                    }
                    Some(metric::Data::Sum(s)) => {
                        let base = Point {
                            kind: PointKind::Sum,
                            temporality: Temporality::from_i32(i64::from(s.aggregation_temporality)),
                            monotonic: s.is_monotonic,
                            ..base
                        };
                        for dp in &s.data_points {
                            emit(number(&base, dp));
                        }
                    }
                    Some(metric::Data::Histogram(h)) => {
                        for dp in &h.data_points {
                            emit(Point {
                                kind: PointKind::Histogram,
                                temporality: Temporality::from_i32(i64::from(h.aggregation_temporality)),
                                start_time_unix_nano: dp.start_time_unix_nano,
                                time_unix_nano: dp.time_unix_nano,
                                count: dp.count,
                                sum: dp.sum,
                                min: dp.min,
                                max: dp.max,
                                bucket_counts: dp.bucket_counts.clone(),
                                explicit_bounds: dp.explicit_bounds.clone(),
                                flags: dp.flags,
                                attributes: dp.attributes.iter().map(attr).collect(),
                                ..base.clone()
                            });
                        }
                    }
                    Some(metric::Data::ExponentialHistogram(h)) => {
                        for dp in &h.data_points {
                            emit(Point {
                                kind: PointKind::ExponentialHistogram,
                                temporality: Temporality::from_i32(i64::from(h.aggregation_temporality)),
                                start_time_unix_nano: dp.start_time_unix_nano,
                                time_unix_nano: dp.time_unix_nano,
                                count: dp.count,
                                sum: dp.sum,
                                min: dp.min,
                                max: dp.max,
                                flags: dp.flags,
                                attributes: dp.attributes.iter().map(attr).collect(),
                                ..base.clone()
                            });
                        }
                    }
                    Some(metric::Data::Summary(s)) => {
                        for dp in &s.data_points {
                            emit(Point {
                                kind: PointKind::Summary,
                                start_time_unix_nano: dp.start_time_unix_nano,
                                time_unix_nano: dp.time_unix_nano,
                                count: dp.count,
                                sum: Some(dp.sum),
                                flags: dp.flags,
                                attributes: dp.attributes.iter().map(attr).collect(),
                                ..base.clone()
                            });
                        }
                    }
                }
            }
        }
    }
    count
}

fn id(b: &[u8]) -> Id<'_> {
    if b.is_empty() {
        Id::Empty
    } else {
        Id::Raw(b)
    }
}

/// Visits every span of an owned request.
pub fn visit_traces<'a>(req: &'a ExportTraceServiceRequest, visit: &mut impl VisitSpans<'a>) -> u64 {
    let mut count = 0;
    for rs in &req.resource_spans {
        let resource = resource(&rs.resource);
        for ss in &rs.scope_spans {
            for sp in &ss.spans {
                let status = sp.status.as_ref();
                let span = Span {
                    scope_name: scope_name(&ss.scope),
                    trace_id: id(&sp.trace_id),
                    span_id: id(&sp.span_id),
                    parent_span_id: id(&sp.parent_span_id),
                    name: &sp.name,
                    kind: sp.kind,
                    start_time_unix_nano: sp.start_time_unix_nano,
                    end_time_unix_nano: sp.end_time_unix_nano,
                    attributes: sp.attributes.iter().map(attr).collect(),
                    status_code: status.map_or(0, |s| s.code),
                    status_message: status.map_or("", |s| &s.message),
                    events: u32::try_from(sp.events.len()).unwrap_or(u32::MAX),
                    links: u32::try_from(sp.links.len()).unwrap_or(u32::MAX),
                };
                visit.span(&resource, &span);
                count += 1;
            }
        }
    }
    count
}
