//! `cowork-ingest status`: the on-call view in a terminal, read from what the services expose
//! on their `/metrics` endpoints (two scrapes, `interval` apart, for the rates).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use crate::telemetry as m;

/// One scrape: every sample, by name, with its label text.
#[derive(Debug, Default)]
pub struct Scrape {
    samples: Vec<(String, String, f64)>,
}

impl Scrape {
    pub fn parse(text: &str) -> Scrape {
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(|l| {
                let (series, value) = l.rsplit_once(' ')?;
                let value: f64 = value.parse().ok()?;
                let (name, labels) = match series.split_once('{') {
                    Some((n, rest)) => (n, rest.trim_end_matches('}')),
                    None => (series, ""),
                };
                Some((name.to_string(), labels.to_string(), value))
            })
            .collect();
        Scrape { samples }
    }

    /// The sum of every series of `name` whose labels contain `filter`.
    pub fn sum(&self, name: &str, filter: &str) -> f64 {
        self.samples
            .iter()
            .filter(|(n, l, _)| n == name && l.contains(filter))
            .map(|(_, _, v)| v)
            .sum()
    }

    /// `label`'s value to the sample's value, for every series of `name`.
    pub fn by_label(&self, name: &str, label: &str) -> BTreeMap<String, f64> {
        self.by_labels(name, label, None)
            .into_iter()
            .map(|((a, _), v)| (a, v))
            .collect()
    }

    /// (`first`'s value, `second`'s value or "") to the sample's value, for every series of
    /// `name` that has `first`.
    pub fn by_labels(&self, name: &str, first: &str, second: Option<&str>) -> BTreeMap<(String, String), f64> {
        let value = |labels: &str, label: &str| {
            let key = format!("{label}=\"");
            // A label at the start, or after a comma: `partition` must not match `xpartition`.
            let at = if labels.starts_with(&key) {
                Some(0)
            } else {
                labels.find(&format!(",{key}")).map(|i| i + 1)
            }?;
            Some(
                labels[at + key.len()..]
                    .split('"')
                    .next()
                    .unwrap_or_default()
                    .to_string(),
            )
        };
        let mut out = BTreeMap::new();
        for (n, l, v) in &self.samples {
            if n != name {
                continue;
            }
            if let Some(a) = value(l, first) {
                let b = second.and_then(|s| value(l, s)).unwrap_or_default();
                *out.entry((a, b)).or_insert(0.0) += v;
            }
        }
        out
    }
}

/// One scrape; a member that does not answer within 5 s counts as unreachable.
async fn fetch(url: &str) -> anyhow::Result<Scrape> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?;
    let body = client.get(url).send().await?.error_for_status()?.text().await?;
    Ok(Scrape::parse(&body))
}

/// One consumer group member: where its metrics are, and two scrapes of them (`None` when
/// unreachable).
pub struct Member<'a> {
    pub url: &'a str,
    pub scrapes: Option<(&'a Scrape, &'a Scrape)>,
}

/// Renders the status from two scrapes of each service taken `interval` apart. With several
/// consumers (the members of one group), the first line is the group's, and each partition names
/// the member that reports it: every partition is owned by exactly one member.
pub fn render(edge: Option<(&Scrape, &Scrape)>, consumers: &[Member<'_>], interval: Duration, now_s: f64) -> String {
    let secs = interval.as_secs_f64().max(0.001);
    let mut out = String::new();
    let reachable: Vec<(&str, &Scrape, &Scrape)> = consumers
        .iter()
        .filter_map(|m| m.scrapes.map(|(a, b)| (m.url, a, b)))
        .collect();
    if reachable.is_empty() {
        out.push_str("consumer: metrics unreachable\n");
    } else {
        let several = consumers.len() > 1;
        // (Topic, partition) -> (lag, reporting members).
        let mut lag: BTreeMap<(String, u32), (f64, Vec<&str>)> = BTreeMap::new();
        let mut rate = 0.0;
        let (mut last, mut paused) = (0.0f64, false);
        // Signal -> receive time of the newest stored payload.
        let mut fresh: BTreeMap<String, f64> = BTreeMap::new();
        let mut dead: BTreeMap<String, f64> = BTreeMap::new();
        for (url, a, b) in &reachable {
            for ((p, topic), n) in b.by_labels(m::CONSUMER_LAG, "partition", Some("topic")) {
                let Ok(p) = p.parse::<u32>() else { continue };
                // During a rebalance two members may report one partition: its lag counts once.
                let entry = lag.entry((topic, p)).or_insert((0.0, Vec::new()));
                entry.0 = entry.0.max(n);
                entry.1.push(url);
            }
            rate += (b.sum(m::CONSUMER_EVENTS, "") - a.sum(m::CONSUMER_EVENTS, "")) / secs;
            last = last.max(b.sum(m::CONSUMER_LAST_INSERT, ""));
            for (signal, at) in b.by_label(m::CONSUMER_COMMITTED_RECEIVED_AT, "signal") {
                let newest = fresh.entry(signal).or_insert(0.0);
                *newest = newest.max(at);
            }
            paused |= b.sum(m::CONSUMER_PAUSED, "") > 0.0;
            for (class, n) in b.by_label(m::CONSUMER_DEAD_LETTERS, "class") {
                *dead.entry(class).or_insert(0.0) += n;
            }
        }
        let total: f64 = lag.values().map(|(n, _)| n).sum();
        let _ = write!(
            out,
            "consumer: {rate:.0} events/s, lag {total:.0} messages over {} partition(s)",
            lag.len()
        );
        if several {
            let _ = write!(out, ", {} of {} member(s) reachable", reachable.len(), consumers.len());
        }
        out.push('\n');
        if several {
            for member in consumers {
                match member.scrapes {
                    Some((a, b)) => {
                        let owned = b.by_labels(m::CONSUMER_LAG, "partition", Some("topic")).len();
                        let rate = (b.sum(m::CONSUMER_EVENTS, "") - a.sum(m::CONSUMER_EVENTS, "")) / secs;
                        let state = if b.sum(m::CONSUMER_PAUSED, "") > 0.0 {
                            ", PAUSED"
                        } else {
                            ""
                        };
                        let _ = writeln!(
                            out,
                            "  member {}: {rate:.0} events/s, {owned} partition(s){state}",
                            member.url
                        );
                    }
                    None => {
                        let _ = writeln!(out, "  member {}: metrics unreachable", member.url);
                    }
                }
            }
        }
        let mut topics: BTreeMap<&str, (f64, usize)> = BTreeMap::new();
        for ((topic, _), (n, _)) in &lag {
            let t = topics.entry(topic).or_insert((0.0, 0));
            t.0 += n;
            t.1 += 1;
        }
        if topics.len() > 1 {
            for (topic, (n, parts)) in &topics {
                let _ = writeln!(out, "  topic {topic}: lag {n:.0} over {parts} partition(s)");
            }
        }
        for ((topic, p), (n, owners)) in &lag {
            let _ = write!(out, "  {topic} partition {p:>3}  lag {n:.0}");
            if several {
                let _ = write!(out, "  member {}", owners.join(", "));
                if owners.len() > 1 {
                    let _ = write!(
                        out,
                        "  (reported by {} members: a rebalance is in progress)",
                        owners.len()
                    );
                }
            }
            out.push('\n');
        }
        if last > 0.0 {
            let _ = writeln!(out, "  last insert {:.0} s ago", now_s - last);
        } else {
            let _ = writeln!(out, "  no insert yet");
        }
        for (signal, at) in fresh.iter().filter(|(_, at)| **at > 0.0) {
            let what = match signal.as_str() {
                "" | "logs" => "event",
                "metrics" => "metric point",
                "traces" => "span",
                other => other,
            };
            let _ = writeln!(out, "  newest stored {what} received {:.0} s ago", now_s - at);
        }
        if paused {
            let _ = writeln!(
                out,
                "  PAUSED: retrying an insert (see cowork_consumer_insert_errors_total)"
            );
        }
        let dead: Vec<String> = dead
            .iter()
            .filter(|(_, v)| **v > 0.0)
            .map(|(c, v)| format!("{c} {v:.0}"))
            .collect();
        let _ = writeln!(
            out,
            "  dead letters: {}",
            if dead.is_empty() {
                "none".into()
            } else {
                dead.join(", ")
            }
        );
    }
    match edge {
        Some((a, b)) => {
            let rate = (b.sum(m::EDGE_REQUESTS, "") - a.sum(m::EDGE_REQUESTS, "")) / secs;
            let errors = (b.sum(m::EDGE_REQUESTS, "status=\"5") - a.sum(m::EDGE_REQUESTS, "status=\"5")) / secs;
            let records = (b.sum(m::EDGE_PUBLISHED_RECORDS, "") - a.sum(m::EDGE_PUBLISHED_RECORDS, "")) / secs;
            let ready = if b.sum(m::EDGE_KAFKA_READY, "") > 0.0 {
                "reachable"
            } else {
                "UNREACHABLE"
            };
            let _ = writeln!(
                out,
                "edge: {rate:.1} requests/s ({errors:.1}/s 5xx), {records:.0} records/s published, Kafka {ready}"
            );
        }
        None => out.push_str("edge: metrics unreachable\n"),
    }
    out
}

/// Scrapes the edge and every consumer twice, `interval` apart, and returns the rendered status.
pub async fn status(edge_url: &str, consumer_urls: &[String], interval: Duration) -> String {
    let scrape_all = || async {
        let mut consumers = Vec::new();
        for url in consumer_urls {
            consumers.push(fetch(url).await.ok());
        }
        (fetch(edge_url).await.ok(), consumers)
    };
    let (e1, c1) = scrape_all().await;
    tokio::time::sleep(interval).await;
    let (e2, c2) = scrape_all().await;
    let now = crate::util::now_ms() as f64 / 1e3;
    let members: Vec<Member<'_>> = consumer_urls
        .iter()
        .zip(c1.iter().zip(&c2))
        .map(|(url, (a, b))| Member {
            url,
            scrapes: a.as_ref().zip(b.as_ref()),
        })
        .collect();
    render(e1.as_ref().zip(e2.as_ref()), &members, interval, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_reads_lag_rates_and_dead_letters() {
        let c1 = Scrape::parse("cowork_consumer_events_total{event=\"api_request\",tenant=\"acme\"} 100\n");
        let c2 = Scrape::parse(
            "# TYPE x gauge\ncowork_consumer_events_total{event=\"api_request\",tenant=\"acme\"} 300\n\
             cowork_consumer_lag{topic=\"t\",partition=\"0\"} 5\ncowork_consumer_lag{topic=\"t\",partition=\"1\"} 7\n\
             cowork_consumer_last_insert_seconds 990\ncowork_consumer_dead_letters_total{class=\"undecodable\"} 2\n\
             cowork_consumer_paused 0\n",
        );
        let e1 = Scrape::parse("cowork_edge_requests_total{route=\"/v1/logs\",status=\"200\"} 10\n");
        let e2 = Scrape::parse(
            "cowork_edge_requests_total{route=\"/v1/logs\",status=\"200\"} 30\ncowork_edge_requests_total{route=\"/v1/logs\",status=\"503\"} 2\ncowork_edge_kafka_ready 1\n",
        );
        let member = [Member {
            url: "http://c1/metrics",
            scrapes: Some((&c1, &c2)),
        }];
        let text = render(Some((&e1, &e2)), &member, Duration::from_secs(2), 1000.0);
        assert!(
            text.contains("consumer: 100 events/s, lag 12 messages over 2 partition(s)"),
            "{text}"
        );
        assert!(text.contains("partition   1  lag 7"), "{text}");
        assert!(text.contains("last insert 10 s ago"), "{text}");
        assert!(text.contains("dead letters: undecodable 2"), "{text}");
        assert!(text.contains("edge: 11.0 requests/s (1.0/s 5xx)"), "{text}");
        assert!(text.contains("Kafka reachable"), "{text}");
    }

    #[test]
    fn status_shows_lag_and_freshness_per_topic() {
        let empty = Scrape::parse("");
        let c = Scrape::parse(
            "cowork_consumer_lag{topic=\"logs\",partition=\"0\"} 5\ncowork_consumer_lag{topic=\"metrics\",partition=\"0\"} 2\n\
             cowork_consumer_lag{topic=\"traces\",partition=\"0\"} 0\n\
             cowork_consumer_committed_received_at_seconds{signal=\"logs\"} 990\n\
             cowork_consumer_committed_received_at_seconds{signal=\"metrics\"} 940\n",
        );
        let member = [Member {
            url: "http://c/metrics",
            scrapes: Some((&empty, &c)),
        }];
        let text = render(None, &member, Duration::from_secs(1), 1000.0);
        assert!(text.contains("lag 7 messages over 3 partition(s)"), "{text}");
        assert!(text.contains("topic metrics: lag 2 over 1 partition(s)"), "{text}");
        assert!(text.contains("logs partition   0  lag 5"), "{text}");
        assert!(text.contains("metrics partition   0  lag 2"), "{text}");
        assert!(text.contains("newest stored event received 10 s ago"), "{text}");
        assert!(text.contains("newest stored metric point received 60 s ago"), "{text}");
        assert!(!text.contains("newest stored span"), "no span was stored: {text}");
    }

    #[test]
    fn status_shows_every_member_and_who_owns_each_partition() {
        let empty = Scrape::parse("");
        let a = Scrape::parse(
            "cowork_consumer_lag{topic=\"t\",partition=\"0\"} 5\ncowork_consumer_lag{topic=\"t\",partition=\"2\"} 1\n",
        );
        let b = Scrape::parse("cowork_consumer_lag{topic=\"t\",partition=\"1\"} 3\ncowork_consumer_paused 1\n");
        let members = [
            Member {
                url: "http://a/metrics",
                scrapes: Some((&empty, &a)),
            },
            Member {
                url: "http://b/metrics",
                scrapes: Some((&empty, &b)),
            },
            Member {
                url: "http://gone/metrics",
                scrapes: None,
            },
        ];
        let text = render(None, &members, Duration::from_secs(1), 1000.0);
        assert!(
            text.contains("lag 9 messages over 3 partition(s), 2 of 3 member(s) reachable"),
            "{text}"
        );
        assert!(
            text.contains("member http://a/metrics: 0 events/s, 2 partition(s)\n"),
            "{text}"
        );
        assert!(
            text.contains("member http://b/metrics: 0 events/s, 1 partition(s), PAUSED"),
            "{text}"
        );
        assert!(
            text.contains("member http://gone/metrics: metrics unreachable"),
            "{text}"
        );
        assert!(text.contains("partition   1  lag 3  member http://b/metrics"), "{text}");
        assert!(!text.contains("rebalance"), "{text}");
    }
}
