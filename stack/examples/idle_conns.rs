//! What an idle connection costs: the scenario of
//! `tests/kernel_many_idle.rs` for any number of connections, printing the
//! RSS growth of this process (which hosts the stack and its tokio echo
//! tasks) per connection once all are open, and how long opening,
//! echoing and draining took (BENCHMARKS.md, issue 14).
//!
//! ```text
//! sudo -E cargo run --release -p stack --features tokio --example idle_conns -- 10000
//! ```
//!
//! It needs root: like the real-TUN tests it makes a private network
//! namespace holding tun0 (deleted on exit), and the kernel's client
//! sockets live there. The kernel's ends are descriptors of this process
//! (so the count is bounded by the open-file limit, which it raises if it
//! may) but kernel memory, so they are not in its RSS.

// An example binary: a failed unwrap is a failed run.
#![allow(clippy::unwrap_used)]

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/many_idle/mod.rs"]
mod many_idle;

use std::time::Instant;

use common::{test_config, NetNs};
use many_idle::{drained, raise_nofile, rss_kib, widen_ports, Fleet};

/// Connections echoed through once all are open.
const SAMPLE: usize = 100;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = match std::env::args().nth(1) {
        Some(arg) => arg.parse().map_err(|e| format!("{arg:?}: {e}"))?,
        None => 10_000,
    };
    // At most the ports the widened range offers one client address.
    if !(1..=50_000).contains(&n) {
        return Err(format!("the count must be 1 to 50000, not {n}").into());
    }
    stack::device::netns::check_privileges()?;
    raise_nofile(n as u64 + 1024)?;
    let ns = NetNs::new("idle");
    widen_ports(&ns);
    let stack = ns.start_stack(test_config());

    let before = rss_kib();
    let t = Instant::now();
    let mut fleet = Fleet::open(&ns, &stack, n).await;
    let opened = t.elapsed();
    let after = rss_kib();
    let t = Instant::now();
    for (i, sent, back) in fleet.echo_sample(SAMPLE, 14).await {
        assert_eq!(back, sent, "echo on connection {i}");
    }
    let echoed = t.elapsed();
    let t = Instant::now();
    fleet.close();
    let left = drained(&stack).await;
    let closed = t.elapsed();

    println!(
        "idle connections: {n}, RSS growth: {:.2} KiB per connection ({before} KiB -> {after} KiB)",
        after.saturating_sub(before) as f64 / n as f64
    );
    println!(
        "opened in {opened:.2?} ({}); echoed through {} in {echoed:.2?}; \
         closed and drained in {closed:.2?}, {left} left",
        many_idle::handshake_counters(&stack),
        SAMPLE.min(n),
    );
    drop(ns);
    stack.shutdown();
    if left > 0 {
        return Err(format!("{left} connections never left the table").into());
    }
    Ok(())
}
