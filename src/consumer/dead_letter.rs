//! Dead letters: payloads the consumer cannot store, kept byte for byte with their original
//! headers and a reason (the message format is [`crate::envelope::dead_letter`]'s). The
//! `redrive` command publishes them back after a fix.

use rdkafka::message::OwnedMessage;
use rdkafka::producer::FutureProducer;

use crate::config::Config;
use crate::envelope::dead_letter;
use crate::kafka::{self, Outgoing, ProducerRole};
use crate::telemetry::labels::DeadLetterClass;

/// Why a payload goes to the dead-letter topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub class: DeadLetterClass,
    pub reason: String,
}

impl DeadLetter {
    pub fn new(class: DeadLetterClass, reason: impl Into<String>) -> DeadLetter {
        DeadLetter {
            class,
            reason: reason.into(),
        }
    }
}

/// The idempotent producer for dead letters: a payload is acknowledged by every in-sync replica
/// before the offset that held it moves on.
pub fn producer(config: &Config) -> rdkafka::error::KafkaResult<FutureProducer> {
    kafka::producer(config, ProducerRole::DeadLetter).create()
}

/// The message as read, its original headers, and the reason, ready to produce.
pub fn pending(msg: &OwnedMessage, why: &DeadLetter) -> Outgoing {
    let headers = dead_letter::headers(msg, why.class.as_str(), &why.reason, crate::util::now_ms());
    Outgoing::from_message(msg, headers)
}
