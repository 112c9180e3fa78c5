//! IPv4 fragments against the Linux kernel through a real TUN device: the
//! kernel fragments what it sends us (tun0 has an MTU of 1500), we
//! reassemble it, and we fragment our replies for the kernel to
//! reassemble. Also a flood of first fragments that never complete,
//! written into tun0 by a Python `AF_PACKET` socket, which must not keep a
//! real fragmented datagram out.

// A test binary: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::udp_echo::{check_kernel_echo, echo_server};
use common::{can_run, counter, host_addr, pattern, stack_addr, test_config, NetNs};

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

#[test]
fn udp_4000_bytes_echoed_through_fragments_both_ways() {
    if !can_run("udp_4000_bytes_echoed_through_fragments_both_ways") {
        return;
    }
    let ns = NetNs::new("frag");
    let stack = ns.start_stack(test_config());
    let server = echo_server(&stack, stack_addr(7), 1);
    check_kernel_echo(&ns, &stack, host_addr(0), stack_addr(7), &pattern(4000, 17));
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
    let server = echo_server(&stack, stack_addr(7), 1);
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

    check_kernel_echo(&ns, &stack, host_addr(0), stack_addr(7), &pattern(4000, 5));
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
