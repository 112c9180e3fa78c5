//! A listening socket, sans-IO: passive open (RFC 9293 §3.10.7.2) with a
//! bounded backlog, and SYN cookies (RFC 4987 §3.6) when it overflows.
//!
//! A segment whose four-tuple has no connection but whose destination is
//! listened on goes to [`Listener::handle_segment`], which decides and
//! returns a [`ListenAction`]: open this connection, send this reply (a
//! cookie SYN-ACK or a RST), or drop the segment for a stated reason.
//! Nothing here queues, locks or sends: the runtime stores the connection,
//! transmits the reply and counts the drop.
//!
//! # Backlog accounting
//!
//! A listener holds at most `backlog` connections made from SYNs, counted
//! from the SYN until `accept` takes them: half-open ones (SYN-RECEIVED)
//! and established ones waiting in the accept queue. The owner reports
//! each transition: [`established`](Listener::established) (half-open ->
//! queued), [`half_open_gone`](Listener::half_open_gone) (it closed or
//! could not be stored), [`accepted`](Listener::accepted) (it left the
//! queue).
//!
//! # SYN cookies
//!
//! A SYN beyond the backlog is answered statelessly: a SYN-ACK whose ISN
//! is a cookie ([`super::syncookie`]), advertising our MSS and no other
//! option. An ACK with no connection is checked as a cookie only within
//! two cookie slots of the last cookie this listener sent (as Linux does),
//! so while nothing overflows no forged ACK can open a connection. A valid
//! cookie opens the connection straight into ESTABLISHED
//! ([`Connection::accept_cookie`]) while the listener holds fewer than
//! `2 * backlog` connections: the half-open ones may all be spoofed, which
//! is why cookies were sent at all, so they must not crowd out the real
//! clients the cookies answered. DoS warning: the listener therefore holds
//! at most `2 * backlog` connections.
//!
//! A cookie's ACK must not be dropped lightly. The client is ESTABLISHED
//! once it sends that ACK, and a bare ACK is never retransmitted (RFC 9293
//! §3.8.1 times only segments that occupy sequence space): a client that
//! waits for us to speak first, as an idle one does, would hold a
//! connection we know nothing of until it next sends. So no cookie is
//! sent while the accept queue is full (`backlog` established connections
//! waiting for `accept`): such a SYN is dropped, and the client sends it
//! again a second later (RFC 6298 §2.1's initial RTO), when `accept` has
//! likely made room. Linux does the same (`tcp_conn_request` drops SYNs
//! while `sk_acceptq_is_full`). A cookie sent while the queue had room then
//! finds room for its ACK unless more than `backlog` of them complete
//! before `accept` takes any.

use std::net::SocketAddr;

use super::config::TcpConfig;
use super::connection::Connection;
use super::isn::IsnGenerator;
use super::reset::rst_for_closed;
use super::syncookie::{SynCookies, SLOT_SECS};
use crate::time::Instant;
use crate::wire::tcp::{TcpFlags, TcpOptions, TcpRepr};
use crate::wire::SeqNumber;

/// How a listener behaves.
#[derive(Debug, Clone)]
pub struct ListenConfig {
    /// Connections held between SYN and `accept` (see the module docs).
    pub backlog: usize,
    /// Answer SYNs beyond the backlog with cookies; else drop them.
    pub syn_cookies: bool,
    /// The settings of the connections it opens.
    pub tcp: TcpConfig,
}

/// What to do with a segment that reached a listener.
#[derive(Debug)]
#[must_use]
// The connection is moved straight into its socket; boxing it would cost
// an allocation per passive open for a value that lives a moment.
#[allow(clippy::large_enum_variant)]
pub enum ListenAction {
    /// A SYN opened this connection in SYN-RECEIVED; its first
    /// `poll_transmit` is the SYN-ACK. It counts as half-open.
    Open(Connection),
    /// A valid cookie opened this connection in ESTABLISHED; nothing is
    /// owed for the handshake. It counts as half-open until the owner
    /// reports it `established` (as for any other).
    OpenByCookie(Connection),
    /// Send this SYN-ACK, whose ISN is a cookie, and keep nothing.
    SendCookie(TcpRepr<'static>),
    /// Send this RST (RFC 9293 §3.10.7.2: "Any acknowledgment is bad if it
    /// arrives on a connection still in the LISTEN state").
    Reset(TcpRepr<'static>, ResetCause),
    /// Drop the segment without a reply.
    Drop(ListenDrop),
}

/// Why a listener answered with a RST.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetCause {
    /// An ACK (or SYN-ACK) that no cookie could explain: cookies are off,
    /// none was sent recently, or the listener is closed.
    UnexpectedAck,
    /// An ACK checked as a cookie that failed: forged, for another
    /// four-tuple, or expired.
    BadCookie,
}

/// Why a listener dropped a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenDrop {
    /// A RST: "An incoming RST segment could not be valid since it could
    /// not have been sent in response to anything sent by this
    /// incarnation of the connection" (RFC 9293 §3.10.7.2).
    Rst,
    /// Neither SYN nor ACK: "drop the segment and return".
    NotSyn,
    /// The listener is closed; its owner is about to remove it.
    Closed,
    /// A SYN beyond the backlog, with cookies off. Counted.
    BacklogFull,
    /// A SYN while the accept queue is full (the peer retransmits it), or
    /// a valid cookie while the listener holds `2 * backlog` connections
    /// (the peer's next data segment may find room). Counted.
    AcceptQueueFull,
}

/// A listening socket's decisions and bookkeeping (see the module docs).
#[derive(Debug)]
pub struct Listener {
    config: ListenConfig,
    isn: IsnGenerator,
    cookies: SynCookies,
    /// When this listener last sent a cookie.
    cookies_sent_at: Option<Instant>,
    /// Connections from SYNs (or cookies) not yet established.
    half_open: usize,
    /// Established connections waiting for `accept`.
    queued: usize,
    closed: bool,
}

impl Listener {
    /// A listener opening connections with ISNs from `isn` (RFC 6528) and
    /// cookies under `cookies`' key. Both are usually the stack's, shared
    /// by all its listeners.
    pub fn new(config: ListenConfig, isn: IsnGenerator, cookies: SynCookies) -> Listener {
        Listener {
            config,
            isn,
            cookies,
            cookies_sent_at: None,
            half_open: 0,
            queued: 0,
            closed: false,
        }
    }

    /// Decides what a segment from `remote` to `local` does: RFC 9293
    /// §3.10.7.2 ("If the state is LISTEN") with SYN cookies.
    pub fn handle_segment(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        seg: &TcpRepr<'_>,
    ) -> ListenAction {
        self.decide(now, local, remote, seg, None)
    }

    /// As [`handle_segment`](Self::handle_segment), for a SYN that ended
    /// its four-tuple's TIME-WAIT (RFC 6191; `Connection::reopen_iss`):
    /// the new connection starts at `iss`, above the old one's sequence
    /// space. (Under SYN-cookie pressure the cookie is the ISS; the
    /// timestamps RFC 6191 relies on still guard the new incarnation.)
    pub fn handle_reopening_syn(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        seg: &TcpRepr<'_>,
        iss: SeqNumber,
    ) -> ListenAction {
        self.decide(now, local, remote, seg, Some(iss))
    }

    fn decide(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        seg: &TcpRepr<'_>,
        iss: Option<SeqNumber>,
    ) -> ListenAction {
        // First: check for a RST.
        if seg.flags.rst() {
            return ListenAction::Drop(ListenDrop::Rst);
        }
        // Second: check for an ACK. It can only complete a cookie
        // handshake; anything else gets <SEQ=SEG.ACK><CTL=RST>.
        if seg.flags.ack() {
            if seg.flags.syn() {
                return reset(seg, ResetCause::UnexpectedAck);
            }
            return self.on_ack(now, local, remote, seg);
        }
        // Third: check for a SYN.
        if !seg.flags.syn() {
            return ListenAction::Drop(ListenDrop::NotSyn);
        }
        if self.closed {
            return ListenAction::Drop(ListenDrop::Closed);
        }
        if self.queued >= self.config.backlog {
            // No cookie that the ACK could not redeem (module docs): the
            // client retries this SYN, not its final ACK.
            return ListenAction::Drop(ListenDrop::AcceptQueueFull);
        }
        if self.half_open + self.queued >= self.config.backlog {
            if self.config.syn_cookies {
                return ListenAction::SendCookie(self.cookie_syn_ack(now, local, remote, seg));
            }
            return ListenAction::Drop(ListenDrop::BacklogFull);
        }
        self.half_open += 1;
        let iss = iss.unwrap_or_else(|| self.isn.isn(now, local, remote));
        ListenAction::Open(Connection::accept(
            now,
            local,
            remote,
            seg,
            iss,
            &self.config.tcp,
        ))
    }

    /// A half-open connection of this listener reached ESTABLISHED and
    /// joined the accept queue.
    pub fn established(&mut self) {
        self.half_open = self.half_open.saturating_sub(1);
        self.queued += 1;
    }

    /// A half-open connection of this listener closed before it was
    /// established, or its owner could not store it.
    pub fn half_open_gone(&mut self) {
        self.half_open = self.half_open.saturating_sub(1);
    }

    /// A connection left the accept queue (accepted, or reset because the
    /// listener closed).
    pub fn accepted(&mut self) {
        self.queued = self.queued.saturating_sub(1);
    }

    /// Stops opening connections: SYNs are dropped, ACKs reset.
    pub fn close(&mut self) {
        self.closed = true;
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Connections opened but not yet established.
    pub fn half_open(&self) -> usize {
        self.half_open
    }

    /// Established connections waiting for `accept`.
    pub fn queued(&self) -> usize {
        self.queued
    }

    pub fn config(&self) -> &ListenConfig {
        &self.config
    }

    /// An ACK (without SYN or RST) for no connection: a cookie handshake's
    /// last step, or a RST.
    fn on_ack(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        seg: &TcpRepr<'_>,
    ) -> ListenAction {
        let recent = self.cookies_sent_at.is_some_and(|at| {
            now.total_micros().saturating_sub(at.total_micros()) < 2 * SLOT_SECS * 1_000_000
        });
        if !self.config.syn_cookies || !recent {
            return reset(seg, ResetCause::UnexpectedAck);
        }
        let Some(mss) = self.cookies.check(now, local, remote, seg.seq, seg.ack) else {
            return reset(seg, ResetCause::BadCookie);
        };
        if self.closed {
            return reset(seg, ResetCause::UnexpectedAck);
        }
        if self.half_open + self.queued >= 2 * self.config.backlog {
            return ListenAction::Drop(ListenDrop::AcceptQueueFull);
        }
        let conn = Connection::accept_cookie(now, local, remote, seg, mss, &self.config.tcp);
        if !conn.is_established() {
            // The cookie held, so the ACK acknowledges our SYN exactly;
            // only a change in SYN-RECEIVED processing could get here.
            return reset(seg, ResetCause::UnexpectedAck);
        }
        self.half_open += 1;
        ListenAction::OpenByCookie(conn)
    }

    /// The stateless SYN-ACK answering `syn`: ISN = the cookie, our MSS and
    /// no other option (RFC 4987 §3.6; see `syncookie` for what is lost).
    fn cookie_syn_ack(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        syn: &TcpRepr<'_>,
    ) -> TcpRepr<'static> {
        let cookie = self
            .cookies
            .generate(now, local, remote, syn.seq, syn.options.mss);
        self.cookies_sent_at = Some(now);
        TcpRepr {
            src_port: local.port(),
            dst_port: remote.port(),
            seq: cookie,
            ack: syn.seq + 1,
            flags: TcpFlags::SYN | TcpFlags::ACK,
            // Unscaled (RFC 7323 §2.2), and no scaling will follow.
            window: u16::try_from(self.config.tcp.recv_buffer).unwrap_or(u16::MAX),
            urgent: 0,
            options: TcpOptions {
                mss: Some(self.config.tcp.mss_for(local.ip())),
                ..TcpOptions::default()
            },
            payload: &[],
        }
    }
}

/// `<SEQ=SEG.ACK><CTL=RST>` for an ACK (RFC 9293 §3.10.7.2).
fn reset(seg: &TcpRepr<'_>, cause: ResetCause) -> ListenAction {
    match rst_for_closed(seg) {
        Some(rst) => ListenAction::Reset(rst, cause),
        // invariant: callers filtered RSTs first; a RST is never answered.
        None => ListenAction::Drop(ListenDrop::Rst),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::net::{IpAddr, Ipv4Addr};
    use std::time::Duration;

    use super::*;
    use crate::tcp::State;
    use crate::wire::SeqNumber;

    const KEY: [u8; 16] = *b"listener-test-k!";
    const LOCAL: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 80);
    const REMOTE: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 49152);
    const CLIENT_ISN: SeqNumber = SeqNumber(50_000);

    const SYN: TcpRepr<'static> = TcpRepr {
        src_port: 49152,
        dst_port: 80,
        seq: CLIENT_ISN,
        ack: SeqNumber(0),
        flags: TcpFlags::SYN,
        window: 0xffff,
        urgent: 0,
        options: TcpOptions {
            mss: Some(1400),
            window_scale: Some(7),
            sack_permitted: true,
            timestamps: None,
            sack: [crate::wire::tcp::SackBlock {
                left: SeqNumber(0),
                right: SeqNumber(0),
            }; 4],
            sack_len: 0,
        },
        payload: &[],
    };

    fn t(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    fn listener(backlog: usize, syn_cookies: bool) -> Listener {
        Listener::new(
            ListenConfig {
                backlog,
                syn_cookies,
                tcp: TcpConfig::default(),
            },
            IsnGenerator::with_key(KEY),
            SynCookies::with_key(KEY),
        )
    }

    /// The final ACK of a handshake answered by `syn_ack`, with `payload`.
    fn ack_of<'a>(syn_ack: &TcpRepr<'_>, payload: &'a [u8]) -> TcpRepr<'a> {
        TcpRepr {
            seq: CLIENT_ISN + 1,
            ack: syn_ack.seq + 1,
            flags: TcpFlags::ACK,
            window: 1000,
            options: TcpOptions::default(),
            payload,
            ..SYN
        }
    }

    #[track_caller]
    fn open(action: ListenAction) -> Connection {
        match action {
            ListenAction::Open(conn) => conn,
            other => panic!("expected Open, got {other:?}"),
        }
    }

    #[track_caller]
    fn cookie(action: ListenAction) -> TcpRepr<'static> {
        match action {
            ListenAction::SendCookie(seg) => seg,
            other => panic!("expected SendCookie, got {other:?}"),
        }
    }

    #[track_caller]
    fn reset_cause(action: ListenAction, seg: &TcpRepr<'_>) -> ResetCause {
        match action {
            ListenAction::Reset(rst, cause) => {
                // <SEQ=SEG.ACK><CTL=RST>, ports swapped.
                assert_eq!(rst.flags, TcpFlags::RST);
                assert_eq!(rst.seq, seg.ack);
                assert_eq!((rst.src_port, rst.dst_port), (80, 49152));
                cause
            }
            other => panic!("expected Reset, got {other:?}"),
        }
    }

    /// A listener of backlog 1 holding one half-open connection, so the
    /// next SYN gets a cookie; returns that cookie's SYN-ACK.
    fn overflowed(syn_cookies: bool) -> (Listener, Option<TcpRepr<'static>>) {
        let mut l = listener(1, syn_cookies);
        let other = SocketAddr::from((Ipv4Addr::new(10, 0, 0, 9), 1234));
        let _ = open(l.handle_segment(t(0), LOCAL, other, &SYN));
        let action = l.handle_segment(t(10), LOCAL, REMOTE, &SYN);
        if syn_cookies {
            (l, Some(cookie(action)))
        } else {
            assert!(matches!(
                action,
                ListenAction::Drop(ListenDrop::BacklogFull)
            ));
            (l, None)
        }
    }

    // ---- SYN: passive open -------------------------------------------

    #[test]
    fn test_listen_syn_opens_syn_received_and_counts_half_open() {
        let mut l = listener(4, true);
        let mut conn = open(l.handle_segment(t(0), LOCAL, REMOTE, &SYN));
        assert_eq!(conn.state(), State::SynReceived);
        assert_eq!((conn.local(), conn.remote()), (LOCAL, REMOTE));
        assert_eq!((l.half_open(), l.queued()), (1, 0));
        // Its first transmission is the SYN-ACK, with the SYN's options
        // answered and the ISN from the generator.
        let syn_ack = conn.poll_transmit(t(0), &mut []).unwrap();
        assert_eq!(syn_ack.flags, TcpFlags::SYN | TcpFlags::ACK);
        assert_eq!(syn_ack.ack, CLIENT_ISN + 1);
        assert_eq!(
            syn_ack.seq,
            IsnGenerator::with_key(KEY).isn(t(0), LOCAL, REMOTE)
        );
        assert!(syn_ack.options.sack_permitted);
        assert!(syn_ack.options.window_scale.is_some());
    }

    #[test]
    fn test_listen_reopening_syn_starts_at_the_given_iss() {
        let mut l = listener(4, true);
        let iss = SeqNumber(0xdead_0000);
        let mut conn = open(l.handle_reopening_syn(t(0), LOCAL, REMOTE, &SYN, iss));
        assert_eq!(conn.state(), State::SynReceived);
        assert_eq!(l.half_open(), 1, "counted like any SYN");
        let syn_ack = conn.poll_transmit(t(0), &mut []).unwrap();
        assert_eq!((syn_ack.seq, syn_ack.ack), (iss, CLIENT_ISN + 1));
    }

    #[test]
    fn test_listen_backlog_counts_half_open_and_queued() {
        let mut l = listener(2, false);
        let _ = open(l.handle_segment(t(0), LOCAL, REMOTE, &SYN));
        l.established();
        assert_eq!((l.half_open(), l.queued()), (0, 1));
        let _ = open(l.handle_segment(t(0), LOCAL, REMOTE, &SYN));
        assert!(matches!(
            l.handle_segment(t(0), LOCAL, REMOTE, &SYN),
            ListenAction::Drop(ListenDrop::BacklogFull)
        ));
        // Room comes back when a half-open one goes or one is accepted.
        l.half_open_gone();
        let _ = open(l.handle_segment(t(0), LOCAL, REMOTE, &SYN));
        l.accepted();
        let _ = open(l.handle_segment(t(0), LOCAL, REMOTE, &SYN));
        assert_eq!((l.half_open(), l.queued()), (2, 0));
    }

    #[test]
    fn test_listen_backlog_full_without_cookies_drops() {
        let (l, syn_ack) = overflowed(false);
        assert!(syn_ack.is_none());
        assert_eq!(l.half_open(), 1);
    }

    // ---- SYN cookies -------------------------------------------------

    #[test]
    fn test_listen_backlog_full_sends_a_cookie_syn_ack() {
        let (l, syn_ack) = overflowed(true);
        let syn_ack = syn_ack.unwrap();
        assert_eq!(syn_ack.flags, TcpFlags::SYN | TcpFlags::ACK);
        assert_eq!((syn_ack.src_port, syn_ack.dst_port), (80, 49152));
        assert_eq!(syn_ack.ack, CLIENT_ISN + 1);
        // The ISN is the cookie; only our MSS is offered.
        assert_eq!(
            syn_ack.seq,
            SynCookies::with_key(KEY).generate(t(10), LOCAL, REMOTE, CLIENT_ISN, Some(1400))
        );
        assert_eq!(syn_ack.options.mss, Some(1460));
        assert_eq!(syn_ack.options.window_scale, None);
        assert!(!syn_ack.options.sack_permitted);
        assert_eq!(syn_ack.options.timestamps, None);
        assert_eq!(syn_ack.window, 0xffff);
        // Nothing was kept.
        assert_eq!(l.half_open(), 1);
    }

    #[test]
    fn test_listen_valid_cookie_opens_established_without_a_second_syn_ack() {
        let (mut l, syn_ack) = overflowed(true);
        let syn_ack = syn_ack.unwrap();
        let ack = ack_of(&syn_ack, b"hello");
        let mut conn = match l.handle_segment(t(20), LOCAL, REMOTE, &ack) {
            ListenAction::OpenByCookie(conn) => conn,
            other => panic!("expected OpenByCookie, got {other:?}"),
        };
        assert_eq!(conn.state(), State::Established);
        assert_eq!(l.half_open(), 2);
        // The cookie kept the MSS, rounded down to the table (1300), and
        // nothing else: no scaling, no SACK.
        assert_eq!(conn.effective_mss(), 1300);
        assert_eq!(conn.window_scale(), None);
        assert!(!conn.sack_enabled());
        assert_eq!(conn.peer_window(), 1000);
        // The data on the ACK was taken; no SYN-ACK is owed, only a
        // (delayed) ACK of the data.
        let mut buf = [0u8; 16];
        assert_eq!(conn.recv(&mut buf).unwrap(), 5);
        assert_eq!(&buf[..5], b"hello");
        assert!(conn.poll_transmit(t(20), &mut buf).is_none());
        let at = conn.poll_timeout().unwrap();
        assert!(at <= t(20) + Duration::from_millis(40), "{at:?}");
        conn.handle_timeout(at);
        let seg = conn.poll_transmit(at, &mut buf).unwrap();
        assert_eq!(seg.flags, TcpFlags::ACK);
        assert_eq!((seg.seq, seg.ack), (syn_ack.seq + 1, CLIENT_ISN + 6));
        assert!(conn.poll_transmit(at, &mut buf).is_none());
        // Our data starts right after the cookie.
        conn.send(b"hi").unwrap();
        let seg = conn.poll_transmit(at, &mut buf).unwrap();
        assert_eq!((seg.seq, seg.payload), (syn_ack.seq + 1, &b"hi"[..]));
    }

    #[test]
    fn test_listen_bad_cookie_gets_rst() {
        let (mut l, syn_ack) = overflowed(true);
        let mut ack = ack_of(&syn_ack.unwrap(), &[]);
        ack.ack += 4;
        let action = l.handle_segment(t(20), LOCAL, REMOTE, &ack);
        assert_eq!(reset_cause(action, &ack), ResetCause::BadCookie);
        // A valid cookie for another four-tuple is as bad.
        let (mut l, syn_ack) = overflowed(true);
        let ack = ack_of(&syn_ack.unwrap(), &[]);
        let elsewhere = SocketAddr::new(REMOTE.ip(), 49153);
        let action = l.handle_segment(t(20), LOCAL, elsewhere, &ack);
        assert_eq!(reset_cause(action, &ack), ResetCause::BadCookie);
    }

    #[test]
    fn test_listen_expired_cookie_gets_rst() {
        let (mut l, syn_ack) = overflowed(true);
        let ack = ack_of(&syn_ack.unwrap(), &[]);
        // Two slots later the cookie has expired; another cookie sent just
        // before keeps the listener checking ACKs.
        let later = t(10 + 2 * SLOT_SECS * 1000);
        let other = SocketAddr::from((Ipv4Addr::new(10, 0, 0, 7), 7));
        let _ = cookie(l.handle_segment(later, LOCAL, other, &SYN));
        let action = l.handle_segment(later, LOCAL, REMOTE, &ack);
        assert_eq!(reset_cause(action, &ack), ResetCause::BadCookie);
    }

    #[test]
    fn test_listen_ack_without_recent_cookies_gets_rst() {
        // Never sent a cookie: an ACK is not even checked.
        let mut l = listener(4, true);
        let ack = ack_of(&SYN, &[]);
        let action = l.handle_segment(t(0), LOCAL, REMOTE, &ack);
        assert_eq!(reset_cause(action, &ack), ResetCause::UnexpectedAck);
        // A valid cookie whose listener sent nothing for two slots.
        let (mut l, syn_ack) = overflowed(true);
        let ack = ack_of(&syn_ack.unwrap(), &[]);
        let late = t(10 + 2 * SLOT_SECS * 1000);
        let action = l.handle_segment(late, LOCAL, REMOTE, &ack);
        assert_eq!(reset_cause(action, &ack), ResetCause::UnexpectedAck);
    }

    #[test]
    fn test_listen_cookie_with_full_accept_queue_still_opens() {
        // The cookie went out while the queue had room; the half-open
        // connection then completed and filled it. The client that got
        // the cookie already counts itself connected.
        let (mut l, syn_ack) = overflowed(true);
        l.established();
        assert_eq!((l.half_open(), l.queued()), (0, 1));
        let ack = ack_of(&syn_ack.unwrap(), &[]);
        assert!(matches!(
            l.handle_segment(t(20), LOCAL, REMOTE, &ack),
            ListenAction::OpenByCookie(_)
        ));
        assert_eq!(l.half_open(), 1);
    }

    #[test]
    fn test_listen_cookie_beyond_twice_the_backlog_is_dropped() {
        let (mut l, syn_ack) = overflowed(true);
        // A second client gets a cookie too, and redeems it first: with
        // the half-open one that fills the listener to 2 * backlog.
        let other = SocketAddr::from((Ipv4Addr::new(10, 0, 0, 9), 4321));
        let other_ack = ack_of(&cookie(l.handle_segment(t(10), LOCAL, other, &SYN)), &[]);
        assert!(matches!(
            l.handle_segment(t(15), LOCAL, other, &other_ack),
            ListenAction::OpenByCookie(_)
        ));
        l.established();
        assert_eq!((l.half_open(), l.queued()), (1, 1));
        let ack = ack_of(&syn_ack.unwrap(), &[]);
        assert!(matches!(
            l.handle_segment(t(20), LOCAL, REMOTE, &ack),
            ListenAction::Drop(ListenDrop::AcceptQueueFull)
        ));
        // Once one is accepted, the peer's next segment gets in.
        l.accepted();
        assert!(matches!(
            l.handle_segment(t(30), LOCAL, REMOTE, &ack),
            ListenAction::OpenByCookie(_)
        ));
    }

    #[test]
    fn test_listen_syn_with_full_accept_queue_is_dropped_not_answered_by_cookie() {
        let mut l = listener(1, true);
        let _ = open(l.handle_segment(t(0), LOCAL, REMOTE, &SYN));
        l.established();
        assert_eq!((l.half_open(), l.queued()), (0, 1));
        // A cookie now might find no room for its ACK; the SYN is
        // retransmitted, the final ACK is not.
        let other = SocketAddr::from((Ipv4Addr::new(10, 0, 0, 9), 1234));
        assert!(matches!(
            l.handle_segment(t(10), LOCAL, other, &SYN),
            ListenAction::Drop(ListenDrop::AcceptQueueFull)
        ));
        // `accept` made room: the retransmitted SYN opens as usual.
        l.accepted();
        assert!(matches!(
            l.handle_segment(t(1010), LOCAL, other, &SYN),
            ListenAction::Open(_)
        ));
    }

    // ---- Other segments ------------------------------------------------

    #[test]
    fn test_listen_rst_is_ignored() {
        let mut l = listener(4, true);
        for flags in [
            TcpFlags::RST,
            TcpFlags::RST | TcpFlags::ACK,
            TcpFlags::RST | TcpFlags::SYN,
        ] {
            let seg = TcpRepr { flags, ..SYN };
            assert!(matches!(
                l.handle_segment(t(0), LOCAL, REMOTE, &seg),
                ListenAction::Drop(ListenDrop::Rst)
            ));
        }
        assert_eq!(l.half_open(), 0);
    }

    #[test]
    fn test_listen_syn_ack_gets_rst() {
        let mut l = listener(4, true);
        let seg = TcpRepr {
            flags: TcpFlags::SYN | TcpFlags::ACK,
            ack: SeqNumber(777),
            ..SYN
        };
        let action = l.handle_segment(t(0), LOCAL, REMOTE, &seg);
        assert_eq!(reset_cause(action, &seg), ResetCause::UnexpectedAck);
        assert_eq!(l.half_open(), 0);
    }

    #[test]
    fn test_listen_segment_without_syn_or_ack_is_dropped() {
        let mut l = listener(4, true);
        for flags in [TcpFlags::FIN, TcpFlags(0), TcpFlags::PSH] {
            let seg = TcpRepr {
                flags,
                payload: b"data",
                ..SYN
            };
            assert!(matches!(
                l.handle_segment(t(0), LOCAL, REMOTE, &seg),
                ListenAction::Drop(ListenDrop::NotSyn)
            ));
        }
    }

    #[test]
    fn test_listen_closed_drops_syns_and_resets_cookie_acks() {
        let (mut l, syn_ack) = overflowed(true);
        l.close();
        assert!(l.is_closed());
        assert!(matches!(
            l.handle_segment(t(20), LOCAL, REMOTE, &SYN),
            ListenAction::Drop(ListenDrop::Closed)
        ));
        let ack = ack_of(&syn_ack.unwrap(), &[]);
        let action = l.handle_segment(t(20), LOCAL, REMOTE, &ack);
        assert_eq!(reset_cause(action, &ack), ResetCause::UnexpectedAck);
    }

    #[test]
    fn test_listen_cookie_connection_times_out_like_any_other() {
        // The opened connection carries the listener's TCP settings.
        let mut l = Listener::new(
            ListenConfig {
                backlog: 1,
                syn_cookies: true,
                tcp: TcpConfig {
                    keepalive: Some(Duration::from_secs(5)),
                    ..TcpConfig::default()
                },
            },
            IsnGenerator::with_key(KEY),
            SynCookies::with_key(KEY),
        );
        let _ = open(l.handle_segment(t(0), LOCAL, REMOTE, &SYN));
        let syn_ack = cookie(l.handle_segment(t(0), LOCAL, REMOTE, &SYN));
        let conn = match l.handle_segment(t(1), LOCAL, REMOTE, &ack_of(&syn_ack, &[])) {
            ListenAction::OpenByCookie(conn) => conn,
            other => panic!("expected OpenByCookie, got {other:?}"),
        };
        assert_eq!(conn.keepalive(), Some(Duration::from_secs(5)));
        assert_eq!(conn.poll_timeout(), Some(t(1) + Duration::from_secs(5)));
    }
}
