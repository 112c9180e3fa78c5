//! Building packets and writing them to the device.
//!
//! Every transmit path ends in [`send_ip`]: it writes the IPv4 header and
//! lets the caller emit the transport part behind it, into a per-thread
//! buffer so sending allocates nothing.

use std::cell::RefCell;
use std::net::Ipv4Addr;

use crate::stats::bump;
use crate::tcp::connection::Connection;
use crate::time::Instant;
use crate::wire::icmp::IcmpRepr;
use crate::wire::ipv4::{self, Ipv4Repr};
use crate::wire::tcp::{self, TcpRepr};
use crate::wire::udp::{self, UdpRepr};
use crate::wire::Error;

use super::Inner;

/// Room for the largest packet we build (a full-size IPv4 packet).
const BUF_LEN: usize = ipv4::MAX_PACKET_LEN;

thread_local! {
    /// (payload scratch, packet) buffers for this thread's transmissions.
    static BUFFERS: RefCell<(Vec<u8>, Vec<u8>)> = RefCell::new((vec![0; BUF_LEN], vec![0; BUF_LEN]));
}

/// Writes an IPv4 packet `src -> dst` whose transport part `emit` writes
/// into the buffer it is given (returning its length), and sends it.
pub(crate) fn send_ip(
    inner: &Inner,
    packet: &mut [u8],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: u8,
    emit: impl FnOnce(&mut [u8]) -> Result<usize, Error>,
) {
    let mtu = inner.config.mtu.min(packet.len());
    let Some(body) = packet.get_mut(ipv4::HEADER_LEN..mtu) else {
        return;
    };
    let result = emit(body).and_then(|len| {
        let ip = Ipv4Repr {
            src,
            dst,
            protocol,
            ttl: inner.config.ttl,
            payload_len: len,
        };
        ip.emit(packet)?;
        Ok(ip.buffer_len())
    });
    match result {
        Ok(len) => match inner.device.send(&packet[..len]) {
            Ok(()) => bump(&inner.stats.ip_tx),
            Err(e) => {
                bump(&inner.stats.tx_errors);
                tracing::debug!("device send failed: {e}");
            }
        },
        Err(e) => {
            bump(&inner.stats.tx_errors);
            tracing::warn!("could not build a packet to {dst}: {e}");
        }
    }
}

/// Sends every segment `conn` owes now.
pub(crate) fn transmit_tcp(inner: &Inner, conn: &mut Connection, now: Instant) {
    let (src, dst) = (*conn.local().ip(), *conn.remote().ip());
    BUFFERS.with(|cell| {
        let mut bufs = cell.borrow_mut();
        let (payload, packet) = &mut *bufs;
        while let Some(seg) = conn.poll_transmit(now, payload) {
            send_ip(inner, packet, src, dst, tcp::PROTOCOL, |buf| {
                seg.emit(src, dst, buf)
            });
            bump(&inner.stats.tcp_tx);
        }
    });
}

/// Sends one TCP segment that belongs to no connection (a RST).
pub(crate) fn send_tcp(inner: &Inner, src: Ipv4Addr, dst: Ipv4Addr, seg: &TcpRepr<'_>) {
    with_packet(|packet| {
        send_ip(inner, packet, src, dst, tcp::PROTOCOL, |buf| {
            seg.emit(src, dst, buf)
        });
    });
    bump(&inner.stats.tcp_tx);
}

pub(crate) fn send_udp(inner: &Inner, src: Ipv4Addr, dst: Ipv4Addr, dgram: &UdpRepr<'_>) {
    with_packet(|packet| {
        send_ip(inner, packet, src, dst, udp::PROTOCOL, |buf| {
            dgram.emit(src, dst, buf)
        });
    });
    bump(&inner.stats.udp_tx);
}

pub(crate) fn send_icmp(inner: &Inner, src: Ipv4Addr, dst: Ipv4Addr, msg: &IcmpRepr<'_>) {
    with_packet(|packet| {
        send_ip(inner, packet, src, dst, ipv4::PROTOCOL_ICMP, |buf| {
            msg.emit(buf)
        });
    });
}

fn with_packet(f: impl FnOnce(&mut [u8])) {
    BUFFERS.with(|cell| f(&mut cell.borrow_mut().1));
}
