//! `cowork-ingest dev-broker`: librdkafka's built-in mock cluster, for local runs and tests.
//!
//! It speaks the real Kafka protocol over TCP (producers, consumer groups, offsets) but keeps
//! its log in memory: **it is not durable**, and everything in it is gone when it stops. Use
//! Apache Kafka for anything that matters.

use rdkafka::error::KafkaResult;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

use crate::config::Config;

pub type DevCluster = MockCluster<'static, DefaultProducerContext>;

/// The names of the topics this configuration uses ([`super::topics`]).
pub fn topics(config: &Config) -> Vec<String> {
    super::topics(config).into_iter().map(|t| t.name).collect()
}

/// Starts a mock cluster of `brokers` brokers with `topics` created at `partitions` each.
pub fn start(brokers: i32, partitions: i32, topics: &[String]) -> KafkaResult<DevCluster> {
    let cluster = MockCluster::new(brokers)?;
    for topic in topics {
        cluster.create_topic(topic, partitions, brokers.min(3))?;
    }
    Ok(cluster)
}
