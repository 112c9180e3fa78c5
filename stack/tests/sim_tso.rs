//! Two whole stacks whose devices advertise 64 KiB TCP super-segments
//! (`MemPair::with_max_segment`, the size an offload TUN device takes),
//! joined by the in-memory link through seeded fault injectors (5% loss,
//! 1% duplication, 1% reordering, 5 ms each way), in simulated time.
//!
//! The stacks send new data in super-segments; the injectors cut them
//! into MTU-sized packets (`Device::send_tso`'s software default) before
//! any fault, as a NIC doing TSO would put them on the wire. Bulk
//! transfers both ways still arrive exact, a seed still replays the run
//! packet for packet, and a lost wire packet costs about one MSS of
//! retransmission, not a whole super-segment.

#![allow(clippy::unwrap_used)]

mod sim;

use std::sync::atomic::Ordering;
use std::time::Duration;

use sim::{at, Sim, Tally, A, B};
use stack::device::fault::{FaultConfig, FaultStats};
use stack::device::Device;
use stack::time::Instant;
use stack::Config;

const TEN_MIB: usize = 10 * 1024 * 1024;
const MAX_STEPS: u64 = 5_000_000;
/// What an offload TUN device advertises.
const MAX_SEGMENT: usize = 65_535;
/// The payload of a full-sized packet: 1500 - 20 - 20 - 12 (timestamps).
const MSS: u64 = 1448;

fn faults(seed: u64) -> FaultConfig {
    FaultConfig {
        seed,
        loss: 0.05,
        duplicate: 0.01,
        reorder: 0.01,
        latency: Duration::from_millis(5),
        max_held: 1 << 16,
        ..FaultConfig::default()
    }
}

/// What one run produced, per end (A, B).
struct Outcome {
    finished_at: Instant,
    trace: [u8; 32],
    faults: [FaultStats; 2],
    /// The TCP data each end put on the wire.
    tallies: [Tally; 2],
    /// TCP segments each stack built (a super-segment counts once).
    built: [u64; 2],
    /// Packets each end's device sent (through `send`, or cut from a
    /// super-segment), before loss and duplication.
    wire: [u64; 2],
}

/// A opens a connection to B; both send `len` bytes and close, each reads
/// to the end. Asserts both streams arrive exact.
fn transfer(seed: u64, len: usize, max_segment: usize) -> Outcome {
    let mut sim = Sim::with_max_segment(
        seed,
        faults(seed),
        Config::with_addr(A),
        Config::with_addr(B),
        max_segment,
    );
    assert_eq!(sim.a.link.max_segment(), max_segment);
    sim.exchange(len, MAX_STEPS);
    let faults = [sim.a.link.stats(), sim.b.link.stats()];
    let wire = |node: &sim::Node, f: &FaultStats| {
        // Still held on the link at the end: sent, not yet delivered.
        let held = node.link.held() as u64;
        node.link.inner().inner().sent() + held + f.lost - f.duplicated
    };
    let (ta, tb) = sim.tallies();
    Outcome {
        finished_at: sim.now(),
        trace: sim.trace_digest(),
        tallies: [ta, tb],
        built: [
            sim.a.stack.stats().tcp_tx.load(Ordering::Relaxed),
            sim.b.stack.stats().tcp_tx.load(Ordering::Relaxed),
        ],
        wire: [wire(&sim.a, &faults[0]), wire(&sim.b, &faults[1])],
        faults,
    }
}

#[test]
fn ten_mib_both_ways_in_super_segments_under_faults_replays_exactly() {
    let first = transfer(42, TEN_MIB, MAX_SEGMENT);
    for end in 0..2 {
        let (f, t) = (first.faults[end], first.tallies[end]);
        eprintln!(
            "end {end}: {f:?}\n  {t:?}\n  {} segments built, {} wire packets",
            first.built[end], first.wire[end]
        );
        assert!(
            f.lost > 100 && f.duplicated > 10 && f.reordered > 10,
            "{f:?}"
        );
        // Super-segments were built: fewer segments than wire packets.
        // (Every wire packet would be one built segment without them.)
        assert!(
            first.wire[end] > first.built[end] * 3 / 2,
            "{} built, {} on the wire",
            first.built[end],
            first.wire[end]
        );
        // The wire carried only MSS-sized packets.
        assert!(t.max_payload as u64 <= MSS, "{t:?}");
        assert!(t.payload_bytes >= TEN_MIB as u64);
        // A lost packet costs about one MSS sent again (some of what is
        // counted is the injector's duplicates and reorderings): a
        // retransmitted super-segment would cost dozens.
        let per_loss = t.resent_bytes as f64 / f.lost as f64;
        assert!(per_loss < 1.5 * MSS as f64, "{per_loss} bytes per loss");
    }
    // As fast as with MSS-sized segments (sim_transfer's bound).
    assert!(
        first.finished_at < at(Duration::from_secs(40)),
        "took {:?} of simulated time",
        first.finished_at
    );
    let again = transfer(42, TEN_MIB, MAX_SEGMENT);
    assert_eq!(again.finished_at, first.finished_at);
    assert_eq!(again.trace, first.trace, "same seed, different packets");
}

#[test]
fn super_segments_resend_no_more_than_mss_segments() {
    // The same transfer with MSS-sized segments: super-segments change
    // how the stack hands data to the device, not what is retransmitted.
    let len = 2 * 1024 * 1024;
    let tso = transfer(9, len, MAX_SEGMENT);
    let mss = transfer(9, len, 1500);
    for end in 0..2 {
        assert_eq!(mss.built[end], mss.wire[end], "no super-segments");
        let ratio = |o: &Outcome| o.tallies[end].resent_bytes as f64 / o.faults[end].lost as f64;
        eprintln!(
            "end {end}: per loss {} (tso) vs {} (mss)",
            ratio(&tso),
            ratio(&mss)
        );
        assert!(ratio(&tso) < 1.5 * MSS as f64);
        assert!(ratio(&tso) < ratio(&mss) * 1.5 + 100.0);
    }
}
