//! Why a request was not accepted, grouped by what the client does next.
//!
//! | group     | HTTP                 | gRPC                                 | client's next step        |
//! |-----------|----------------------|--------------------------------------|---------------------------|
//! | `Reject`  | 400/401/403/408/413/415 | INVALID_ARGUMENT, UNAUTHENTICATED, … | fix the request, no retry |
//! | `Backoff` | 429/503 + Retry-After| UNAVAILABLE                          | retry after the pause     |
//!
//! The OTLP spec makes 429, 502, 503 and 504 retryable and everything else final, so this table
//! is what keeps a client from resending a bomb forever or dropping a batch Kafka will take later.

use http::StatusCode;

use crate::keys::{AuthError, Forbidden, Unauthenticated};
use crate::telemetry::edge::Rejection;
use crate::telemetry::labels::RejectReason;

/// The client must change the request; retrying it unchanged fails again.
#[derive(Debug, thiserror::Error)]
pub enum Reject {
    #[error("{}: send Authorization: Bearer cwi_<id>_<secret> (or Basic with the key as password)", .0.as_str())]
    Unauthenticated(Unauthenticated),
    #[error("{}: this key may not ingest (it needs role ingest and kind org)", .0.as_str())]
    Forbidden(Forbidden),
    #[error("unsupported content type {0:?}: send application/x-protobuf or application/json")]
    UnsupportedMediaType(String),
    #[error("unsupported content encoding {0:?}: send gzip, zstd, deflate or identity")]
    UnsupportedEncoding(String),
    #[error("request body exceeds {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("request body inflates past {limit} bytes")]
    DecompressedTooLarge { limit: usize },
    #[error("{encoding} body cannot be decompressed: {detail}")]
    BadCompression { encoding: &'static str, detail: String },
    #[error("{0}")]
    InvalidPayload(String),
    #[error("the request body did not arrive within {ms} ms")]
    BodyTimeout { ms: u64 },
    #[error(
        "Kafka refused the payload as too large: raise the topic's max.message.bytes or lower edge.max_body_bytes"
    )]
    KafkaTooLarge,
}

/// The client should retry the same request after `retry_after_s` seconds.
#[derive(Debug, thiserror::Error)]
pub enum Backoff {
    #[error("rate limit for this key exceeded ({limit}/s)")]
    RateLimited { limit: &'static str, retry_after_s: u64 },
    #[error("the edge is at its in-flight byte limit")]
    Overloaded { retry_after_s: u64 },
    #[error("Kafka is unavailable: {detail}")]
    KafkaUnavailable { detail: String, retry_after_s: u64 },
}

#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error(transparent)]
    Reject(#[from] Reject),
    #[error(transparent)]
    Backoff(#[from] Backoff),
}

impl From<AuthError> for Failure {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unauthenticated(u) => Reject::Unauthenticated(u).into(),
            AuthError::Forbidden(f) => Reject::Forbidden(f).into(),
        }
    }
}

impl Failure {
    pub fn status(&self) -> StatusCode {
        match self {
            Failure::Reject(r) => match r {
                Reject::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
                Reject::Forbidden(_) => StatusCode::FORBIDDEN,
                Reject::UnsupportedMediaType(_) | Reject::UnsupportedEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Reject::BodyTooLarge { .. } | Reject::DecompressedTooLarge { .. } | Reject::KafkaTooLarge => {
                    StatusCode::PAYLOAD_TOO_LARGE
                }
                Reject::BadCompression { .. } | Reject::InvalidPayload(_) => StatusCode::BAD_REQUEST,
                Reject::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            },
            Failure::Backoff(Backoff::RateLimited { .. }) => StatusCode::TOO_MANY_REQUESTS,
            Failure::Backoff(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The gRPC status code (and `google.rpc.Status.code` in HTTP error bodies).
    pub fn grpc_code(&self) -> tonic::Code {
        match self {
            Failure::Reject(Reject::Unauthenticated(_)) => tonic::Code::Unauthenticated,
            Failure::Reject(Reject::Forbidden(_)) => tonic::Code::PermissionDenied,
            Failure::Reject(_) => tonic::Code::InvalidArgument,
            Failure::Backoff(_) => tonic::Code::Unavailable,
        }
    }

    pub fn retry_after_s(&self) -> Option<u64> {
        match self {
            Failure::Reject(_) => None,
            Failure::Backoff(
                Backoff::RateLimited { retry_after_s, .. }
                | Backoff::Overloaded { retry_after_s }
                | Backoff::KafkaUnavailable { retry_after_s, .. },
            ) => Some(*retry_after_s),
        }
    }

    /// The `reason` label.
    pub fn reason(&self) -> RejectReason {
        match self {
            Failure::Reject(r) => match r {
                Reject::Unauthenticated(_) => RejectReason::Unauthenticated,
                Reject::Forbidden(_) => RejectReason::Forbidden,
                Reject::UnsupportedMediaType(_) => RejectReason::UnsupportedMediaType,
                Reject::UnsupportedEncoding(_) => RejectReason::UnsupportedEncoding,
                Reject::BodyTooLarge { .. } => RejectReason::BodyTooLarge,
                Reject::DecompressedTooLarge { .. } => RejectReason::DecompressedTooLarge,
                Reject::BadCompression { .. } => RejectReason::BadCompression,
                Reject::InvalidPayload(_) => RejectReason::InvalidPayload,
                Reject::BodyTimeout { .. } => RejectReason::BodyTimeout,
                Reject::KafkaTooLarge => RejectReason::KafkaRejected,
            },
            Failure::Backoff(b) => match b {
                Backoff::RateLimited { .. } => RejectReason::RateLimited,
                Backoff::Overloaded { .. } => RejectReason::Overloaded,
                Backoff::KafkaUnavailable { .. } => RejectReason::KafkaUnavailable,
            },
        }
    }

    /// What the request metrics and the rejection log line say about this failure.
    pub fn rejection(&self) -> Rejection<'_> {
        Rejection {
            reason: self.reason(),
            auth_reason: self.auth_reason(),
            backoff: matches!(self, Failure::Backoff(_)),
            detail: self,
        }
    }

    /// The detail label for auth failures, when this is one.
    pub fn auth_reason(&self) -> Option<&'static str> {
        match self {
            Failure::Reject(Reject::Unauthenticated(u)) => Some(u.as_str()),
            Failure::Reject(Reject::Forbidden(f)) => Some(f.as_str()),
            _ => None,
        }
    }
}
