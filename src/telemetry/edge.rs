//! The edge's observable events. Each `emit()` writes its log line (where there is one) and its
//! series together, so a dashboard's number and the log an operator greps cannot disagree.

use std::fmt::Display;
use std::time::{Duration, Instant};

use metrics::{counter, gauge, histogram};

use super::labels::{BytesStage, ProduceErrorClass, RateLimit, RejectReason, RequestOutcome, Transport};
use super::*;
use crate::keys::KeySet;
use crate::otlp::{ContentType, Signal};

/// Why a request was refused, as the metrics and the log line need it.
pub struct Rejection<'a> {
    pub reason: RejectReason,
    /// The authentication failure's detail, for `cowork_edge_auth_failures_total`.
    pub auth_reason: Option<&'static str>,
    /// Whether the client should retry (429/503) or fix the request.
    pub backoff: bool,
    /// The sentence the client also gets.
    pub detail: &'a dyn Display,
}

/// One OTLP request answered, on either transport.
pub struct RequestAnswered<'a> {
    pub request_id: &'a str,
    pub route: &'static str,
    pub transport: Transport,
    pub tenant: Option<&'a str>,
    pub encoding: Option<ContentType>,
    pub status: u16,
    pub rejection: Option<Rejection<'a>>,
    pub started: Instant,
}

impl RequestAnswered<'_> {
    pub fn emit(self) {
        let outcome = match &self.rejection {
            None => RequestOutcome::Accepted,
            Some(r) if r.backoff => RequestOutcome::Backoff,
            Some(_) => RequestOutcome::Rejected,
        };
        counter!(
            EDGE_REQUESTS,
            "route" => self.route,
            "encoding" => self.encoding.map_or("unknown", ContentType::label),
            "status" => self.status.to_string(),
            "outcome" => outcome.as_str()
        )
        .increment(1);
        histogram!(EDGE_REQUEST_DURATION, "transport" => self.transport.as_str())
            .record(self.started.elapsed().as_secs_f64());
        let Some(r) = self.rejection else { return };
        counter!(EDGE_REJECTIONS, "reason" => r.reason.as_str()).increment(1);
        if let Some(reason) = r.auth_reason {
            counter!(EDGE_AUTH_FAILURES, "reason" => reason).increment(1);
        }
        tracing::warn!(
            request_id = self.request_id,
            route = self.route,
            tenant = self.tenant.unwrap_or("-"),
            status = self.status,
            reason = r.reason.as_str(),
            detail = %r.detail,
            "request rejected"
        );
    }
}

/// Body bytes taken in, as sent or after decompression.
pub struct BytesReceived {
    pub stage: BytesStage,
    pub bytes: usize,
}

impl BytesReceived {
    pub fn emit(self) {
        counter!(EDGE_RECEIVED_BYTES, "stage" => self.stage.as_str()).increment(self.bytes as u64);
    }
}

/// A request refused by its key's rate limit.
pub struct RateLimited {
    pub limit: RateLimit,
}

impl RateLimited {
    pub fn emit(self) {
        counter!(EDGE_RATE_LIMITED, "limit" => self.limit.as_str()).increment(1);
    }
}

/// Kafka answered a produce (success or not) after `took`.
pub struct ProduceAnswered {
    pub took: Duration,
}

impl ProduceAnswered {
    pub fn emit(self) {
        histogram!(EDGE_KAFKA_PRODUCE_DURATION).record(self.took.as_secs_f64());
    }
}

/// Kafka acknowledged a payload's records.
pub struct Published<'a> {
    pub signal: Signal,
    pub tenant: &'a str,
    pub records: u64,
}

impl Published<'_> {
    pub fn emit(self) {
        counter!(EDGE_PUBLISHED_RECORDS, "signal" => self.signal.as_str(), "tenant" => tenant(self.tenant))
            .increment(self.records);
    }
}

/// A produce failed; the client gets 503 (or 413 for `too_large`).
pub struct ProduceFailed {
    pub class: ProduceErrorClass,
}

impl ProduceFailed {
    pub fn emit(self) {
        counter!(EDGE_KAFKA_PRODUCE_ERRORS, "class" => self.class.as_str()).increment(1);
    }
}

/// What the last probe or delivery said about Kafka; `changed` when it differs from before.
pub struct KafkaReadiness {
    pub ready: bool,
    pub changed: bool,
}

impl KafkaReadiness {
    pub fn emit(self) {
        if self.changed {
            if self.ready {
                tracing::info!("Kafka is reachable");
            } else {
                tracing::warn!("Kafka is unreachable; answering 503 until it is back");
            }
        }
        gauge!(EDGE_KAFKA_READY).set(if self.ready { 1.0 } else { 0.0 });
    }
}

/// The key file was (re)loaded: how many keys, and every tenant's zero series, so that a tenant
/// added by a reload shows 0 before its first request (the "tenant went silent" alert compares
/// with yesterday).
pub struct KeysLoaded<'a> {
    pub count: usize,
    pub tenants: Vec<&'a str>,
}

impl<'a> From<&'a KeySet> for KeysLoaded<'a> {
    fn from(keys: &'a KeySet) -> Self {
        KeysLoaded {
            count: keys.len(),
            tenants: keys.tenants().into_iter().collect(),
        }
    }
}

impl KeysLoaded<'_> {
    pub fn emit(self) {
        gauge!(EDGE_KEYS_LOADED).set(self.count as f64);
        for t in self.tenants {
            for signal in Signal::ALL {
                counter!(EDGE_PUBLISHED_RECORDS, "signal" => signal.as_str(), "tenant" => tenant(t)).increment(0);
            }
        }
    }
}
