//! The memory budget (`tcp::memory`): out-of-order data costs the chunks
//! it occupies, pruning under pressure keeps the stream exact and SACK
//! honest, and TIME-WAIT gives the rings back.

use super::*;
use crate::tcp::memory::MemoryBudget;
use crate::tcp::recv_buf::OOO_CHUNK;

/// `cfg()` with SACK and a budget of `limit` bytes.
fn budget_cfg(limit: usize) -> (TcpConfig, MemoryBudget) {
    let memory = MemoryBudget::new(limit);
    let config = TcpConfig {
        sack: true,
        memory: memory.clone(),
        ..cfg()
    };
    (config, memory)
}

/// ESTABLISHED with SACK negotiated, charging `config.memory`.
fn established_sack_with(config: &TcpConfig) -> Connection {
    let syn = TcpRepr {
        options: TcpOptions {
            sack_permitted: true,
            ..SYN_TEMPL.options
        },
        ..SYN_TEMPL
    };
    let mut c = syn_received_with(config, &syn);
    send!(c, time 0, seg(ACK, R, L));
    assert!(c.sack_enabled());
    c
}

fn payload(seq: u32, payload: &[u8]) -> TcpRepr<'_> {
    TcpRepr {
        payload,
        ..seg(ACK | PSH, seq, L)
    }
}

/// The SACK blocks of the next segment, as (left, right).
#[track_caller]
fn sacked(c: &mut Connection, t: u64) -> Vec<(u32, u32)> {
    let out = poll(c, t).expect("an ACK");
    out.options
        .sack_blocks()
        .iter()
        .map(|b| (b.left.0, b.right.0))
        .collect()
}

#[test]
fn test_established_far_out_of_order_byte_costs_one_chunk() {
    let (config, memory) = budget_cfg(1 << 20);
    let mut c = established_sack_with(&config);
    // One byte at the far edge of the 64,000-byte window.
    send!(c, time 1, payload(R + RECV_BUF as u32 - 1, b"x"));
    assert_eq!(memory.in_use(), OOO_CHUNK, "a chunk, not the window");
    let edge = R + RECV_BUF as u32;
    assert_eq!(sacked(&mut c, 1), [(edge - 1, edge)]);
    drop(c);
    assert_eq!(memory.in_use(), 0, "a dropped connection gives it all back");
}

#[test]
fn test_established_budget_refuses_a_chunk_and_sack_claims_only_what_is_held() {
    // Room for three chunks.
    let (config, memory) = budget_cfg(3 * OOO_CHUNK);
    let mut c = established_sack_with(&config);
    let at = |i: u32| R + 5000 * i;
    for i in 1..=3 {
        send!(c, time 1, payload(at(i), b"abc"));
        drain(&mut c, 1);
    }
    assert_eq!(memory.in_use(), 3 * OOO_CHUNK);
    // A fourth isolated range needs a fourth chunk: refused, not stored,
    // answered with an ACK whose blocks are the three held ranges.
    send!(c, time 2, payload(at(4), b"abc"));
    let blocks = sacked(&mut c, 2);
    assert_eq!(blocks.len(), 3);
    assert!(!blocks.contains(&(at(4), at(4) + 3)), "{blocks:?}");
    assert_eq!(memory.drops(), 1);
    assert!(memory.take_pressure());
}

#[test]
fn test_established_sack_after_pruning_claims_nothing() {
    let (config, memory) = budget_cfg(1 << 20);
    let mut c = established_sack_with(&config);
    send!(c, time 1, payload(R + 100, b"held"));
    send!(c, time 1, payload(R + 9000, b"held too"));
    drain(&mut c, 1);
    assert_eq!(memory.in_use(), 2 * OOO_CHUNK);
    // Pressure elsewhere: the runtime reclaims from every connection.
    let (pruned, _) = c.reclaim_memory(false);
    assert_eq!(pruned, 12);
    assert_eq!((memory.in_use(), memory.ooo_pruned()), (0, 12));
    // A duplicate draws an ACK: no SACK block for the pruned bytes.
    send!(c, time 2, payload(R + 100, b"held"));
    assert_eq!(sacked(&mut c, 2), [(R + 100, R + 104)], "only the new copy");
    // In-order data up to it: RCV.NXT stops at the held copy's end, and
    // never jumps over the pruned bytes at R + 9000.
    let first = [7u8; 100];
    send!(c, time 3, payload(R, &first));
    let out = recv!(c, time 3, ACK, seq L, ack R + 104);
    assert_eq!(out.options.sack_len, 0);
    let mut buf = [0u8; 200];
    assert_eq!(c.recv(&mut buf), Ok(104));
    assert_eq!(&buf[..104], [&first[..], b"held"].concat());
}

#[test]
fn test_established_in_order_data_prunes_our_out_of_order_data_to_fit() {
    // One chunk for out-of-order data, then no room for the ring: the
    // in-order bytes win, the held range goes.
    let (config, memory) = budget_cfg(OOO_CHUNK);
    let mut c = established_sack_with(&config);
    send!(c, time 1, payload(R + 3000, b"later"));
    drain(&mut c, 1);
    let first = [1u8; 1000];
    send!(c, time 2, payload(R, &first));
    let out = recv!(c, time 2, ACK, seq L, ack R + 1000);
    assert_eq!(out.options.sack_len, 0, "the pruned range is not claimed");
    assert_eq!(memory.ooo_pruned(), 5);
    assert_eq!(memory.in_use(), OOO_CHUNK, "the ring's first storage");
    // The right edge offered before stays where it was (it never moves
    // left, RFC 9293 §3.8.6).
    assert_eq!(usize::from(out.window), RECV_BUF - 1000);
}

#[test]
fn test_established_window_closes_rather_than_allocate() {
    let (config, memory) = budget_cfg(OOO_CHUNK);
    let mut c = established_sack_with(&config);
    let edge = R + RECV_BUF as u32;
    let chunk = vec![3u8; OOO_CHUNK];
    send!(c, time 1, payload(R, &chunk));
    let nxt = R + OOO_CHUNK as u32;
    let out = recv!(c, time 1, ACK, seq L, ack nxt);
    assert_eq!(nxt + u32::from(out.window), edge);
    // The ring is full and the budget spent: data inside the window is
    // dropped rather than allocated for, and the ACK repeats RCV.NXT.
    send!(c, time 2, payload(nxt, b"more"));
    recv!(c, time 2, ACK, seq L, ack nxt);
    assert_eq!((memory.in_use(), memory.drops()), (OOO_CHUNK, 1));
    // The reader drains the ring. Without a budget the edge would move
    // 4096 bytes right; with none left, no update offers more room.
    let mut buf = vec![0u8; OOO_CHUNK];
    assert_eq!(c.recv(&mut buf), Ok(OOO_CHUNK));
    assert_eq!(buf, chunk);
    recv_nothing!(c, time 3);
    // The ring's storage is reused: the data retransmitted now fits.
    send!(c, time 4, payload(nxt, b"more"));
    let out = recv!(c, time 4, ACK, seq L, ack nxt + 4);
    assert_eq!(nxt + 4 + u32::from(out.window), edge, "the edge stays put");
    assert_eq!(memory.in_use(), OOO_CHUNK);
}

#[test]
fn test_time_wait_gives_both_rings_back() {
    let (config, memory) = budget_cfg(1 << 20);
    let mut c = established_with(&config);
    send!(c, time 0, payload(R, b"hello"));
    assert_eq!(c.recv(&mut [0u8; 16]), Ok(5));
    assert_eq!(c.send(b"bye"), Ok(3));
    drain(&mut c, 0);
    send!(c, time 1, seg(ACK, R + 5, L + 3));
    c.close();
    recv!(c, time 1, FIN | ACK, seq L + 3, ack R + 5);
    assert!(memory.in_use() > 0);
    send!(c, time 2, seg(FIN | ACK, R + 5, L + 4));
    assert_eq!(c.state(), State::TimeWait);
    assert_eq!(memory.in_use(), 0);
    assert_eq!(
        memory.rings_shrunk(),
        2,
        "the receive ring and the send ring"
    );
}

#[test]
fn test_time_wait_gives_the_receive_ring_back_once_read() {
    let (config, memory) = budget_cfg(1 << 20);
    let mut c = fin_wait_2_with(&config);
    // Data and the FIN, unread when TIME-WAIT begins.
    send!(c, time 1, TcpRepr {
        flags: FIN | ACK,
        ..payload(R, b"last words")
    });
    assert_eq!(c.state(), State::TimeWait);
    assert_eq!(memory.in_use(), 4096, "kept for the reader");
    let mut buf = [0u8; 32];
    assert_eq!(c.recv(&mut buf), Ok(10));
    assert_eq!(memory.in_use(), 0);
    assert_eq!(c.recv(&mut buf), Err(crate::tcp::RecvError::Finished));
}

/// FIN-WAIT-2 under `config`.
fn fin_wait_2_with(config: &TcpConfig) -> Connection {
    let mut c = established_with(config);
    c.close();
    recv!(c, time 0, FIN | ACK, seq L, ack R);
    send!(c, time 0, seg(ACK, R, L + 1));
    assert_eq!(c.state(), State::FinWait2);
    c
}
