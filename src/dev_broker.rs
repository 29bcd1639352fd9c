//! `cowork-ingest dev-broker`: librdkafka's built-in mock cluster, for local runs and tests.
//!
//! It speaks the real Kafka protocol over TCP (producers, consumer groups, offsets) but keeps
//! its log in memory: **it is not durable**, and everything in it is gone when it stops. Use
//! Apache Kafka for anything that matters.

use rdkafka::error::KafkaResult;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

use crate::config::KafkaConfig;

pub type DevCluster = MockCluster<'static, DefaultProducerContext>;

/// The topics the pipeline uses: raw logs, metrics and traces, and the logs dead-letter topic.
pub fn topics(kafka: &KafkaConfig) -> Vec<String> {
    vec![
        kafka.logs_topic.clone(),
        format!("{}-dlq", kafka.logs_topic),
        kafka.metrics_topic.clone(),
        kafka.traces_topic.clone(),
    ]
}

/// Starts a mock cluster of `brokers` brokers with `topics` created at `partitions` each.
pub fn start(brokers: i32, partitions: i32, topics: &[String]) -> KafkaResult<DevCluster> {
    let cluster = MockCluster::new(brokers)?;
    for topic in topics {
        cluster.create_topic(topic, partitions, brokers.min(3))?;
    }
    Ok(cluster)
}
