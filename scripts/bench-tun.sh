#!/usr/bin/env bash
# Measures the demo host on the stack over TUN side by side with its
# peers, all in the same run, and prints one table: workload | ours with
# offload | ours without | smoltcp | kernel | the TUN relays | ratios.
# Bulk download, upload and connections/s are measured over IPv6 too, on
# the same servers and the same links, in rows marked v6 next to the IPv4
# ones, and a last table gives each column's v6 / v4.
# The demo runs twice on the same tun0: with `--offload on` (checksum
# offload and TSO4: the kernel and the stack exchange TCP super-segments of
# up to 64 KiB) and with `--offload off` (one MTU-sized packet per write).
# The peers:
# - smoltcp: `smoltcp_serve` (benches/src/bin), smoltcp 0.14 in one thread
#   serving the same routes over the same TUN set-up (no offload);
# - the kernel: the same services on the kernel's TCP/IP over a veth pair;
# - the device's ceiling: two kernels (curl and `demo kernel-serve`) joined
#   through two TUN devices and `tun_relay`, a userspace relay copying each
#   packet across (bulk rows only), in three modes: `plain` (a read and a
#   write per MTU-sized packet), `vnet` (our device layer with the
#   virtio-net header and TSO4: 64 KiB super-segments passed through
#   whole) and `tun-rs` (the tun-rs crate's offload: split on read,
#   coalesced on write). vnet against tun-rs is how our offload layer was
#   chosen over tun-rs (BENCHMARKS.md).
#
#   sudo scripts/bench-tun.sh              # full run (about 5-10 minutes)
#   sudo scripts/bench-tun.sh --quick      # fewer runs and requests
#   sudo scripts/bench-tun.sh --loss 1     # drop 1% of packets both ways
#   sudo scripts/bench-tun.sh --churn 70   # only connection churn, 70 s each
#   sudo scripts/bench-tun.sh --csv benches/results/bench-tun.csv
#                                          # also append the figures for the
#                                          # charts (cargo run -p benches --bin charts)
#   sudo scripts/bench-tun.sh --only compare --baseline f3d51b1
#                                          # only the demo against the one at
#                                          # f3d51b1 (a few minutes)
#
# --baseline REV builds the demo as it was at git revision REV (in a
# temporary `git worktree`, removed on exit, with a target directory of
# its own) and runs it beside ours, both with --offload on, in a table of
# its own: download (MB/s and the server's CPU per GiB), connections/s,
# JSON-RPC round trip and the memory each idle connection costs (RSS
# growth over N connections held open to echo, --idle N). It was written to compare the async demo (tokio tasks,
# hyper) with the blocking one it replaced (a thread per connection,
# f3d51b1); the kernel's `demo kernel-serve` is the third column.
#
# Everything happens in network namespaces this script creates (named
# bt<PID>-*) and deletes again on exit, also on failure or Ctrl-C; the root
# namespace is never touched:
#
#   bt<PID>-ours         tun0 10.0.0.1/24 and fd00::1/64 (kernel side),
#                        the client; the demo runs here as 10.0.0.2 and
#                        fd00::2 on the stack, first with --offload on,
#                        then with --offload off
#   bt<PID>-kc (client)  veth 10.0.1.1/24, fd00:1::1/64  <->  bt<PID>-ks
#                        (server) veth 10.0.1.2/24, fd00:1::2/64 with two
#                        `demo kernel-serve`, one on each address
#   bt<PID>-bl           tun0 10.0.0.1/24 and fd00::1/64, the client; the
#                        demo at --baseline REV as 10.0.0.2 and fd00::2
#   bt<PID>-sm           tun0 10.0.0.1/24 and fd00::1/64, the client;
#                        smoltcp_serve as 10.0.0.2 and fd00::2
#   bt<PID>-rc (client)  tunA 10.0.2.1/24, fd00:2::1/64  <->  tun_relay
#                        <->  tunB 10.0.2.2/24, fd00:2::2/64 in
#                        bt<PID>-rs (server) with two `demo kernel-serve`
#
# IPv6 is switched on in each of them (disable_ipv6=0, and no duplicate
# address detection: the addresses are usable at once). The v6 rows use
# the same clients with the v6 address (curl -g 'http://[fd00::2]/...').
#
# Clients are always the kernel's (curl and python3), so both columns use
# the same client; only the server side differs. Every step is bounded in
# count and time.
set -euo pipefail

PROG=${0##*/}
ROOT=$(cd "$(dirname "$0")/.." && pwd)

usage() {
    cat <<EOF
Usage: sudo scripts/$PROG [--quick] [--loss PCT] [--baseline REV] [--only compare] [--idle N]

Builds the demo and the peers (release), serves the demo on the stack over
TUN (once with --offload on, once with --offload off), smoltcp over the
same TUN set-up and the kernel over veth, each in namespaces of its own,
and measures from the kernel-side client: bulk download, bulk upload,
small-request latency, connections per second and JSON-RPC round trips.
Then it measures bulk download and upload between two kernels through two
TUN devices and a userspace relay (plain, vnet, tun-rs): the device's
ceiling. --offload on must be granted by the kernel (Linux with TUN
virtio-net header support); the script stops if it is not.

Options:
  --quick      fewer runs and requests (a smoke test, about a minute)
  --loss PCT   drop PCT% (0-100) of packets in each direction on the
               client's interface (nftables numgen), for both servers
  --churn SECS instead of the table: sequential HTTP/1.0 requests for SECS
               seconds (10-600) against ours (--offload on), smoltcp and
               the kernel,
               the server closing first, so it holds every connection in
               TIME-WAIT; prints the rate in each 10 s and the failures.
               Longer than 60 s (TIME-WAIT) shows whether it lasts.
               IPv4 only.
  --csv FILE   also append the run's figures to FILE as CSV rows
               (loss,workload,column,value,unit; the file gets the header
               if it is new): benches/results/bench-tun.csv (loss 0) and
               loss.csv (a run per loss) are what the charts of
               BENCHMARKS.md draw (cargo run -p benches --bin charts).
               Not with --churn.
  --baseline REV
               also build the demo at git revision REV (release, in a
               temporary git worktree removed on exit, target directory
               \$CARGO_TARGET_DIR/baseline so that its dependencies are
               built once) and print a second table, ours against it (both
               --offload on, each on a tun0 of its own) and the kernel:
               download (MB/s, and the server's CPU time per GiB, steadier
               on a shared VM), connections/s, JSON-RPC round trip (as
               scheduled, and with client and server on one CPU), medians
               of several interleaved runs, and memory per idle connection.
               REV's demo must take --offload, --addr6 and
               --max-connections (f3d51b1, the last blocking demo, does).
  --only compare
               only that second table (without --baseline: ours and the
               kernel), not the main one: a few minutes.
  --idle N     idle connections for the memory rows (default 10000, 0 to
               leave them out, at most 30000): each server, freshly
               started, gets N connections to echo (port 7) that send
               nothing; its VmRSS before and after (once steady) gives KiB
               per connection; then echo is checked through 10 of them.
               For kernel-serve that is the process's memory only: the
               kernel's socket memory is not in its RSS.
  -h, --help   this text

Bulk download, bulk upload and connections/s are measured over IPv6 as
well (rows marked v6): ours and smoltcp at fd00::2, the kernel and the
relays' kernel-serve on fd00:1::2 and fd00:2::2.

Honours CARGO_TARGET_DIR (default: target/ in the repository). With
DEMO_BIN=PATH it runs that demo binary instead of building one (for
before/after comparisons across commits); the peers (smoltcp_serve,
tun_relay) are built from this tree all the same. That demo must serve
IPv6 (--addr6, and kernel-serve --listen with an IPv6 address: from
commit ec4efd4 on).
EOF
}

die() {
    echo "$PROG: $*" >&2
    exit 1
}

quick=0
loss=0
churn=0
csv=
baseline=""
only=""
idle_n=10000
while [[ $# -gt 0 ]]; do
    case $1 in
        --quick) quick=1; shift ;;
        --loss)
            [[ $# -ge 2 ]] || die "--loss needs a value"
            loss=$2
            shift 2
            ;;
        --churn)
            [[ $# -ge 2 ]] || die "--churn needs a value"
            churn=$2
            shift 2
            ;;
        --csv)
            [[ $# -ge 2 && -n $2 ]] || die "--csv needs a file"
            # Absolute, so its directory is checked before the run starts.
            csv=$(realpath -m -- "$2")
            shift 2
            ;;
        --baseline)
            [[ $# -ge 2 ]] || die "--baseline needs a git revision"
            baseline=$2
            shift 2
            ;;
        --only)
            [[ $# -ge 2 ]] || die "--only needs a value (compare)"
            only=$2
            shift 2
            ;;
        --idle)
            [[ $# -ge 2 ]] || die "--idle needs a value"
            idle_n=$2
            shift 2
            ;;
        -h | --help) usage; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done
if ! [[ $loss =~ ^[0-9]{1,3}$ ]] || ((10#$loss > 100)); then
    die "bad --loss '$loss' (0-100)"
fi
loss=$((10#$loss))
if ! [[ $churn =~ ^[0-9]{1,3}$ ]] || { ((10#$churn > 0)) && ((10#$churn < 10 || 10#$churn > 600)); }; then
    die "bad --churn '$churn' (10-600 seconds)"
fi
churn=$((10#$churn))
if [[ -n $csv ]]; then
    ((churn == 0)) || die "--csv has no figures to write with --churn"
    [[ -d ${csv%/*} ]] || die "--csv: no directory ${csv%/*}"
fi
[[ -z $only || $only == compare ]] || die "bad --only '$only' (compare)"
if ! [[ $idle_n =~ ^[0-9]{1,5}$ ]] || ((10#$idle_n > 30000)); then
    die "bad --idle '$idle_n' (0-30000)"
fi
idle_n=$((10#$idle_n))
if ((churn > 0)) && [[ -n $only || -n $baseline ]]; then
    die "--churn runs alone (not with --only or --baseline)"
fi
# The comparison table: asked for by either option.
compare=0
if [[ -n $baseline || $only == compare ]]; then
    compare=1
fi

[[ $EUID -eq 0 ]] || die "must run as root (network namespaces): sudo scripts/$PROG"
for tool in ip curl python3; do
    command -v "$tool" >/dev/null || die "'$tool' is missing"
done
if ((loss > 0)); then
    command -v nft >/dev/null || die "--loss needs nft (nftables)"
fi
if ((compare)); then
    command -v taskset >/dev/null || die "the comparison needs taskset (util-linux)"
fi

if ((quick)); then
    DL_RUNS=3 DL_BYTES=$((256 << 20)) UL_BYTES=$((128 << 20))
    LAT_N=100 CPS_N=200 RPC_N=1000
else
    DL_RUNS=5 DL_BYTES=$((1 << 30)) UL_BYTES=$((512 << 20))
    LAT_N=300 CPS_N=1000 RPC_N=5000
fi
# Under loss a transfer runs at a few MB/s: shrink it so each curl stays
# well inside its 120 s bound (at most 32 MiB from 2% loss up).
if ((loss >= 2)); then
    DL_BYTES=$((DL_BYTES < (32 << 20) ? DL_BYTES : (32 << 20)))
    UL_BYTES=$((UL_BYTES < (32 << 20) ? UL_BYTES : (32 << 20)))
fi
PAR=4 # parallel clients for connections/s
# The comparison table: runs of each workload, interleaved over the
# servers (one download, the connections/s pair and RPC_CMP_N calls each
# run), so that a burst of load from elsewhere falls on all of them.
if ((quick)); then CMP_RUNS=3; else CMP_RUNS=5; fi
RPC_CMP_N=2000
# Room for the idle connections and more; the async demo's own default
# cap is 16,384, the blocking one's 256.
CMP_MAXCONN=$((idle_n + 100 > 16384 ? idle_n + 100 : 16384))

NS_OURS="bt$$-ours"
NS_KC="bt$$-kc"
NS_KS="bt$$-ks"
NS_SM="bt$$-sm"
NS_BL="bt$$-bl"
NS_RC="bt$$-rc"
NS_RS="bt$$-rs"
OURS_IP=10.0.0.2
KERN_IP=10.0.1.2
KERN_IDLE_IP=10.0.1.3 # a fresh kernel-serve for the idle rows
RELAY_IP=10.0.2.2
OURS_IP6=fd00::2
KERN_IP6=fd00:1::2
RELAY_IP6=fd00:2::2
RELAY_MODES=(plain vnet tun-rs)
TMP=$(mktemp -d /tmp/bench-tun.XXXXXX)
pids=()
BL_WT="" # the baseline's temporary worktree, once added

cleanup() {
    local rc=$?
    set +e
    if ((rc != 0)); then
        for f in "$TMP"/ours-on.log "$TMP"/ours-off.log "$TMP"/kernel.log \
            "$TMP"/kernel6.log "$TMP"/smoltcp.log "$TMP"/relay-*.log \
            "$TMP"/cmp-*.log; do
            [[ -s $f ]] && { echo "--- last lines of $f:"; tail -n 20 "$f"; } >&2
        done
    fi
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null
    done
    for ns in "$NS_OURS" "$NS_SM" "$NS_BL"; do
        if ip netns list | awk '{print $1}' | grep -qxF "$ns"; then
            "$ROOT/scripts/setup-tun.sh" --down --netns "$ns" >/dev/null 2>&1
        fi
    done
    # Deleting a namespace deletes the TUN devices and veths in it.
    for ns in "$NS_OURS" "$NS_KC" "$NS_KS" "$NS_SM" "$NS_BL" "$NS_RC" "$NS_RS"; do
        if ip netns list | awk '{print $1}' | grep -qxF "$ns"; then
            ip netns delete "$ns"
        fi
    done
    # Through git, so that the repository forgets the worktree too.
    if [[ -n $BL_WT ]]; then
        git -c safe.directory="$ROOT" -C "$ROOT" worktree remove --force "$BL_WT"
    fi
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() {
    echo "[$PROG] $*" >&2
}

# --- build ---------------------------------------------------------------
if [[ -n ${DEMO_BIN:-} ]]; then
    # A binary built elsewhere, e.g. from an older commit for a
    # before/after comparison.
    DEMO=$DEMO_BIN
else
    log "building demo (release)"
    (cd "$ROOT" && cargo build --release -p demo --quiet)
    DEMO=${CARGO_TARGET_DIR:-$ROOT/target}/release/demo
fi
[[ -x $DEMO ]] || die "no binary at $DEMO"
if [[ $only != compare ]]; then
    log "building the peers: smoltcp_serve, tun_relay (release)"
    (cd "$ROOT" && cargo build --release -p benches --bins --quiet)
    SMOLTCP=${CARGO_TARGET_DIR:-$ROOT/target}/release/smoltcp_serve
    RELAY=${CARGO_TARGET_DIR:-$ROOT/target}/release/tun_relay
    [[ -x $SMOLTCP && -x $RELAY ]] || die "no peer binaries next to $SMOLTCP"
fi
if [[ -n $baseline ]]; then
    # safe.directory: under sudo the repository is usually someone else's,
    # which git refuses to work in otherwise.
    bl_git() { git -c safe.directory="$ROOT" -C "$ROOT" "$@"; }
    BL_REV=$(bl_git rev-parse --verify --quiet "$baseline^{commit}") ||
        die "no commit '$baseline' in $ROOT"
    BL_SHORT=$(bl_git rev-parse --short "$BL_REV")
    log "building the demo at $BL_SHORT (release) in a temporary worktree"
    bl_git worktree add --detach --quiet "$TMP/demo-$BL_SHORT" "$BL_REV"
    BL_WT=$TMP/demo-$BL_SHORT
    # A target directory of its own (REV's lock file may pin other
    # versions), kept between runs: only the workspace's crates rebuild.
    BL_TARGET=${CARGO_TARGET_DIR:-$ROOT/target}/baseline
    (cd "$BL_WT" && CARGO_TARGET_DIR=$BL_TARGET cargo build --release -p demo --quiet)
    BL_DEMO=$BL_TARGET/release/demo
    [[ -x $BL_DEMO ]] || die "no baseline binary at $BL_DEMO"
fi

# --- namespaces ----------------------------------------------------------
# Creates namespace $1 with IPv6 on and no duplicate address detection
# (each address is usable at once, also the veths' link-local ones).
add_netns() {
    local ns=$1
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=0 \
        net.ipv6.conf.default.disable_ipv6=0 net.ipv6.conf.all.accept_dad=0 \
        net.ipv6.conf.default.accept_dad=0
}

# A TUN namespace: setup-tun.sh gives tun0 10.0.0.1/24 and fd00::1/64.
setup_tun_netns() {
    local ns=$1
    add_netns "$ns"
    "$ROOT/scripts/setup-tun.sh" --netns "$ns" >/dev/null
    ip -n "$ns" -6 addr show dev tun0 | grep -qF 'inet6 fd00::1/64' ||
        die "tun0 in $ns has no fd00::1/64"
}

# An address for a URL: IPv6 in brackets (curl then needs -g).
urlhost() {
    if [[ $1 == *:* ]]; then echo "[$1]"; else echo "$1"; fi
}

log "namespace $NS_OURS: tun0 10.0.0.1/24 and fd00::1/64, demo on the stack as $OURS_IP and $OURS_IP6"
setup_tun_netns "$NS_OURS"

# Starts the demo on tun0 with --offload $1, logging to $TMP/ours-$1.log.
ours_pid=""
start_ours() {
    ip netns exec "$NS_OURS" "$DEMO" --offload "$1" --addr6 "$OURS_IP6" >"$TMP/ours-$1.log" 2>&1 &
    ours_pid=$!
    pids+=("$ours_pid")
}

# Stops the demo started last (SIGINT: it resets its connections and
# releases tun0) and waits for it, at most 10 s.
stop_ours() {
    stop_pid "$ours_pid" INT "the demo"
}

# Sends signal $2 to process $1 and waits for it to end, at most 10 s.
stop_pid() {
    local pid=$1 sig=$2 what=$3 i
    kill -"$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && die "$what did not stop within 10 s"
    wait "$pid" 2>/dev/null || true
}

if [[ $only != compare ]]; then
    log "namespace $NS_SM: tun0 10.0.0.1/24 and fd00::1/64, smoltcp_serve as $OURS_IP and $OURS_IP6"
    setup_tun_netns "$NS_SM"
fi
if [[ -n $baseline ]]; then
    log "namespace $NS_BL: tun0 10.0.0.1/24 and fd00::1/64, the demo at $BL_SHORT as $OURS_IP and $OURS_IP6"
    setup_tun_netns "$NS_BL"
fi

# Starts smoltcp_serve on $NS_SM's tun0 (no signal handling of its own:
# SIGTERM ends it, and smoltcp keeps no state worth releasing).
smoltcp_pid=""
start_smoltcp() {
    ip netns exec "$NS_SM" "$SMOLTCP" --tun tun0 --addr "$OURS_IP" --addr6 "$OURS_IP6" \
        >"$TMP/smoltcp.log" 2>&1 &
    smoltcp_pid=$!
    pids+=("$smoltcp_pid")
}

# The relay set-up (not needed for --churn or --only compare).
if ((churn == 0)) && [[ $only != compare ]]; then
    log "namespaces $NS_RC <-> $NS_RS: tunA, tunB, demo kernel-serve on $RELAY_IP and $RELAY_IP6 behind tun_relay"
    add_netns "$NS_RC"
    add_netns "$NS_RS"
    ip -n "$NS_RC" tuntap add dev tunA mode tun
    ip -n "$NS_RS" tuntap add dev tunB mode tun
    ip -n "$NS_RC" addr add 10.0.2.1/24 dev tunA
    ip -n "$NS_RS" addr add "$RELAY_IP/24" dev tunB
    ip -n "$NS_RC" -6 addr add fd00:2::1/64 dev tunA nodad
    ip -n "$NS_RS" -6 addr add "$RELAY_IP6/64" dev tunB nodad
    ip -n "$NS_RC" link set tunA up
    ip -n "$NS_RS" link set tunB up
    ip netns exec "$NS_RS" "$DEMO" kernel-serve --listen "$RELAY_IP" >"$TMP/relay-kernel.log" 2>&1 &
    pids+=($!)
    ip netns exec "$NS_RS" "$DEMO" kernel-serve --listen "$RELAY_IP6" >"$TMP/relay-kernel6.log" 2>&1 &
    pids+=($!)
fi

# Starts tun_relay in mode $1 between tunA and tunB and waits (up to 10 s)
# until it has attached to both.
relay_pid=""
start_relay() {
    local mode=$1 i
    ip netns exec "$NS_RC" "$RELAY" --mode "$mode" --a tunA --b tunB --netns-b "$NS_RS" \
        >"$TMP/relay-$mode.log" 2>&1 &
    relay_pid=$!
    pids+=("$relay_pid")
    for ((i = 0; i < 100; i++)); do
        grep -qs 'ready$' "$TMP/relay-$mode.log" && return 0
        kill -0 "$relay_pid" 2>/dev/null || die "tun_relay --mode $mode failed"
        sleep 0.1
    done
    die "tun_relay --mode $mode did not attach within 10 s"
}

log "namespaces $NS_KC <-> $NS_KS: veth, demo kernel-serve on $KERN_IP and $KERN_IP6"
add_netns "$NS_KC"
add_netns "$NS_KS"
ip -n "$NS_KC" link add veth0 type veth peer name veth1 netns "$NS_KS"
ip -n "$NS_KC" addr add 10.0.1.1/24 dev veth0
ip -n "$NS_KS" addr add "$KERN_IP/24" dev veth1
ip -n "$NS_KC" -6 addr add fd00:1::1/64 dev veth0 nodad
ip -n "$NS_KS" -6 addr add "$KERN_IP6/64" dev veth1 nodad
ip -n "$NS_KC" link set veth0 up
ip -n "$NS_KS" link set veth1 up
if ((compare && idle_n > 0)); then
    ip -n "$NS_KS" addr add "$KERN_IDLE_IP/24" dev veth1
fi
# kernel-serve binds every service on one address: one for each family.
ip netns exec "$NS_KS" "$DEMO" kernel-serve --listen "$KERN_IP" >"$TMP/kernel.log" 2>&1 &
KERN_PID=$!
pids+=("$KERN_PID")
ip netns exec "$NS_KS" "$DEMO" kernel-serve --listen "$KERN_IP6" >"$TMP/kernel6.log" 2>&1 &
pids+=($!)

# Drops PCT% of packets in and out of DEV in namespace NS.
add_loss() {
    local ns=$1 dev=$2
    ip netns exec "$ns" nft -f - <<EOF
table inet btloss {
    chain in { type filter hook input priority 0; iifname "$dev" numgen random mod 100 < $loss drop; }
    chain out { type filter hook output priority 0; oifname "$dev" numgen random mod 100 < $loss drop; }
}
EOF
}
if ((loss > 0)); then
    log "dropping $loss% of packets both ways on the client interfaces"
    # The hooks see the kernel's GSO super-packets (up to 64 KiB, and veth
    # passes them through whole), so without this one "packet" dropped
    # could be 45 segments. One segment per skb makes the loss per
    # MTU-sized packet on both links, as on the wire. On tun0 with
    # --offload on this also stops the kernel's TCP from building
    # super-segments towards us (it sizes them by the device's limit), so
    # under loss that column measures checksum offload and our own
    # super-segments, which the input hook still sees whole.
    ip -n "$NS_OURS" link set dev tun0 gso_max_segs 1
    ip -n "$NS_KC" link set dev veth0 gso_max_segs 1
    ip -n "$NS_KS" link set dev veth1 gso_max_segs 1
    add_loss "$NS_OURS" tun0
    add_loss "$NS_KC" veth0
    # The same on smoltcp's, the baseline's and the relay's client side.
    if [[ $only != compare ]]; then
        ip -n "$NS_SM" link set dev tun0 gso_max_segs 1
        add_loss "$NS_SM" tun0
    fi
    if [[ -n $baseline ]]; then
        ip -n "$NS_BL" link set dev tun0 gso_max_segs 1
        add_loss "$NS_BL" tun0
    fi
    if ((churn == 0)) && [[ $only != compare ]]; then
        ip -n "$NS_RC" link set dev tunA gso_max_segs 1
        ip -n "$NS_RS" link set dev tunB gso_max_segs 1
        add_loss "$NS_RC" tunA
    fi
fi

# Waits up to 10 s for HTTP on $2 from namespace $1.
wait_up() {
    local ns=$1 ip=$2 i
    for ((i = 0; i < 100; i++)); do
        if ip netns exec "$ns" curl -gs -o /dev/null -m 1 "http://$(urlhost "$ip")/"; then
            return 0
        fi
        sleep 0.1
    done
    die "server at $ip in $ns did not come up within 10 s"
}
wait_up "$NS_KC" "$KERN_IP"
wait_up "$NS_KC" "$KERN_IP6"

# --- the client-side measurements ------------------------------------------
cat >"$TMP/client.py" <<'PY'
"""Bounded client-side measurements; prints one line of numbers on stdout."""
import random, resource, socket, statistics, sys, threading, time

DEADLINE = time.monotonic() + 120  # no single measurement runs longer
# (but churn, which runs for as long as it is asked, at most 600 s)
TIMEOUT = 5.0


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def conn(ip, port):
    s = socket.create_connection((ip, port), timeout=TIMEOUT)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_to_eof(s):
    n = 0
    while True:
        b = s.recv(65536)
        if not b:
            return n
        n += len(b)


def get_latency(ip, n):
    """Per-request time of GET / on a fresh connection each (connect,
    request, whole response, close), in microseconds."""
    req = b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
    out = []
    for _ in range(n):
        if time.monotonic() > DEADLINE:
            break
        t = time.perf_counter()
        s = conn(ip, 80)
        s.sendall(req)
        if read_to_eof(s) == 0:
            raise SystemExit("empty response")
        s.close()
        out.append((time.perf_counter() - t) * 1e6)
    return out


def one_conn(ip):
    # Open, half-close, wait for the server's FIN: a full connection
    # lifecycle with the server taking part (the HTTP server closes on EOF).
    s = conn(ip, 80)
    s.shutdown(socket.SHUT_WR)
    read_to_eof(s)
    s.close()


def cps(ip, n, par):
    done = [0] * par
    errors = []

    def worker(i):
        try:
            for _ in range(n // par):
                if time.monotonic() > DEADLINE:
                    return
                one_conn(ip)
                done[i] += 1
        except OSError as e:
            errors.append(e)

    t = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(par)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    el = time.perf_counter() - t
    if errors:
        print(f"cps: {len(errors)} errors, first: {errors[0]}", file=sys.stderr)
    return sum(done) / el


def rpc(ip, n):
    s = conn(ip, 7070)
    f = s.makefile("rb")
    out = []
    for i in range(n):
        if time.monotonic() > DEADLINE:
            break
        msg = b'{"jsonrpc":"2.0","method":"add","params":[2,3],"id":%d}\n' % i
        t = time.perf_counter()
        s.sendall(msg)
        line = f.readline()
        out.append((time.perf_counter() - t) * 1e6)
        if b'"result":5' not in line:
            raise SystemExit(f"bad reply {line!r}")
    s.close()
    return out


def churn(ip, seconds):
    """Sequential HTTP/1.0 GET / for `seconds`: the server answers and
    closes first, so it keeps each four-tuple in TIME-WAIT while the
    client's ports come round again. Returns requests per 10 s interval
    and the failures (errors or requests slower than TIMEOUT)."""
    req = b"GET / HTTP/1.0\r\n\r\n"
    start = time.monotonic()
    end = start + seconds
    buckets = [0] * ((seconds + 9) // 10)
    failures = 0
    while (now := time.monotonic()) < end:
        try:
            s = conn(ip, 80)
            s.sendall(req)
            if read_to_eof(s) == 0:
                failures += 1
            s.close()
            buckets[min(len(buckets) - 1, int((now - start) // 10))] += 1
        except OSError:
            failures += 1
    return buckets, failures


def rss_kib(pid):
    """The process's resident set in KiB, or None once it has gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def idle(ip, n, pid):
    """Opens n connections to echo on ip that send nothing, and measures
    server process pid's VmRSS before and after. Prints: KiB before,
    KiB after (-1: the server died), connections held, seconds to open
    them, seconds waited for the RSS to settle, echoes that came back of
    those tried, and the first error ("-": none)."""
    want = n + 256
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        # As root the hard limit may be raised as well.
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(want, hard)))
    deadline = time.monotonic() + 150  # opening, settling, checking
    before = rss_kib(pid)
    if before is None:
        raise SystemExit(f"no process {pid}")
    socks, err = [], "-"
    t = time.perf_counter()
    try:
        for _ in range(n):
            if time.monotonic() > deadline - 40:
                err = "out of time opening"
                break
            socks.append(socket.create_connection((ip, 7), timeout=TIMEOUT))
    except OSError as e:
        err = str(e) or type(e).__name__
    opened = time.perf_counter() - t
    # Accepting lags connecting (the kernel's connect returns on the
    # SYN-ACK, and the blocking demo starts a thread per connection), so
    # wait until the RSS holds still: at least 2 s, then until two
    # readings 1 s apart differ by under 64 KiB, at most 30 s.
    time.sleep(2)
    waited, prev = 2, rss_kib(pid)
    while prev is not None and waited < 30 and time.monotonic() < deadline - 8:
        time.sleep(1)
        waited += 1
        cur = rss_kib(pid)
        if cur is None or abs(cur - prev) < 64:
            prev = cur
            break
        prev = cur
    after = rss_kib(pid)
    # Are they served? Echo through the first, the middle, the last and
    # seven more picked at random (seeded: the same ones each run).
    ok = tried = 0
    if socks and after is not None:
        picks = {0, len(socks) // 2, len(socks) - 1}
        picks.update(random.Random(1).sample(range(len(socks)), min(7, len(socks))))
        for i in sorted(picks):
            if time.monotonic() > deadline:
                break
            tried += 1
            msg = b"idle %d\n" % i
            try:
                s = socks[i]
                s.settimeout(TIMEOUT)
                s.sendall(msg)
                got = b""
                while len(got) < len(msg):
                    b = s.recv(len(msg) - len(got))
                    if not b:
                        break
                    got += b
                ok += got == msg
            except OSError:
                pass
    for s in socks:
        s.close()
    after = -1 if after is None else after
    print(before, after, len(socks), f"{opened:.1f}", waited, ok, tried, err.replace(" ", "_"))


what, ip, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
if what == "latency":
    xs = get_latency(ip, n)
    print(f"{statistics.median(xs):.0f} {pct(xs, 99):.0f} {len(xs)}")
elif what == "cps":
    print(f"{cps(ip, n, int(sys.argv[4])):.0f}")
elif what == "churn":
    buckets, failures = churn(ip, n)
    print(" ".join(f"{b / 10:.0f}" for b in buckets), failures)
elif what == "rpc":
    xs = rpc(ip, n)
    print(f"{statistics.median(xs):.1f} {pct(xs, 99):.1f} {len(xs)} {statistics.mean(xs):.1f}")
elif what == "idle":
    idle(ip, n, int(sys.argv[4]))
else:
    raise SystemExit(f"unknown measurement {what}")
PY

# Runs the python client in namespace $1 with the remaining arguments.
client() {
    local ns=$1
    shift
    timeout 180 ip netns exec "$ns" python3 "$TMP/client.py" "$@"
}

# Prints the median of the numbers on stdin.
median() {
    sort -g | awk '{a[NR] = $1} END { if (NR == 0) print "nan"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# Median download speed in bytes/s over DL_RUNS runs.
download() {
    local ns=$1 ip=$2 i
    for ((i = 0; i < DL_RUNS; i++)); do
        ip netns exec "$ns" curl -gsS -o /dev/null --max-time 120 \
            -w '%{speed_download}\n' "http://$(urlhost "$ip")/bytes/$DL_BYTES"
    done | median
}

head -c "$UL_BYTES" /dev/zero >"$TMP/upload.bin"
# Median upload speed in bytes/s over DL_RUNS runs (the body streams from a
# file; `Expect:` is cleared so no 100-continue round trip is counted).
upload() {
    local ns=$1 ip=$2 i
    for ((i = 0; i < DL_RUNS; i++)); do
        ip netns exec "$ns" curl -gsS -o /dev/null --max-time 120 -H 'Expect:' \
            -X POST -T "$TMP/upload.bin" -w '%{speed_upload}\n' "http://$(urlhost "$ip")/sha256"
    done | median
}

declare -A R
measure() {
    local side=$1 ns=$2 ip=$3 lat rpcs
    log "$side: download ${DL_RUNS}x $((DL_BYTES >> 20)) MiB"
    R[$side.dl]=$(download "$ns" "$ip")
    log "$side: upload ${DL_RUNS}x $((UL_BYTES >> 20)) MiB"
    R[$side.ul]=$(upload "$ns" "$ip")
    log "$side: $LAT_N x GET / on fresh connections"
    lat=$(client "$ns" latency "$ip" "$LAT_N")
    R[$side.lat50]=$(awk '{print $1}' <<<"$lat")
    R[$side.lat99]=$(awk '{print $2}' <<<"$lat")
    log "$side: $CPS_N connections, sequential and $PAR in parallel"
    R[$side.cps1]=$(client "$ns" cps "$ip" "$CPS_N" 1)
    R[$side.cpsN]=$(client "$ns" cps "$ip" "$CPS_N" "$PAR")
    log "$side: $RPC_N JSON-RPC calls on one connection"
    rpcs=$(client "$ns" rpc "$ip" "$RPC_N")
    R[$side.rpc50]=$(awk '{print $1}' <<<"$rpcs")
    R[$side.rpc99]=$(awk '{print $2}' <<<"$rpcs")
}

# Bulk download and upload only (the relays: the device's ceiling), into
# keys dl$4 and ul$4 ($4 empty for IPv4, 6 for IPv6).
measure_bulk() {
    local side=$1 ns=$2 ip=$3 v=${4:-}
    log "$side: download ${DL_RUNS}x $((DL_BYTES >> 20)) MiB from $ip"
    R[$side.dl$v]=$(download "$ns" "$ip")
    log "$side: upload ${DL_RUNS}x $((UL_BYTES >> 20)) MiB to $ip"
    R[$side.ul$v]=$(upload "$ns" "$ip")
}

# The IPv6 rows: bulk download and upload, connections/s, at address $3.
measure6() {
    local side=$1 ns=$2 ip=$3
    wait_up "$ns" "$ip"
    measure_bulk "$side" "$ns" "$ip" 6
    log "$side: $CPS_N connections to $ip, sequential and $PAR in parallel"
    R[$side.cps16]=$(client "$ns" cps "$ip" "$CPS_N" 1)
    R[$side.cpsN6]=$(client "$ns" cps "$ip" "$CPS_N" "$PAR")
}

if ((churn > 0)); then
    # Connection churn only: ours (offload on), then the kernel.
    declare -A C
    start_ours on
    wait_up "$NS_OURS" "$OURS_IP"
    log "ours: sequential HTTP/1.0 requests for $churn s"
    C[ours]=$(timeout $((churn + 60)) ip netns exec "$NS_OURS" python3 "$TMP/client.py" churn "$OURS_IP" "$churn")
    C[ours.tw]=$(ip netns exec "$NS_OURS" curl -s "http://$OURS_IP/stats" |
        grep -o '"tcp_time_wait_reopened": *[0-9]*' | grep -o '[0-9]*$' || echo "n/a")
    stop_ours
    start_smoltcp
    wait_up "$NS_SM" "$OURS_IP"
    log "smoltcp: sequential HTTP/1.0 requests for $churn s"
    C[smoltcp]=$(timeout $((churn + 60)) ip netns exec "$NS_SM" python3 "$TMP/client.py" churn "$OURS_IP" "$churn")
    stop_pid "$smoltcp_pid" TERM smoltcp_serve
    log "kernel: sequential HTTP/1.0 requests for $churn s"
    C[kernel]=$(timeout $((churn + 60)) ip netns exec "$NS_KC" python3 "$TMP/client.py" churn "$KERN_IP" "$churn")
    echo
    echo "bench-tun.sh --churn $churn: $(date -u '+%Y-%m-%d %H:%M UTC'), load: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "requests/s in each 10 s, sequential HTTP/1.0, the server closing first"
    echo
    for side in ours smoltcp kernel; do
        read -ra v <<<"${C[$side]}"
        fails=${v[${#v[@]} - 1]}
        unset 'v[${#v[@]}-1]'
        printf "%-7s %s   failures: %s\n" "$side" "${v[*]}" "$fails"
    done
    echo "ours: TIME-WAIT connections reopened by a new SYN (RFC 6191): ${C[ours.tw]}"
    exit 0
fi

# --- ours against a baseline (--baseline REV, --only compare) -------------
# Starts demo binary $2 in namespace $1 on its tun0, --offload on, with
# room for the idle connections, logging to $TMP/cmp-$3.log; its PID goes
# to cmp_pid (ip netns exec execs the demo: the same process).
cmp_pid=""
start_cmp() {
    local ns=$1 bin=$2 name=$3
    ip netns exec "$ns" "$bin" --offload on --addr6 "$OURS_IP6" --max-connections "$CMP_MAXCONN" \
        >"$TMP/cmp-$name.log" 2>&1 &
    cmp_pid=$!
    pids+=("$cmp_pid")
}

# Stops process $1 with SIGINT and waits for it, killing it after 20 s:
# a server that has just held thousands of connections may be slow to go
# (the blocking demo joins a thread for each), and the table should still
# be printed, saying so.
stop_cmp() {
    local pid=$1 what=$2 i
    kill -INT "$pid" 2>/dev/null || true
    for ((i = 0; i < 200; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "$what did not stop within 20 s of SIGINT: killed"
        R[cmp.notes]+="$what did not stop within 20 s of SIGINT and was killed. "
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

# CPU time (user + system, every thread) process $1 has used, in clock
# ticks (CLK_TCK a second). Throughput on this shared VM swings with the
# host's load; the server's CPU per byte sent holds much steadier.
CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() {
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# The offloads demo $1's log names (the baseline's too), or "?".
cmp_granted() {
    local g
    g=$(grep -o 'offloads: [^(]*' "$TMP/cmp-$1.log" | head -n 1 | sed 's/ *$//') || true
    echo "${g#offloads: }"
}

# Appends one run of RPC_CMP_N JSON-RPC calls from namespace $1 to $2 to
# side $3's files with suffix $4 (median, p99, mean).
rpc_run() {
    local ns=$1 ip=$2 side=$3 sfx=$4 r50 r99 rn rmean
    shift 4
    read -r r50 r99 rn rmean <<<"$("$@" "$TMP/client.py" rpc "$ip" "$RPC_CMP_N")"
    ((rn == RPC_CMP_N)) || log "$side: only $rn of $RPC_CMP_N JSON-RPC calls in time"
    echo "$r50" >>"$TMP/cmp-$side.rpc${sfx}50"
    echo "$r99" >>"$TMP/cmp-$side.rpc${sfx}99"
    echo "$rmean" >>"$TMP/cmp-$side.rpc${sfx}mean"
}

# The JSON-RPC round trip twice: as the scheduler places client and
# server, and with both on CPU 0 (the server's every thread: taskset -a).
# On this VM a round trip that crosses to the other vCPU waits for it to
# wake, some 40 us more, and which one happens depends on the load from
# elsewhere: unpinned runs are bimodal. On one CPU the time is the work
# of both sides and their context switches, the server's own cost.
rpc_both() {
    local ns=$1 ip=$2 side=$3 pid=$4
    rpc_run "$ns" "$ip" "$side" "" timeout 180 ip netns exec "$ns" python3
    taskset -a -p -c 0 "$pid" >/dev/null
    rpc_run "$ns" "$ip" "$side" 1 timeout 180 ip netns exec "$ns" taskset -c 0 python3
    taskset -a -p -c "0-$(($(nproc) - 1))" "$pid" >/dev/null
}

compare_table() {
    local sides=(ours) side ns ip run i k t0 t1
    local -A cns=([ours]=$NS_OURS [blocking]=$NS_BL [kernel]=$NS_KC)
    local -A cip=([ours]=$OURS_IP [blocking]=$OURS_IP [kernel]=$KERN_IP)
    local -A cpid=([kernel]=$KERN_PID)
    if [[ -n $baseline ]]; then sides+=(blocking); fi
    sides+=(kernel)
    start_cmp "$NS_OURS" "$DEMO" ours
    cpid[ours]=$cmp_pid
    if [[ -n $baseline ]]; then
        start_cmp "$NS_BL" "$BL_DEMO" blocking
        cpid[blocking]=$cmp_pid
    fi
    for side in "${sides[@]}"; do
        wait_up "${cns[$side]}" "${cip[$side]}"
    done
    R[cmp-ours.granted]=$(cmp_granted ours)
    if [[ -n $baseline ]]; then R[cmp-blocking.granted]=$(cmp_granted blocking); fi
    # Interleaved: each run measures every server once, starting one
    # further along each time, so no server always goes first.
    for ((run = 0; run < CMP_RUNS; run++)); do
        for ((i = 0; i < ${#sides[@]}; i++)); do
            side=${sides[(i + run) % ${#sides[@]}]}
            ns=${cns[$side]} ip=${cip[$side]}
            log "compare $((run + 1))/$CMP_RUNS, $side: download $((DL_BYTES >> 20)) MiB," \
                "$CPS_N connections (sequential, $PAR parallel), $RPC_CMP_N JSON-RPC calls twice (unpinned, one CPU)"
            t0=$(cpu_ticks "${cpid[$side]}")
            ip netns exec "$ns" curl -sS -o /dev/null --max-time 120 -w '%{speed_download}\n' \
                "http://$ip/bytes/$DL_BYTES" >>"$TMP/cmp-$side.dl"
            t1=$(cpu_ticks "${cpid[$side]}")
            # ms of the server's CPU per GiB sent.
            awk -v t="$((t1 - t0))" -v hz="$CLK_TCK" -v b="$DL_BYTES" \
                'BEGIN { printf "%.0f\n", t / hz * 1000 / (b / 1073741824) }' >>"$TMP/cmp-$side.cpu"
            client "$ns" cps "$ip" "$CPS_N" 1 >>"$TMP/cmp-$side.cps1"
            client "$ns" cps "$ip" "$CPS_N" "$PAR" >>"$TMP/cmp-$side.cpsN"
            rpc_both "$ns" "$ip" "$side" "${cpid[$side]}"
        done
    done
    for side in "${sides[@]}"; do
        for k in dl cpu cps1 cpsN rpc50 rpc99 rpcmean rpc150 rpc199 rpc1mean; do
            R[cmp-$side.$k]=$(median <"$TMP/cmp-$side.$k")
        done
    done
    stop_cmp "${cpid[ours]}" "the demo"
    if [[ -n $baseline ]]; then stop_cmp "${cpid[blocking]}" "the demo at $BL_SHORT"; fi

    # Memory per idle connection: each server started afresh (the heap of
    # a process that has just moved gigabytes would hide what the
    # connections take), alone, and stopped after.
    if ((idle_n > 0)); then
        for side in "${sides[@]}"; do
            case $side in
                ours) start_cmp "$NS_OURS" "$DEMO" ours-idle ;;
                blocking) start_cmp "$NS_BL" "$BL_DEMO" blocking-idle ;;
                kernel)
                    # One descriptor per connection: raise the limit for it.
                    (
                        ulimit -n $((idle_n + 1024))
                        exec ip netns exec "$NS_KS" "$DEMO" kernel-serve --listen "$KERN_IDLE_IP" \
                            --max-connections "$CMP_MAXCONN"
                    ) >"$TMP/cmp-kernel-idle.log" 2>&1 &
                    cmp_pid=$!
                    pids+=("$cmp_pid")
                    ;;
            esac
            ns=${cns[$side]} ip=${cip[$side]}
            [[ $side == kernel ]] && ip=$KERN_IDLE_IP
            # Room for the client's ports next to any TIME-WAIT left over.
            ip netns exec "$ns" sysctl -qw net.ipv4.ip_local_port_range="1024 65000"
            wait_up "$ns" "$ip"
            log "$side: $idle_n idle connections to echo, VmRSS of PID $cmp_pid before and after"
            R[cmp-$side.idle]=$(timeout 200 ip netns exec "$ns" python3 "$TMP/client.py" \
                idle "$ip" "$idle_n" "$cmp_pid") || R[cmp-$side.idle]=""
            log "$side: ${R[cmp-$side.idle]:-the client failed}"
            stop_cmp "$cmp_pid" "$side (idle)"
        done
    fi
    print_compare "${sides[@]}"
}

# $1 dashes, for a table's rule.
dashes() { printf -- '-%.0s' $(seq "$1"); }

# One row of the comparison: label (with unit), divisor, format, then
# ours', the baseline's and the kernel's figures (empty: not measured).
cmp_row() {
    awk -v l="$1" -v d="$2" -v f="$3" -v a="$4" -v b="$5" -v k="$6" '
    function fig(x) { return (x == "" || x == "nan") ? "-" : sprintf(f, x / d) }
    function ratio(x, y) { return (x == "" || y == "" || x == "nan" || y == "nan" || y + 0 == 0) ? "-" : sprintf("%.2fx", x / y) }
    BEGIN { printf "| %-52s | %12s | %18s | %12s | %14s | %12s |\n", l, fig(a), fig(b), fig(k), ratio(a, b), ratio(a, k) }'
}

# Field $2 (1-based) of side $1's idle result, empty if none.
idle_field() {
    local v
    read -ra v <<<"${R[cmp-$1.idle]:-}"
    echo "${v[$2 - 1]:-}"
}

# KiB of RSS growth per idle connection held by side $1 (empty: none held
# or the server died; the text says which).
idle_per_conn() {
    awk -v b="$(idle_field "$1" 1)" -v a="$(idle_field "$1" 2)" -v n="$(idle_field "$1" 3)" \
        'BEGIN { if (b != "" && a + 0 >= 0 && n + 0 > 0) printf "%.2f", (a - b) / n }'
}

print_compare() {
    local sides=("$@") side c
    local bl_label="blocking (-)"
    [[ -n $baseline ]] && bl_label="blocking ($BL_SHORT)"
    echo
    echo "ours against $([[ -n $baseline ]] && echo "the demo at $BL_SHORT and ")the kernel: $(date -u '+%Y-%m-%d %H:%M UTC'), loss ${loss}%," \
        "$([[ $quick -eq 1 ]] && echo quick || echo full) run, load: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "ours: ${DEMO_BIN:-$(git -c safe.directory="$ROOT" -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')}," \
        "offloads granted: ${R[cmp-ours.granted]:-?}$([[ -n $baseline ]] && echo "; $BL_SHORT: ${R[cmp-blocking.granted]:-?}")"
    echo
    printf "| %-52s | %12s | %18s | %12s | %14s | %12s |\n" "workload" "ours (async)" "$bl_label" "kernel" "async/blocking" "async/kernel"
    printf "|%s|%s|%s|%s|%s|%s|\n" "$(dashes 54)" "$(dashes 14)" "$(dashes 20)" "$(dashes 14)" "$(dashes 16)" "$(dashes 14)"
    # cmp_row with the three columns' values of key $4.
    crow() {
        cmp_row "$1" "$2" "$3" "${R[cmp-ours.$4]:-}" "${R[cmp-blocking.$4]:-}" "${R[cmp-kernel.$4]:-}"
    }
    crow "download $((DL_BYTES >> 20)) MiB, median of $CMP_RUNS (MB/s)" 1e6 "%.1f" dl
    crow "server CPU per GiB downloaded, median (ms)" 1 "%.0f" cpu
    crow "connections/s, sequential, median of $CMP_RUNS (conn/s)" 1 "%.0f" cps1
    crow "connections/s, $PAR parallel, median of $CMP_RUNS (conn/s)" 1 "%.0f" cpsN
    crow "JSON-RPC add round trip, one CPU: median (us)" 1 "%.1f" rpc150
    crow "JSON-RPC add round trip, one CPU: mean (us)" 1 "%.1f" rpc1mean
    crow "JSON-RPC add round trip, one CPU: p99 (us)" 1 "%.1f" rpc199
    crow "JSON-RPC add round trip, unpinned: median (us)" 1 "%.1f" rpc50
    crow "JSON-RPC add round trip, unpinned: mean (us)" 1 "%.1f" rpcmean
    crow "JSON-RPC add round trip, unpinned: p99 (us)" 1 "%.1f" rpc99
    if ((idle_n > 0)); then
        for c in ours blocking kernel; do R[cmp-$c.kib]=$(idle_per_conn "$c"); done
        for c in ours blocking kernel; do R[cmp-$c.held]=$(idle_field "$c" 3); done
        for c in ours blocking kernel; do R[cmp-$c.rss0]=$(idle_field "$c" 1); done
        for c in ours blocking kernel; do R[cmp-$c.rss1]=$(idle_field "$c" 2); done
        crow "idle connections held, of $idle_n" 1 "%.0f" held
        crow "RSS before them (MiB)" 1024 "%.1f" rss0
        crow "RSS with them (MiB)" 1024 "%.1f" rss1
        crow "RSS growth per idle connection (KiB)" 1 "%.2f" kib
    fi
    echo
    echo "Medians of $CMP_RUNS runs, interleaved (each run: one download, $CPS_N connections"
    echo "sequential and $PAR in parallel, $RPC_CMP_N add calls on one connection to 7070;"
    echo "the RPC rows are the median over runs of each run's median, mean and p99)."
    echo "JSON-RPC one CPU: the client and every server thread on CPU 0 (taskset), the"
    echo "server's own cost; unpinned: as the scheduler places them, where a round trip"
    echo "to the other vCPU waits for it to wake (about 40 us more on this VM): bimodal."
    echo "ours: this tree's demo; blocking: the demo at --baseline, each on a tun0 of its"
    echo "own with --offload on; kernel: this tree's demo kernel-serve over veth."
    echo "Server CPU: user + system time of the server process (every thread) over the"
    echo "download; the kernel's covers only what its TCP did in kernel-serve's system"
    echo "calls, not its softirq work. Ratios are async / peer: above 1 is better for"
    echo "MB/s and conn/s, worse for ms, us and KiB."
    # The runs themselves, in the order measured: on this noisy machine a
    # median can hide a bimodal column.
    echo "Each run (download MB/s, server CPU ms per GiB, conn/s sequential and $PAR"
    echo "parallel, RPC median us on one CPU and unpinned):"
    for side in "${sides[@]}"; do
        printf "  %-8s" "$side"
        for c in dl cpu cps1 cpsN rpc150 rpc50; do
            awk -v c="$c" '{ printf (c == "dl" ? " %.0f" : " %s"), (c == "dl" ? $1 / 1e6 : $1) } END { printf " |" }' \
                "$TMP/cmp-$side.$c"
        done
        echo
    done
    if ((idle_n > 0)); then
        echo "Idle: each server started afresh, $idle_n connections to echo (port 7) that"
        echo "send nothing; VmRSS once steady. The kernel's figure is kernel-serve's own"
        echo "memory only: the kernel's socket memory is not in a process's RSS."
        for side in "${sides[@]}"; do
            local v
            read -ra v <<<"${R[cmp-$side.idle]:-}"
            if ((${#v[@]} < 8)); then
                echo "  $side: the idle client failed (see the log above)"
                continue
            fi
            echo "  $side: $((v[2])) held, opened in ${v[3]} s, RSS steady after ${v[4]} s," \
                "echo through ${v[5]} of ${v[6]} afterwards$([[ ${v[7]} != - ]] && echo ", first error: ${v[7]//_/ }")$( ((v[1] < 0)) && echo "; the server DIED")"
        done
    fi
    if [[ -n ${R[cmp.notes]:-} ]]; then echo "${R[cmp.notes]}"; fi
}

if [[ $only == compare ]]; then
    compare_table
    exit 0
fi

# Ours twice on the same tun0, each run checking what the kernel granted.
for mode in on off; do
    start_ours "$mode"
    wait_up "$NS_OURS" "$OURS_IP"
    granted=$(grep -o 'offloads: [^(]*' "$TMP/ours-$mode.log" | head -n 1 | sed 's/ *$//')
    [[ -n $granted ]] || die "the demo's log does not name its offloads"
    R[$mode.granted]=${granted#offloads: }
    log "ours --offload $mode: ${R[$mode.granted]}"
    measure "$mode" "$NS_OURS" "$OURS_IP"
    measure6 "$mode" "$NS_OURS" "$OURS_IP6"
    stop_ours
done
start_smoltcp
wait_up "$NS_SM" "$OURS_IP"
measure smoltcp "$NS_SM" "$OURS_IP"
measure6 smoltcp "$NS_SM" "$OURS_IP6"
stop_pid "$smoltcp_pid" TERM smoltcp_serve
measure kernel "$NS_KC" "$KERN_IP"
measure6 kernel "$NS_KC" "$KERN_IP6"
# The device's ceiling: kernel to kernel through tunA, the relay and tunB.
wait_up "$NS_RS" "$RELAY_IP"
wait_up "$NS_RS" "$RELAY_IP6"
for mode in "${RELAY_MODES[@]}"; do
    start_relay "$mode"
    wait_up "$NS_RC" "$RELAY_IP"
    measure_bulk "relay-$mode" "$NS_RC" "$RELAY_IP"
    wait_up "$NS_RC" "$RELAY_IP6"
    measure_bulk "relay-$mode" "$NS_RC" "$RELAY_IP6" 6
    stop_pid "$relay_pid" TERM "tun_relay --mode $mode"
done

# --- the table -------------------------------------------------------------
# One row: label (with unit), then the unit's divisor and format, then the
# figures of every column in COLS order (empty: not measured).
COLS=(on off smoltcp kernel relay-plain relay-vnet relay-tun-rs)
row() { # label, unit, divisor, format, key
    local l=$1 u=$2 d=$3 f=$4 k=$5 c vals=()
    for c in "${COLS[@]}"; do
        vals+=("${R[$c.$k]:-}")
    done
    awk -v l="$l" -v u="$u" -v d="$d" -v f="$f" -v on="${vals[0]}" -v off="${vals[1]}" \
        -v sm="${vals[2]}" -v k="${vals[3]}" -v rp="${vals[4]}" -v rv="${vals[5]}" -v rt="${vals[6]}" '
    function fig(x) { return (x == "" || x == "nan") ? "-" : sprintf(f, x / d) }
    function ratio(a, b) { return (a == "" || b == "" || a == "nan" || b == "nan" || b + 0 == 0) ? "-" : sprintf("%.2fx", a / b) }
    BEGIN {
        printf "| %-44s | %9s | %9s | %9s | %9s | %9s | %9s | %9s | %7s | %7s | %7s | %7s | %7s |\n",
            l " (" u ")", fig(on), fig(off), fig(sm), fig(k), fig(rp), fig(rv), fig(rt),
            ratio(on, k), ratio(off, k), ratio(on, sm), ratio(off, sm), ratio(on, rv)
    }'
}
echo
echo "bench-tun.sh: $(date -u '+%Y-%m-%d %H:%M UTC'), loss ${loss}%, $([[ $quick -eq 1 ]] && echo quick || echo full) run, load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "offloads granted: --offload on: ${R[on.granted]}; --offload off: ${R[off.granted]}"
echo
printf "| %-44s | %9s | %9s | %9s | %9s | %9s | %9s | %9s | %7s | %7s | %7s | %7s | %7s |\n" "workload" \
    "ours, on" "ours, off" "smoltcp" "kernel" "relay" "relay" "relay" "on/kern" "off/kern" "on/smol" "off/smol" "on/vnet"
printf "| %-44s | %9s | %9s | %9s | %9s | %9s | %9s | %9s | %7s | %7s | %7s | %7s | %7s |\n" "" \
    "" "" "over TUN" "over veth" "plain" "vnet" "tun-rs" "" "" "" "" ""
printf "|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|\n" "$(dashes 46)" "$(dashes 11)" "$(dashes 11)" \
    "$(dashes 11)" "$(dashes 11)" "$(dashes 11)" "$(dashes 11)" "$(dashes 11)" \
    "$(dashes 9)" "$(dashes 9)" "$(dashes 9)" "$(dashes 9)" "$(dashes 9)"
row "download $((DL_BYTES >> 20)) MiB, median of $DL_RUNS" "MB/s" 1e6 "%.1f" dl
row "download v6 $((DL_BYTES >> 20)) MiB, median of $DL_RUNS" "MB/s" 1e6 "%.1f" dl6
row "download $((DL_BYTES >> 20)) MiB, median of $DL_RUNS" "Gbit/s" 1.25e8 "%.2f" dl
row "download v6 $((DL_BYTES >> 20)) MiB, median of $DL_RUNS" "Gbit/s" 1.25e8 "%.2f" dl6
row "upload POST /sha256 $((UL_BYTES >> 20)) MiB" "MB/s" 1e6 "%.1f" ul
row "upload v6 POST /sha256 $((UL_BYTES >> 20)) MiB" "MB/s" 1e6 "%.1f" ul6
row "upload POST /sha256 $((UL_BYTES >> 20)) MiB" "Gbit/s" 1.25e8 "%.2f" ul
row "upload v6 POST /sha256 $((UL_BYTES >> 20)) MiB" "Gbit/s" 1.25e8 "%.2f" ul6
row "GET / fresh conn, median of $LAT_N" "us" 1 "%.0f" lat50
row "GET / fresh conn, p99" "us" 1 "%.0f" lat99
row "connections/s, sequential" "conn/s" 1 "%.0f" cps1
row "connections/s v6, sequential" "conn/s" 1 "%.0f" cps16
row "connections/s, $PAR parallel" "conn/s" 1 "%.0f" cpsN
row "connections/s v6, $PAR parallel" "conn/s" 1 "%.0f" cpsN6
row "JSON-RPC add round trip, median of $RPC_N" "us" 1 "%.1f" rpc50
row "JSON-RPC add round trip, p99" "us" 1 "%.1f" rpc99
echo
echo "ours, on: demo --offload on; ours, off: demo --offload off; smoltcp: smoltcp_serve"
echo "(smoltcp 0.14, one thread, no offload) on the same TUN set-up; kernel: demo"
echo "kernel-serve over veth; relay: kernel to kernel through two TUNs and tun_relay"
echo "(bulk only). Ratios are ours / peer: above 1 is better for MB/s and conn/s,"
echo "worse for us. on/vnet: ours with offload against the relay's vnet ceiling."
echo "v6 rows: the same servers and links over IPv6 (ours and smoltcp at $OURS_IP6,"
echo "the kernel at $KERN_IP6, the relays' kernel at $RELAY_IP6)."
# Each column's IPv6 figure over its IPv4 one (above 1: faster over v6).
v6ratio() { # label, v4 key, v6 key
    local c vals=()
    for c in "${COLS[@]}"; do
        vals+=("${R[$c.$2]:-}/${R[$c.$3]:-}")
    done
    awk -v l="$1" -v vals="${vals[*]}" '
    function ratio(a, b) { return (a == "" || b == "" || a == "nan" || b == "nan" || a + 0 == 0) ? "-" : sprintf("%.2fx", b / a) }
    BEGIN {
        n = split(vals, v, " ")
        printf "| %-44s |", l
        for (i = 1; i <= n; i++) { split(v[i], p, "/"); printf " %9s |", ratio(p[1], p[2]) }
        printf "\n"
    }'
}
echo
printf "| %-44s | %9s | %9s | %9s | %9s | %9s | %9s | %9s |\n" "v6 / v4" \
    "ours, on" "ours, off" "smoltcp" "kernel" "relay" "relay" "relay"
printf "| %-44s | %9s | %9s | %9s | %9s | %9s | %9s | %9s |\n" "" \
    "" "" "" "" "plain" "vnet" "tun-rs"
printf "|%s|%s|%s|%s|%s|%s|%s|%s|\n" "$(dashes 46)" "$(dashes 11)" "$(dashes 11)" \
    "$(dashes 11)" "$(dashes 11)" "$(dashes 11)" "$(dashes 11)" "$(dashes 11)"
v6ratio "download" dl dl6
v6ratio "upload" ul ul6
v6ratio "connections/s, sequential" cps1 cps16
v6ratio "connections/s, $PAR parallel" cpsN cpsN6
echo
awk -v v="${R[relay-vnet.dl]:-}" -v t="${R[relay-tun-rs.dl]:-}" -v vu="${R[relay-vnet.ul]:-}" -v tu="${R[relay-tun-rs.ul]:-}" 'BEGIN {
    if (v != "" && t != "" && t + 0 > 0 && tu + 0 > 0)
        printf "offload layer: relay through ours (vnet) / through tun-rs: download %.2fx, upload %.2fx\n", v / t, vu / tu
}'

# --- the figures as CSV (--csv), for the charts of BENCHMARKS.md ----------
# One row per measured figure, in the table's units; a comment line first
# says which run they come from. The charts take the median of the rows
# with the same loss, workload and column, so runs can pile up.
write_csv() {
    local file=$1 k c v unit div fmt demo
    [[ -s $file ]] || echo "loss,workload,column,value,unit" >"$file"
    if [[ -n ${DEMO_BIN:-} ]]; then
        demo="demo $DEMO_BIN"
    else
        demo="demo at $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "an unknown commit")"
    fi
    echo "# run: $([[ $quick -eq 1 ]] && echo quick || echo full), $(date -u '+%Y-%m-%d %H:%M UTC'), $demo, load $(cut -d' ' -f1-3 /proc/loadavg), loss ${loss}%" >>"$file"
    for k in dl dl6 ul ul6 cps1 cps16 cpsN cpsN6 lat50 lat99 rpc50 rpc99; do
        case $k in
            dl* | ul*) unit=MB/s div=1e6 fmt=%.1f ;;
            cps*) unit=conn/s div=1 fmt=%.0f ;;
            lat*) unit=us div=1 fmt=%.0f ;;
            *) unit=us div=1 fmt=%.1f ;;
        esac
        for c in "${COLS[@]}"; do
            v=${R[$c.$k]:-}
            [[ -n $v && $v != nan ]] || continue
            awk -v l="$loss" -v k="$k" -v c="$c" -v v="$v" -v d="$div" -v f="$fmt" -v u="$unit" \
                'BEGIN { printf "%s,%s,%s," f ",%s\n", l, k, c, v / d, u }' >>"$file"
        done
    done
    # The repository's file stays its owner's, not root's.
    [[ -z ${SUDO_USER:-} ]] || chown "$SUDO_USER:" "$file" 2>/dev/null || true
    log "figures appended to $file"
}
if [[ -n $csv ]]; then
    write_csv "$csv"
fi

# The second table after the first (--baseline without --only).
if ((compare)); then
    compare_table
fi
