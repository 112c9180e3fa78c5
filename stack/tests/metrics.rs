//! `stack::metrics` read back by a Prometheus text-format parser, as a
//! scraper reads it: every counter with its value, the socket gauges
//! summing to the table, and the RTT histogram of a real transfer
//! between two stacks.

#![allow(clippy::unwrap_used)]

mod sim;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use prometheus_parse::{HistogramCount, Sample, Scrape, Value};
use sim::{Sim, A, B};
use stack::device::fault::FaultConfig;
use stack::metrics;
use stack::stats::{Stats, GAUGES};
use stack::table::Protocol;
use stack::tcp::memory::MemoryBudget;
use stack::tcp::rtt_histogram::{RttHistogram, BUCKETS};
use stack::{Config, SocketInfo};

/// Parses `text`, asserting that the parser took every sample line: it
/// skips lines it cannot read without saying so.
fn parse(text: &str) -> Scrape {
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = Scrape::parse(lines).unwrap();
    let sample_lines = text.lines().filter(|l| !l.starts_with('#')).count();
    let parsed: usize = scrape
        .samples
        .iter()
        .map(|s| match &s.value {
            Value::Histogram(buckets) => buckets.len(),
            _ => 1,
        })
        .sum();
    assert_eq!(parsed, sample_lines, "some lines did not parse:\n{text}");
    scrape
}

fn find<'a>(scrape: &'a Scrape, metric: &str, labels: &[(&str, &str)]) -> &'a Sample {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .unwrap_or_else(|| panic!("no {metric} {labels:?}"))
}

fn counter(sample: &Sample) -> f64 {
    match sample.value {
        Value::Counter(v) => v,
        ref other => panic!("{} is not a counter: {other:?}", sample.metric),
    }
}

fn gauge(sample: &Sample) -> f64 {
    match sample.value {
        Value::Gauge(v) => v,
        ref other => panic!("{} is not a gauge: {other:?}", sample.metric),
    }
}

fn histogram<'a>(scrape: &'a Scrape, metric: &str) -> &'a [HistogramCount] {
    match &find(scrape, metric, &[]).value {
        Value::Histogram(buckets) => buckets,
        other => panic!("{metric} is not a histogram: {other:?}"),
    }
}

fn untyped(scrape: &Scrape, metric: &str) -> f64 {
    // The parser reads a histogram's `_sum` and `_count` as samples of
    // their own.
    match find(scrape, metric, &[]).value {
        Value::Untyped(v) => v,
        ref other => panic!("{metric}: {other:?}"),
    }
}

/// Every entry of the snapshot, found where `stack::metrics` documents it.
fn assert_snapshot_exported(stats: &Stats, scrape: &Scrape) {
    for (name, value) in stats.snapshot() {
        let (metric, got) = if let Some(reason) = name.strip_prefix("drop_") {
            let metric = "stack_dropped_packets_total";
            (
                metric.to_string(),
                counter(find(scrape, metric, &[("reason", reason)])),
            )
        } else if GAUGES.contains(&name) {
            let metric = format!("stack_{name}_bytes");
            let got = gauge(find(scrape, &metric, &[]));
            (metric, got)
        } else {
            let metric = format!("stack_{name}_total");
            let got = counter(find(scrape, &metric, &[]));
            (metric, got)
        };
        assert_eq!(got, value as f64, "{metric} for {name}");
        let help = scrape.docs.get(&metric).map(String::as_str).unwrap_or("");
        assert!(!help.is_empty(), "{metric} has no HELP");
    }
}

#[test]
fn every_counter_is_exported_with_its_value_and_help() {
    let memory = MemoryBudget::new(1 << 20);
    assert!(memory.try_charge(12_288));
    let stats = Stats::new(memory, RttHistogram::new());
    // Distinct values, so a counter reported under another's name shows.
    stats.ip_rx.store(1001, Ordering::Relaxed);
    stats.tcp_tx.store(1002, Ordering::Relaxed);
    stats.drop_queue_full.store(1003, Ordering::Relaxed);
    stats.count_drop(stack::wire::Error::BadChecksum);
    stats.memory().count_pruned(77);

    let scrape = parse(&metrics::encode(&stats, &[]));

    assert_snapshot_exported(&stats, &scrape);
    let reasons = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "stack_dropped_packets_total")
        .count();
    let drops = stats
        .snapshot()
        .iter()
        .filter(|(n, _)| n.starts_with("drop_"))
        .count();
    assert_eq!(reasons, drops, "one series per drop reason");
    assert_eq!(
        scrape.docs.get("stack_ip_rx_total").map(String::as_str),
        Some("IP packets read from the device.")
    );
    assert_eq!(
        gauge(find(&scrape, "stack_memory_in_use_bytes", &[])),
        12_288.0
    );
    assert_eq!(
        gauge(find(&scrape, "stack_memory_budget_bytes", &[])),
        1048576.0
    );
}

fn socket(protocol: Protocol, local: &str, remote: Option<&str>, state: &str) -> SocketInfo {
    SocketInfo {
        protocol,
        local: local.parse().unwrap(),
        remote: remote.map(|r| r.parse::<SocketAddr>().unwrap()),
        state: state.to_string(),
        recv_queue: 0,
        send_queue: 0,
        tcp: None,
    }
}

#[test]
fn socket_gauges_count_each_protocol_and_state() {
    let sockets = [
        socket(Protocol::Tcp, "10.0.0.2:80", None, "LISTEN"),
        socket(Protocol::Tcp, "[fd00::2]:80", None, "LISTEN"),
        socket(
            Protocol::Tcp,
            "10.0.0.2:80",
            Some("10.0.0.1:4000"),
            "ESTABLISHED",
        ),
        socket(
            Protocol::Tcp,
            "10.0.0.2:80",
            Some("10.0.0.1:4001"),
            "ESTABLISHED",
        ),
        socket(
            Protocol::Tcp,
            "10.0.0.2:80",
            Some("10.0.0.1:4002"),
            "TIME-WAIT",
        ),
        socket(Protocol::Udp, "10.0.0.2:7", None, "BOUND"),
    ];
    let scrape = parse(&metrics::encode(&Stats::default(), &sockets));

    let series: HashMap<(String, String), f64> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "stack_sockets")
        .map(|s| {
            let key = (
                s.labels.get("protocol").unwrap(),
                s.labels.get("state").unwrap(),
            );
            ((key.0.to_string(), key.1.to_string()), gauge(s))
        })
        .collect();
    let want: HashMap<(String, String), f64> = [
        ("tcp", "LISTEN", 2.0),
        ("tcp", "ESTABLISHED", 2.0),
        ("tcp", "TIME-WAIT", 1.0),
        ("udp", "BOUND", 1.0),
    ]
    .into_iter()
    .map(|(p, s, n)| ((p.to_string(), s.to_string()), n))
    .collect();
    assert_eq!(series, want);
}

#[test]
fn rtt_histogram_buckets_are_cumulative_up_to_the_count() {
    let rtt = RttHistogram::new();
    let samples_ms = [0, 1, 3, 3, 40, 40, 40, 900, 20_000];
    for ms in samples_ms {
        rtt.record(Duration::from_millis(ms));
    }
    let stats = Stats::new(MemoryBudget::unlimited(), rtt);
    let scrape = parse(&metrics::encode(&stats, &[]));

    let buckets = histogram(&scrape, "stack_tcp_rtt_seconds");
    assert_eq!(buckets.len(), BUCKETS.len() + 1);
    assert!(buckets.windows(2).all(|w| w[0].less_than < w[1].less_than));
    assert!(buckets.windows(2).all(|w| w[0].count <= w[1].count));
    for (bucket, bound) in buckets.iter().zip(BUCKETS) {
        let at_most = samples_ms
            .iter()
            .filter(|&&ms| Duration::from_millis(ms) <= bound)
            .count();
        assert_eq!(bucket.less_than, bound.as_secs_f64());
        assert_eq!(bucket.count, at_most as f64, "le={}", bucket.less_than);
    }
    let inf = buckets.last().unwrap();
    assert_eq!(inf.less_than, f64::INFINITY);
    assert_eq!(inf.count, samples_ms.len() as f64);
    assert_eq!(untyped(&scrape, "stack_tcp_rtt_seconds_count"), inf.count);
    let sum = untyped(&scrape, "stack_tcp_rtt_seconds_sum");
    assert!((sum - 21.027).abs() < 1e-9, "sum {sum}");
}

/// Two stacks exchange 256 KiB each way over a 5 ms link: after it, the
/// metrics of each stack hold its counters, its sockets and the RTTs its
/// connection measured, none shorter than the link's round trip.
#[test]
fn a_transfer_shows_in_both_stacks_metrics() {
    const LATENCY: Duration = Duration::from_millis(5);
    let faults = FaultConfig {
        latency: LATENCY,
        ..FaultConfig::default()
    };
    let mut sim = Sim::new(3, faults, Config::with_addr(A), Config::with_addr(B));
    sim.exchange(256 * 1024, 1_000_000);

    for stack in [&sim.a.stack, &sim.b.stack] {
        let scrape = parse(&metrics::render(stack));
        assert_snapshot_exported(stack.stats(), &scrape);
        assert!(counter(find(&scrape, "stack_tcp_rx_total", &[])) > 100.0);

        let sockets = stack.sockets();
        let in_gauges: f64 = scrape
            .samples
            .iter()
            .filter(|s| s.metric == "stack_sockets")
            .map(gauge)
            .sum();
        assert_eq!(in_gauges, sockets.len() as f64);
        // `render` counts without listing (`socket_counts`): the same
        // numbers, state by state, as the listing gives.
        let counts = stack.socket_counts();
        assert!(!counts.is_empty());
        for (&(protocol, state), &n) in &counts {
            let listed = sockets
                .iter()
                .filter(|s| s.protocol.as_str() == protocol && s.state == state)
                .count();
            assert_eq!(n, listed as u64, "{protocol} {state}");
            let labels = [("protocol", protocol), ("state", state)];
            assert_eq!(gauge(find(&scrape, "stack_sockets", &labels)), n as f64);
        }

        let buckets = histogram(&scrape, "stack_tcp_rtt_seconds");
        assert!(buckets.windows(2).all(|w| w[0].count <= w[1].count));
        let count = untyped(&scrape, "stack_tcp_rtt_seconds_count");
        assert_eq!(buckets.last().unwrap().count, count);
        assert_eq!(count, stack.stats().rtt().snapshot().count() as f64);
        assert!(
            count > 10.0,
            "a 256 KiB exchange gives many samples: {count}"
        );
        // The link delays each way by LATENCY: no sample can beat the
        // round trip.
        let round_trip = (2 * LATENCY).as_secs_f64();
        let faster = buckets.iter().filter(|b| b.less_than < round_trip);
        assert!(faster.clone().count() > 0);
        assert!(faster.into_iter().all(|b| b.count == 0.0), "{buckets:?}");
        let sum = untyped(&scrape, "stack_tcp_rtt_seconds_sum");
        assert!(sum >= count * round_trip, "sum {sum} of {count} samples");
    }
}
