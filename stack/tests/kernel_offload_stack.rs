//! The stack on an offload TUN device (`IFF_VNET_HDR`, checksum + TSO4)
//! against the Linux kernel: bulk TCP both ways, exact by SHA-256.
//!
//! Kernel -> us, the kernel hands over its TCP super-segments unsplit (up
//! to 64 KiB, `gso_size` set) with partial checksums; the stack must take
//! each as one segment and skip the TCP checksum the kernel never
//! computed. `rx_gso_segments` proves super-segments were taken.
//!
//! # What the loss rule sees
//!
//! nftables hooks run before the device: on an offload TUN device with
//! TSO a GSO packet reaches the output hook, and then us, whole, so one
//! `numgen` drop there loses a whole super-segment (up to ~44 segments),
//! not one segment as a lossy wire after a NIC's segmentation would. The
//! lossy test sets `gso_max_segs 8` on tun0: the kernel's TCP then builds
//! packets of at most 8 segments (`tcp_tso_autosize` follows the
//! device's limit), so super-segments still arrive and a drop is a burst
//! of at most 8. The input hook sees what we write, as we wrote it
//! (super-segments once our sender builds them), so there a drop loses a
//! whole packet of ours. The plain device (`Offload::Off`) is covered by
//! `kernel_tcp.rs` and `kernel_loss.rs`.

// A test binary: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener as KernelListener, TcpStream as KernelStream};
use std::time::{Duration, Instant};

use common::{can_run, hash_to_eof, host_addr, test_config, NetNs};
use sha2::{Digest, Sha256};
use stack::device::tun::Offload;
use stack::{Stack, TcpListener, TcpStream};

const MIB: usize = 1024 * 1024;
/// Bound on each blocking step; a healthy run takes seconds.
const LIMIT: Duration = Duration::from_secs(60);

/// nftables rules dropping a random 2% of tun0's packets each way: the
/// input hook sees what our stack sent, the output hook what the kernel
/// sends to it (see the module docs for what a packet is here).
const LOSSY_RULES: &str = r#"
table inet lossy {
    chain in {
        type filter hook input priority 0; policy accept;
        iifname "tun0" numgen random mod 100 < 2 counter drop
    }
    chain out {
        type filter hook output priority 0; policy accept;
        oifname "tun0" numgen random mod 100 < 2 counter drop
    }
}
"#;

/// Byte i of the test stream of `salt`: (i + salt) mod 251.
fn chunk(offset: usize, len: usize, salt: usize) -> Vec<u8> {
    (offset..offset + len)
        .map(|i| ((i + salt) % 251) as u8)
        .collect()
}

/// Writes `len` pattern bytes in 1 MiB chunks; returns their SHA-256 and
/// the length as "digest len", the reply the receiver must give.
fn write_pattern(mut w: impl Write, len: usize, salt: usize) -> String {
    let mut h = Sha256::new();
    let mut sent = 0;
    while sent < len {
        let piece = chunk(sent, MIB.min(len - sent), salt);
        w.write_all(&piece).unwrap();
        h.update(&piece);
        sent += piece.len();
    }
    let digest: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    format!("{digest} {len}")
}

/// Packets the rules dropped so far: (input: ours, output: the kernel's),
/// in the order nft lists the chains.
fn nft_drops(ns: &NetNs) -> [u64; 2] {
    let listing = ns.exec(&["nft", "list", "table", "inet", "lossy"]);
    let drops: Vec<u64> = String::from_utf8_lossy(&listing.stdout)
        .split("counter packets ")
        .skip(1)
        .filter_map(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
        .collect();
    drops
        .try_into()
        .unwrap_or_else(|d| panic!("two counters expected: {d:?}"))
}

fn counter(stack: &Stack, name: &str) -> u64 {
    stack
        .stats()
        .get(name)
        .unwrap_or_else(|| panic!("no counter {name}"))
}

/// The kernel sends `len` bytes to our listener on 5001, which answers
/// with their hash; checked exact.
fn kernel_to_us(ns: &NetNs, stack: &Stack, len: usize) -> Duration {
    let start = Instant::now();
    let listener = TcpListener::bind(stack, (stack.addr(), 5001)).unwrap();
    let server = std::thread::spawn(move || {
        listener.set_accept_timeout(Some(LIMIT));
        let (stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(LIMIT)).unwrap();
        stream.set_write_timeout(Some(LIMIT)).unwrap();
        let (digest, n) = hash_to_eof(&stream);
        (&stream)
            .write_all(format!("{digest} {n}").as_bytes())
            .unwrap();
    });
    let (reply, expected) = ns.kernel(move || {
        let mut s =
            KernelStream::connect_timeout(&"10.0.0.2:5001".parse().unwrap(), LIMIT).unwrap();
        s.set_read_timeout(Some(LIMIT)).unwrap();
        s.set_write_timeout(Some(LIMIT)).unwrap();
        let expected = write_pattern(&s, len, 0);
        s.shutdown(Shutdown::Write).unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply).unwrap();
        (reply, expected)
    });
    server.join().unwrap();
    assert_eq!(reply, expected);
    start.elapsed()
}

/// Our client sends `len` bytes to a kernel server on 6001, which
/// answers with their hash; checked exact.
fn us_to_kernel(ns: &NetNs, stack: &Stack, len: usize) -> Duration {
    let start = Instant::now();
    let kernel = ns.kernel(|| KernelListener::bind("10.0.0.1:6001").unwrap());
    let kernel_side = std::thread::spawn(move || {
        let (mut s, _) = kernel.accept().unwrap();
        s.set_read_timeout(Some(LIMIT)).unwrap();
        s.set_write_timeout(Some(LIMIT)).unwrap();
        let (digest, n) = hash_to_eof(&s);
        s.write_all(format!("{digest} {n}").as_bytes()).unwrap();
    });
    let mut ours = TcpStream::connect_timeout(stack, host_addr(6001), LIMIT).unwrap();
    ours.set_read_timeout(Some(LIMIT)).unwrap();
    ours.set_write_timeout(Some(LIMIT)).unwrap();
    let expected = write_pattern(&ours, len, 7);
    ours.shutdown(Shutdown::Write).unwrap();
    let mut reply = String::new();
    ours.read_to_string(&mut reply).unwrap();
    kernel_side.join().unwrap();
    assert_eq!(reply, expected);
    start.elapsed()
}

#[test]
fn hundred_mib_each_way_on_an_offload_device() {
    if !can_run("hundred_mib_each_way_on_an_offload_device") {
        return;
    }
    let ns = NetNs::new("offl");
    let stack = ns.start_stack_with(test_config(), Offload::On);

    let up = kernel_to_us(&ns, &stack, 100 * MIB);
    // The kernel's super-segments were taken whole, their partial
    // checksums left alone, and nothing was dropped as corrupt.
    let gso = counter(&stack, "rx_gso_segments");
    assert!(gso > 0, "no super-segment received");
    assert!(counter(&stack, "rx_csum_offloaded") > 0);
    assert_eq!(counter(&stack, "drop_bad_checksum"), 0);
    assert_eq!(counter(&stack, "drop_truncated"), 0);

    let down = us_to_kernel(&ns, &stack, 100 * MIB);
    eprintln!("100 MiB kernel -> us in {up:?} ({gso} super-segments), us -> kernel in {down:?}");
    stack.shutdown();
}

#[test]
fn twenty_mib_each_way_under_loss_on_an_offload_device() {
    if !can_run("twenty_mib_each_way_under_loss_on_an_offload_device") {
        return;
    }
    let ns = NetNs::new("offloss");
    if !ns.exec(&["nft", "--version"]).status.success() {
        assert!(std::env::var_os("CI").is_none(), "CI needs nft");
        eprintln!("SKIPPED: nft is not installed");
        return;
    }
    // Super-segments of at most 8 segments: see the module docs.
    ns.ip(&["link", "set", "tun0", "gso_max_segs", "8"]);
    let path = std::env::temp_dir().join(format!("{}.nft", ns.name));
    std::fs::write(&path, LOSSY_RULES).unwrap();
    let out = ns.exec(&["nft", "-f", path.to_str().unwrap()]);
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "nft failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stack = ns.start_stack_with(test_config(), Offload::On);

    let up = kernel_to_us(&ns, &stack, 20 * MIB);
    assert!(counter(&stack, "rx_gso_segments") > 0);
    assert_eq!(counter(&stack, "drop_bad_checksum"), 0);
    let [_, kernels] = nft_drops(&ns);
    let down = us_to_kernel(&ns, &stack, 20 * MIB);
    let [ours, _] = nft_drops(&ns);
    eprintln!(
        "20 MiB under 2% loss: kernel -> us {up:?} ({kernels} dropped), \
         us -> kernel {down:?} ({ours} of ours dropped)"
    );
    // The loss really happened both ways. Up, the kernel sends only data:
    // 20 MiB is at least ~1,800 packets of at most 8 segments, 2% of
    // which is ~36. Down, our data leaves as TSO super-segments that the
    // input hook sees whole (at least ~320 of up to 64 KiB, plus our ACKs
    // of the upload), so 2% is a handful: at least one is certain enough
    // (the chance of none is about e^-6).
    assert!(
        kernels > 10,
        "only {kernels} of the kernel's packets dropped"
    );
    assert!(ours > 0, "none of our packets was dropped");
    stack.shutdown();
}
