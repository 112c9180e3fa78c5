//! The stack's state in the Prometheus text exposition format, version
//! 0.0.4 (what a `/metrics` route serves with
//! `Content-Type: text/plain; version=0.0.4`).
//!
//! Every metric is named `stack_*` and rendered from what the stack
//! already keeps; nothing here counts anything itself:
//!
//! - `stack_<name>_total` (counter): each counter of
//!   [`Stats::snapshot`], its doc comment as HELP, except the `drop_*`
//!   ones, which become
//! - `stack_dropped_packets_total{reason}` (counter): one series per
//!   `drop_<reason>` counter (`reason="bad_checksum"`, ...). A packet is
//!   dropped for one reason only, so the series partition the drops and
//!   `sum(stack_dropped_packets_total)` is every packet dropped.
//!   `tcp_memory_drops` and `ip_reasm_memory_drops` keep their own
//!   names: they count segments and fragments refused storage, not
//!   packets dropped on arrival.
//! - `stack_memory_in_use_bytes`, `stack_memory_budget_bytes` (gauges):
//!   the memory budget (`Config::memory_budget`, `tcp::memory`) and what
//!   is charged against it.
//! - `stack_sockets{protocol, state}` (gauge): the socket table by
//!   protocol and state name ("ESTABLISHED", "LISTEN", "BOUND", ...), one
//!   series for each pair present, so the series sum to the number of
//!   sockets.
//! - `stack_tcp_rtt_seconds` (histogram): every RTT sample of every
//!   connection (`tcp::rtt_histogram`), buckets from 100 µs to 10 s.
//!
//! [`render`] reads a running stack; [`encode`] takes the parts, so it is
//! testable on any `Stats` and socket list.

use std::collections::BTreeMap;
use std::fmt::{self, Write};
use std::time::Duration;

use crate::api::SocketInfo;
use crate::runtime::Stack;
use crate::stats::{self, Stats};
use crate::tcp::rtt_histogram::RttSnapshot;

/// Every metric's name starts with this.
pub const PREFIX: &str = "stack_";

/// The `Content-Type` of what [`render`] returns.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The snapshot's counters named `drop_<reason>` become one metric with a
/// `reason` label.
const DROP_PREFIX: &str = "drop_";

/// The stack's metrics now, in the text exposition format. The sockets
/// are counted by state ([`Stack::socket_counts`]), not listed: a scrape
/// costs no TCP info per connection.
pub fn render(stack: &Stack) -> String {
    encode_counts(stack.stats(), &stack.socket_counts())
}

/// The metrics of `stats` (its counters, memory gauges and RTT histogram)
/// and of the socket table `sockets`.
pub fn encode(stats: &Stats, sockets: &[SocketInfo]) -> String {
    let mut counts: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for socket in sockets {
        *counts
            .entry((socket.protocol.as_str(), socket.state.as_str()))
            .or_default() += 1;
    }
    encode_counts(stats, &counts)
}

/// The metrics of `stats` and of sockets counted by (protocol, state).
fn encode_counts(stats: &Stats, sockets: &BTreeMap<(&str, &str), u64>) -> String {
    let mut out = String::new();
    let snapshot = stats.snapshot();
    write_counters(&mut out, &snapshot);
    write_drops(&mut out, &snapshot);
    write_memory(&mut out, &snapshot);
    write_sockets(&mut out, sockets);
    write_rtt(&mut out, &stats.rtt().snapshot());
    out
}

fn write_counters(out: &mut String, snapshot: &[(&'static str, u64)]) {
    let counters = snapshot
        .iter()
        .filter(|(name, _)| !name.starts_with(DROP_PREFIX) && !stats::GAUGES.contains(name));
    for (name, value) in counters {
        let metric = format!("{PREFIX}{name}_total");
        header(
            out,
            &metric,
            "counter",
            &Stats::help(name).unwrap_or_default(),
        );
        line(out, format_args!("{metric} {value}"));
    }
}

fn write_drops(out: &mut String, snapshot: &[(&'static str, u64)]) {
    let metric = format!("{PREFIX}dropped_packets_total");
    header(
        out,
        &metric,
        "counter",
        "Packets dropped on arrival, by reason (the doc of each \
         stack::stats::Stats::drop_<reason> says what the reason is).",
    );
    for (name, value) in snapshot {
        if let Some(reason) = name.strip_prefix(DROP_PREFIX) {
            line(out, format_args!("{metric}{{reason=\"{reason}\"}} {value}"));
        }
    }
}

fn write_memory(out: &mut String, snapshot: &[(&'static str, u64)]) {
    for (name, value) in snapshot.iter().filter(|(n, _)| stats::GAUGES.contains(n)) {
        let metric = format!("{PREFIX}{name}_bytes");
        header(
            out,
            &metric,
            "gauge",
            &Stats::help(name).unwrap_or_default(),
        );
        line(out, format_args!("{metric} {value}"));
    }
}

/// Sorted (a `BTreeMap`), so the output is stable from one scrape to the
/// next.
fn write_sockets(out: &mut String, by_state: &BTreeMap<(&str, &str), u64>) {
    let metric = format!("{PREFIX}sockets");
    header(
        out,
        &metric,
        "gauge",
        "Sockets in the table by protocol and state (RFC 9293 names for TCP, \
         LISTEN for listeners, BOUND for UDP).",
    );
    for ((protocol, state), n) in by_state {
        line(
            out,
            format_args!(
                "{metric}{{protocol=\"{}\",state=\"{}\"}} {n}",
                escape(protocol),
                escape(state)
            ),
        );
    }
}

fn write_rtt(out: &mut String, rtt: &RttSnapshot) {
    let metric = format!("{PREFIX}tcp_rtt_seconds");
    header(
        out,
        &metric,
        "histogram",
        "RTT samples of every TCP connection (RFC 6298 measurements and \
         RFC 7323 timestamp echoes).",
    );
    for (bound, count) in rtt.cumulative() {
        match bound {
            Some(bound) => line(
                out,
                format_args!("{metric}_bucket{{le=\"{}\"}} {count}", seconds(bound)),
            ),
            None => line(out, format_args!("{metric}_bucket{{le=\"+Inf\"}} {count}")),
        }
    }
    line(out, format_args!("{metric}_sum {}", seconds(rtt.sum)));
    line(out, format_args!("{metric}_count {}", rtt.count()));
}

/// The `# HELP` and `# TYPE` lines that open a metric family.
fn header(out: &mut String, metric: &str, kind: &str, help: &str) {
    // The format's HELP escapes: a backslash and a line feed.
    let help = help.replace('\\', "\\\\").replace('\n', "\\n");
    line(out, format_args!("# HELP {metric} {help}"));
    line(out, format_args!("# TYPE {metric} {kind}"));
}

fn line(out: &mut String, args: fmt::Arguments<'_>) {
    // Writing into a String cannot fail.
    let _ = out.write_fmt(args);
    out.push('\n');
}

/// A label value with the format's escapes: backslash, quote, line feed.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Seconds as Prometheus writes them: the shortest decimal that reads
/// back as the same float ("0.00025", "10").
fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}
