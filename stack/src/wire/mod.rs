//! Bytes <-> values: IPv4, IPv6 (with its extension headers), ICMP,
//! ICMPv6, UDP and TCP headers, checksums, TCP options.
//!
//! # The no-panic contract
//!
//! Every `parse` in this module takes untrusted bytes straight off the wire
//! and returns `Result<_, wire::Error>`. No input, however short, long or
//! malformed, makes a parser panic, allocate, or read out of bounds: each
//! index follows a length check in the same function, or uses `get()`.
//! A `wire::Error` means "drop this packet silently and count it"; the
//! runtime does that at a single site, counting per [`Error`] variant.
//!
//! `emit` functions write into a caller's buffer, which must be at least
//! `buffer_len()` long; they return `Error::BufferTooSmall` otherwise.
//!
//! This module does not allocate and knows nothing of sockets or time.

pub mod checksum;
pub mod icmp;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod seq;
pub mod tcp;
pub mod udp;

pub use seq::SeqNumber;

/// Why a packet was rejected. Each variant is a drop reason with its own
/// counter in [`crate::stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    /// Shorter than its header or than a length field says.
    Truncated,
    /// A length or offset field that cannot be right (IHL < 5, data offset
    /// < 5, total length below the header length, ...).
    BadLength,
    /// Not IPv4.
    BadVersion,
    /// A checksum that does not verify.
    BadChecksum,
    /// A TCP option whose length runs past the header or is below 2.
    BadOption,
    /// An IPv4 fragment where a whole packet is needed
    /// (`ipv4::Ipv4Repr::parse`). The runtime reassembles fragments, or
    /// drops them as this when reassembly is off.
    Fragmented,
    /// A protocol, ICMP type or combination we do not handle.
    Unsupported,
    /// A source address no host may use (broadcast, multicast, 0.0.0.0).
    BadAddress,
    /// The emit buffer is shorter than the packet.
    BufferTooSmall,
}

impl Error {
    /// A short, stable name for counters and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Error::Truncated => "truncated",
            Error::BadLength => "bad_length",
            Error::BadVersion => "bad_version",
            Error::BadChecksum => "bad_checksum",
            Error::BadOption => "bad_option",
            Error::Fragmented => "fragmented",
            Error::Unsupported => "unsupported",
            Error::BadAddress => "bad_address",
            Error::BufferTooSmall => "buffer_too_small",
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for Error {}
