//! Every wait a peer can make a connection do has a deadline (issue 12),
//! enforced on the connection's byte stream by [`Timed`], so each service
//! is written as if its peer were polite:
//!
//! - idle: no byte in either direction for the idle timeout (30 s for
//!   HTTP between requests, 600 s for echo, discard and RPC) ends the
//!   connection quietly (`idle_timeouts`);
//! - write: a write that makes no progress for the write timeout (the
//!   peer keeps its window shut) resets the connection (`write_timeouts`):
//!   there is no point queueing a FIN behind data nobody takes;
//! - a message's head ([`Clock`]): once an HTTP request head or a JSON-RPC
//!   line has begun, all of it must arrive within the head timeout, however
//!   the bytes trickle in (`head_timeouts`; HTTP answers 408 first). A
//!   byte arriving does not restart this deadline, which is what stops a
//!   slow-loris peer from holding a slot forever.
//!
//! Progress in either direction also marks the connection's registry
//! [`Slot`], so at the connection cap the longest-idle one is evicted.

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::services::conn::Conn;
use crate::services::limits::Counters;
use crate::services::registry::Slot;

/// The interim answer to a request head that missed its deadline, written
/// by [`Timed`] itself just before it closes (RFC 9110 §15.5.9).
const REQUEST_TIMEOUT: &[u8] = b"HTTP/1.1 408 Request Timeout\r\nconnection: close\r\n\
content-type: text/plain; charset=utf-8\r\ncontent-length: 41\r\n\r\n\
the request head did not arrive in time\r\n";

/// When the message being received began, for its head deadline.
#[derive(Debug)]
pub enum Clock {
    /// A byte stream without messages (echo, discard): only idle and
    /// write deadlines.
    Stream,
    /// Newline-delimited messages (JSON-RPC on port 7070): a line's
    /// deadline runs from its first byte.
    Lines {
        /// When the line not yet complete began, if one has.
        started: Option<Instant>,
    },
    /// HTTP/1.1 requests: the head's deadline runs from the connection's
    /// start for the first request, from its first byte for later ones.
    Http(Arc<HttpClock>),
}

/// Where an HTTP connection is between requests, shared by [`Timed`]
/// (which sees the bytes) and the request handler (which sees the
/// requests).
#[derive(Debug)]
pub struct HttpClock {
    state: Mutex<HeadState>,
}

#[derive(Debug, Clone, Copy)]
struct HeadState {
    /// No head is being handled: the next byte begins one.
    awaiting_head: bool,
    /// When the head now arriving began.
    started: Option<Instant>,
}

impl HttpClock {
    /// A new connection: its first head is due from now.
    pub fn new() -> Arc<HttpClock> {
        Arc::new(HttpClock {
            state: Mutex::new(HeadState {
                awaiting_head: true,
                started: Some(Instant::now()),
            }),
        })
    }

    /// A whole head arrived: its deadline no longer applies.
    pub fn head_received(&self) {
        *self.state.lock() = HeadState {
            awaiting_head: false,
            started: None,
        };
    }

    /// The response went out: the connection waits for the next head.
    pub fn response_done(&self) {
        *self.state.lock() = HeadState {
            awaiting_head: true,
            started: None,
        };
    }

    fn bytes_arrived(&self, now: Instant) {
        let mut st = self.state.lock();
        if st.awaiting_head && st.started.is_none() {
            st.started = Some(now);
        }
    }

    fn head_started(&self) -> Option<Instant> {
        let st = self.state.lock();
        st.started.filter(|_| st.awaiting_head)
    }
}

/// The timeouts [`Timed`] enforces.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// No progress either way for this long ends the connection.
    pub idle: Duration,
    /// A write blocked this long resets the connection.
    pub write: Duration,
    /// A message head (HTTP head, RPC line) must be whole within this.
    pub head: Duration,
}

/// Which deadline passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Missed {
    Idle,
    Head,
}

/// `stream` with the deadlines of the module docs.
pub struct Timed<S: Conn> {
    stream: S,
    slot: Slot,
    timeouts: Timeouts,
    clock: Clock,
    counters: Arc<Counters>,
    /// The last byte read or written.
    last_progress: Instant,
    /// Since when writes have been refused (the send buffer full).
    write_blocked: Option<Instant>,
    /// Allocated at the first wait, so a connection never waited on
    /// costs nothing.
    read_timer: Option<Pin<Box<Sleep>>>,
    write_timer: Option<Pin<Box<Sleep>>>,
}

impl<S: Conn> Timed<S> {
    /// Wraps `stream`, registered as `slot`, timing its messages by `clock`.
    pub fn new(
        stream: S,
        slot: Slot,
        timeouts: Timeouts,
        clock: Clock,
        counters: Arc<Counters>,
    ) -> Timed<S> {
        Timed {
            stream,
            slot,
            timeouts,
            clock,
            counters,
            last_progress: Instant::now(),
            write_blocked: None,
            read_timer: None,
            write_timer: None,
        }
    }

    fn progress(&mut self, now: Instant) {
        self.last_progress = now;
        self.slot.touch();
    }

    /// Notes the bytes just read against the message clock.
    fn arrived(&mut self, bytes: &[u8], now: Instant) {
        match &mut self.clock {
            Clock::Stream => {}
            Clock::Lines { started } => {
                // The line in progress after these bytes is the text after
                // their last newline, if any: it began now.
                *started = match bytes.iter().rposition(|&b| b == b'\n') {
                    Some(end) if end + 1 == bytes.len() => None,
                    Some(_) => Some(now),
                    None => started.or(Some(now)),
                };
            }
            Clock::Http(clock) => clock.bytes_arrived(now),
        }
    }

    /// The next read deadline and what missing it means.
    fn read_deadline(&self) -> (Instant, Missed) {
        let idle = (self.last_progress + self.timeouts.idle, Missed::Idle);
        let head_started = match &self.clock {
            Clock::Stream => None,
            Clock::Lines { started } => *started,
            Clock::Http(clock) => clock.head_started(),
        };
        match head_started {
            Some(t) if t + self.timeouts.head < idle.0 => (t + self.timeouts.head, Missed::Head),
            _ => idle,
        }
    }

    /// The read deadline passed: counts it, answers 408 to an HTTP head
    /// that is late, and gives the error that ends the connection.
    fn read_expired(&mut self, missed: Missed, cx: &mut Context<'_>) -> io::Error {
        match missed {
            Missed::Idle => {
                Counters::hit(&self.counters.idle_timeouts);
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("idle for {:?}", self.timeouts.idle),
                )
            }
            Missed::Head => {
                Counters::hit(&self.counters.head_timeouts);
                // Best effort, and only when no response is half-written
                // ahead of it: nothing else is being sent while a head is
                // awaited.
                if matches!(self.clock, Clock::Http(_)) && self.write_blocked.is_none() {
                    let _ = Pin::new(&mut self.stream).poll_write(cx, REQUEST_TIMEOUT);
                    let _ = Pin::new(&mut self.stream).poll_shutdown(cx);
                }
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "a message head was not whole within {:?}",
                        self.timeouts.head
                    ),
                )
            }
        }
    }

    /// A write blocked past the write timeout: the connection is reset.
    fn write_expired(&mut self) -> io::Error {
        Counters::hit(&self.counters.write_timeouts);
        self.stream.abort();
        io::Error::new(
            io::ErrorKind::TimedOut,
            "write timed out: the peer's receive window stayed shut",
        )
    }

    /// Waits on `timer` (allocated on first use) until `deadline`;
    /// `Ready` once it has passed.
    ///
    /// Progress moves deadlines later all the time (each byte restarts
    /// the idle timeout), and resetting a tokio timer takes the timer
    /// driver's lock: so a timer already set earlier than `deadline` is
    /// left as it is, and only when it fires is it moved on to the
    /// deadline of the moment. A deadline that moves earlier (a head
    /// began) is set at once.
    fn wait_until(
        timer: &mut Option<Pin<Box<Sleep>>>,
        deadline: Instant,
        cx: &mut Context<'_>,
    ) -> Poll<()> {
        let timer = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.deadline() > deadline {
            timer.as_mut().reset(deadline);
        }
        if timer.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        if timer.deadline() >= deadline {
            return Poll::Ready(());
        }
        // It fired for a deadline since moved on.
        timer.as_mut().reset(deadline);
        timer.as_mut().poll(cx)
    }

    /// After an operation returned `Pending`: `Ready` with the error if
    /// the write deadline has passed, else `Pending` with a timer set.
    fn poll_write_blocked(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let now = Instant::now();
        let since = *self.write_blocked.get_or_insert(now);
        match Self::wait_until(&mut self.write_timer, since + self.timeouts.write, cx) {
            Poll::Ready(()) => Poll::Ready(self.write_expired()),
            Poll::Pending => Poll::Pending,
        }
    }

    /// What a write returned, seen by the deadlines: bytes taken are
    /// progress and end the write timeout, `Pending` starts or continues
    /// it.
    fn after_write(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match polled {
            Poll::Pending => return self.poll_write_blocked(cx).map(Err),
            Poll::Ready(Ok(n)) if n > 0 => {
                self.write_blocked = None;
                self.progress(Instant::now());
            }
            Poll::Ready(_) => {}
        }
        polled
    }

    /// What a flush or shutdown returned: `Pending` starts or continues
    /// the write timeout, anything else ends it.
    fn after_flush<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match polled {
            Poll::Pending => self.poll_write_blocked(cx).map(Err),
            done => {
                self.write_blocked = None;
                done
            }
        }
    }
}

impl<S: Conn> AsyncRead for Timed<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let got = buf.filled().get(before..).unwrap_or(&[]);
                if !got.is_empty() {
                    let now = Instant::now();
                    this.arrived(got, now);
                    this.progress(now);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                let (deadline, missed) = this.read_deadline();
                if Instant::now() >= deadline
                    || Self::wait_until(&mut this.read_timer, deadline, cx).is_ready()
                {
                    return Poll::Ready(Err(this.read_expired(missed, cx)));
                }
                Poll::Pending
            }
        }
    }
}

impl<S: Conn> AsyncWrite for Timed<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.after_write(cx, polled)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.after_write(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.stream).poll_flush(cx);
        this.after_flush(cx, polled)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.stream).poll_shutdown(cx);
        this.after_flush(cx, polled)
    }
}

#[cfg(test)]
mod tests {
    //! In paused time: tokio advances the clock to the next timer whenever
    //! every task waits, so each deadline is reached exactly and at once.

    use std::sync::atomic::Ordering;

    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

    use super::*;
    use crate::services::registry::Registry;

    const TIMEOUTS: Timeouts = Timeouts {
        idle: Duration::from_secs(30),
        write: Duration::from_secs(20),
        head: Duration::from_secs(10),
    };

    /// Our end wrapped, the peer's end, and the counters.
    fn timed(clock: Clock, buffer: usize) -> (Timed<DuplexStream>, DuplexStream, Arc<Counters>) {
        let (ours, theirs) = tokio::io::duplex(buffer);
        let (slot, _) = Arc::new(Registry::default()).admit(1).expect("a slot");
        let counters = Arc::new(Counters::default());
        let stream = Timed::new(ours, slot, TIMEOUTS, clock, Arc::clone(&counters));
        (stream, theirs, counters)
    }

    fn count(c: &std::sync::atomic::AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_peer_is_closed_at_the_idle_timeout() {
        let (mut ours, _theirs, counters) = timed(Clock::Stream, 64);
        let start = Instant::now();
        let e = ours.read(&mut [0u8; 8]).await.expect_err("idle");
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert_eq!(start.elapsed(), TIMEOUTS.idle);
        assert_eq!(count(&counters.idle_timeouts), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickled_line_misses_its_deadline_however_often_bytes_come() {
        let (mut ours, mut theirs, counters) = timed(Clock::Lines { started: None }, 64);
        let start = Instant::now();
        let trickle = tokio::spawn(async move {
            // One byte a second, never a newline: each byte is progress,
            // so only the line's own deadline can end it.
            for _ in 0..60 {
                if theirs.write_all(b"x").await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        let mut buf = [0u8; 8];
        let e = loop {
            match ours.read(&mut buf).await {
                Ok(_) => {}
                Err(e) => break e,
            }
        };
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert_eq!(start.elapsed(), TIMEOUTS.head);
        assert_eq!(count(&counters.head_timeouts), 1);
        assert_eq!(count(&counters.idle_timeouts), 0);
        drop(ours);
        trickle.await.expect("trickle");
    }

    #[tokio::test(start_paused = true)]
    async fn whole_lines_keep_the_connection_and_only_idle_ends_it() {
        let (mut ours, mut theirs, counters) = timed(Clock::Lines { started: None }, 64);
        let mut buf = [0u8; 8];
        for _ in 0..5 {
            // Each line is whole at once, 25 s apart: inside the idle
            // timeout, and no line is ever pending long.
            theirs.write_all(b"{}\n").await.expect("line");
            assert_eq!(ours.read(&mut buf).await.expect("line"), 3);
            tokio::time::sleep(Duration::from_secs(25)).await;
        }
        let e = ours.read(&mut buf).await.expect_err("idle at last");
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert_eq!(count(&counters.head_timeouts), 0);
        assert_eq!(count(&counters.idle_timeouts), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_http_head_gets_408_and_a_waiting_one_only_the_idle_timeout() {
        // The first head is due from the connection's start.
        let clock = HttpClock::new();
        let (mut ours, mut theirs, counters) = timed(Clock::Http(Arc::clone(&clock)), 1024);
        theirs.write_all(b"GET / HT").await.expect("part of a head");
        let mut buf = [0u8; 64];
        assert_eq!(ours.read(&mut buf).await.expect("part"), 8);
        let e = ours.read(&mut buf).await.expect_err("late");
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        let mut answer = vec![0u8; REQUEST_TIMEOUT.len()];
        theirs.read_exact(&mut answer).await.expect("408");
        assert!(answer.starts_with(b"HTTP/1.1 408 "));
        assert_eq!(count(&counters.head_timeouts), 1);

        // Between requests nothing is due but the idle timeout.
        let clock = HttpClock::new();
        let (mut ours, _theirs, counters) = timed(Clock::Http(Arc::clone(&clock)), 1024);
        clock.head_received();
        clock.response_done();
        let start = Instant::now();
        let e = ours.read(&mut buf).await.expect_err("idle");
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert_eq!(start.elapsed(), TIMEOUTS.idle);
        assert_eq!(
            (
                count(&counters.idle_timeouts),
                count(&counters.head_timeouts)
            ),
            (1, 0)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_the_peer_never_takes_times_out() {
        let (mut ours, _theirs, counters) = timed(Clock::Stream, 16);
        let start = Instant::now();
        let e = ours.write_all(&[0u8; 64]).await.expect_err("blocked");
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert_eq!(start.elapsed(), TIMEOUTS.write);
        assert_eq!(count(&counters.write_timeouts), 1);
    }
}
