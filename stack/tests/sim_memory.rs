//! The memory budget between two whole stacks over a lossy, reordering
//! link in simulated time: B's connections together may hold 2 MiB of
//! receive storage although each window is 1 MiB. Several transfers at
//! once still arrive exact, the budget is never passed, and the pressure
//! shows in B's counters.

#![allow(clippy::unwrap_used)]

mod sim;

use std::time::Duration;

use sim::{on_b, stream_bytes, Flow, Pump, Sim, A, B};
use stack::device::fault::FaultConfig;
use stack::{Config, TcpListener, TcpStream};

/// Drive at most this many steps before calling it a livelock.
const MAX_STEPS: u64 = 5_000_000;

const BUDGET: usize = 2 << 20;
const CONNECTIONS: usize = 6;
const LEN: usize = 1 << 20;

fn faults(seed: u64) -> FaultConfig {
    FaultConfig {
        seed,
        loss: 0.05,
        duplicate: 0.01,
        reorder: 0.02,
        latency: Duration::from_millis(5),
        max_held: 1 << 16,
        ..FaultConfig::default()
    }
}

#[test]
fn transfers_under_a_small_budget_with_loss_arrive_exact() {
    let mut cb = Config::with_addr(B);
    cb.memory_budget = BUDGET;
    let mut sim = Sim::new(11, faults(11), Config::with_addr(A), cb);
    let listener = TcpListener::bind(&sim.b.stack, (sim.b.stack.addr(), 9002)).unwrap();
    listener.set_nonblocking(true).unwrap();
    let mut senders: Vec<Pump> = (0..CONNECTIONS)
        .map(|i| {
            let s = TcpStream::connect_nonblocking(&sim.a.stack, on_b(9002)).unwrap();
            Pump::new(s, stream_bytes(i as u8, LEN))
        })
        .collect();
    let mut receivers: Vec<Pump> = Vec::new();
    let mut peak = 0;
    sim.drive_bounded(MAX_STEPS, |sim| {
        let now = sim.now();
        while let Ok((s, _)) = listener.accept() {
            let mut pump = Pump::new(s, Vec::new());
            // Every other reader starts late: its data waits in the ring
            // meanwhile, holding memory.
            if receivers.len() % 2 == 1 {
                pump.read_from = now + Duration::from_secs(2);
            }
            receivers.push(pump);
        }
        let mut busy = false;
        for p in senders.iter_mut().chain(receivers.iter_mut()) {
            busy |= p.pump(now);
        }
        peak = peak.max(sim.b.stack.stats().get("memory_in_use").unwrap());
        let done =
            receivers.len() == CONNECTIONS && senders.iter().chain(&receivers).all(Pump::finished);
        if done {
            Flow::Done
        } else if busy {
            Flow::Busy
        } else {
            Flow::Idle
        }
    });
    assert!(peak <= BUDGET as u64, "peak {peak} over the budget");
    // Each receiver got exactly one sender's stream (accept order need
    // not be connect order).
    let mut got: Vec<&[u8]> = receivers.iter().map(|r| &r.got[..]).collect();
    for (i, _) in senders.iter().enumerate() {
        let want = stream_bytes(i as u8, LEN);
        let at = got
            .iter()
            .position(|g| *g == &want[..])
            .unwrap_or_else(|| panic!("stream {i} did not arrive exact"));
        got.remove(at);
    }
    let stats = sim.b.stack.stats();
    let counter = |name| stats.get(name).unwrap();
    assert_eq!(counter("memory_budget"), BUDGET as u64);
    eprintln!(
        "peak {peak}, pruned {}, drops {}, rings shrunk {}",
        counter("tcp_ooo_pruned"),
        counter("tcp_memory_drops"),
        counter("tcp_rings_shrunk")
    );
    assert!(
        counter("tcp_ooo_pruned") + counter("tcp_memory_drops") > 0,
        "the budget was never under pressure: the test proves nothing"
    );
}
