#!/usr/bin/env bash
# Creates (or removes) the persistent TUN device the stack runs on.
#
#   sudo scripts/setup-tun.sh            # tun0, host side 10.0.0.1/24, owned by you
#   sudo scripts/setup-tun.sh --down     # remove it again
#
# The device is persistent and owned by the invoking user ($SUDO_USER), so
# the stack opens it afterwards without root. Running the script twice is
# fine: it only adds what is missing.
#
# With --netns NS everything happens inside network namespace NS (created
# if missing, with `lo` up), leaving the root namespace untouched. With
# --down --netns NS the device is deleted and then the namespace too, but
# only if no interface other than `lo` is left in it: a namespace that
# holds something else was not ours alone to remove.
set -euo pipefail

PROG=${0##*/}

usage() {
    cat <<EOF
Usage: sudo scripts/$PROG [options]

Creates a persistent TUN device owned by a user, with the host side's
address, and brings it up. Idempotent.

Options:
  --dev NAME     device name (default: tun0)
  --addr CIDR    host-side address and prefix (default: 10.0.0.1/24)
  --peer ADDR    the stack's address, only printed (default: 10.0.0.2)
  --addr6 CIDR   host-side IPv6 address and prefix, or 'none' (default:
                 fd00::1/64; the stack is then expected at fd00::2)
  --mtu N        device MTU (default: 1500)
  --netns NS     build it inside network namespace NS (created if missing)
  --owner USER   user who may open the device (default: \$SUDO_USER, else root)
  --down         remove the device (and the namespace, if --netns and it is
                 left with nothing but lo)
  -h, --help     this text
EOF
}

die() {
    echo "$PROG: $*" >&2
    exit 1
}

dev=tun0
addr=10.0.0.1/24
peer=10.0.0.2
addr6=fd00::1/64
mtu=1500
netns=""
owner=${SUDO_USER:-root}
down=0

need_value() {
    [[ $# -ge 2 && -n $2 ]] || die "$1 needs a value (see --help)"
}

while [[ $# -gt 0 ]]; do
    case $1 in
        --dev) need_value "$@"; dev=$2; shift 2 ;;
        --addr) need_value "$@"; addr=$2; shift 2 ;;
        --peer) need_value "$@"; peer=$2; shift 2 ;;
        --addr6) need_value "$@"; addr6=$2; shift 2 ;;
        --mtu) need_value "$@"; mtu=$2; shift 2 ;;
        --netns) need_value "$@"; netns=$2; shift 2 ;;
        --owner) need_value "$@"; owner=$2; shift 2 ;;
        --down) down=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done

# Validate before touching anything.
[[ $dev =~ ^[A-Za-z0-9_.-]{1,15}$ ]] || die "bad device name '$dev' (1-15 of A-Z a-z 0-9 _ . -)"
octet='(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])'
[[ $addr =~ ^$octet\.$octet\.$octet\.$octet/([0-9]|[12][0-9]|3[0-2])$ ]] ||
    die "bad --addr '$addr' (want A.B.C.D/PREFIX, e.g. 10.0.0.1/24)"
[[ $peer =~ ^$octet\.$octet\.$octet\.$octet$ ]] || die "bad --peer '$peer' (want A.B.C.D)"
[[ $addr6 == none || $addr6 =~ ^[0-9A-Fa-f:]+/([0-9]|[1-9][0-9]|1[01][0-9]|12[0-8])$ ]] ||
    die "bad --addr6 '$addr6' (want an IPv6 CIDR such as fd00::1/64, or none)"
if ! [[ $mtu =~ ^[0-9]{1,5}$ ]] || ((10#$mtu < 68 || 10#$mtu > 65535)); then
    die "bad --mtu '$mtu' (68-65535)"
fi
mtu=$((10#$mtu)) # `ip` rejects leading zeros
[[ -z $netns || $netns =~ ^[A-Za-z0-9_.-]+$ ]] || die "bad namespace name '$netns'"

if [[ $EUID -ne 0 ]]; then
    echo "setup-tun.sh must run as root: sudo scripts/setup-tun.sh" >&2
    exit 1
fi
command -v ip >/dev/null || die "the 'ip' command is missing: install iproute2"

# Runs `ip` in the chosen namespace (or the current one).
ipns() {
    if [[ -n $netns ]]; then
        ip -n "$netns" "$@"
    else
        ip "$@"
    fi
}

netns_exists() {
    [[ -n $netns ]] && ip netns list | awk '{print $1}' | grep -qxF "$netns"
}

dev_exists() {
    ipns link show dev "$dev" >/dev/null 2>&1
}

where=${netns:+ in namespace $netns}

if [[ $down -eq 1 ]]; then
    if [[ -n $netns ]] && ! netns_exists; then
        echo "namespace $netns does not exist; nothing to remove"
        exit 0
    fi
    if dev_exists; then
        ipns link delete dev "$dev"
        echo "deleted $dev$where"
    else
        echo "$dev does not exist$where; nothing to remove"
    fi
    if [[ -n $netns ]]; then
        others=$(ip -n "$netns" -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | grep -vx lo || true)
        if [[ -z $others ]]; then
            ip netns delete "$netns"
            echo "deleted namespace $netns"
        else
            echo "kept namespace $netns: it still has $(echo "$others" | tr '\n' ' ')"
        fi
    fi
    exit 0
fi

[[ -e /dev/net/tun ]] || die "/dev/net/tun is missing: load the tun module with: sudo modprobe tun"
id -u "$owner" >/dev/null 2>&1 || die "no such user '$owner' (see --owner)"
owner_uid=$(id -u "$owner")

if [[ -n $netns ]]; then
    if netns_exists; then
        echo "namespace $netns exists"
    else
        ip netns add "$netns"
        echo "created namespace $netns"
    fi
    ip -n "$netns" link set dev lo up
fi

if dev_exists; then
    details=$(ipns -d link show dev "$dev")
    [[ $details == *"tun type tun"* ]] || die "$dev exists$where but is not a TUN device; pick another --dev"
    # `ip -d` prints the owner as a name when it has one, else as a uid.
    current=$(sed -n 's/.* user \([^ ]*\).*/\1/p' <<<"$details")
    if [[ $current != "$owner" && $current != "$owner_uid" ]]; then
        # The owner cannot be changed in place: make it again.
        ipns link delete dev "$dev"
        ipns tuntap add dev "$dev" mode tun user "$owner"
        echo "re-created $dev$where for owner $owner (was ${current:-nobody in particular})"
    else
        echo "$dev exists$where, owned by $owner"
    fi
else
    ipns tuntap add dev "$dev" mode tun user "$owner"
    echo "created $dev$where (persistent TUN, owner $owner)"
fi

if ipns -4 addr show dev "$dev" | grep -qF "inet $addr "; then
    echo "$dev already has $addr"
else
    ipns addr add "$addr" dev "$dev"
    echo "added $addr to $dev"
fi

# No duplicate address detection: a TUN link has no neighbours, and DAD
# would keep the address unusable for a second. `replace` is idempotent.
if [[ $addr6 != none ]]; then
    if ipns -6 addr replace "$addr6" dev "$dev" nodad 2>/dev/null; then
        echo "$dev has $addr6"
    else
        echo "$PROG: could not add $addr6 to $dev (IPv6 disabled?); IPv4 only" >&2
    fi
fi

ipns link set dev "$dev" mtu "$mtu"
ipns link set dev "$dev" up
echo "$dev is up, mtu $mtu; the stack is expected at $peer"

demo_args=""
if [[ $dev != tun0 || $peer != 10.0.0.2 ]]; then
    demo_args=" -- --tun $dev --addr $peer"
fi
if [[ -n $netns ]]; then
    echo "now run: sudo ip netns exec $netns sudo -u $owner cargo run --release -p demo$demo_args"
    echo "then:    sudo ip netns exec $netns ping $peer"
else
    echo "now run: cargo run --release -p demo$demo_args"
    echo "then:    ping $peer"
fi
