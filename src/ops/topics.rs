//! `cowork-ingest topics check [--create]`: are the pipeline's topics there, and set up for
//! the limits this configuration promises? Raw logs, dead letters, metrics and traces are
//! checked for existence, partitions, replication, `min.insync.replicas`, retention and
//! `max.message.bytes`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use std::sync::Arc;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;

use crate::config::Config;
use crate::kafka::{self, Topic};

/// Seven days: a consumer outage over a long weekend must not lose raw payloads.
pub const MIN_RETENTION_MS: i64 = 7 * 24 * 3600 * 1000;

/// What Kafka says about one topic.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    pub exists: bool,
    pub partitions: usize,
    pub replication: usize,
    /// Topic configs, when the broker describes them.
    pub configs: Option<BTreeMap<String, String>>,
}

/// Problems (the topic cannot do its job) and warnings (it works, but not as production should).
pub fn assess(want: &Topic, facts: &Facts) -> (Vec<String>, Vec<String>) {
    let (mut problems, mut warnings) = (Vec::new(), Vec::new());
    if !facts.exists {
        problems.push("does not exist (create it, or run `topics check --create`)".to_string());
        return (problems, warnings);
    }
    if facts.partitions < 3 && want.role == "raw logs" {
        warnings.push(format!(
            "{} partition(s): at most that many consumers can share the work",
            facts.partitions
        ));
    }
    if facts.replication < 3 {
        warnings.push(format!(
            "replication factor {}: a broker loss can lose acknowledged payloads; use 3",
            facts.replication
        ));
    }
    let Some(configs) = &facts.configs else {
        warnings.push("the broker did not describe the topic's configs; they were not checked".to_string());
        return (problems, warnings);
    };
    let num = |key: &str| configs.get(key).and_then(|v| v.parse::<i64>().ok());
    if let Some(isr) = num("min.insync.replicas") {
        if facts.replication >= 3 && isr < 2 {
            problems.push(format!(
                "min.insync.replicas is {isr}: with acks=all an acknowledgement must mean two copies; set 2"
            ));
        }
    }
    if let Some(max) = num("max.message.bytes") {
        if (max as usize) < want.max_message_bytes {
            problems.push(format!(
                "max.message.bytes is {max}, below {} (edge.max_body_bytes plus headers): large requests would fail",
                want.max_message_bytes
            ));
        }
    }
    if let Some(retention) = num("retention.ms") {
        if (0..MIN_RETENTION_MS).contains(&retention) {
            warnings.push(format!(
                "retention.ms is {retention} ({:.1} days): a longer consumer outage would lose payloads; 7 days or more",
                retention as f64 / 86_400_000.0
            ));
        }
    }
    if configs.get("cleanup.policy").is_some_and(|p| p.contains("compact")) {
        problems.push("cleanup.policy is compact: payloads have no keys worth compacting on; use delete".into());
    }
    (problems, warnings)
}

/// Checks (and with `create`, creates the missing) topics; returns the report and whether
/// everything can do its job.
pub async fn check(config: &Config, create: bool) -> anyhow::Result<(String, bool)> {
    let admin: Arc<AdminClient<DefaultClientContext>> = Arc::new(kafka::client(config).create()?);
    let timeout = Duration::from_secs(10);
    let wants = kafka::topics(config);
    let mut out = String::new();
    if create {
        let before = cluster(&admin, timeout).await?;
        let replication = before.brokers.clamp(1, 3) as i32;
        let isr = if replication >= 3 { "2" } else { "1" };
        let missing: Vec<&Topic> = wants.iter().filter(|w| !before.topics.contains_key(&w.name)).collect();
        let sizes: Vec<String> = missing.iter().map(|w| w.max_message_bytes.to_string()).collect();
        let retention = MIN_RETENTION_MS.to_string();
        let new: Vec<NewTopic<'_>> = missing
            .iter()
            .zip(&sizes)
            .map(|(w, size)| {
                NewTopic::new(&w.name, w.partitions, TopicReplication::Fixed(replication))
                    .set("max.message.bytes", size)
                    .set("min.insync.replicas", isr)
                    .set("retention.ms", &retention)
            })
            .collect();
        if !new.is_empty() {
            let mut created = Vec::new();
            for result in admin
                .create_topics(&new, &AdminOptions::new().operation_timeout(Some(timeout)))
                .await?
            {
                match result {
                    Ok(t) => {
                        created.push(t.clone());
                        let _ = writeln!(
                            out,
                            "created {t} (replication {replication}, min.insync.replicas {isr})"
                        );
                    }
                    Err((t, e)) => {
                        let _ = writeln!(out, "could not create {t}: {e}");
                    }
                }
            }
            // A created topic reaches every broker's metadata a moment later: wait for it, so
            // that the check below does not report a topic it just created as missing.
            let deadline = std::time::Instant::now() + Duration::from_secs(15);
            while std::time::Instant::now() < deadline {
                // A failed read here is retried: the check below reports what it finds.
                if let Ok(seen) = cluster(&admin, timeout).await {
                    if created.iter().all(|t| seen.topics.get(t).is_some_and(|(p, _)| *p > 0)) {
                        break;
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    let cluster = cluster(&admin, timeout).await?;
    let specs: Vec<ResourceSpecifier<'_>> = wants.iter().map(|w| ResourceSpecifier::Topic(&w.name)).collect();
    let described = admin
        .describe_configs(&specs, &AdminOptions::new().request_timeout(Some(timeout)))
        .await
        .ok();
    let mut ok = true;
    for (i, want) in wants.iter().enumerate() {
        let topic = cluster.topics.get(&want.name);
        let facts = Facts {
            exists: topic.is_some(),
            partitions: topic.map_or(0, |t| t.0),
            replication: topic.map_or(0, |t| t.1),
            configs: described
                .as_ref()
                .and_then(|d| d.get(i))
                .and_then(|r| r.as_ref().ok())
                .map(|r| {
                    r.entries
                        .iter()
                        .filter_map(|e| Some((e.name.clone(), e.value.clone()?)))
                        .collect()
                }),
        };
        let (problems, warnings) = assess(want, &facts);
        ok &= problems.is_empty();
        let verdict = if !problems.is_empty() {
            "PROBLEM"
        } else if !warnings.is_empty() {
            "warning"
        } else {
            "ok"
        };
        let _ = writeln!(
            out,
            "{verdict:<8} {} ({}): {} partition(s), replication {}",
            want.name, want.role, facts.partitions, facts.replication
        );
        for p in problems {
            let _ = writeln!(out, "         problem: {p}");
        }
        for w in warnings {
            let _ = writeln!(out, "         warning: {w}");
        }
    }
    Ok((out, ok))
}

/// What the cluster's metadata says: how many brokers, and per topic its partitions and
/// replication.
struct Cluster {
    brokers: usize,
    topics: BTreeMap<String, (usize, usize)>,
}

/// Reads the metadata of every topic at once (asking for one by name may auto-create it on some
/// brokers), on a blocking thread: librdkafka's metadata call blocks.
async fn cluster(admin: &Arc<AdminClient<DefaultClientContext>>, timeout: Duration) -> anyhow::Result<Cluster> {
    let admin = admin.clone();
    let cluster = tokio::task::spawn_blocking(move || -> anyhow::Result<Cluster> {
        let metadata = admin.inner().fetch_metadata(None, timeout)?;
        let topics = metadata
            .topics()
            .iter()
            .map(|t| {
                let replication = t.partitions().first().map_or(0, |p| p.replicas().len());
                (t.name().to_string(), (t.partitions().len(), replication))
            })
            .collect();
        Ok(Cluster {
            brokers: metadata.brokers().len(),
            topics,
        })
    })
    .await??;
    Ok(cluster)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want() -> Topic {
        kafka::topics(&Config::default()).remove(0)
    }

    fn healthy() -> Facts {
        Facts {
            exists: true,
            partitions: 12,
            replication: 3,
            configs: Some(BTreeMap::from([
                ("min.insync.replicas".into(), "2".into()),
                ("max.message.bytes".into(), "8388608".into()),
                ("retention.ms".into(), "604800000".into()),
                ("cleanup.policy".into(), "delete".into()),
            ])),
        }
    }

    #[test]
    fn a_production_topic_passes() {
        assert_eq!(assess(&want(), &healthy()), (vec![], vec![]));
    }

    #[test]
    fn each_unsafe_setting_is_named() {
        let mut f = healthy();
        let c = f.configs.as_mut().unwrap();
        c.insert("min.insync.replicas".into(), "1".into());
        c.insert("max.message.bytes".into(), "1048576".into());
        c.insert("retention.ms".into(), "3600000".into());
        let (problems, warnings) = assess(&want(), &f);
        assert!(problems[0].contains("min.insync.replicas is 1"), "{problems:?}");
        assert!(problems[1].contains("max.message.bytes is 1048576"), "{problems:?}");
        assert!(warnings[0].contains("retention.ms is 3600000"), "{warnings:?}");
    }

    #[test]
    fn missing_topics_and_thin_replication_are_reported() {
        let (problems, _) = assess(&want(), &Facts::default());
        assert!(problems[0].contains("does not exist"));
        let f = Facts {
            exists: true,
            partitions: 1,
            replication: 1,
            configs: None,
        };
        let (problems, warnings) = assess(&want(), &f);
        assert!(problems.is_empty());
        assert_eq!(warnings.len(), 3, "{warnings:?}");
    }
}
