//! Ten thousand idle connections at once, through a real TUN device in a
//! private namespace: the Linux kernel opens them to a tokio echo server
//! on the stack (one task per connection), holds them all open while the
//! stack shows every one ESTABLISHED, echoes a distinct message through
//! a seeded sample of 100, then closes them all, and the stack's socket
//! table drains.
//!
//! What that exercises: a burst of handshakes against a listener whose
//! backlog (128) is far below the connection count, the demux table at
//! 10,000 entries, and what an idle connection costs. That cost (RSS
//! growth per connection, including the echo task) is printed, not
//! asserted: figures belong in BENCHMARKS.md (issue 14), and
//! `examples/idle_conns.rs` measures it for any count.

#![allow(clippy::unwrap_used)]

mod common;
mod many_idle;

use common::{can_run, counter, test_config, NetNs};
use many_idle::{connections, drained, raise_nofile, rss_kib, widen_ports, Fleet};

const CONNECTIONS: usize = 10_000;
const SAMPLE: usize = 100;
const SEED: u64 = 0x14_1d1e;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_idle_kernel_connections_echo_and_drain() {
    if !can_run("ten_thousand_idle_kernel_connections_echo_and_drain") {
        return;
    }
    // The kernel's end of each connection is a descriptor of this process.
    raise_nofile(CONNECTIONS as u64 + 1024).unwrap();
    let ns = NetNs::new("tenk");
    widen_ports(&ns);
    let stack = ns.start_stack(test_config());

    let before = rss_kib();
    let mut fleet = Fleet::open(&ns, &stack, CONNECTIONS).await;
    let after = rss_kib();
    let (held, established) = connections(&stack);
    assert_eq!(held, CONNECTIONS, "connections in the stack's table");
    assert_eq!(established, CONNECTIONS, "ESTABLISHED in the stack's table");
    assert_eq!(counter(&stack, "tcp_passive_opens"), CONNECTIONS as u64);
    eprintln!(
        "idle connections: {CONNECTIONS}, RSS growth: {:.1} KiB per connection \
         ({before} KiB -> {after} KiB); SYN cookies sent {}, backlog drops {}",
        (after.saturating_sub(before)) as f64 / CONNECTIONS as f64,
        counter(&stack, "syn_cookies_sent"),
        counter(&stack, "drop_backlog_full"),
    );

    for (i, sent, back) in fleet.echo_sample(SAMPLE, SEED).await {
        assert_eq!(back, sent, "echo on connection {i}");
    }
    assert_eq!(
        fleet.live_tasks.load(std::sync::atomic::Ordering::SeqCst),
        CONNECTIONS,
        "every echo task still waits on its connection"
    );

    let live = fleet.live_tasks.clone();
    fleet.close();
    assert_eq!(drained(&stack).await, 0, "connections left in the table");
    assert_eq!(live.load(std::sync::atomic::Ordering::SeqCst), 0);
    assert_eq!(counter(&stack, "tcp_memory_drops"), 0);
    drop(ns);
    stack.shutdown();
}
