//! Shared fixtures for the real-TUN tests: a private network namespace
//! holding `tun0` with the kernel's side at 10.0.0.1/24, and our stack on
//! the other end of it at 10.0.0.2.
//!
//! These tests need root (to create a namespace). Without it they print
//! why and return; under CI (`CI` set) a missing prerequisite is a
//! failure, so CI cannot pass by skipping.

#![allow(dead_code, unreachable_pub)]

pub mod bulk;
pub mod hand_tcp;
pub mod udp_echo;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use sha2::{Digest, Sha256};
use stack::device::netns::{check_privileges, in_netns};
use stack::device::tun::{Offload, TunDevice};
use stack::{Config, Stack};

/// Builds, writes and sniffs packets on tun0 for the tests that play the
/// peer byte by byte; see [`NetNs::python`].
const PACKETS_PY: &str = include_str!("packets.py");

pub const HOST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
pub const STACK: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
/// The IPv6 pair, for the tests that also put fd00::1/64 on tun0.
pub const HOST6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);
pub const STACK6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2);

/// Whether this process may create namespaces and TUN devices. Prints
/// the reason when it may not; panics under CI.
pub fn can_run(test: &str) -> bool {
    let Err(why) = check_privileges() else {
        return true;
    };
    if std::env::var_os("CI").is_some() {
        panic!("{test}: {why}; CI must run the real-TUN tests");
    }
    // Straight to stderr: the test harness captures `eprintln!` of
    // passing tests, and a skip must be seen.
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
    false
}

/// A network namespace with `tun0` at 10.0.0.1/24, deleted on drop (even
/// when the test fails).
pub struct NetNs {
    pub name: String,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl NetNs {
    /// A fresh namespace, named uniquely per process and test so tests can
    /// run in parallel.
    pub fn new(tag: &str) -> NetNs {
        let name = format!(
            "stk-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        run(&["ip", "netns", "add", &name]);
        let ns = NetNs { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns.ip(&["tuntap", "add", "dev", "tun0", "mode", "tun"]);
        ns.ip(&["addr", "add", "10.0.0.1/24", "dev", "tun0"]);
        ns.ip(&["link", "set", "tun0", "up"]);
        ns
    }

    /// `ip -n NS args...`, which must succeed.
    pub fn ip(&self, args: &[&str]) {
        let mut full = vec!["ip", "-n", &self.name];
        full.extend_from_slice(args);
        run(&full);
    }

    /// Runs a command inside the namespace and returns its output.
    pub fn exec(&self, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(args)
            .output()
            .expect("ip netns exec")
    }

    /// Opens the namespace's tun0 and starts a stack at 10.0.0.2 on it.
    pub fn start_stack(&self, config: Config) -> Stack {
        self.start_stack_with(config, Offload::Off)
    }

    /// As [`NetNs::start_stack`], with tun0 opened in `offload` mode: the
    /// stack uses whatever the device then offers.
    pub fn start_stack_with(&self, config: Config, offload: Offload) -> Stack {
        let dev = in_netns(&self.name, move || {
            TunDevice::open_with("tun0", 1500, offload)
        })
        .expect("enter namespace")
        .unwrap_or_else(|e| panic!("open tun0 with {offload:?}: {e}"));
        Stack::new(dev, config).expect("start stack")
    }

    /// Runs the Python `script`, appended to the packet library
    /// (`packets.py`), inside the namespace with `args`, and returns what
    /// it printed. Panics when the script fails.
    pub fn python(&self, script: &str, args: &[&str]) -> String {
        let program = format!("{PACKETS_PY}\n{script}");
        let mut full = vec!["python3", "-c", &program];
        full.extend_from_slice(args);
        let out = self.exec(&full);
        assert!(
            out.status.success(),
            "packet script failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `f` on a thread inside the namespace: sockets it creates are
    /// the kernel's, on the far side of tun0.
    pub fn kernel<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        in_netns(&self.name, f).expect("enter namespace")
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

fn run(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn stack_addr(port: u16) -> SocketAddr {
    SocketAddr::from((STACK, port))
}

pub fn host_addr(port: u16) -> SocketAddr {
    SocketAddr::from((HOST, port))
}

/// A test configuration: the defaults with short timers so a failing
/// test fails fast.
pub fn test_config() -> Config {
    let mut c = Config::with_addr(STACK);
    c.tcp.msl = std::time::Duration::from_millis(500);
    c
}

/// The stack's counter `name`; panics if there is none.
pub fn counter(stack: &Stack, name: &str) -> u64 {
    stack
        .stats()
        .get(name)
        .unwrap_or_else(|| panic!("no counter {name}"))
}

/// Test stream bytes: byte i is (i + salt) mod 251 (a prime, so chunk
/// boundaries never line up with the pattern).
pub fn pattern(len: usize, salt: usize) -> Vec<u8> {
    (0..len).map(|i| ((i + salt) % 251) as u8).collect()
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads to end-of-file and returns the SHA-256 and the byte count.
pub fn hash_to_eof(mut r: impl Read) -> (String, usize) {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0;
    loop {
        let n = r.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        total += n;
    }
    (hex(&h.finalize()), total)
}
