//! Newline-delimited framing: one JSON text per line on a byte stream.
//!
//! Like mini-redis's `Connection`, finding a frame is two steps: a cheap
//! [`check_line`] that only asks "has a whole line arrived?" (`Incomplete`
//! is the normal state of a stream, not an error), and then the JSON parse,
//! which happens elsewhere (in the server or client) on a complete line.
//!
//! The work is linear in the bytes received, whatever their shape: the
//! reader keeps a read offset into its buffer and moves the unread rest to
//! the front only when the consumed part is at least as large as it (so
//! every byte is moved at most about once), and whitespace between
//! lines (blank lines, `\r\n`, indentation) is stepped over byte by byte
//! without producing a frame. JSON allows whitespace before a text, so
//! skipping it changes no message. A flood of bare `\n` therefore costs
//! about what the same bytes cost as echo data.
//!
//! DoS bound: a line may be at most `max_line` bytes (default
//! [`DEFAULT_MAX_LINE`], 1 MiB); the buffer never holds more than about
//! `2 * (max_line + READ_CHUNK)` bytes. A longer line is reported once as
//! [`Frame::Oversize`] and the rest of it, up to the next newline, is
//! discarded, so the connection stays usable.

use std::io::{self, Read, Write};

/// Default maximum line length: 1 MiB.
pub const DEFAULT_MAX_LINE: usize = 1 << 20;

/// Bytes asked of the stream per `read` call.
const READ_CHUNK: usize = 8 * 1024;

/// The answer of the cheap completeness check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// A line of this many bytes, newline included, is at the front.
    Complete(usize),
    /// No newline yet: read more.
    Incomplete,
}

/// Is there a whole line at the front of `buf`?
pub fn check_line(buf: &[u8]) -> Check {
    match buf.iter().position(|&b| b == b'\n') {
        Some(i) => Check::Complete(i + 1),
        None => Check::Incomplete,
    }
}

/// One unit read off the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A line without its `\n` (or `\r\n`) and without leading whitespace;
    /// never empty.
    Line(Vec<u8>),
    /// A line longer than the limit was skipped; the peer should be told.
    Oversize,
}

/// Reads [`Frame`]s from a byte stream, keeping partial lines between reads.
#[derive(Debug)]
pub struct LineReader {
    /// `buf[start..]` is unread input; `buf[..start]` is consumed and is
    /// dropped lazily (see [`LineReader::compact`]).
    buf: Vec<u8>,
    start: usize,
    /// `buf[start..scanned]` is known to hold no newline (avoids rescanning
    /// a long partial line on every small read). Always `>= start`.
    scanned: usize,
    max_line: usize,
    /// Inside an oversize line: drop bytes until the next newline.
    discarding: bool,
    /// Bytes moved by compaction so far: the framing's only work beyond
    /// one scan of each byte (tests use it to show the cost is linear).
    moved: u64,
}

impl LineReader {
    /// A reader that accepts lines of at most `max_line` bytes (newline excluded).
    pub fn new(max_line: usize) -> LineReader {
        LineReader {
            buf: Vec::new(),
            start: 0,
            scanned: 0,
            max_line,
            discarding: false,
            moved: 0,
        }
    }

    /// How many bytes compaction has moved so far. At most about the
    /// number of bytes read: a byte is moved only when at least as many
    /// consumed bytes are dropped in front of it.
    pub fn bytes_moved(&self) -> u64 {
        self.moved
    }

    /// The next frame, reading from `r` as needed. `Ok(None)` at end of
    /// stream; an unterminated last line is still returned as a line.
    ///
    /// # Errors
    ///
    /// Any error of `r.read` other than `Interrupted`.
    pub fn read_frame<R: Read + ?Sized>(&mut self, r: &mut R) -> io::Result<Option<Frame>> {
        let mut chunk = [0u8; READ_CHUNK];
        loop {
            if let Some(frame) = self.next_frame() {
                return Ok(Some(frame));
            }
            let n = match r.read(&mut chunk) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                return Ok(self.finish());
            }
            self.feed(chunk.get(..n).unwrap_or_default());
        }
    }

    /// [`read_frame`](LineReader::read_frame) on an async reader.
    /// Cancellation-safe: bytes already read stay buffered here, so a
    /// dropped future loses nothing and the next call carries on.
    ///
    /// # Errors
    ///
    /// Any error of `r.read`.
    #[cfg(feature = "tokio")]
    pub async fn read_frame_async<R>(&mut self, r: &mut R) -> io::Result<Option<Frame>>
    where
        R: ::tokio::io::AsyncRead + Unpin + ?Sized,
    {
        use ::tokio::io::AsyncReadExt;
        loop {
            if let Some(frame) = self.next_frame() {
                return Ok(Some(frame));
            }
            // Straight into the buffer's spare room (no chunk allocated
            // and zeroed for every frame); it grows as `feed` grows it.
            self.compact();
            self.buf.reserve(READ_CHUNK);
            let n = r.read_buf(&mut self.buf).await?;
            if n == 0 {
                return Ok(self.finish());
            }
        }
    }

    /// Appends bytes read off the stream (the sans-IO input; the
    /// blocking and async readers both come through here).
    pub fn feed(&mut self, bytes: &[u8]) {
        self.compact();
        self.buf.extend_from_slice(bytes);
    }

    /// Drops the consumed front of the buffer once it is at least as long
    /// as the unread rest, so the bytes moved never exceed the bytes
    /// consumed: amortised O(1) per byte, however short the lines.
    fn compact(&mut self) {
        let unread = self.buf.len() - self.start;
        if self.start > 0 && self.start >= unread {
            self.buf.copy_within(self.start.., 0);
            self.buf.truncate(unread);
            self.scanned -= self.start;
            self.start = 0;
            self.moved += unread as u64;
        }
    }

    /// Marks `n` more bytes at the read offset consumed.
    fn consume(&mut self, n: usize) {
        self.start += n;
        self.scanned = self.scanned.max(self.start);
    }

    /// A frame from what is already buffered, if there is one; `None`
    /// means [`feed`](LineReader::feed) more bytes.
    pub fn next_frame(&mut self) -> Option<Frame> {
        loop {
            if !self.discarding {
                // Whitespace before a line, and blank lines: skipped here
                // at one comparison per byte, never a frame.
                let blank = self
                    .buf
                    .get(self.start..)
                    .unwrap_or_default()
                    .iter()
                    .take_while(|b| b.is_ascii_whitespace())
                    .count();
                self.consume(blank);
            }
            let unscanned = self.buf.get(self.scanned..).unwrap_or_default();
            match check_line(unscanned) {
                Check::Complete(n) => {
                    let end = self.scanned + n;
                    let line = self.buf.get(self.start..end).unwrap_or_default();
                    let len = line.len();
                    let frame = if std::mem::take(&mut self.discarding) {
                        // The tail of an oversize line: already reported.
                        None
                    } else if len - 1 > self.max_line {
                        Some(Frame::Oversize)
                    } else {
                        Some(Frame::Line(trim_newline(line).to_vec()))
                    };
                    self.consume(len);
                    match frame {
                        Some(f) => return Some(f),
                        None => continue,
                    }
                }
                Check::Incomplete if self.discarding => {
                    self.consume(self.buf.len() - self.start);
                    return None;
                }
                Check::Incomplete if self.buf.len() - self.start > self.max_line => {
                    self.consume(self.buf.len() - self.start);
                    self.discarding = true;
                    return Some(Frame::Oversize);
                }
                Check::Incomplete => {
                    self.scanned = self.buf.len();
                    return None;
                }
            }
        }
    }

    /// End of stream: hand out an unterminated last line (after
    /// [`next_frame`](LineReader::next_frame) has returned `None`).
    pub fn finish(&mut self) -> Option<Frame> {
        let rest = self.buf.get(self.start..).unwrap_or_default();
        let frame = if std::mem::take(&mut self.discarding) || rest.is_empty() {
            None
        } else {
            Some(Frame::Line(trim_newline(rest).to_vec()))
        };
        self.buf.clear();
        self.start = 0;
        self.scanned = 0;
        frame
    }
}

/// `line` without its final `\n` and a `\r` before it.
fn trim_newline(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Writes `body` and a newline as one write, then flushes.
///
/// # Errors
///
/// Any error of the writer.
pub fn write_line<W: Write + ?Sized>(w: &mut W, body: &[u8]) -> io::Result<()> {
    let mut out = Vec::with_capacity(body.len() + 1);
    out.extend_from_slice(body);
    out.push(b'\n');
    w.write_all(&out)?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(input: &[u8], max: usize) -> Vec<Frame> {
        let mut r = LineReader::new(max);
        let mut src = input;
        let mut out = Vec::new();
        while let Some(f) = r.read_frame(&mut src).unwrap() {
            out.push(f);
        }
        out
    }

    fn line(s: &str) -> Frame {
        Frame::Line(s.as_bytes().to_vec())
    }

    #[test]
    fn check_line_reports_incomplete_without_newline() {
        assert_eq!(check_line(b"{\"a\":1"), Check::Incomplete);
        assert_eq!(check_line(b"ab\ncd"), Check::Complete(3));
    }

    #[test]
    fn splits_coalesced_lines_and_strips_crlf() {
        assert_eq!(
            frames(b"a\r\nb\nc", 10),
            vec![line("a"), line("b"), line("c")]
        );
    }

    #[test]
    fn line_of_exactly_max_is_accepted_one_more_is_oversize() {
        assert_eq!(frames(b"abcd\n", 4), vec![line("abcd")]);
        assert_eq!(frames(b"abcde\nok\n", 4), vec![Frame::Oversize, line("ok")]);
    }

    #[test]
    fn oversize_without_newline_in_buffer_discards_to_next_newline() {
        let mut input = vec![b'x'; 3 * READ_CHUNK];
        input.extend_from_slice(b"\nnext\n");
        assert_eq!(frames(&input, 100), vec![Frame::Oversize, line("next")]);
    }

    #[test]
    fn oversize_at_end_of_stream_yields_nothing_more() {
        let input = vec![b'x'; 2 * READ_CHUNK];
        assert_eq!(frames(&input, 100), vec![Frame::Oversize]);
    }

    #[test]
    fn blank_lines_and_leading_whitespace_make_no_frames() {
        assert_eq!(
            frames(b"\n\r\n  \n\t a\n\n\nb \r\n  \n", 10),
            vec![line("a"), line("b ")]
        );
        assert_eq!(frames(b"\n\n\r\n   ", 10), vec![]);
    }

    /// Issue 12: 16 MiB of bare newlines used to shift the whole buffer
    /// once per line. Now they make no frame and compaction moves
    /// (almost) nothing.
    #[test]
    fn newline_flood_is_linear() {
        let flood = vec![b'\n'; 16 << 20];
        let mut input = flood.as_slice();
        let mut r = LineReader::new(DEFAULT_MAX_LINE);
        assert_eq!(r.read_frame(&mut input).unwrap(), None);
        assert_eq!(r.bytes_moved(), 0);
    }

    /// Many short lines per read: every byte is moved at most once.
    #[test]
    fn short_lines_move_each_byte_at_most_once() {
        let input: Vec<u8> = b"1\n".repeat(1 << 20);
        let mut src = input.as_slice();
        let mut r = LineReader::new(DEFAULT_MAX_LINE);
        let mut n = 0;
        while let Some(f) = r.read_frame(&mut src).unwrap() {
            assert_eq!(f, line("1"));
            n += 1;
        }
        assert_eq!(n, 1 << 20);
        assert!(r.bytes_moved() <= input.len() as u64, "{}", r.bytes_moved());
    }

    /// An async reader handing out at most `step` bytes per read.
    #[cfg(feature = "tokio")]
    struct Trickle<'a> {
        rest: &'a [u8],
        step: usize,
    }

    #[cfg(feature = "tokio")]
    impl ::tokio::io::AsyncRead for Trickle<'_> {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut ::tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            let n = self.step.min(self.rest.len()).min(buf.remaining());
            let (now, later) = self.rest.split_at(n);
            buf.put_slice(now);
            self.rest = later;
            std::task::Poll::Ready(Ok(()))
        }
    }

    /// The async reader, which reads into its buffer's spare room, frames
    /// exactly as the blocking one does, read in small pieces or large,
    /// and holds no more memory than the module docs bound.
    #[cfg(feature = "tokio")]
    #[::tokio::test]
    async fn async_reader_frames_as_the_blocking_one_within_the_bound() {
        let max = 100;
        let mut mixed = b"a\r\n\n  b\n".to_vec();
        mixed.extend(vec![b'x'; 3 * READ_CHUNK]);
        mixed.extend_from_slice(b"\nnext\n");
        mixed.extend(b"1\n".repeat(READ_CHUNK));
        mixed.extend(vec![b'\n'; 2 * READ_CHUNK]);
        mixed.extend_from_slice(b"unterminated");
        for step in [1, 7, READ_CHUNK - 1, 3 * READ_CHUNK, mixed.len()] {
            let mut r = LineReader::new(max);
            let mut src = Trickle { rest: &mixed, step };
            let mut got = Vec::new();
            while let Some(f) = r.read_frame_async(&mut src).await.unwrap() {
                assert!(
                    r.buf.capacity() <= 2 * (max + 2 * READ_CHUNK),
                    "step {step}"
                );
                got.push(f);
            }
            assert_eq!(got, frames(&mixed, max), "step {step}");
        }
    }
}
