# Packet building and sniffing on tun0, shared by the real-TUN tests that
# write their own packets (hostile.rs, hostile_tcp.rs). Each test appends
# its own script to this one (see `common::python`).
#
# A socket from `tun()` is an AF_PACKET socket bound to the namespace's
# tun0: bytes sent on it go straight to the TUN reader (our stack) without
# passing through the kernel's IP layer, so the script controls every byte,
# checksums and lengths included; and it sees every packet the stack writes
# (they arrive on tun0 as the kernel's input).

import socket, struct, time

US = "10.0.0.2"
MSS = b"\x02\x04\x05\xb4"
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10

def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff

def ip(src, dst, proto, payload, ihl=5, ver=4, frag=0x4000, total=None, ttl=64, fix=True):
    opts = b"\x01" * ((ihl - 5) * 4) if ihl > 5 else b""
    tot = total if total is not None else 20 + len(opts) + len(payload)
    h = struct.pack("!BBHHHBBH4s4s", (ver << 4) | (ihl & 0xf), 0, tot & 0xffff, 0, frag,
                    ttl, proto, 0, socket.inet_aton(src), socket.inet_aton(dst)) + opts
    if fix:
        h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + payload

def tcp(src, dst, sport, dport, seq, ack, flags, opts=b"", data=b"", good=True):
    off = (20 + len(opts)) // 4
    h = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xffffffff, ack & 0xffffffff,
                    off << 4, flags, 65535, 0, 0) + opts + data
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(h))
    c = csum(pseudo + h)
    if not good:
        c ^= 0x5a5a
    return h[:16] + struct.pack("!H", c) + h[18:]

def udp(src, dst, sport, dport, data, good=True):
    h = struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 17, len(h))
    c = csum(pseudo + h) or 0xffff
    if not good:
        c ^= 0x00ff
    return h[:6] + struct.pack("!H", c) + h[8:]

def ts_option(tsval, tsecr):
    """NOP, NOP, Timestamps (RFC 7323 section 3)."""
    return b"\x01\x01\x08\x0a" + struct.pack("!II", tsval & 0xffffffff, tsecr & 0xffffffff)

class Segment:
    """A TCP segment read off tun0."""
    def __init__(self, src, dst, h, data):
        self.src, self.dst = src, dst
        self.sport, self.dport, self.seq, self.ack, off, self.flags, self.win = \
            struct.unpack("!HHIIBBH", h[:16])
        self.data = data
        self.tsval = self.tsecr = None
        opts, i = h[20:], 0
        while i < len(opts) and opts[i] != 0:
            if opts[i] == 1:
                i += 1
                continue
            if i + 1 >= len(opts) or opts[i + 1] < 2:
                break
            if opts[i] == 8 and opts[i + 1] == 10 and i + 10 <= len(opts):
                self.tsval, self.tsecr = struct.unpack("!II", opts[i + 2:i + 10])
            i += opts[i + 1]

def parse_tcp(p):
    """The TCP segment in IPv4 packet `p`, or None."""
    if len(p) < 20 or p[0] >> 4 != 4 or p[9] != 6:
        return None
    ihl = (p[0] & 0xf) * 4
    total = struct.unpack("!H", p[2:4])[0]
    t = p[ihl:total]
    if len(t) < 20 or len(t) < (t[12] >> 4) * 4:
        return None
    off = (t[12] >> 4) * 4
    return Segment(socket.inet_ntoa(p[12:16]), socket.inet_ntoa(p[16:20]), t[:off], t[off:])

ETH_P_ALL = 3

def tun():
    """A socket that writes to our stack and reads what it writes."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind(("tun0", ETH_P_ALL))
    return s

def from_stack(s, seconds):
    """The TCP segments our stack writes to tun0 in the next `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        s.settimeout(left)
        try:
            p = s.recv(65535)
        except socket.timeout:
            return
        seg = parse_tcp(p)
        if seg is not None and seg.src == US:
            yield seg

def sniff(s, seconds, match):
    """Every segment from our stack in the next `seconds` that satisfies `match`."""
    return [seg for seg in from_stack(s, seconds) if match(seg)]

def sniff_one(s, seconds, match):
    """The first segment from our stack within `seconds` that satisfies `match`, or None."""
    return next((seg for seg in from_stack(s, seconds) if match(seg)), None)
