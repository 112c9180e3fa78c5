//! TCP (RFC 9293): a sans-IO connection state machine and its parts.
//!
//! This module turns segments and time into segments and events. It holds
//! no threads, clocks or devices and never imports `device` or `runtime`:
//! every input carries `now`, so tests drive it in simulated time.
//!
//! # Read first
//!
//! - RFC 9293 (TCP): §3.3.2 the state diagram, §3.10 event processing
//!   (§3.10.7 "SEGMENT ARRIVES" is what `Connection::handle_segment` does
//!   step by step), §3.7.1 MSS, §3.7.4 Nagle, §3.8.6 windows and SWS.
//! - RFC 1122 §4.2 (host requirements: delayed ACK, persist, keepalive,
//!   retransmission give-up).
//! - RFC 6298 (the retransmission timer), RFC 5681 (congestion control,
//!   fast retransmit), RFC 6582 (NewReno recovery).
//! - RFC 7323 (window scale, timestamps, PAWS), RFC 2018 (SACK),
//!   RFC 6675 (SACK-based loss recovery), RFC 8985 (RACK-TLP: lost
//!   retransmissions and tail loss probes), RFC 9438 (CUBIC), RFC 5961
//!   (challenge ACKs), RFC 6528 (ISNs), RFC 4987 (SYN cookies).
//!
//! # Method taxonomy and call order
//!
//! [`Connection`] has constructors (`connect`, `accept`, `accept_cookie`), inputs
//! (`handle_segment`, `handle_timeout`), application commands (`send`,
//! `recv`, `close`, `abort`), outputs (`poll_transmit`, `poll_timeout`) and
//! getters. After any input or command the caller runs `poll_transmit`
//! until `None`, then asks `poll_timeout` when to call `handle_timeout`:
//!
//! ```text
//!   segment ──► handle_segment(now, seg) ─┐        ┌─► poll_transmit(now, buf) ──► segment
//!   deadline ─► handle_timeout(now) ──────┼─► TCB ─┤    (repeat until None)
//!   app ──────► send / recv / close / abort┘        └─► poll_timeout() ─► next deadline
//!
//!          SendBuffer ──► [ SND.UNA .. SND.NXT .. ] ──► segments
//!          RecvBuffer ◄── [ RCV.NXT | out-of-order (Assembler) ] ◄── segments
//!          TimerTable: Retransmit | Persist | DelayedAck | TimeWait | Keepalive
//!                      | LossProbe | Reorder
//! ```
//!
//! A segment for no connection but a listening port goes to a
//! [`listener::Listener`] (passive open, backlog, SYN cookies), which
//! answers with a connection to store, a reply to send or a reason to
//! drop. A segment for no connection and no listener is answered with
//! [`rst_for_closed`].
//!
//! # Parts
//!
//! `connection` (the state machine), `state` (the eleven states), `timer`
//! (the timer table), `config` (tunables), `error` (per-operation errors
//! and counters), `reset` (RST for closed ports), `listener` (passive
//! open); and the pieces it uses:
//! `send_buf`, `recv_buf`, `assembler`, `rtt` (RFC 6298), `congestion`
//! (NewReno, CUBIC), `sack` (the RFC 6675 scoreboard), `isn` (RFC 6528),
//! `syncookie` (RFC 4987), `secret` (the keyed hash both use), `ring` (the
//! lazily grown byte storage of the two buffers), `memory` (the budget
//! the receive side's storage is charged to), `rtt_histogram` (every
//! connection's RTT samples, for metrics).

pub mod assembler;
pub mod config;
pub mod congestion;
pub mod connection;
pub mod error;
pub mod isn;
pub mod listener;
pub mod memory;
pub mod recv_buf;
pub mod reset;
mod ring;
pub mod rtt;
pub mod rtt_histogram;
pub mod sack;
pub mod secret;
pub mod send_buf;
pub mod state;
pub mod syncookie;
pub mod timer;

#[cfg(test)]
mod tests;

pub use config::TcpConfig;
pub use connection::Connection;
pub use error::{ConnError, ConnStats, RecvError, SendError};
pub use reset::rst_for_closed;
pub use state::State;
