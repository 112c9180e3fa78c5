//! IPv4 fragments against the Linux kernel through a real TUN device: the
//! kernel fragments what it sends us (tun0 has an MTU of 1500), we
//! reassemble it, and we fragment our replies for the kernel to
//! reassemble. Also a flood of first fragments that never complete,
//! written into tun0 by a Python `AF_PACKET` socket, which must not keep a
//! real fragmented datagram out.

// A test binary: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::UdpSocket as KernelUdp;
use std::thread::JoinHandle;
use std::time::Duration;

use common::{can_run, counter, pattern, test_config, NetNs};
use stack::{Stack, UdpSocket};

/// Writes `N` first fragments (More Fragments set, offset 0) of UDP
/// datagrams that never complete into tun0, identifications 0 to N-1,
/// from 10.0.0.77 (not the kernel's address, so no identification of
/// the kernel's own datagrams can collide with them). Prints N.
const FLOOD_PY: &str = r#"
import struct, sys

SRC = "10.0.0.77"

def first_fragment(ident, payload):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, 0x2000,
                    64, 17, 0, socket.inet_aton(SRC), socket.inet_aton(US))
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + payload

n = int(sys.argv[1])
dgram = udp(SRC, US, 40000, 7, bytes(3000))
s = tun()
for i in range(n):
    s.send(first_fragment(i, dgram[:1480]))
    # Let the reader keep up: tun0's queue holds 500 packets.
    if i % 100 == 99:
        time.sleep(0.002)
print(n)
"#;

/// A UDP echo server on port 7 of `stack` that answers `count` datagrams.
fn echo_server(stack: &Stack, count: usize) -> JoinHandle<()> {
    let echo = UdpSocket::bind(stack, (stack.addr(), 7)).unwrap();
    echo.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65_536];
        for _ in 0..count {
            let (n, from) = echo.recv_from(&mut buf).unwrap();
            echo.send_to(&buf[..n], from).unwrap();
        }
    })
}

/// Sends `payload` from a kernel UDP socket in `ns` to our echo port and
/// returns what comes back (or why nothing did).
fn kernel_echo(ns: &NetNs, payload: Vec<u8>) -> Result<Vec<u8>, String> {
    ns.kernel(move || {
        let sock = KernelUdp::bind("10.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        sock.send_to(&payload, "10.0.0.2:7")
            .map_err(|e| format!("send: {e}"))?;
        let mut buf = vec![0u8; 65_536];
        let (n, from) = sock
            .recv_from(&mut buf)
            .map_err(|e| format!("no echo: {e}"))?;
        assert_eq!(from.to_string(), "10.0.0.2:7");
        Ok(buf[..n].to_vec())
    })
}

#[test]
fn udp_4000_bytes_echoed_through_fragments_both_ways() {
    if !can_run("udp_4000_bytes_echoed_through_fragments_both_ways") {
        return;
    }
    let ns = NetNs::new("frag");
    let stack = ns.start_stack(test_config());
    let server = echo_server(&stack, 1);
    let sent = pattern(4000, 17);
    let reply = kernel_echo(&ns, sent.clone())
        .unwrap_or_else(|e| panic!("{e}; stack counters: {:?}", stack.stats().snapshot()));
    assert_eq!(reply.len(), 4000);
    assert!(reply == sent, "the echo differs from what was sent");
    server.join().unwrap();
    // The kernel sent 4008 bytes of UDP in three fragments; so did we.
    assert_eq!(counter(&stack, "ip_frag_received"), 3);
    assert_eq!(counter(&stack, "ip_reassembled"), 1);
    assert_eq!(counter(&stack, "ip_frag_tx"), 3);
    stack.shutdown();
}

#[test]
fn ping_of_4000_bytes_is_answered() {
    if !can_run("ping_of_4000_bytes_is_answered") {
        return;
    }
    let ns = NetNs::new("fping");
    let stack = ns.start_stack(test_config());
    let out = ns.exec(&[
        "ping", "-c", "2", "-i", "0.2", "-W", "2", "-s", "4000", "10.0.0.2",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("2 packets transmitted, 2 received"),
        "ping -s 4000 failed: {text}\nstack counters: {:?}",
        stack.stats().snapshot()
    );
    assert_eq!(counter(&stack, "icmp_echo"), 2);
    assert_eq!(counter(&stack, "ip_reassembled"), 2);
    assert_eq!(counter(&stack, "ip_frag_tx"), 6);
    stack.shutdown();
}

#[test]
fn a_flood_of_incomplete_fragments_does_not_keep_a_real_datagram_out() {
    if !can_run("a_flood_of_incomplete_fragments_does_not_keep_a_real_datagram_out") {
        return;
    }
    let ns = NetNs::new("fflood");
    let stack = ns.start_stack(test_config());
    let server = echo_server(&stack, 1);
    let flooded: u64 = ns.python(FLOOD_PY, &["1000"]).trim().parse().unwrap();
    assert_eq!(flooded, 1000);
    // Wait until the stack has read the flood. tun0's queue may have
    // dropped a few under load; most must have arrived, and each beyond
    // the bound pushed out the oldest.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while counter(&stack, "ip_frag_received") < 1000 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let received = counter(&stack, "ip_frag_received");
    assert!(received >= 900, "only {received} flood fragments arrived");
    let limit = stack.config().reassembly_max_datagrams as u64;
    assert_eq!(counter(&stack, "ip_reasm_evicted"), received - limit);

    let sent = pattern(4000, 5);
    let reply = kernel_echo(&ns, sent.clone())
        .unwrap_or_else(|e| panic!("{e}; stack counters: {:?}", stack.stats().snapshot()));
    assert!(reply == sent, "the echo differs from what was sent");
    server.join().unwrap();
    assert_eq!(counter(&stack, "ip_reassembled"), 1);
    stack.shutdown();
}

/// Writes one first fragment (identification 4242) of a UDP datagram that
/// never completes into tun0, then waits up to 5 s for the stack's ICMP
/// Time Exceeded (type 11, code 1) quoting it. Prints "timeout" or
/// "code <code> id <quoted id> after <seconds>".
const LONE_FRAGMENT_PY: &str = r#"
import struct

SRC = "10.0.0.77"
dgram = udp(SRC, US, 40000, 7, bytes(3000))[:1480]
h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(dgram), 4242, 0x2000,
                64, 17, 0, socket.inet_aton(SRC), socket.inet_aton(US))
h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
s = tun()
start = time.monotonic()
s.send(h + dgram)
result = "timeout"
while time.monotonic() - start < 5:
    s.settimeout(max(0.01, 5 - (time.monotonic() - start)))
    try:
        p = s.recv(65535)
    except socket.timeout:
        break
    if len(p) >= 56 and p[9] == 1 and socket.inet_ntoa(p[12:16]) == US and p[20] == 11:
        quoted_id = struct.unpack("!H", p[28 + 4:28 + 6])[0]
        result = "code %d id %d after %.1f" % (p[21], quoted_id, time.monotonic() - start)
        break
print(result)
"#;

#[test]
fn reassembly_timeout_sends_time_exceeded() {
    if !can_run("reassembly_timeout_sends_time_exceeded") {
        return;
    }
    let ns = NetNs::new("ftime");
    let mut config = test_config();
    config.reassembly_timeout = Duration::from_secs(1);
    let stack = ns.start_stack(config);
    let out = ns.python(LONE_FRAGMENT_PY, &[]);
    assert!(
        out.starts_with("code 1 id 4242 after"),
        "no time exceeded: {out}; stack counters: {:?}",
        stack.stats().snapshot()
    );
    assert_eq!(counter(&stack, "ip_reasm_timeout"), 1);
    assert_eq!(counter(&stack, "icmp_time_exceeded_tx"), 1);
    stack.shutdown();
}
