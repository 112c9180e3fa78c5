#!/usr/bin/env bash
# Runs the demo on the stack inside a private network namespace and puts
# it under each of issue 12's exhaustion scenarios in turn; for each one
# prints the demo's peak RSS, the CPU it spent, its threads at the end of
# the scenario (a fixed few: connections are tasks, not threads) and how a fresh client
# fared meanwhile (GET / twice a second: median and worst latency, and
# how many failed).
#
#   sudo scripts/exhaust.sh                  # every scenario, 20 s each
#   sudo scripts/exhaust.sh --seconds 40     # longer
#   sudo scripts/exhaust.sh slow-heads       # only the ones named
#
# Scenarios:
#   idle           nothing: the baseline
#   slow-heads     300 connections to port 80 sending `GET / HTTP/1.1\r\nX-a:`
#                  then one byte every 5 s; closed ones reconnect
#   newline-flood  2 connections sending bare `\n` to port 7070 nonstop
#   discard-flood  the same bytes to discard (port 9): what the bytes cost
#                  the stack alone, to compare the flood with
#   zero-window    50 readers of /bytes/100000000 that never read (their
#                  window closes; the kernel answers the probes); closed
#                  ones reconnect
#   rpc-batch      2 connections sending batches of 1024 `sockets` calls
#   churn          2 clients sending sequential HTTP/1.0 requests, the
#                  server closing first (TIME-WAIT on the demo's side,
#                  ports reused while it lasts)
#   far-ooo        200 connections to discard (port 9) from a forged peer
#                  (10.0.0.77, raw packets on tun0) each holding 32 bytes
#                  far out of order, one at the very edge of the 1 MiB
#                  window; every 5 s they are reset and opened again
#
# Everything happens in one namespace this script creates (ex<PID>) and
# deletes on exit, also on failure or Ctrl-C. Extra demo flags can be
# given in DEMO_FLAGS (e.g. DEMO_FLAGS="--max-connections 64").
set -euo pipefail

PROG=${0##*/}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ALL=(idle slow-heads newline-flood discard-flood zero-window rpc-batch churn far-ooo)

die() {
    echo "$PROG: $*" >&2
    exit 1
}

seconds=20
scenarios=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --seconds)
            [[ $# -ge 2 && $2 =~ ^[0-9]+$ && $2 -ge 5 ]] || die "--seconds needs a number >= 5"
            seconds=$2
            shift 2
            ;;
        -h | --help)
            sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        idle | slow-heads | newline-flood | discard-flood | zero-window | rpc-batch | churn | far-ooo)
            scenarios+=("$1")
            shift
            ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done
[[ ${#scenarios[@]} -gt 0 ]] || scenarios=("${ALL[@]}")

[[ $EUID -eq 0 ]] || die "must run as root (network namespaces): sudo scripts/$PROG"
for tool in ip python3; do
    command -v "$tool" >/dev/null || die "'$tool' is missing"
done

NS="ex$$"
TMP=$(mktemp -d /tmp/exhaust.XXXXXX)
demo_pid=

cleanup() {
    local rc=$?
    set +e
    if ((rc != 0)) && [[ -s $TMP/demo.log ]]; then
        { echo "--- last lines of the demo's log:"; tail -n 20 "$TMP/demo.log"; } >&2
    fi
    if [[ -n $demo_pid ]]; then
        kill "$demo_pid" 2>/dev/null
        wait "$demo_pid" 2>/dev/null
    fi
    if ip netns list | awk '{print $1}' | grep -qxF "$NS"; then
        "$ROOT/scripts/setup-tun.sh" --down --netns "$NS" >/dev/null 2>&1
        ip netns list | awk '{print $1}' | grep -qxF "$NS" && ip netns delete "$NS"
    fi
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ -n ${DEMO_BIN:-} ]]; then
    DEMO=$DEMO_BIN
else
    echo "[$PROG] building demo (release)" >&2
    (cd "$ROOT" && cargo build --release -p demo --quiet)
    DEMO=${CARGO_TARGET_DIR:-$ROOT/target}/release/demo
fi
[[ -x $DEMO ]] || die "no binary at $DEMO"

"$ROOT/scripts/setup-tun.sh" --netns "$NS" >/dev/null
# shellcheck disable=SC2086 # DEMO_FLAGS is a list of words
ip netns exec "$NS" "$DEMO" ${DEMO_FLAGS:-} >"$TMP/demo.log" 2>&1 &
demo_pid=$!
for ((i = 0; i < 100; i++)); do
    ip netns exec "$NS" python3 -c 'import socket; socket.create_connection(("10.0.0.2", 80), 1).close()' \
        2>/dev/null && break
    sleep 0.1
done
((i < 100)) || die "the demo did not come up within 10 s"

cat >"$TMP/run.py" <<'PY'
import json, os, random, socket, statistics, struct, sys, threading, time

ADDR = "10.0.0.2"
pid, scenario, seconds = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
stop = threading.Event()
TICK = os.sysconf("SC_CLK_TCK")

def cpu_seconds():
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK

def status(field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0

def rss_mib():
    return status("VmRSS") / 1024

def connect(port, timeout=2.0, rcvbuf=None):
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(timeout)
    s.connect((ADDR, port))
    return s

def slow_heads():
    conns = []
    while not stop.is_set():
        while len(conns) < 300 and not stop.is_set():
            try:
                s = connect(80)
                s.sendall(b"GET / HTTP/1.1\r\nX-a:")
                conns.append(s)
            except OSError:
                time.sleep(0.05)
        stop.wait(5)
        alive = []
        for s in conns:
            try:
                s.sendall(b"a")
                alive.append(s)
            except OSError:
                s.close()
        conns = alive
    for s in conns:
        s.close()

def newline_flood(port=7070):
    chunk = b"\n" * (1 << 20)
    while not stop.is_set():
        try:
            s = connect(port)
            while not stop.is_set():
                s.sendall(chunk)
        except OSError:
            time.sleep(0.05)

def zero_window():
    conns = []
    while not stop.is_set():
        conns = [s for s in conns if not closed(s)]
        while len(conns) < 50 and not stop.is_set():
            try:
                s = connect(80, rcvbuf=4096)
                s.sendall(b"GET /bytes/100000000 HTTP/1.1\r\nHost: x\r\n\r\n")
                conns.append(s)
            except OSError:
                time.sleep(0.05)
        stop.wait(1)
    for s in conns:
        s.close()

def closed(s):
    # Peek without reading: a closed or reset stream reports it, an open
    # one with data pending stays unread (its window stays shut).
    try:
        s.setblocking(False)
        data = s.recv(1, socket.MSG_PEEK)
        return data == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        try:
            s.setblocking(True)
        except OSError:
            pass

def rpc_batch():
    batch = json.dumps([{"jsonrpc": "2.0", "method": "sockets", "id": i} for i in range(1024)]).encode() + b"\n"
    while not stop.is_set():
        try:
            s = connect(7070, timeout=10)
            f = s.makefile("rb")
            while not stop.is_set():
                s.sendall(batch)
                f.readline()
        except OSError:
            time.sleep(0.05)

def churn():
    while not stop.is_set():
        try:
            s = connect(80, timeout=5)
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            while s.recv(65536):
                pass
            s.close()
        except OSError:
            time.sleep(0.01)

# Raw TCP on tun0 for far-ooo: an AF_PACKET socket bound to tun0 writes
# straight to the demo and sees what it writes. The forged peer 10.0.0.77
# is on tun0's subnet but not the kernel's, so the kernel stays out of it.
PEER, M = "10.0.0.77", 0xffffffff
SYN, RST, ACK = 0x02, 0x04, 0x10

def _csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff

def _segment(sport, dport, seq, ack, flags, opts=b"", data=b""):
    t = struct.pack("!HHIIBBHHH", sport, dport, seq & M, ack & M, ((20 + len(opts)) // 4) << 4,
                    flags, 65535, 0, 0) + opts + data
    pseudo = socket.inet_aton(PEER) + socket.inet_aton(ADDR) + struct.pack("!BBH", 0, 6, len(t))
    t = t[:16] + struct.pack("!H", _csum(pseudo + t)) + t[18:]
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(t), 0, 0x4000, 64, 6, 0,
                    socket.inet_aton(PEER), socket.inet_aton(ADDR))
    return h[:10] + struct.pack("!H", _csum(h)) + h[12:] + t

def _replies(s, seconds):
    """(dport, seq, flags) of the demo's TCP segments to PEER for `seconds`."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        s.settimeout(left)
        try:
            p = s.recv(65535)
        except OSError:
            return
        if len(p) >= 40 and p[9] == 6 and p[16:20] == socket.inet_aton(PEER):
            t = p[(p[0] & 0xf) * 4:]
            yield struct.unpack("!H", t[2:4])[0], struct.unpack("!I", t[4:8])[0], t[13]

def far_ooo(n=200, spread=31, window=1 << 20):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
    s.bind(("tun0", 3))
    s.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_RCVBUFFORCE", 33), 8 << 20)
    mss_wscale = b"\x02\x04\x05\xb4\x01\x03\x03\x07"
    rounds = 0
    while not stop.is_set():
        base = 43000 + (rounds % 2) * n
        rounds += 1
        isn = {base + i: random.getrandbits(32) for i in range(n)}
        for sport, seq in isn.items():
            s.send(_segment(sport, 9, seq, 0, SYN, mss_wscale))
        synacks = {}
        for dport, seq, flags in _replies(s, 2):
            if flags & (SYN | ACK) == SYN | ACK and dport in isn:
                synacks[dport] = (seq + 1) & M
        for sport, ack in synacks.items():
            seq = isn[sport] + 1
            s.send(_segment(sport, 9, seq, ack, ACK))
            # A byte just past RCV.NXT: its ACK opens the whole window.
            s.send(_segment(sport, 9, seq + 1, ack, ACK, data=b"a"))
        for _ in _replies(s, 0.5):
            pass
        for sport, ack in synacks.items():
            seq = isn[sport] + 1
            for j in range(spread):
                s.send(_segment(sport, 9, seq + window - 1 - j * (window // 32), ack, ACK, data=b"z"))
        for _ in _replies(s, 5):
            if stop.is_set():
                break
        for sport, ack in synacks.items():
            s.send(_segment(sport, 9, isn[sport] + 1, 0, RST))
    s.close()

ATTACKS = {"idle": None, "far-ooo": far_ooo, "churn": churn, "slow-heads": slow_heads, "newline-flood": newline_flood,
           "discard-flood": lambda: newline_flood(9),
           "zero-window": zero_window, "rpc-batch": rpc_batch}

def fresh_get():
    t = time.monotonic()
    try:
        s = connect(80, timeout=5)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
        s.close()
        return (time.monotonic() - t) if data.startswith(b"HTTP/1.1 200") else None
    except OSError:
        return None

attackers = []
work = ATTACKS[scenario]
if work:
    for _ in range(2 if scenario in ("newline-flood", "discard-flood", "rpc-batch", "churn") else 1):
        t = threading.Thread(target=work, daemon=True)
        t.start()
        attackers.append(t)
cpu0 = cpu_seconds()
peak = rss_mib()
lat, failed = [], 0
end = time.monotonic() + seconds
next_get = time.monotonic() + 1.0  # let the attack build up first
while time.monotonic() < end:
    peak = max(peak, rss_mib())
    if time.monotonic() >= next_get:
        r = fresh_get()
        if r is None:
            failed += 1
        else:
            lat.append(r * 1000)
        next_get = time.monotonic() + 0.5
    time.sleep(0.05)
cpu = cpu_seconds() - cpu0
threads = status("Threads")
stop.set()
for t in attackers:
    t.join(10)
total = len(lat) + failed
med = f"{statistics.median(lat):.1f}" if lat else "-"
worst = f"{max(lat):.1f}" if lat else "-"
print(f"{scenario:<14} {peak:>8.1f} {cpu:>7.2f} {threads:>8} {med:>9} {worst:>9} {failed:>4}/{total:<4}")
PY

printf '%-14s %8s %7s %8s %9s %9s %9s\n' scenario "RSS MiB" "CPU s" threads "GET p50" "GET max" failed
printf '%-14s %8s %7s %8s %9s %9s %9s\n' "" "(peak)" "" "(at end)" "(ms)" "(ms)" ""
for s in "${scenarios[@]}"; do
    ip netns exec "$NS" python3 "$TMP/run.py" "$demo_pid" "$s" "$seconds"
    # Let the demo shed the scenario's connections before the next one.
    sleep 3
done
echo
echo "demo counters after the run:"
ip netns exec "$NS" python3 -c '
import json, socket
s = socket.create_connection(("10.0.0.2", 80), 5)
s.sendall(b"GET /stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
data = b""
while True:
    b = s.recv(65536)
    if not b: break
    data += b
stats = json.loads(data.split(b"\r\n\r\n", 1)[1])
print(json.dumps(stats.get("demo")))
print(json.dumps({k: stats.get(k) for k in ("memory_in_use", "memory_budget", "tcp_ooo_pruned",
                                            "tcp_rings_shrunk", "tcp_memory_drops")}))'
