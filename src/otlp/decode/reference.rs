//! The reference decode: prost's owned `opentelemetry-proto` structs (serde_json for JSON),
//! presented through the same views as the fast paths. Tests compare the two event by event.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use prost::Message;

use super::{Attr, DecodeError, Record, Value, Visit};

pub fn decode_protobuf(buf: &[u8]) -> Result<ExportLogsServiceRequest, DecodeError> {
    ExportLogsServiceRequest::decode(buf).map_err(|e| DecodeError::Json(format!("prost: {e}")))
}

pub fn decode_json(buf: &[u8]) -> Result<ExportLogsServiceRequest, DecodeError> {
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
                };
                visit.record(&resource, &record);
                count += 1;
            }
        }
    }
    count
}
