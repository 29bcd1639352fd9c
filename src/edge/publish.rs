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

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use tokio_util::sync::CancellationToken;

use super::failure::{Backoff, Failure, Reject};
use crate::config::Config;
use crate::envelope::Envelope;
use crate::kafka::{self, ProducerRole};
use crate::telemetry::edge::{KafkaReadiness, ProduceAnswered, ProduceFailed, Published};
use crate::telemetry::labels::ProduceErrorClass;

pub struct Publisher {
    producer: FutureProducer,
    config: Config,
    ready: AtomicBool,
}

impl Publisher {
    pub fn new(config: &Config) -> Result<Publisher, KafkaError> {
        let producer: FutureProducer = kafka::producer(config, ProducerRole::Edge).create()?;
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
        let changed = self.ready.swap(ready, Ordering::Relaxed) != ready;
        KafkaReadiness { ready, changed }.emit();
    }

    fn unavailable(&self, class: ProduceErrorClass, detail: String) -> Failure {
        ProduceFailed { class }.emit();
        Backoff::KafkaUnavailable {
            detail,
            retry_after_s: self.config.edge.retry_after_s,
        }
        .into()
    }

    /// Publishes `payload` unchanged and waits for the broker's acknowledgement.
    pub async fn publish(&self, env: &Envelope<'_>, payload: &[u8]) -> Result<(), Failure> {
        if !self.is_ready() {
            return Err(self.unavailable(
                ProduceErrorClass::Unavailable,
                "the last probe could not reach a broker".into(),
            ));
        }
        let headers = env.to_headers();
        // The request id is the key: the default partitioner hashes it, which spreads one large
        // tenant over every partition (ordering between requests is not needed).
        let record = FutureRecord::to(kafka::topic_for(env.signal, &self.config.kafka))
            .key(env.request_id)
            .payload(payload)
            .headers(headers);
        let started = Instant::now();
        let delivery = match self.producer.send_result(record) {
            Ok(d) => d,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                return Err(self.unavailable(ProduceErrorClass::QueueFull, "the producer queue is full".into()))
            }
            Err((e, _)) => return Err(self.classify(e)),
        };
        let timeout = Duration::from_millis(self.config.edge.publish_timeout_ms);
        let outcome = tokio::time::timeout(timeout, delivery).await;
        ProduceAnswered {
            took: started.elapsed(),
        }
        .emit();
        match outcome {
            Ok(Ok(Ok(_))) => {
                self.set_ready(true);
                Published {
                    signal: env.signal,
                    tenant: env.tenant,
                    records: env.records,
                }
                .emit();
                Ok(())
            }
            Ok(Ok(Err((e, _)))) => Err(self.classify(e)),
            Ok(Err(_canceled)) => {
                Err(self.unavailable(ProduceErrorClass::Unavailable, "the producer shut down".into()))
            }
            Err(_) => Err(self.unavailable(
                ProduceErrorClass::Timeout,
                format!("no delivery report within {} ms", timeout.as_millis()),
            )),
        }
    }

    fn classify(&self, e: KafkaError) -> Failure {
        match e.rdkafka_error_code() {
            Some(RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::InvalidMessageSize) => {
                ProduceFailed {
                    class: ProduceErrorClass::TooLarge,
                }
                .emit();
                Reject::KafkaTooLarge.into()
            }
            Some(RDKafkaErrorCode::MessageTimedOut) => self.unavailable(ProduceErrorClass::Timeout, e.to_string()),
            // Only a broker that cannot be reached makes the edge unready for every signal; a
            // topic-level error (missing topic, no permission) stays with the requests it hits.
            Some(
                RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::NetworkException
                | RDKafkaErrorCode::Resolve,
            ) => {
                self.set_ready(false);
                self.unavailable(ProduceErrorClass::Unavailable, e.to_string())
            }
            _ => self.unavailable(ProduceErrorClass::Unavailable, e.to_string()),
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
