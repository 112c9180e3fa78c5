#!/usr/bin/env bash
# Flame graphs of the demo's bulk path: the stack serving a download
# (GET /bytes/N) and taking an upload (POST /sha256) over tun0, once with
# `--offload on` (TCP super-segments through the virtio-net header) and
# once with `--offload off` (one MTU-sized packet per system call: the
# path as it was before the offload work). Writes four SVGs:
#
#   OUT/offload-{on,off}-{download,upload}.svg  (OUT: benches/flame)
#
#   sudo scripts/flame.sh [OUT]
#
# Needs `perf` (software event cpu-clock is enough) and inferno
# (`cargo install inferno`). Everything runs in a namespace this script
# creates (fl<PID>) and deletes on exit; the root namespace is untouched.
# With DEMO_BIN=PATH it profiles that binary instead of building one.
set -euo pipefail

PROG=${0##*/}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$ROOT/benches/flame}
NS="fl$$"
IP=10.0.0.2
DL_BYTES=$((1 << 30))
UL_BYTES=$((256 << 20))

die() {
    echo "$PROG: $*" >&2
    exit 1
}

[[ $EUID -eq 0 ]] || die "must run as root (network namespaces): sudo scripts/$PROG"
for tool in ip curl perf inferno-collapse-perf inferno-flamegraph; do
    command -v "$tool" >/dev/null ||
        die "'$tool' is missing (perf: apt install linux-perf; inferno: cargo install inferno)"
done

if [[ -n ${DEMO_BIN:-} ]]; then
    DEMO=$DEMO_BIN
else
    (cd "$ROOT" && cargo build --release -p demo --quiet)
    DEMO=${CARGO_TARGET_DIR:-$ROOT/target}/release/demo
fi
[[ -x $DEMO ]] || die "no binary at $DEMO"

TMP=$(mktemp -d /tmp/flame.XXXXXX)
demo_pid=""
cleanup() {
    set +e
    [[ -n $demo_pid ]] && kill -INT "$demo_pid" 2>/dev/null && wait "$demo_pid" 2>/dev/null
    if ip netns list | awk '{print $1}' | grep -qxF "$NS"; then
        "$ROOT/scripts/setup-tun.sh" --down --netns "$NS" >/dev/null 2>&1
        ip netns list | awk '{print $1}' | grep -qxF "$NS" && ip netns delete "$NS"
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$ROOT/scripts/setup-tun.sh" --netns "$NS" >/dev/null
mkdir -p "$OUT"

# Profiles the running demo while CMD runs; writes OUT/NAME.svg.
profile() {
    local name=$1 what=$2
    shift 2
    perf record -q -e cpu-clock -F 999 --call-graph dwarf,16384 \
        -p "$demo_pid" -o "$TMP/$name.data" 2>/dev/null &
    local perf_pid=$!
    sleep 0.5
    "$@"
    kill -INT "$perf_pid"
    wait "$perf_pid" || true
    perf script -i "$TMP/$name.data" 2>/dev/null |
        inferno-collapse-perf >"$TMP/$name.folded"
    inferno-flamegraph --title "demo $name: $what" --width 1400 <"$TMP/$name.folded" >"$OUT/$name.svg"
    echo "$OUT/$name.svg"
}

download() {
    ip netns exec "$NS" curl -sS -o /dev/null --max-time 120 \
        -w "download: %{speed_download} B/s\n" "http://$IP/bytes/$DL_BYTES"
}

upload() {
    head -c "$UL_BYTES" /dev/zero >"$TMP/body"
    ip netns exec "$NS" curl -sS -o /dev/null --max-time 120 -H 'Expect:' \
        --data-binary @"$TMP/body" -w "upload: %{speed_upload} B/s\n" "http://$IP/sha256"
}

for mode in on off; do
    ip netns exec "$NS" "$DEMO" --offload "$mode" >"$TMP/demo-$mode.log" 2>&1 &
    demo_pid=$!
    for _ in $(seq 50); do
        ip netns exec "$NS" curl -s -o /dev/null -m 1 "http://$IP/" && break
        sleep 0.1
    done
    profile "offload-$mode-download" "GET /bytes/$DL_BYTES" download
    profile "offload-$mode-upload" "POST /sha256, $UL_BYTES bytes" upload
    kill -INT "$demo_pid"
    wait "$demo_pid" || true
    demo_pid=""
done
