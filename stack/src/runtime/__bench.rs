//! The RX thread's demultiplexing, for the benchmark in
//! `benches/benches/table.rs`: the real `Rx::demux` against a real socket
//! table, with no threads. Not part of the API; hidden from the docs.
//!
//! Each packet goes through exactly what the RX thread does with it
//! (IPv4 or IPv6 and TCP validation with checksums, the table lookup under its
//! read lock, the batch slot and queue of a connection, the listener's
//! decision, the RST for a closed port, sent on the device), a batch of
//! `rx_batch` packets at a time, as after a device read, except that the
//! queued segments are discarded instead of handed to their connections:
//! what is measured is demultiplexing, not TCP.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use crate::config::Config;
use crate::device::{Device, PacketBatch};
use crate::stats::Stats;
use crate::table::FourTuple;
use crate::tcp::connection::Connection;
use crate::time::Instant;
use crate::wire::checksum;
use crate::wire::ipv4::{self, Ipv4Repr};
use crate::wire::ipv6::{self, Ipv6Repr};
use crate::wire::tcp::{self, TcpFlags, TcpOptions, TcpRepr};
use crate::wire::SeqNumber;

use super::ops::OpenError;
use super::rx::Rx;
use super::socket::{Entry, Listener, TcpSocket};
use super::Inner;

/// A stack's shared state and its RX demultiplexer, driven by hand.
pub struct Demux {
    inner: Inner,
    rx: Rx,
    listeners: Vec<Arc<Listener>>,
    /// Where each packet is copied before demultiplexing, as by a device.
    batch: PacketBatch,
    now: Instant,
}

impl Demux {
    /// A stack's state over `device`, without its threads. Replies (RSTs,
    /// SYN-ACKs) are sent on `device`.
    ///
    /// # Errors
    ///
    /// `InvalidInput` when `config` is not valid.
    pub fn new<D: Device + 'static>(device: D, config: Config) -> io::Result<Demux> {
        config.validate()?;
        let rx = Rx::new(config.rx_batch);
        let batch = PacketBatch::new(config.rx_batch, config.mtu);
        let inner = Inner::threadless(Box::new(device), config);
        let mut demux = Demux {
            now: inner.now(),
            inner,
            rx,
            batch,
            listeners: Vec::new(),
        };
        demux.rx.begin_batch(&demux.inner);
        Ok(demux)
    }

    /// Listens on `port` of each of the stack's addresses (IPv4, and
    /// IPv6 when it has one), as `TcpListener::bind` on each.
    ///
    /// # Errors
    ///
    /// When the port is taken.
    pub fn listen(&mut self, port: u16) -> io::Result<()> {
        let config = &self.inner.config;
        let ours = [Some(IpAddr::V4(config.addr)), config.addr6.map(IpAddr::V6)];
        for ip in ours.into_iter().flatten() {
            let listener = self
                .inner
                .listen(SocketAddr::new(ip, port), None)
                .map_err(open_error)?;
            self.listeners.push(listener);
        }
        Ok(())
    }

    /// Stores a connection from `local_port` of the stack's address of
    /// `remote`'s family to `remote` (in SYN-SENT: demultiplexing does not
    /// look at its state).
    ///
    /// # Errors
    ///
    /// When the table is full or the four-tuple taken, or the stack has
    /// no address of `remote`'s family.
    pub fn add_connection(&mut self, local_port: u16, remote: SocketAddr) -> io::Result<()> {
        let ip = self
            .inner
            .source_for(remote.ip())
            .ok_or_else(|| open_error(OpenError::NoIpv6Address(remote)))?;
        let local = SocketAddr::new(ip, local_port);
        let conn = Connection::connect(
            self.now,
            local,
            remote,
            SeqNumber(0),
            &self.inner.config.tcp,
        );
        let sock = Arc::new(TcpSocket::new(conn, None));
        self.inner
            .table
            .write()
            .insert_connection(FourTuple { local, remote }, Entry::Tcp(sock))
            .map_err(|e| open_error(OpenError::Bind(e)))
    }

    /// Adds `packet` to the current batch, as a device read puts it
    /// there (so its bytes are as warm in the cache as a packet just
    /// read); when the batch is full it is demultiplexed, as the RX thread
    /// does, and ends.
    pub fn demux(&mut self, packet: &[u8]) {
        if self.batch.push(packet) && self.batch.len() >= self.inner.config.rx_batch {
            self.end_batch();
        }
    }

    /// As [`demux`](Self::demux) for a copy of `template` (a TCP segment
    /// in an IPv4 or IPv6 packet, as [`tcp_packet`] makes; `from` of its
    /// family) readdressed to come from
    /// `from`, written straight into the batch. A benchmark that sends from
    /// many peers keeps one hot template instead of a packet per peer, as
    /// a device's packets arrive in its buffers: reading each from a cold
    /// array of its own would add a cache miss that is the benchmark's,
    /// not the demultiplexer's.
    pub fn demux_from(&mut self, template: &[u8], from: SocketAddr) {
        let pushed = self.batch.push_with(|buf| {
            let Some(packet) = buf.get_mut(..template.len()) else {
                return Ok::<_, ()>(None);
            };
            packet.copy_from_slice(template);
            readdress(packet, from);
            Ok(Some(template.len()))
        });
        if pushed == Ok(true) && self.batch.len() >= self.inner.config.rx_batch {
            self.end_batch();
        }
    }

    /// Demultiplexes the packets of the batch so far and ends it.
    pub fn end_batch(&mut self) {
        self.rx.demux_batch(&self.inner, self.now, &self.batch);
        self.rx.discard_batch();
        self.batch.clear();
        self.now = self.inner.now();
        self.rx.begin_batch(&self.inner);
    }

    /// The counters: what the packets did.
    pub fn stats(&self) -> &Stats {
        &self.inner.stats
    }
}

/// The benchmark only needs to know that setting up failed, and why.
fn open_error(e: OpenError) -> io::Error {
    io::Error::other(format!("{e:?}"))
}

/// A TCP segment from `from` to port `port` of `to` in an IPv4 or IPv6
/// packet (`to` of `from`'s family) with valid checksums (a SYN offers MSS
/// 1460), as a peer would send it: the benchmark's and the tests' input.
pub fn tcp_packet(from: SocketAddr, to: IpAddr, port: u16, flags: TcpFlags) -> Vec<u8> {
    let seg = TcpRepr {
        src_port: from.port(),
        dst_port: port,
        seq: SeqNumber(1),
        ack: SeqNumber(1),
        flags,
        window: 64_000,
        urgent: 0,
        options: TcpOptions {
            mss: flags.syn().then_some(1460),
            ..TcpOptions::default()
        },
        payload: &[],
    };
    let len = seg.buffer_len();
    // invariant: each buffer is exactly the packet's length, so no emit
    // can run out of room; the families match.
    let (mut p, header_len) = match (from.ip(), to) {
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            let ip = Ipv6Repr {
                src,
                dst,
                next_header: tcp::PROTOCOL,
                hop_limit: 64,
                traffic_class: 0,
                flow_label: 0,
                payload_len: len,
            };
            let mut p = vec![0u8; ip.buffer_len()];
            let emitted = ip.emit(&mut p);
            debug_assert!(emitted.is_ok());
            (p, ipv6::HEADER_LEN)
        }
        (src, dst) => {
            let v4 = |a: IpAddr| match a {
                IpAddr::V4(a) => a,
                IpAddr::V6(_) => std::net::Ipv4Addr::UNSPECIFIED,
            };
            let ip = Ipv4Repr {
                src: v4(src),
                dst: v4(dst),
                protocol: tcp::PROTOCOL,
                ttl: 64,
                payload_len: len,
            };
            let mut p = vec![0u8; ip.buffer_len()];
            let emitted = ip.emit(&mut p);
            debug_assert!(emitted.is_ok());
            (p, ipv4::HEADER_LEN)
        }
    };
    let emitted = seg.emit(from.ip(), to, &mut p[header_len..]);
    debug_assert!(emitted.is_ok());
    p
}

/// Rewrites the source address and port of a TCP segment in an IPv4
/// packet with a 20-byte header or an IPv6 packet with no extension
/// header, and its checksums. `from` must be of the packet's family.
fn readdress(packet: &mut [u8], from: SocketAddr) {
    let (tcp_at, src_at, addr_len) = match (packet.first().map(|b| b >> 4), from.ip()) {
        (Some(4), IpAddr::V4(ip)) => {
            if packet.len() < ipv4::HEADER_LEN {
                return;
            }
            packet[12..16].copy_from_slice(&ip.octets());
            packet[10..12].fill(0);
            let ip_sum = checksum::checksum(&packet[..ipv4::HEADER_LEN]);
            packet[10..12].copy_from_slice(&ip_sum.to_be_bytes());
            (ipv4::HEADER_LEN, 12, 4)
        }
        (Some(6), IpAddr::V6(ip)) => {
            if packet.len() < ipv6::HEADER_LEN {
                return;
            }
            packet[8..24].copy_from_slice(&ip.octets());
            (ipv6::HEADER_LEN, 8, 16)
        }
        _ => return,
    };
    if packet.len() < tcp_at + 20 {
        return;
    }
    packet[tcp_at..tcp_at + 2].copy_from_slice(&from.port().to_be_bytes());
    packet[tcp_at + 16..tcp_at + 18].fill(0);
    let (src, dst) = (
        ip_at(packet, src_at, addr_len),
        ip_at(packet, src_at + addr_len, addr_len),
    );
    let len = (packet.len() - tcp_at) as u32;
    let pseudo = checksum::pseudo_header_ip(src, dst, tcp::PROTOCOL, len);
    let sum = checksum::finish(checksum::combine(&[
        pseudo,
        checksum::sum(&packet[tcp_at..]),
    ]));
    packet[tcp_at + 16..tcp_at + 18].copy_from_slice(&sum.to_be_bytes());
}

/// The address of `len` (4 or 16) bytes at `at` in `packet`.
fn ip_at(packet: &[u8], at: usize, len: usize) -> IpAddr {
    let bytes = packet.get(at..at + len).unwrap_or(&[]);
    match <[u8; 16]>::try_from(bytes) {
        Ok(b) => IpAddr::from(b),
        Err(_) => IpAddr::from(<[u8; 4]>::try_from(bytes).unwrap_or([0; 4])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::mem::MemPair;

    use std::net::{Ipv4Addr, Ipv6Addr};

    const US: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
    const US6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2);

    fn v4(a: [u8; 4], port: u16) -> SocketAddr {
        SocketAddr::from((a, port))
    }

    #[test]
    fn runs_the_real_demux_and_discards_batches() {
        let (ours, peer) = MemPair::new(1024, 1500);
        let config = Config {
            rx_batch: 4,
            ..Config::with_addr(US)
        };
        let mut d = Demux::new(ours, config).unwrap_or_else(|e| panic!("{e}"));
        d.listen(80).unwrap_or_else(|e| panic!("{e}"));
        let client = v4([10, 1, 0, 1], 1024);
        d.add_connection(80, client)
            .unwrap_or_else(|e| panic!("{e}"));
        for _ in 0..10 {
            d.demux(&tcp_packet(client, US.into(), 80, TcpFlags::ACK));
        }
        // A miss is answered with a RST on the device.
        d.demux(&tcp_packet(client, US.into(), 81, TcpFlags::SYN));
        d.end_batch();
        assert_eq!(d.stats().get("tcp_rx"), Some(11));
        assert_eq!(d.stats().get("tcp_rst_tx"), Some(1));
        assert_eq!(d.stats().get("drop_queue_full"), Some(0));
        assert_eq!(peer.pending(), 1);
        // Corrupt packets are dropped at the single drop site.
        let mut bad = tcp_packet(client, US.into(), 80, TcpFlags::ACK);
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        d.demux(&bad);
        d.end_batch();
        assert_eq!(d.stats().get("drop_bad_checksum"), Some(1));
    }

    #[test]
    fn a_readdressed_template_is_valid_and_reaches_its_connection() {
        let (ours, _peer) = MemPair::new(1024, 1500);
        let mut d = Demux::new(ours, Config::with_addr(US)).unwrap_or_else(|e| panic!("{e}"));
        let template = tcp_packet(v4([10, 9, 9, 9], 9), US.into(), 80, TcpFlags::ACK);
        let client = v4([10, 1, 2, 3], 4567);
        d.add_connection(80, client)
            .unwrap_or_else(|e| panic!("{e}"));
        d.demux_from(&template, client);
        d.end_batch();
        assert_eq!(d.stats().get("tcp_rx"), Some(1));
        // It found its connection: no RST for a closed port.
        assert_eq!(d.stats().get("tcp_rst_tx"), Some(0));
        assert_eq!(d.stats().get("drop_bad_checksum"), Some(0));
    }

    #[test]
    fn ipv6_segments_find_their_connections_and_listeners() {
        let (ours, peer) = MemPair::new(1024, 1500);
        let config = Config {
            addr6: Some(US6),
            ..Config::with_addr(US)
        };
        let mut d = Demux::new(ours, config).unwrap_or_else(|e| panic!("{e}"));
        d.listen(80).unwrap_or_else(|e| panic!("{e}"));
        let peer6 = |last: u16, port| {
            SocketAddr::new(Ipv6Addr::new(0xfd00, 1, 0, 0, 0, 0, 0, last).into(), port)
        };
        let template = tcp_packet(peer6(9, 9), US6.into(), 80, TcpFlags::ACK);
        for i in 1..=4 {
            d.add_connection(80, peer6(i, 4000 + i))
                .unwrap_or_else(|e| panic!("{e}"));
            d.demux_from(&template, peer6(i, 4000 + i));
        }
        // A SYN to the IPv6 listener opens a connection (its SYN-ACK is
        // sent when the batch is serviced, which the benchmark skips);
        // one to a closed port gets a RST.
        d.demux(&tcp_packet(peer6(7, 7), US6.into(), 80, TcpFlags::SYN));
        d.demux(&tcp_packet(peer6(7, 7), US6.into(), 81, TcpFlags::SYN));
        d.end_batch();
        assert_eq!(d.stats().get("tcp_rx"), Some(6));
        assert_eq!(d.stats().get("drop_bad_checksum"), Some(0));
        assert_eq!(d.stats().get("tcp_passive_opens"), Some(1));
        assert_eq!(d.stats().get("tcp_rst_tx"), Some(1));
        assert_eq!(peer.pending(), 1);
    }
}
