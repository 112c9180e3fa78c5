//! Bulk TCP against the Linux kernel over a lossy real link: nftables in
//! the test's namespace drops a random 5% of the packets on tun0 in each
//! direction, and 20 MiB must cross each way, exact by SHA-256.
//!
//! Both directions run at once, so both our sender's loss recovery and our
//! receiver's reassembly (with the kernel's SACK-driven recovery) are
//! exercised. Bounds are generous: the test is about correctness under
//! loss, throughput is what the benchmarks measure.

// A test binary: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener as KernelListener, TcpStream as KernelStream};
use std::time::{Duration, Instant};

use common::{can_run, hash_to_eof, host_addr, pattern, sha256_hex, test_config, NetNs};
use stack::{TcpListener, TcpStream};

const TWENTY_MIB: usize = 20 * 1024 * 1024;
/// Bound on each blocking step; a healthy run takes seconds.
const LIMIT: Duration = Duration::from_secs(50);

/// nftables rules dropping a random 5% of tun0's packets each way. The
/// input hook sees what our stack sent, the output hook what the kernel
/// sends to it.
const LOSSY_RULES: &str = r#"
table inet lossy {
    chain in {
        type filter hook input priority 0; policy accept;
        iifname "tun0" numgen random mod 100 < 5 counter drop
    }
    chain out {
        type filter hook output priority 0; policy accept;
        oifname "tun0" numgen random mod 100 < 5 counter drop
    }
}
"#;

/// Loads [`LOSSY_RULES`] into `ns` and returns nft's listing afterwards.
fn make_lossy(ns: &NetNs) {
    let path = std::env::temp_dir().join(format!("{}.nft", ns.name));
    std::fs::write(&path, LOSSY_RULES).unwrap();
    let out = ns.exec(&["nft", "-f", path.to_str().unwrap()]);
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "nft failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Packets the rules dropped so far, summed over both chains.
fn nft_drops(ns: &NetNs) -> u64 {
    let out = ns.exec(&["nft", "list", "table", "inet", "lossy"]);
    let text = String::from_utf8_lossy(&out.stdout);
    text.split("counter packets ")
        .skip(1)
        .filter_map(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

#[test]
fn twenty_mib_each_way_under_five_percent_loss() {
    if !can_run("twenty_mib_each_way_under_five_percent_loss") {
        return;
    }
    let ns = NetNs::new("loss");
    let has_nft = ns.exec(&["nft", "--version"]).status.success();
    if !has_nft {
        assert!(std::env::var_os("CI").is_none(), "CI needs nft");
        eprintln!("SKIPPED: nft is not installed");
        return;
    }
    // One segment per packet from the kernel: otherwise its output hook
    // sees 64 KiB GSO packets, segmented only after the rules, and one
    // drop would lose ~40 segments at once.
    ns.ip(&["link", "set", "tun0", "gso_max_segs", "1"]);
    make_lossy(&ns);
    let stack = ns.start_stack(test_config());
    let start = Instant::now();

    // Upload: the kernel sends 20 MiB to our listener, which replies with
    // the hash.
    let listener = TcpListener::bind(&stack, (stack.addr(), 5001)).unwrap();
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
    let upload = ns.kernel(move || {
        std::thread::spawn(move || {
            let data = pattern(TWENTY_MIB, 0);
            let expected = format!("{} {}", sha256_hex(&data), TWENTY_MIB);
            let mut s =
                KernelStream::connect_timeout(&"10.0.0.2:5001".parse().unwrap(), LIMIT).unwrap();
            s.set_read_timeout(Some(LIMIT)).unwrap();
            s.set_write_timeout(Some(LIMIT)).unwrap();
            s.write_all(&data).unwrap();
            s.shutdown(Shutdown::Write).unwrap();
            let mut reply = String::new();
            s.read_to_string(&mut reply).unwrap();
            (reply, expected, start.elapsed())
        })
    });

    // Download: our client sends 20 MiB to a kernel server, which
    // replies with the hash.
    let kernel = ns.kernel(|| KernelListener::bind("10.0.0.1:6001").unwrap());
    let kernel_side = std::thread::spawn(move || {
        let (mut s, _) = kernel.accept().unwrap();
        s.set_read_timeout(Some(LIMIT)).unwrap();
        s.set_write_timeout(Some(LIMIT)).unwrap();
        let (digest, n) = hash_to_eof(&s);
        s.write_all(format!("{digest} {n}").as_bytes()).unwrap();
    });
    let mut ours = TcpStream::connect_timeout(&stack, host_addr(6001), LIMIT).unwrap();
    ours.set_read_timeout(Some(LIMIT)).unwrap();
    ours.set_write_timeout(Some(LIMIT)).unwrap();
    let data = pattern(TWENTY_MIB, 7);
    ours.write_all(&data).unwrap();
    ours.shutdown(Shutdown::Write).unwrap();
    let mut reply = String::new();
    ours.read_to_string(&mut reply).unwrap();
    assert_eq!(reply, format!("{} {}", sha256_hex(&data), TWENTY_MIB));
    kernel_side.join().unwrap();
    let ours_took = start.elapsed();

    let (reply, expected, kernel_took) = upload.join().unwrap();
    assert_eq!(reply, expected);
    server.join().unwrap();
    eprintln!("we sent 20 MiB in {ours_took:?}, the kernel sent 20 MiB in {kernel_took:?}");

    let dropped = nft_drops(&ns);
    eprintln!(
        "20 MiB each way under 5% loss in {:?}; nftables dropped {dropped} packets",
        start.elapsed()
    );
    // The loss really happened: 40 MiB is ~29,000 full segments, 5% of
    // which is ~1,400 in the data directions alone.
    assert!(dropped > 500, "only {dropped} packets dropped");
    stack.shutdown();
}
