//! Two whole stacks joined by the in-memory link through seeded fault
//! injectors (5% loss, 1% duplication, 1% reordering, 5 ms each way), in
//! simulated time: bulk transfers both ways arrive exact and in order,
//! also with a reader that stalls long enough to close the window and
//! then resumes; and a seed replays a run packet for packet.
//!
//! Nothing here waits for real time, and every assertion about time is
//! about simulated time.

#![allow(clippy::unwrap_used)]

mod sim;

use std::time::Duration;

use sim::{at, on_b, stream_bytes, Flow, Pump, Sim, A, B};
use stack::device::fault::{FaultConfig, FaultStats};
use stack::time::Instant;
use stack::{Config, TcpListener, TcpStream};

const TEN_MIB: usize = 10 * 1024 * 1024;

/// Drive at most this many steps before calling it a livelock.
const MAX_STEPS: u64 = 5_000_000;

fn faults(seed: u64) -> FaultConfig {
    FaultConfig {
        seed,
        loss: 0.05,
        duplicate: 0.01,
        reorder: 0.01,
        latency: Duration::from_millis(5),
        // Every packet is held for the latency; keep them all.
        max_held: 1 << 16,
        ..FaultConfig::default()
    }
}

/// What one run produced.
struct Outcome {
    /// When both sides had read end-of-file.
    finished_at: Instant,
    trace: [u8; 32],
    /// What each link's injector did.
    faults: [FaultStats; 2],
    /// Bytes captured at A and at B.
    captured: (u64, u64),
}

/// A opens a connection to B; both send `len` bytes and close, each reads
/// to the end. Asserts both streams arrive exact.
fn transfer(seed: u64, len: usize) -> Outcome {
    let mut sim = Sim::new(
        seed,
        faults(seed),
        Config::with_addr(A),
        Config::with_addr(B),
    );
    sim.exchange(len, MAX_STEPS);
    Outcome {
        finished_at: sim.now(),
        faults: [sim.a.link.stats(), sim.b.link.stats()],
        captured: sim.captured(),
        trace: sim.trace_digest(),
    }
}

#[test]
fn ten_mib_both_ways_under_loss_duplication_and_reordering_replays_exactly() {
    let first = transfer(42, TEN_MIB);
    // Each end's capture holds both directions: the digest covers the
    // whole transfer, not just its start.
    let (at_a, at_b) = first.captured;
    assert!(at_a > 2 * TEN_MIB as u64 && at_b > 2 * TEN_MIB as u64);
    // The faults really happened on both links.
    for st in first.faults {
        assert!(
            st.lost > 100 && st.duplicated > 10 && st.reordered > 10,
            "{st:?}"
        );
    }
    // Default timers over a 10 ms RTT with 5% loss each way. The Mathis
    // bound (MSS / RTT * 1.22 / sqrt(p)) allows about 790 KB/s, so 13 s;
    // a sender that waited out retransmission timeouts instead of
    // recovering fast would take minutes.
    assert!(
        first.finished_at < at(Duration::from_secs(40)),
        "took {:?} of simulated time",
        first.finished_at
    );
    let again = transfer(42, TEN_MIB);
    assert_eq!(again.finished_at, first.finished_at);
    assert_eq!(again.trace, first.trace, "same seed, different packets");
}

#[test]
fn another_seed_gives_another_trace() {
    let len = 256 * 1024;
    let one = transfer(1, len);
    let two = transfer(2, len);
    assert_ne!(one.trace, two.trace);
    assert_eq!(transfer(1, len).trace, one.trace);
}

#[test]
fn stalled_reader_closes_the_window_then_resumes() {
    // A small receive buffer so the stall fills it quickly (below 64 KiB:
    // it fits the window field whether or not scaling is used).
    const BUFFER: usize = 60 * 1024;
    let mut cb = Config::with_addr(B);
    cb.tcp.recv_buffer = BUFFER;
    let mut sim = Sim::new(7, faults(7), Config::with_addr(A), cb);
    let listener = TcpListener::bind(&sim.b.stack, (sim.b.stack.addr(), 9001)).unwrap();
    listener.set_nonblocking(true).unwrap();
    const LEN: usize = 2 * 1024 * 1024;
    let stall = Duration::from_secs(5);
    let client = TcpStream::connect_nonblocking(&sim.a.stack, on_b(9001)).unwrap();
    let mut a = Pump::new(client, stream_bytes(0x5a, LEN));
    let mut b: Option<Pump> = None;
    let mut resume_at = None;
    let mut window_closed = false;
    sim.drive_bounded(MAX_STEPS, |sim| {
        let now = sim.now();
        if b.is_none() {
            if let Ok((s, _)) = listener.accept() {
                let mut pump = Pump::new(s, Vec::new());
                // Stall: let the sender fill our window to zero and probe.
                pump.read_from = now + stall;
                resume_at = Some(pump.read_from);
                b = Some(pump);
            }
        }
        let Some(b) = &mut b else {
            return if a.pump(now) { Flow::Busy } else { Flow::Idle };
        };
        if now < b.read_from {
            let queued = sim
                .b
                .stack
                .sockets()
                .iter()
                .find(|s| s.remote.is_some())
                .map(|s| s.recv_queue);
            window_closed |= queued == Some(BUFFER);
        }
        let busy = a.pump(now) | b.pump(now);
        if b.finished() && a.finished() {
            Flow::Done
        } else if busy {
            Flow::Busy
        } else if now < b.read_from {
            Flow::Sleep(b.read_from)
        } else {
            Flow::Idle
        }
    });
    let b = b.unwrap();
    assert!(window_closed, "the stalled reader's buffer never filled");
    assert_eq!(b.got.len(), LEN);
    assert!(b.got == stream_bytes(0x5a, LEN), "bytes differ");
    // The data waited for the reader: it could not all arrive before the
    // stall ended.
    let resumed = resume_at.unwrap();
    assert!(sim.now() > resumed);
    // Reading reopens the window at once (a window update, not the next
    // persist probe after minutes of back-off): 2 MiB through a 60 KiB
    // window at 5% loss take seconds.
    assert!(
        sim.now() - resumed < Duration::from_secs(20),
        "finished {:?} after the reader resumed",
        sim.now() - resumed
    );
}
