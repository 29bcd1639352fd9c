//! Publishing raw payloads to Kafka.
//!
//! Invariant: the edge answers 200 only after Kafka's delivery report says the broker has the
//! message (`acks=all`, idempotent producer). Every other outcome is an error the client sees,
//! so an acknowledged batch is never lost, and a batch the client resends after a 503 at worst
//! lands twice (the consumer's schema absorbs duplicates).
//!
//! ```text
//! request ──► send_result ──► librdkafka queue ──► broker ──► delivery report ──► 200
//!                │ QueueFull          │ message.timeout.ms / publish_timeout_ms
//!                ▼                    ▼
//!               503                  503
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use tokio_util::sync::CancellationToken;

use super::failure::{Backoff, Failure, Reject};
use crate::config::Config;
use crate::envelope::{header, Compression, ContentType, Signal};
use crate::keys::Principal;
use crate::metrics;

/// What the edge knows about a payload besides its bytes: becomes the Kafka headers.
pub struct Envelope<'a> {
    pub signal: Signal,
    pub principal: &'a Principal,
    pub content_type: ContentType,
    pub compression: Compression,
    pub received_at_ms: i64,
    pub request_id: &'a str,
    pub transport: &'static str,
    pub records: u64,
}

pub struct Publisher {
    producer: FutureProducer,
    config: Config,
    ready: AtomicBool,
}

/// librdkafka settings shared by every client: brokers plus the pass-through map.
pub fn client_config(config: &Config) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &config.kafka.brokers);
    for (k, v) in &config.kafka.client {
        c.set(k, v);
    }
    c
}

impl Publisher {
    pub fn new(config: &Config) -> Result<Publisher, KafkaError> {
        let mut c = client_config(config);
        let e = &config.edge;
        c.set("enable.idempotence", "true")
            .set("acks", "all")
            .set(
                "message.max.bytes",
                config
                    .producer_message_max_bytes()
                    .unwrap_or(e.max_body_bytes)
                    .to_string(),
            )
            .set("message.timeout.ms", e.publish_timeout_ms.to_string())
            // The in-flight budget already bounds what is queued; this is a second fence.
            .set(
                "queue.buffering.max.kbytes",
                (e.max_inflight_bytes / 1024).max(1024).to_string(),
            )
            // Requests wait for their acknowledgement: batch concurrent ones, but only briefly.
            .set("linger.ms", "5")
            // Reconnect within a second of a broker coming back (librdkafka's default is 10 s).
            .set("reconnect.backoff.max.ms", "1000");
        for (k, v) in &config.kafka.producer {
            c.set(k, v);
        }
        let producer: FutureProducer = c.create()?;
        Ok(Publisher {
            producer,
            config: config.clone(),
            ready: AtomicBool::new(false),
        })
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    fn set_ready(&self, ready: bool) {
        if self.ready.swap(ready, Ordering::Relaxed) != ready {
            if ready {
                tracing::info!("Kafka is reachable");
            } else {
                tracing::warn!("Kafka is unreachable; answering 503 until it is back");
            }
        }
        ::metrics::gauge!(metrics::EDGE_KAFKA_READY).set(if ready { 1.0 } else { 0.0 });
    }

    fn unavailable(&self, class: &'static str, detail: String) -> Failure {
        ::metrics::counter!(metrics::EDGE_KAFKA_PRODUCE_ERRORS, "class" => class).increment(1);
        Backoff::KafkaUnavailable {
            detail,
            retry_after_s: self.config.edge.retry_after_s,
        }
        .into()
    }

    /// Publishes `payload` unchanged and waits for the broker's acknowledgement.
    pub async fn publish(&self, env: &Envelope<'_>, payload: &[u8]) -> Result<(), Failure> {
        if !self.is_ready() {
            return Err(self.unavailable("unavailable", "the last probe could not reach a broker".into()));
        }
        let received = env.received_at_ms.to_string();
        let records = env.records.to_string();
        let headers = OwnedHeaders::new_with_capacity(9)
            .insert(Header {
                key: header::TENANT,
                value: Some(&*env.principal.tenant),
            })
            .insert(Header {
                key: header::KEY_ID,
                value: Some(&*env.principal.key_id),
            })
            .insert(Header {
                key: header::CONTENT_TYPE,
                value: Some(env.content_type.mime()),
            })
            .insert(Header {
                key: header::CONTENT_ENCODING,
                value: Some(env.compression.as_str()),
            })
            .insert(Header {
                key: header::RECEIVED_AT_MS,
                value: Some(&received),
            })
            .insert(Header {
                key: header::REQUEST_ID,
                value: Some(env.request_id),
            })
            .insert(Header {
                key: header::SIGNAL,
                value: Some(env.signal.as_str()),
            })
            .insert(Header {
                key: header::TRANSPORT,
                value: Some(env.transport),
            })
            .insert(Header {
                key: header::RECORDS,
                value: Some(&records),
            });
        // The request id is the key: the default partitioner hashes it, which spreads one large
        // tenant over every partition (ordering between requests is not needed).
        let record = FutureRecord::to(env.signal.topic(&self.config.kafka))
            .key(env.request_id)
            .payload(payload)
            .headers(headers);
        let started = Instant::now();
        let delivery = match self.producer.send_result(record) {
            Ok(d) => d,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                return Err(self.unavailable("queue_full", "the producer queue is full".into()))
            }
            Err((e, _)) => return Err(self.classify(e)),
        };
        let timeout = Duration::from_millis(self.config.edge.publish_timeout_ms);
        let outcome = tokio::time::timeout(timeout, delivery).await;
        ::metrics::histogram!(metrics::EDGE_KAFKA_PRODUCE_DURATION).record(started.elapsed().as_secs_f64());
        match outcome {
            Ok(Ok(Ok(_))) => {
                self.set_ready(true);
                ::metrics::counter!(
                    metrics::EDGE_PUBLISHED_RECORDS,
                    "signal" => env.signal.as_str(),
                    "tenant" => metrics::tenant(&env.principal.tenant)
                )
                .increment(env.records);
                Ok(())
            }
            Ok(Ok(Err((e, _)))) => Err(self.classify(e)),
            Ok(Err(_canceled)) => Err(self.unavailable("unavailable", "the producer shut down".into())),
            Err(_) => Err(self.unavailable(
                "timeout",
                format!("no delivery report within {} ms", timeout.as_millis()),
            )),
        }
    }

    fn classify(&self, e: KafkaError) -> Failure {
        match e.rdkafka_error_code() {
            Some(RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::InvalidMessageSize) => {
                ::metrics::counter!(metrics::EDGE_KAFKA_PRODUCE_ERRORS, "class" => "too_large").increment(1);
                Reject::KafkaTooLarge.into()
            }
            Some(RDKafkaErrorCode::MessageTimedOut) => self.unavailable("timeout", e.to_string()),
            // Only a broker that cannot be reached makes the edge unready for every signal; a
            // topic-level error (missing topic, no permission) stays with the requests it hits.
            Some(
                RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::NetworkException
                | RDKafkaErrorCode::Resolve,
            ) => {
                self.set_ready(false);
                self.unavailable("unavailable", e.to_string())
            }
            _ => self.unavailable("unavailable", e.to_string()),
        }
    }

    /// Asks a broker for the logs topic's metadata; decides `/readyz`.
    pub async fn probe(self: &Arc<Self>) {
        let me = self.clone();
        let ok = tokio::task::spawn_blocking(move || {
            me.producer
                .client()
                .fetch_metadata(Some(&me.config.kafka.logs_topic), Duration::from_millis(1500))
                .map(|m| m.brokers().iter().len() > 0)
                .unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        self.set_ready(ok);
    }

    /// Probes every `kafka_probe_ms` until `shutdown`.
    pub async fn watch(self: Arc<Self>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_millis(self.config.edge.kafka_probe_ms));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => self.probe().await,
            }
        }
    }

    /// Waits for queued messages to be delivered (on shutdown).
    pub async fn flush(self: &Arc<Self>, timeout: Duration) {
        let me = self.clone();
        let result = tokio::task::spawn_blocking(move || me.producer.flush(timeout)).await;
        match result {
            Ok(Ok(())) => tracing::info!("producer flushed"),
            Ok(Err(e)) => tracing::warn!(error = %e, "producer flush incomplete"),
            Err(e) => tracing::warn!(error = %e, "producer flush task failed"),
        }
    }
}
