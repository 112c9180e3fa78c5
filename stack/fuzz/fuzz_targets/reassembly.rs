//! Fuzz target: the fragment reassembler under any sequence of fragments.
//!
//! The input is read as operations of 6 bytes each: datagram (1 of 6
//! identifications: 0 to 2 IPv4 ones under the default rules, 3 to 5
//! IPv6 ones under IPv6's: a 48-byte head, 60 s, a longer datagram),
//! flags (bit 0: More Fragments; bits 1..3: seconds
//! to advance the clock by, then expire), offset in 8-byte units (2 bytes)
//! and length (2 bytes, below 3000). A fragment's bytes are a function of
//! its datagram and of each byte's position in it, so exact duplicates
//! carry equal data and a datagram put together from any fragments has a
//! known content. Small bounds make eviction and the byte bound common.
//!
//! Beyond "no panic", after every operation: the bounds hold, the next
//! timeout lies after the present, and every datagram that completes is
//! its first fragment's header followed by exactly the expected bytes.

#![no_main]

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use stack::reassembly::{datagram_charge, FragKey, Fragment, Limits, Outcome, Reassembler, Rules};
use stack::time::Instant;

const MAX_LEN: usize = 0xffff;
const HEAD6: usize = 48;
const MAX_LEN6: usize = HEAD6 + 0xffff;
const RULES6: Rules = Rules {
    timeout: Duration::from_secs(60),
    max_len: MAX_LEN6,
    min_head: HEAD6,
};

fn byte_at(id: u16, pos: usize) -> u8 {
    (pos.wrapping_mul(31) ^ usize::from(id)) as u8
}

fn head(id: u16) -> Vec<u8> {
    let mut h = if id < 3 {
        vec![0x45u8; 20]
    } else {
        vec![0x60u8; HEAD6]
    };
    h[4..6].copy_from_slice(&id.to_be_bytes());
    h
}

fn key(id: u16) -> FragKey {
    if id < 3 {
        FragKey::V4 {
            src: Ipv4Addr::new(10, 0, 0, 1),
            dst: Ipv4Addr::new(10, 0, 0, 2),
            protocol: 17,
            id,
        }
    } else {
        FragKey::V6 {
            src: Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1),
            dst: Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2),
            id: u32::from(id),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_datagrams: 4,
        max_bytes: datagram_charge(MAX_LEN6) + 20_000,
        timeout: Duration::from_secs(30),
        max_len: MAX_LEN,
        min_head: 20,
    };
    let mut r = Reassembler::new(limits);
    let mut now = Instant::ZERO;
    let mut buf = vec![0u8; 3000];
    for op in data.chunks_exact(6) {
        let id = u16::from(op[0] % 6);
        let more = op[1] & 1 == 1;
        let advance = u64::from((op[1] >> 1) & 0x7);
        let offset = usize::from(u16::from_be_bytes([op[2], op[3]])) * 8;
        let len = usize::from(u16::from_be_bytes([op[4], op[5]])) % 3000;
        if advance > 0 {
            now += Duration::from_secs(advance * 5);
            r.expire(now, |e| {
                if let Some(q) = &e.quote {
                    let head = match e.key {
                        FragKey::V4 { .. } => 20,
                        FragKey::V6 { .. } => HEAD6,
                    };
                    assert!(q.len() >= head && q.len() <= head + 8);
                }
            });
        }
        for (i, b) in buf[..len].iter_mut().enumerate() {
            *b = byte_at(id, offset + i);
        }
        let h = head(id);
        let frag = Fragment {
            offset,
            more,
            head: &h,
            data: &buf[..len],
        };
        let (inserted, max_len) = if id < 3 {
            (r.insert(now, key(id), frag), MAX_LEN)
        } else {
            (r.insert_with(now, key(id), RULES6, frag), MAX_LEN6)
        };
        if let Outcome::Complete(d) = inserted.outcome {
            assert_eq!(d.head_len, h.len());
            assert_eq!(&d.bytes[..h.len()], &h[..]);
            assert!(d.bytes.len() <= max_len);
            for (pos, b) in d.bytes[h.len()..].iter().enumerate() {
                assert_eq!(*b, byte_at(id, pos), "byte {pos} of datagram {id}");
            }
        }
        assert!(r.len() <= limits.max_datagrams);
        assert!(r.bytes() <= limits.max_bytes);
        if let Some(at) = r.poll_timeout() {
            assert!(at > now);
        }
    }
});
