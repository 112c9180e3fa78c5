//! Many idle connections at once, shared by `tests/kernel_many_idle.rs`
//! (which checks the behaviour) and `examples/idle_conns.rs` (which
//! reports the memory figure for any count).
//!
//! The stack runs a tokio echo server (RFC 862), one task per connection
//! with a 1 KiB buffer; the Linux kernel, inside the namespace of
//! [`NetNs`], opens the connections from a bounded number of threads and
//! holds them all open. [`Fleet::open`] returns once the stack has
//! accepted every one; then the caller reads the memory they cost, echoes
//! through a seeded sample of them and closes them all.

#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::TcpStream as KernelStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use stack::tokio::TcpListener;
use stack::Stack;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{stack_addr, NetNs};

/// The echo port (RFC 862).
pub const PORT: u16 = 7;
/// Kernel threads that dial at once: each opens its share of the
/// connections one after the other, so at most this many handshakes are
/// in flight. The burst is still faster than one accept task takes
/// connections on a busy machine, so the accept queue (default backlog
/// 128) fills, cookies are sent and SYNs dropped, as a real burst does.
pub const DIALERS: usize = 64;
/// The echo task's buffer: an idle connection's task holds it while it
/// waits, so it is part of what each connection costs.
pub const ECHO_BUFFER: usize = 1024;
/// Longest any wait in the scenario takes before it fails: a connection
/// whose SYN is dropped is retried after 1, 3, 7 and 15 s (RFC 6298
/// §5.5's doubling), and a loaded machine may need a few retries.
pub const PATIENCE: Duration = Duration::from_secs(40);

/// The open connections, the kernel's ends of them, and the echo server.
pub struct Fleet {
    /// The kernel's sockets, one per connection, in the order dialled.
    pub streams: Vec<KernelStream>,
    /// Connections the stack's listener has accepted.
    pub accepted: Arc<AtomicUsize>,
    /// Echo tasks still running.
    pub live_tasks: Arc<AtomicUsize>,
    server: tokio::task::JoinHandle<()>,
}

impl Fleet {
    /// Starts the echo server on `stack` and has the kernel in `ns` open
    /// `n` connections to it; returns once all are open on the kernel's
    /// side and accepted on ours.
    ///
    /// # Panics
    ///
    /// When a connection cannot be opened, or the stack does not accept
    /// them all within [`PATIENCE`].
    pub async fn open(ns: &NetNs, stack: &Stack, n: usize) -> Fleet {
        let listener = TcpListener::bind(stack, (stack.addr(), PORT)).expect("bind the echo port");
        let accepted = Arc::new(AtomicUsize::new(0));
        let live_tasks = Arc::new(AtomicUsize::new(0));
        let server = tokio::spawn(serve(listener, accepted.clone(), live_tasks.clone()));
        let name = ns.name.clone();
        let streams = tokio::task::spawn_blocking(move || dial(&name, n))
            .await
            .expect("the dialling thread panicked");
        assert_eq!(streams.len(), n);
        let deadline = Instant::now() + PATIENCE;
        while accepted.load(Ordering::SeqCst) < n {
            assert!(
                Instant::now() < deadline,
                "the stack accepted {} of {n} connections ({})",
                accepted.load(Ordering::SeqCst),
                handshake_counters(stack)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Fleet {
            streams,
            accepted,
            live_tasks,
            server,
        }
    }

    /// Echoes a distinct message through `sample` connections chosen by a
    /// PRNG seeded with `seed`; returns each one's index, what was sent
    /// and what came back.
    pub async fn echo_sample(
        &mut self,
        sample: usize,
        seed: u64,
    ) -> Vec<(usize, Vec<u8>, Vec<u8>)> {
        let picks = choose(self.streams.len(), sample, seed);
        let streams: Vec<KernelStream> = picks
            .iter()
            .map(|&i| self.streams[i].try_clone().expect("clone a kernel socket"))
            .collect();
        tokio::task::spawn_blocking(move || {
            picks
                .into_iter()
                .zip(streams)
                .map(|(i, mut s)| {
                    let msg = format!("connection {i} of the fleet says hello ({seed:x})\n");
                    s.set_read_timeout(Some(PATIENCE)).expect("set a timeout");
                    s.write_all(msg.as_bytes())
                        .expect("write to the echo server");
                    let mut back = vec![0u8; msg.len()];
                    s.read_exact(&mut back).expect("read the echo");
                    (i, msg.into_bytes(), back)
                })
                .collect()
        })
        .await
        .expect("the echo thread panicked")
    }

    /// Closes every connection from the kernel's side and stops the
    /// server; the stack's echo tasks see end-of-file and close theirs.
    pub fn close(self) {
        drop(self.streams);
        self.server.abort();
    }
}

/// Accepts forever, one echo task per connection.
async fn serve(listener: TcpListener, accepted: Arc<AtomicUsize>, live: Arc<AtomicUsize>) {
    loop {
        let (mut conn, _) = listener.accept().await.expect("accept");
        accepted.fetch_add(1, Ordering::SeqCst);
        live.fetch_add(1, Ordering::SeqCst);
        let live = live.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; ECHO_BUFFER];
            loop {
                match conn.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if conn.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                }
            }
            let _ = conn.shutdown().await;
            live.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

/// Opens `n` kernel connections to the stack from inside namespace `ns`,
/// [`DIALERS`] at a time; returns them in dialling order.
fn dial(ns: &str, n: usize) -> Vec<KernelStream> {
    stack::device::netns::in_netns(ns, move || {
        let threads: Vec<_> = (0..DIALERS)
            .map(|t| {
                // Threads started here share the namespace of this one.
                std::thread::spawn(move || {
                    (t..n)
                        .step_by(DIALERS)
                        .map(|i| {
                            let s = KernelStream::connect_timeout(&stack_addr(PORT), PATIENCE)
                                .unwrap_or_else(|e| panic!("connection {i}: {e}"));
                            (i, s)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<(usize, KernelStream)> = threads
            .into_iter()
            .flat_map(|t| t.join().expect("a dialling thread panicked"))
            .collect();
        all.sort_by_key(|(i, _)| *i);
        all.into_iter().map(|(_, s)| s).collect()
    })
    .expect("enter the namespace")
}

/// `k` distinct indices below `n`, in a seeded random order: a partial
/// Fisher-Yates shuffle driven by xorshift64* (no dependency needed for
/// a reproducible sample).
pub fn choose(n: usize, k: usize, seed: u64) -> Vec<usize> {
    let mut state = seed | 1;
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let mut all: Vec<usize> = (0..n).collect();
    let k = k.min(n);
    for i in 0..k {
        let span = (n - i) as u64;
        let j = i + (next() % span) as usize;
        all.swap(i, j);
    }
    all.truncate(k);
    all
}

/// Connections in the stack's table (not listeners), and how many of
/// them are ESTABLISHED.
pub fn connections(stack: &Stack) -> (usize, usize) {
    let conns: Vec<_> = stack
        .sockets()
        .into_iter()
        .filter(|s| s.remote.is_some())
        .collect();
    let established = conns.iter().filter(|s| s.state == "ESTABLISHED").count();
    (conns.len(), established)
}

/// The stack's counters that tell how handshakes went, for messages.
pub fn handshake_counters(stack: &Stack) -> String {
    stack
        .stats()
        .snapshot()
        .into_iter()
        .filter(|(name, _)| {
            [
                "syn",
                "backlog",
                "passive",
                "table_full",
                "queue_full",
                "rst",
            ]
            .iter()
            .any(|k| name.contains(k))
        })
        .map(|(name, v)| format!("{name} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Waits until the stack's table holds no connection; returns how many
/// are left when [`PATIENCE`] runs out (0 when it drained).
pub async fn drained(stack: &Stack) -> usize {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (left, _) = connections(stack);
        if left == 0 || Instant::now() >= deadline {
            return left;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// This process's resident set size, in KiB (`VmRSS` in
/// `/proc/self/status`).
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

/// Raises this process's limit on open files to at least `want`: the
/// kernel's end of each connection is a file descriptor here.
///
/// # Errors
///
/// When the hard limit is below `want` and may not be raised (that needs
/// `CAP_SYS_RESOURCE`, which a container's root may lack).
pub fn raise_nofile(want: u64) -> Result<(), String> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit(2) writes only into `lim`, a valid `rlimit` we own.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    if rc != 0 {
        return Err(format!("getrlimit: {}", std::io::Error::last_os_error()));
    }
    if lim.rlim_cur >= want {
        return Ok(());
    }
    let hard = lim.rlim_max;
    lim.rlim_cur = want;
    lim.rlim_max = hard.max(want);
    // SAFETY: setrlimit(2) only reads `lim`, a valid `rlimit` we own.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    if rc != 0 {
        return Err(format!(
            "cannot raise the open-file limit to {want} (hard limit {hard}): {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// Widens the kernel's ephemeral port range inside the namespace, so one
/// client address can hold many connections to one port at once.
pub fn widen_ports(ns: &NetNs) {
    let out = ns.exec(&["sysctl", "-w", "net.ipv4.ip_local_port_range=10000 65000"]);
    assert!(
        out.status.success(),
        "sysctl ip_local_port_range: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_is_distinct_in_range_and_seeded() {
        let a = choose(10_000, 100, 7);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 100);
        assert!(a.iter().all(|&i| i < 10_000));
        assert_eq!(a, choose(10_000, 100, 7));
        assert_ne!(a, choose(10_000, 100, 8));
        assert_eq!(choose(5, 100, 1).len(), 5);
    }
}
