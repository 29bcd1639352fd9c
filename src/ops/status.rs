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
        let key = format!("{label}=\"");
        let mut out = BTreeMap::new();
        for (n, l, v) in &self.samples {
            if n != name {
                continue;
            }
            if let Some(rest) = l.split(&*key).nth(1) {
                *out.entry(rest.split('"').next().unwrap_or_default().to_string())
                    .or_insert(0.0) += v;
            }
        }
        out
    }
}

async fn fetch(url: &str) -> anyhow::Result<Scrape> {
    let body = reqwest::get(url).await?.error_for_status()?.text().await?;
    Ok(Scrape::parse(&body))
}

/// Renders the status from two scrapes of each service taken `interval` apart.
pub fn render(
    edge: Option<(&Scrape, &Scrape)>,
    consumer: Option<(&Scrape, &Scrape)>,
    interval: Duration,
    now_s: f64,
) -> String {
    let secs = interval.as_secs_f64().max(0.001);
    let mut out = String::new();
    match consumer {
        Some((a, b)) => {
            let lag = b.by_label(m::CONSUMER_LAG, "partition");
            let total: f64 = lag.values().sum();
            let rate = (b.sum(m::CONSUMER_EVENTS, "") - a.sum(m::CONSUMER_EVENTS, "")) / secs;
            let _ = writeln!(
                out,
                "consumer: {rate:.0} events/s, lag {total:.0} messages over {} partition(s)",
                lag.len()
            );
            for (p, n) in &lag {
                let _ = writeln!(out, "  partition {p:>3}  lag {n:.0}");
            }
            let last = b.sum(m::CONSUMER_LAST_INSERT, "");
            if last > 0.0 {
                let _ = writeln!(out, "  last insert {:.0} s ago", now_s - last);
            } else {
                let _ = writeln!(out, "  no insert yet");
            }
            let fresh = b.sum(m::CONSUMER_COMMITTED_RECEIVED_AT, "");
            if fresh > 0.0 {
                let _ = writeln!(out, "  newest stored event received {:.0} s ago", now_s - fresh);
            }
            if b.sum(m::CONSUMER_PAUSED, "") > 0.0 {
                let _ = writeln!(
                    out,
                    "  PAUSED: retrying an insert (see cowork_consumer_insert_errors_total)"
                );
            }
            let dead = b.by_label(m::CONSUMER_DEAD_LETTERS, "class");
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
        None => out.push_str("consumer: metrics unreachable\n"),
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

/// Scrapes both services twice, `interval` apart, and returns the rendered status.
pub async fn status(edge_url: &str, consumer_url: &str, interval: Duration) -> String {
    let (e1, c1) = (fetch(edge_url).await.ok(), fetch(consumer_url).await.ok());
    tokio::time::sleep(interval).await;
    let (e2, c2) = (fetch(edge_url).await.ok(), fetch(consumer_url).await.ok());
    let now = crate::util::now_ms() as f64 / 1e3;
    render(
        e1.as_ref().zip(e2.as_ref()),
        c1.as_ref().zip(c2.as_ref()),
        interval,
        now,
    )
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
        let text = render(Some((&e1, &e2)), Some((&c1, &c2)), Duration::from_secs(2), 1000.0);
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
}
