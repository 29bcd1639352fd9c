//! Kafka clients, built from [`Config`] in one place: every producer, consumer and admin client
//! of every process gets the brokers and the `kafka.client` pass-through from [`client`], and
//! the rules that keep the delivery guarantees live in [`producer`] and [`group_consumer`].
//! Also the topics the pipeline uses ([`topics`], [`topic_for`]) and the in-memory
//! [`dev_broker`].
//!
//! Dropping a librdkafka consumer polls for its group leave, and with no broker answering that
//! can block for minutes: [`close_within`] bounds it, in the services and the tools alike.

pub mod dev_broker;

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::message::{Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::config::{Config, KafkaConfig, DEFAULT_CONSUMER_QUEUE_KBYTES, KAFKA_MESSAGE_OVERHEAD_BYTES};
use crate::otlp::Signal;

/// librdkafka settings shared by every client: brokers plus the `kafka.client` pass-through.
pub fn client(config: &Config) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &config.kafka.brokers);
    for (k, v) in &config.kafka.client {
        c.set(k, v);
    }
    c
}

/// Who a producer publishes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProducerRole {
    /// The edge: raw payloads, each request waiting for its delivery report.
    Edge,
    /// The consumer's dead letters and `redrive`'s re-publishing.
    DeadLetter,
}

/// An idempotent `acks=all` producer: a message counts as delivered once every in-sync replica
/// has it. `kafka.producer` overlays the role's own settings; it cannot turn off idempotence or
/// `acks=all` (the config is refused at startup).
pub fn producer(config: &Config, role: ProducerRole) -> ClientConfig {
    let mut c = client(config);
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
        // Reconnect within a second of a broker coming back (librdkafka's default is 10 s).
        .set("reconnect.backoff.max.ms", "1000");
    match role {
        ProducerRole::Edge => {
            c.set("message.timeout.ms", e.publish_timeout_ms.to_string())
                // The in-flight budget already bounds what is queued; this is a second fence.
                .set(
                    "queue.buffering.max.kbytes",
                    (e.max_inflight_bytes / 1024).max(1024).to_string(),
                )
                // Requests wait for their acknowledgement: batch concurrent ones, but only briefly.
                .set("linger.ms", "5");
        }
        ProducerRole::DeadLetter => {
            c.set("message.timeout.ms", "30000");
        }
    }
    for (k, v) in &config.kafka.producer {
        c.set(k, v);
    }
    c
}

/// Which consumer a client is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// The consumer group member: offsets stored by hand after ClickHouse has the rows, and
    /// committed in the background.
    Main,
    /// The lag watcher: asks the main group's coordinator for committed offsets, never joins.
    LagWatch,
    /// `redrive`: its own group on the dead-letter topic, committing by hand.
    Redrive,
}

/// A consumer client for `group`. Only the main member takes `kafka.consumer`.
pub fn group_consumer(config: &Config, group: Group) -> ClientConfig {
    let mut c = client(config);
    match group {
        Group::Main => {
            c.set("group.id", &config.consumer.group_id)
                .set("enable.auto.commit", "true")
                .set("auto.commit.interval.ms", "1000")
                .set("enable.auto.offset.store", "false")
                .set("auto.offset.reset", "earliest")
                .set("queued.max.messages.kbytes", DEFAULT_CONSUMER_QUEUE_KBYTES)
                .set("reconnect.backoff.max.ms", "1000");
            for (k, v) in &config.kafka.consumer {
                c.set(k, v);
            }
        }
        Group::LagWatch => {
            c.set("group.id", &config.consumer.group_id)
                .set("enable.auto.commit", "false");
        }
        Group::Redrive => {
            c.set("group.id", format!("{}-redrive", config.consumer.group_id))
                .set("enable.auto.commit", "false")
                .set("auto.offset.reset", "earliest");
        }
    }
    c
}

/// The topic a signal's raw payloads go to.
pub fn topic_for(signal: Signal, kafka: &KafkaConfig) -> &str {
    match signal {
        Signal::Logs => &kafka.logs_topic,
        Signal::Metrics => &kafka.metrics_topic,
        Signal::Traces => &kafka.traces_topic,
    }
}

/// One topic the pipeline uses: its role and what it needs.
#[derive(Debug, Clone)]
pub struct Topic {
    pub name: String,
    pub role: &'static str,
    pub partitions: i32,
    pub max_message_bytes: usize,
}

/// The topics this configuration uses: raw logs, dead letters, raw metrics and raw traces.
pub fn topics(config: &Config) -> Vec<Topic> {
    let bytes = config.edge.max_body_bytes + KAFKA_MESSAGE_OVERHEAD_BYTES;
    let k = &config.kafka;
    let topic = |name: &str, role, partitions| Topic {
        name: name.to_string(),
        role,
        partitions,
        max_message_bytes: bytes,
    };
    vec![
        topic(&k.logs_topic, "raw logs", 12),
        topic(&config.consumer.dlq_topic, "dead letters", 3),
        topic(&k.metrics_topic, "raw metrics", 6),
        topic(&k.traces_topic, "raw traces", 6),
    ]
}

/// Drops `client` on a plain thread and waits at most `timeout` for it. librdkafka's close
/// (leaving the group, committing) waits on brokers; with none answering it would block the
/// caller for minutes. What a close did not commit is read again, and deduplicated.
fn close_within<T: Send + 'static>(client: T, timeout: Duration) -> bool {
    let (done, closed) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new().name("kafka-close".into()).spawn(move || {
        drop(client);
        let _ = done.send(());
    });
    spawned.is_ok() && closed.recv_timeout(timeout).is_ok()
}

/// A message waiting to be produced, owned so that it can be retried.
pub struct Outgoing {
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub headers: OwnedHeaders,
}

impl Outgoing {
    /// `msg`'s key and payload under new headers.
    pub fn from_message(msg: &impl Message, headers: OwnedHeaders) -> Outgoing {
        Outgoing {
            key: msg.key().map(<[u8]>::to_vec),
            payload: msg.payload().unwrap_or_default().to_vec(),
            headers,
        }
    }
}

/// Produces every pending message to `topic` once, concurrently, and keeps the ones that failed
/// in `pending` for the caller to retry on its own schedule (the consumer keeps polling Kafka
/// between tries, so that a broken topic cannot get it evicted from its group).
pub async fn produce_once(producer: &FutureProducer, topic: &str, pending: &mut Vec<Outgoing>) {
    let sends = pending.iter().map(|p| {
        let mut record = FutureRecord::to(topic).payload(&p.payload).headers(p.headers.clone());
        if let Some(k) = &p.key {
            record = record.key(k);
        }
        producer.send(record, Duration::from_secs(5))
    });
    let results = futures::future::join_all(sends).await;
    let mut failed = Vec::new();
    for (p, r) in pending.drain(..).zip(results) {
        if let Err((e, _)) = r {
            tracing::error!(topic, error = %e, "producing failed; retrying");
            failed.push(p);
        }
    }
    *pending = failed;
}

/// A Kafka client whose drop is bounded: however it is dropped (a finished service, a task
/// cancelled with its runtime, a test that returns), its close gets at most `timeout`, on a
/// thread of its own. Use it for every consumer, whose close waits on the group coordinator.
pub struct Bounded<T: Send + 'static> {
    client: Option<T>,
    timeout: Duration,
}

impl<T: Send + 'static> Bounded<T> {
    pub fn new(client: T, timeout: Duration) -> Bounded<T> {
        Bounded {
            client: Some(client),
            timeout,
        }
    }
}

impl<T: Send + 'static> std::ops::Deref for Bounded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.client.as_ref().expect("present until dropped")
    }
}

impl<T: Send + 'static> Drop for Bounded<T> {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            if !close_within(client, self.timeout) {
                tracing::warn!(timeout = ?self.timeout, "a Kafka client did not close in time; left closing in the background");
            }
        }
    }
}

/// Why startup stopped at the credentials check, by what the operator does next.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// Fix the username or password (or the user on the broker) and start again.
    #[error("Kafka rejected the SASL credentials (sasl.username {username:?}, mechanism {mechanism:?}): {reason}")]
    Rejected {
        username: String,
        mechanism: String,
        /// librdkafka's sentence, with the password cut out should it ever appear.
        reason: String,
    },
    /// The settings themselves are wrong (an unknown mechanism, a missing username): fix them.
    #[error("the Kafka client settings are not usable: {0}")]
    Settings(rdkafka::error::KafkaError),
}

/// Records the authentication failures librdkafka reports through its error callback, served by
/// `poll()` (a metadata request alone only times out).
#[derive(Default)]
struct AuthWatch {
    failure: std::sync::Mutex<Option<String>>,
}

impl rdkafka::consumer::ConsumerContext for AuthWatch {}

impl rdkafka::ClientContext for AuthWatch {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::Authentication)
            || reason.contains("Authentication failed")
        {
            *self.failure.lock().expect("not poisoned") = Some(reason.to_string());
        }
    }
}

/// With SASL configured, asks a broker for metadata until it answers or `within` passes, and
/// fails if all the broker ever said was that it refuses the credentials: a wrong password stops
/// startup with a sentence instead of leaving a service that is never ready. A broker that cannot
/// be reached is not an error here (the edge answers 503 until it is back), and neither is a
/// refusal followed by success. `overlay` is the service's own settings (`kafka.producer` for
/// the edge, `kafka.consumer` for the consumer): its `sasl.*`, `security.*` and `ssl.*` keys win
/// over `kafka.client`'s, as they do in the service's client. Blocks: call it from a blocking
/// thread.
pub fn check_credentials(
    config: &Config,
    overlay: &std::collections::BTreeMap<String, String>,
    within: Duration,
) -> Result<(), CredentialsError> {
    let mut settings = client(config);
    for (k, v) in overlay {
        if k.starts_with("sasl.") || k.starts_with("security.") || k.starts_with("ssl.") {
            settings.set(k, v);
        }
    }
    let setting = |key: &str| settings.get(key).unwrap_or_default().to_string();
    if !setting("security.protocol").to_ascii_uppercase().starts_with("SASL") {
        return Ok(());
    }
    use rdkafka::consumer::Consumer as _;
    let client: rdkafka::consumer::BaseConsumer<AuthWatch> = settings
        .create_with_context(AuthWatch::default())
        .map_err(CredentialsError::Settings)?;
    let client = Bounded::new(client, Duration::from_secs(2));
    let deadline = std::time::Instant::now() + within;
    while std::time::Instant::now() < deadline {
        if client.client().fetch_metadata(None, Duration::from_millis(500)).is_ok() {
            return Ok(());
        }
        // librdkafka reports errors through callbacks served only by poll().
        let _ = client.poll(Duration::from_millis(100));
    }
    let failure = client.context().failure.lock().expect("not poisoned").clone();
    match failure {
        None => Ok(()),
        Some(reason) => {
            let password = setting("sasl.password");
            let reason = if password.is_empty() {
                reason
            } else {
                reason.replace(&password, "***")
            };
            let mechanism = settings.get("sasl.mechanisms").or(settings.get("sasl.mechanism"));
            Err(CredentialsError::Rejected {
                username: setting("sasl.username"),
                mechanism: mechanism.unwrap_or_default().to_string(),
                reason,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(c: &ClientConfig, key: &str) -> Option<String> {
        c.get(key).map(str::to_string)
    }

    #[test]
    fn every_producer_is_idempotent_and_waits_for_all_replicas() {
        let mut config = Config::default();
        config.kafka.producer.insert("linger.ms".into(), "20".into());
        for role in [ProducerRole::Edge, ProducerRole::DeadLetter] {
            let c = producer(&config, role);
            assert_eq!(get(&c, "enable.idempotence").as_deref(), Some("true"), "{role:?}");
            assert_eq!(get(&c, "acks").as_deref(), Some("all"), "{role:?}");
            assert_eq!(
                get(&c, "linger.ms").as_deref(),
                Some("20"),
                "kafka.producer applies to {role:?}"
            );
        }
        assert_eq!(
            get(&producer(&config, ProducerRole::DeadLetter), "message.timeout.ms").as_deref(),
            Some("30000")
        );
    }

    #[test]
    fn only_the_main_member_stores_offsets_by_hand() {
        let config = Config::default();
        let main = group_consumer(&config, Group::Main);
        assert_eq!(get(&main, "enable.auto.offset.store").as_deref(), Some("false"));
        assert_eq!(
            get(&group_consumer(&config, Group::LagWatch), "enable.auto.commit").as_deref(),
            Some("false")
        );
        let redrive = group_consumer(&config, Group::Redrive);
        assert_eq!(
            get(&redrive, "group.id"),
            Some(format!("{}-redrive", config.consumer.group_id))
        );
    }

    #[test]
    fn the_topic_list_names_the_configured_dead_letter_topic() {
        let mut config = Config::default();
        config.consumer.dlq_topic = "my-dlq".into();
        let names: Vec<_> = topics(&config).into_iter().map(|t| t.name).collect();
        assert_eq!(
            names,
            [
                "cowork-otlp-logs",
                "my-dlq",
                "cowork-otlp-metrics",
                "cowork-otlp-traces"
            ]
        );
    }

    #[test]
    fn a_bounded_client_that_hangs_on_drop_is_left_behind_in_time() {
        struct Stuck;
        impl Drop for Stuck {
            fn drop(&mut self) {
                std::thread::sleep(Duration::from_secs(5));
            }
        }
        let started = std::time::Instant::now();
        drop(Bounded::new(Stuck, Duration::from_millis(50)));
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn a_close_that_hangs_is_abandoned_in_time() {
        struct Stuck;
        impl Drop for Stuck {
            fn drop(&mut self) {
                std::thread::sleep(Duration::from_secs(5));
            }
        }
        let started = std::time::Instant::now();
        assert!(!close_within(Stuck, Duration::from_millis(50)));
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(close_within((), Duration::from_secs(1)));
    }
}
