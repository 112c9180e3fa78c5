//! Counters: packets in and out, and every drop by its reason.
//!
//! Each counter is a relaxed atomic, bumped on the hot path without a lock.
//! [`Stats::snapshot`] reads them all by name for `/stats` and tests.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::tcp::memory::MemoryBudget;
use crate::tcp::rtt_histogram::RttHistogram;
use crate::wire;

macro_rules! counters {
    ($( $(#[doc = $doc:literal])* $name:ident ),* $(,)?) => {
        /// The stack's counters. See each field for what it counts.
        #[derive(Debug, Default)]
        pub struct Stats {
            $( $(#[doc = $doc])* pub $name: AtomicU64, )*
            /// The stack's memory budget (TCP's receive storage and the
            /// fragments under reassembly), whose gauges and counters
            /// [`snapshot`](Self::snapshot) reports after the others.
            memory: MemoryBudget,
            /// Every connection's RTT samples (not in the snapshot: a
            /// histogram is not one number).
            rtt: RttHistogram,
        }

        impl Stats {
            /// Every counter by name, in declaration order, then the
            /// memory budget's: `tcp_ooo_pruned` (out-of-order bytes
            /// discarded to free memory), `tcp_rings_shrunk` (drained
            /// rings that gave their storage back), `tcp_memory_drops`
            /// (segments not stored, wholly or in part, for lack of
            /// memory), and the gauges `memory_in_use` and `memory_budget`
            /// (bytes; see `Config::memory_budget`).
            pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
                let m = &self.memory;
                let gauge = |bytes: usize| u64::try_from(bytes).unwrap_or(u64::MAX);
                vec![
                    $( (stringify!($name), self.$name.load(Ordering::Relaxed)), )*
                    ("tcp_ooo_pruned", m.ooo_pruned()),
                    ("tcp_rings_shrunk", m.rings_shrunk()),
                    ("tcp_memory_drops", m.drops()),
                    ("memory_in_use", gauge(m.in_use())),
                    ("memory_budget", gauge(m.limit())),
                ]
            }
        }

        /// Each counter's doc comment, one string per line, for
        /// [`Stats::help`].
        const COUNTER_DOCS: &[(&str, &[&str])] = &[
            $( (stringify!($name), &[$($doc),*]), )*
        ];
    };
}

/// The entries of [`Stats::snapshot`] that are levels, not counts: they
/// go down as well as up.
pub const GAUGES: [&str; 2] = ["memory_in_use", "memory_budget"];

/// What the snapshot's entries from the memory budget report (the other
/// entries are documented on their fields).
const MEMORY_DOCS: &[(&str, &str)] = &[
    (
        "tcp_ooo_pruned",
        "Out-of-order bytes discarded to free memory.",
    ),
    (
        "tcp_rings_shrunk",
        "Drained rings that gave their storage back.",
    ),
    (
        "tcp_memory_drops",
        "Segments not stored, wholly or in part, for lack of memory.",
    ),
    (
        "memory_in_use",
        "Bytes of the memory budget in use: TCP receive storage and \
         fragments under reassembly.",
    ),
    (
        "memory_budget",
        "The memory budget in bytes (Config::memory_budget).",
    ),
];

counters! {
    /// IP packets read from the device.
    ip_rx,
    /// IP packets written to the device.
    ip_tx,
    /// Of `ip_rx`, the IPv6 packets (with `Config::addr6` set).
    ip6_rx,
    /// TCP super-segments received (generic receive of an offload TUN
    /// device: one packet of up to 64 KiB that the kernel did not split),
    /// each taken as one segment.
    rx_gso_segments,
    /// TCP and UDP packets whose transport checksum was not verified in
    /// software because the device vouched for it (`RxChecksum::Verified`
    /// or `Partial`, see `device::RxMeta`).
    rx_csum_offloaded,
    /// Device write errors (the packet was lost).
    tx_errors,
    /// Dropped: truncated packet or header.
    drop_truncated,
    /// Dropped: a length field that cannot be right.
    drop_bad_length,
    /// Dropped: neither IPv4 nor IPv6 (the version nibble), or IPv6 with no IPv6 address configured.
    drop_bad_version,
    /// Dropped: a checksum that does not verify (IP, ICMP, UDP or TCP).
    drop_bad_checksum,
    /// Dropped: a malformed TCP option.
    drop_bad_option,
    /// Dropped: an IPv4 or IPv6 fragment while reassembly is off
    /// (`Config::reassembly_max_datagrams = 0`).
    drop_fragmented,
    /// Dropped: a protocol or message type we do not handle.
    drop_unsupported,
    /// Dropped: a source address no host may use (0.0.0.0, broadcast,
    /// multicast, loopback), or our own address (a "Land" packet, which
    /// would make us answer ourselves).
    drop_bad_address,
    /// Dropped: addressed to an IP that is not ours.
    drop_not_ours,
    /// Dropped: the owning socket's queue was full (per-socket back-pressure).
    drop_queue_full,
    /// Dropped: a SYN for a listener whose backlog was full (cookies
    /// off) or whose accept queue was full, or a valid cookie's ACK for
    /// a listener holding twice its backlog (`tcp::listener`).
    drop_backlog_full,
    /// Dropped: a SYN while the table held its maximum of connections.
    drop_table_full,
    /// SYN-ACKs sent statelessly with a SYN cookie (backlog full).
    syn_cookies_sent,
    /// Handshakes completed by an ACK that carried a valid SYN cookie.
    syn_cookies_ok,
    /// ACKs to a listener, after cookies were sent, whose cookie did not
    /// verify (answered with a RST).
    syn_cookies_bad,
    /// ICMP and ICMPv6 echo requests answered.
    icmp_echo,
    /// ICMP and ICMPv6 messages received other than echo requests.
    icmp_other,
    /// ICMP (or ICMPv6) port unreachable sent for a UDP datagram to a
    /// closed port.
    icmp_unreachable_tx,
    /// ICMPv6 Parameter Problems sent for packets whose extension headers
    /// RFC 8200 §4 says to refuse with one.
    icmp_param_problem_tx,
    /// ICMP errors (port or protocol unreachable, time exceeded)
    /// suppressed by the rate limit.
    icmp_rate_limited,
    /// Fragmentation Needed and Packet Too Big reports acted on: the path
    /// MTU to their destination lowered (RFC 1191, RFC 8201).
    pmtu_lowered,
    /// Fragmentation Needed and Packet Too Big reports ignored: the
    /// quoted packet was not ours, or quoted no data of a connection
    /// still in flight (RFC 5927).
    pmtu_ignored,
    /// Fragments received for us and handed to reassembly. This and the
    /// other `ip_reasm_*`, `ip_reassembled` and `ip_frag_*` counters
    /// count IPv4 and IPv6 together, as one reassembler serves both.
    ip_frag_received,
    /// Datagrams reassembled from fragments (then counted and
    /// handled as any packet).
    ip_reassembled,
    /// Datagrams whose fragments did not all arrive within
    /// `Config::reassembly_timeout` (IPv4) or 60 s (IPv6,
    /// `config::REASSEMBLY_TIMEOUT_V6`).
    ip_reasm_timeout,
    /// Datagrams dropped because two of their fragments overlapped
    /// (RFC 5722 for IPv6, the same rule applied to IPv4).
    ip_reasm_overlap_dropped,
    /// Datagrams dropped for inconsistent fragment lengths, or for being
    /// longer than 65,535 bytes (IPv4) or a payload of 65,535 (IPv6).
    ip_reasm_invalid,
    /// Incomplete datagrams dropped, oldest first, to keep reassembly
    /// within `Config::reassembly_max_datagrams` and
    /// `Config::reassembly_max_bytes`, or within the memory budget.
    ip_reasm_evicted,
    /// Fragments dropped, with their datagram, because the memory budget
    /// (`Config::memory_budget`, shared with TCP's receive storage) had
    /// no room for them even once every other datagram had given way.
    ip_reasm_memory_drops,
    /// Fragments sent (our datagrams and IPv6 packets larger than the
    /// MTU).
    ip_frag_tx,
    /// ICMP and ICMPv6 time exceeded (fragment reassembly) sent.
    icmp_time_exceeded_tx,
    /// UDP datagrams delivered to a socket.
    udp_rx,
    /// UDP datagrams sent.
    udp_tx,
    /// TCP segments received.
    tcp_rx,
    /// TCP segments sent.
    tcp_tx,
    /// RSTs sent for segments that matched no socket (RFC 9293 §3.10.7.1).
    tcp_rst_tx,
    /// RSTs for segments that matched no socket, not sent because of the
    /// rate limit (`Config::rsts_per_sec`).
    tcp_rst_rate_limited,
    /// Connections opened passively (SYN to a listener).
    tcp_passive_opens,
    /// Connections opened actively (connect).
    tcp_active_opens,
    /// Connections accepted by the application.
    tcp_accepted,
    /// Connections removed from the table.
    tcp_closed,
    /// Connections in TIME-WAIT ended early by a newer SYN for the same
    /// four-tuple, which opened a new connection (RFC 6191).
    tcp_time_wait_reopened,
    /// Connections in TIME-WAIT ended early, oldest first, to keep the
    /// retired connections under `Config::max_retired`.
    tcp_time_wait_evicted,
    /// Orphaned connections reset, oldest first, to keep the retired
    /// connections under `Config::max_retired`.
    tcp_orphans_evicted,
    /// Connections reset because the application had dropped them and
    /// they did not finish closing within `Config::orphan_timeout`.
    tcp_orphans_reset,
    /// Panics caught on the stack's RX or timer thread (each logged; the
    /// thread went on, see `Config::max_thread_panics`).
    thread_panics,
    /// Connections reset because their handling panicked on a stack
    /// thread (their state could no longer be trusted).
    tcp_poisoned_reset,
}

impl Stats {
    /// Counters that report on `memory`, the stack's TCP memory budget,
    /// and on `rtt`, the histogram its connections' RTT samples go to.
    pub fn new(memory: MemoryBudget, rtt: RttHistogram) -> Stats {
        Stats {
            memory,
            rtt,
            ..Stats::default()
        }
    }

    /// The TCP memory budget reported.
    pub fn memory(&self) -> &MemoryBudget {
        &self.memory
    }

    /// The histogram of every connection's RTT samples.
    pub fn rtt(&self) -> &RttHistogram {
        &self.rtt
    }

    /// Counts a wire error at the single drop site.
    pub fn count_drop(&self, error: wire::Error) {
        let counter = match error {
            wire::Error::Truncated => &self.drop_truncated,
            wire::Error::BadLength => &self.drop_bad_length,
            wire::Error::BadVersion => &self.drop_bad_version,
            wire::Error::BadChecksum => &self.drop_bad_checksum,
            wire::Error::BadOption => &self.drop_bad_option,
            wire::Error::Fragmented => &self.drop_fragmented,
            wire::Error::Unsupported | wire::Error::BufferTooSmall => &self.drop_unsupported,
            wire::Error::BadAddress => &self.drop_bad_address,
        };
        bump(counter);
    }

    /// What the snapshot's entry `name` reports, as one line: a counter's
    /// doc comment, so the two cannot drift apart. `None` for a name not
    /// in the snapshot.
    pub fn help(name: &str) -> Option<String> {
        if let Some((_, lines)) = COUNTER_DOCS.iter().find(|(n, _)| *n == name) {
            let words: Vec<&str> = lines.iter().map(|line| line.trim()).collect();
            return Some(words.join(" "));
        }
        MEMORY_DOCS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, doc)| (*doc).to_string())
    }

    /// Reads one counter by name.
    pub fn get(&self, name: &str) -> Option<u64> {
        self.snapshot()
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
    }
}

/// Adds one to a counter.
#[inline]
pub fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_are_counted_by_reason() {
        let s = Stats::default();
        s.count_drop(wire::Error::BadChecksum);
        s.count_drop(wire::Error::BadChecksum);
        s.count_drop(wire::Error::Fragmented);
        assert_eq!(s.get("drop_bad_checksum"), Some(2));
        assert_eq!(s.get("drop_fragmented"), Some(1));
        assert_eq!(s.get("drop_truncated"), Some(0));
        assert_eq!(s.get("no_such_counter"), None);
    }

    #[test]
    fn every_entry_has_help_from_its_doc() {
        let s = Stats::default();
        for (name, _) in s.snapshot() {
            let help = Stats::help(name).unwrap_or_default();
            assert!(!help.is_empty(), "{name} has no help");
            assert!(
                !help.contains('\n') && !help.contains("  "),
                "{name}: {help:?}"
            );
        }
        assert_eq!(
            Stats::help("drop_queue_full").as_deref(),
            Some("Dropped: the owning socket's queue was full (per-socket back-pressure).")
        );
        assert_eq!(
            Stats::help("rx_gso_segments").as_deref(),
            Some(
                "TCP super-segments received (generic receive of an offload TUN device: \
                 one packet of up to 64 KiB that the kernel did not split), each taken \
                 as one segment."
            )
        );
        assert_eq!(Stats::help("no_such_counter"), None);
    }

    #[test]
    fn memory_gauges_are_reported() {
        let m = MemoryBudget::new(1 << 20);
        let s = Stats::new(m.clone(), RttHistogram::new());
        assert!(m.try_charge(4096));
        m.count_pruned(10);
        m.count_shrunk();
        assert_eq!(s.get("memory_in_use"), Some(4096));
        assert_eq!(s.get("memory_budget"), Some(1 << 20));
        assert_eq!(s.get("tcp_ooo_pruned"), Some(10));
        assert_eq!(s.get("tcp_rings_shrunk"), Some(1));
        assert_eq!(s.get("tcp_memory_drops"), Some(0));
    }
}
