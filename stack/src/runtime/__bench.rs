//! The RX thread's demultiplexing, for the benchmark in
//! `benches/benches/table.rs`: the real `Rx::demux` against a real socket
//! table, with no threads. Not part of the API; hidden from the docs.
//!
//! Each packet goes through exactly what the RX thread does with it
//! (IPv4 and TCP validation with checksums, the table lookup under its
//! read lock, the batch slot and queue of a connection, the listener's
//! decision, the RST for a closed port, sent on the device), a batch of
//! `rx_batch` packets at a time, as after a device read, except that the
//! queued segments are discarded instead of handed to their connections:
//! what is measured is demultiplexing, not TCP.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use crate::config::Config;
use crate::device::{Device, PacketBatch};
use crate::stats::Stats;
use crate::table::FourTuple;
use crate::tcp::connection::Connection;
use crate::time::Instant;
use crate::wire::checksum;
use crate::wire::ipv4::{self, Ipv4Repr};
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

    /// Listens on `port` of the stack's address, as `TcpListener::bind`.
    ///
    /// # Errors
    ///
    /// When the port is taken.
    pub fn listen(&mut self, port: u16) -> io::Result<()> {
        let local = SocketAddrV4::new(self.inner.config.addr, port);
        let listener = self.inner.listen(local).map_err(open_error)?;
        self.listeners.push(listener);
        Ok(())
    }

    /// Stores a connection from `local_port` of the stack's address to
    /// `remote` (in SYN-SENT: demultiplexing does not look at its state).
    ///
    /// # Errors
    ///
    /// When the table is full or the four-tuple taken.
    pub fn add_connection(&mut self, local_port: u16, remote: SocketAddrV4) -> io::Result<()> {
        let local = SocketAddrV4::new(self.inner.config.addr, local_port);
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
    /// in an IPv4 packet, as [`tcp_packet`] makes) readdressed to come from
    /// `from`, written straight into the batch. A benchmark that sends from
    /// many peers keeps one hot template instead of a packet per peer, as
    /// a device's packets arrive in its buffers: reading each from a cold
    /// array of its own would add a cache miss that is the benchmark's,
    /// not the demultiplexer's.
    pub fn demux_from(&mut self, template: &[u8], from: SocketAddrV4) {
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

/// A TCP segment from `from` to port `port` of `to` in an IPv4 packet with
/// valid checksums (a SYN offers MSS 1460), as a peer would send it: the
/// benchmark's and the tests' input.
pub fn tcp_packet(from: SocketAddrV4, to: Ipv4Addr, port: u16, flags: TcpFlags) -> Vec<u8> {
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
    let ip = Ipv4Repr {
        src: *from.ip(),
        dst: to,
        protocol: tcp::PROTOCOL,
        ttl: 64,
        payload_len: seg.buffer_len(),
    };
    let mut p = vec![0u8; ip.buffer_len()];
    // invariant: the buffer is exactly the packet's length, so neither
    // emit can run out of room.
    let emitted = seg
        .emit(*from.ip(), to, &mut p[ipv4::HEADER_LEN..])
        .and_then(|_| ip.emit(&mut p));
    debug_assert!(emitted.is_ok());
    p
}

/// Rewrites the source address and port of a TCP segment in an IPv4
/// packet with a 20-byte header, and both its checksums.
fn readdress(packet: &mut [u8], from: SocketAddrV4) {
    const TCP: usize = ipv4::HEADER_LEN;
    if packet.len() < TCP + 20 {
        return;
    }
    packet[12..16].copy_from_slice(&from.ip().octets());
    packet[10..12].fill(0);
    let ip_sum = checksum::checksum(&packet[..TCP]);
    packet[10..12].copy_from_slice(&ip_sum.to_be_bytes());
    packet[TCP..TCP + 2].copy_from_slice(&from.port().to_be_bytes());
    packet[TCP + 16..TCP + 18].fill(0);
    let dst = Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]);
    let len = (packet.len() - TCP) as u32;
    let pseudo = checksum::pseudo_header(*from.ip(), dst, tcp::PROTOCOL, len);
    let sum = checksum::finish(checksum::combine(&[pseudo, checksum::sum(&packet[TCP..])]));
    packet[TCP + 16..TCP + 18].copy_from_slice(&sum.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::mem::MemPair;

    const US: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    #[test]
    fn runs_the_real_demux_and_discards_batches() {
        let (ours, peer) = MemPair::new(1024, 1500);
        let config = Config {
            rx_batch: 4,
            ..Config::with_addr(US)
        };
        let mut d = Demux::new(ours, config).unwrap_or_else(|e| panic!("{e}"));
        d.listen(80).unwrap_or_else(|e| panic!("{e}"));
        let client = SocketAddrV4::new(Ipv4Addr::new(10, 1, 0, 1), 1024);
        d.add_connection(80, client)
            .unwrap_or_else(|e| panic!("{e}"));
        for _ in 0..10 {
            d.demux(&tcp_packet(client, US, 80, TcpFlags::ACK));
        }
        // A miss is answered with a RST on the device.
        d.demux(&tcp_packet(client, US, 81, TcpFlags::SYN));
        d.end_batch();
        assert_eq!(d.stats().get("tcp_rx"), Some(11));
        assert_eq!(d.stats().get("tcp_rst_tx"), Some(1));
        assert_eq!(d.stats().get("drop_queue_full"), Some(0));
        assert_eq!(peer.pending(), 1);
        // Corrupt packets are dropped at the single drop site.
        let mut bad = tcp_packet(client, US, 80, TcpFlags::ACK);
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
        let template = tcp_packet(
            SocketAddrV4::new(Ipv4Addr::new(10, 9, 9, 9), 9),
            US,
            80,
            TcpFlags::ACK,
        );
        let client = SocketAddrV4::new(Ipv4Addr::new(10, 1, 2, 3), 4567);
        d.add_connection(80, client)
            .unwrap_or_else(|e| panic!("{e}"));
        d.demux_from(&template, client);
        d.end_batch();
        assert_eq!(d.stats().get("tcp_rx"), Some(1));
        // It found its connection: no RST for a closed port.
        assert_eq!(d.stats().get("tcp_rst_tx"), Some(0));
        assert_eq!(d.stats().get("drop_bad_checksum"), Some(0));
    }
}
