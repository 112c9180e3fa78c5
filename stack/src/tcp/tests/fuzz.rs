//! Property test: a connection in any state, fed arbitrary segments,
//! timeouts and application calls at arbitrary times, never panics,
//! `poll_transmit` always runs dry, and its invariants hold: every segment
//! it emits lies in its sequence space, no timer is left overdue, and once
//! CLOSED it stays CLOSED and silent (at most the RST it owed on the way).

use proptest::prelude::*;

use super::*;
use crate::wire::tcp::Timestamps;

/// A connection in one of the states the fixtures build.
fn fixture(i: u8) -> Connection {
    match i % 10 {
        0 => syn_sent(),
        1 => syn_received(),
        2 => established(),
        3 => fin_wait_1(),
        4 => fin_wait_2(),
        5 => close_wait(),
        6 => last_ack(),
        7 => closing(),
        8 => time_wait(),
        _ => established_with(&TcpConfig {
            sack: true,
            timestamps: true,
            window_scaling: true,
            delayed_ack: Some(Duration::from_millis(40)),
            nodelay: false,
            recv_buffer: 3000,
            send_buffer: 5000,
            keepalive: Some(Duration::from_millis(1000)),
            ..cfg()
        }),
    }
}

static PAYLOAD: [u8; 1600] = [0xab; 1600];

#[derive(Debug, Clone)]
enum Op {
    Segment {
        flags: u8,
        seq: u32,
        ack: u32,
        window: u16,
        len: usize,
        ts: Option<(u32, u32)>,
        sack: Option<(u32, u32)>,
    },
    Send(usize),
    Recv(usize),
    Close,
    Abort,
    Wait(u64),
}

/// Near the numbers the fixtures use, or anywhere.
fn seq_near(base: u32) -> impl Strategy<Value = u32> {
    prop_oneof![
        4 => (-3000i64..3000).prop_map(move |d| (i64::from(base) + d) as u32),
        1 => any::<u32>(),
    ]
}

/// A window field: closed and tiny windows (persist timer, sender SWS)
/// as often as arbitrary ones.
fn window() -> impl Strategy<Value = u16> {
    prop_oneof![
        1 => Just(0u16),
        1 => 1u16..2000,
        2 => any::<u16>(),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (
            0u8..0x20,
            seq_near(R),
            seq_near(L),
            window(),
            prop_oneof![3 => Just(0usize), 2 => 0usize..1600],
            proptest::option::of((any::<u32>(), any::<u32>())),
            proptest::option::of((seq_near(L), seq_near(L))),
        )
            .prop_map(|(flags, seq, ack, window, len, ts, sack)| Op::Segment {
                flags,
                seq,
                ack,
                window,
                len,
                ts,
                sack
            }),
        2 => (0usize..3000).prop_map(Op::Send),
        2 => (0usize..3000).prop_map(Op::Recv),
        1 => Just(Op::Close),
        1 => Just(Op::Abort),
        3 => (0u64..3000).prop_map(Op::Wait),
    ]
}

fn apply(c: &mut Connection, now: &mut u64, op: &Op) {
    match *op {
        Op::Segment {
            flags,
            seq,
            ack,
            window,
            len,
            ts,
            sack,
        } => {
            let mut options = NO_OPTIONS;
            options.timestamps = ts.map(|(tsval, tsecr)| Timestamps { tsval, tsecr });
            if let Some((l, r)) = sack {
                options.push_sack(SackBlock {
                    left: SeqNumber(l),
                    right: SeqNumber(r),
                });
            }
            let repr = TcpRepr {
                flags: TcpFlags(flags),
                seq: SeqNumber(seq),
                ack: SeqNumber(ack),
                window,
                options,
                payload: &PAYLOAD[..len],
                ..ACK_TEMPL
            };
            c.handle_segment(ms(*now), &repr);
        }
        Op::Send(n) => {
            let _ = c.send(&PAYLOAD[..n.min(PAYLOAD.len())]);
        }
        Op::Recv(n) => {
            let mut buf = vec![0u8; n];
            let _ = c.recv(&mut buf);
        }
        Op::Close => c.close(),
        Op::Abort => c.abort(),
        Op::Wait(d) => {
            *now += d;
            if c.poll_timeout().is_some_and(|t| t <= ms(*now)) {
                c.handle_timeout(ms(*now));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    #[test]
    fn any_input_in_any_state_keeps_invariants(
        state in 0u8..10,
        ops in proptest::collection::vec(op(), 1..40),
    ) {
        let mut c = fixture(state);
        let mut now = 0u64;
        let mut buf = vec![0u8; 2000];
        for op in &ops {
            let was_closed = c.state() == State::Closed;
            apply(&mut c, &mut now, op);
            let (mut n, mut rsts) = (0, 0);
            while let Some(seg) = c.poll_transmit(ms(now), &mut buf) {
                prop_assert!(seg.payload.len() <= 1460);
                prop_assert!(seg.header_len() <= crate::wire::tcp::MAX_HEADER_LEN);
                prop_assert!(!(seg.flags.syn() && seg.flags.fin()));
                c.check_emitted(&seg);
                rsts += usize::from(seg.flags.rst());
                n += 1;
                prop_assert!(n < 200, "poll_transmit never runs dry");
            }
            c.check_invariants();
            if was_closed {
                // RFC 9293 §3.10.7.1: a closed connection has no TCB; no
                // input, command or timer brings it back or makes it send.
                prop_assert_eq!(c.state(), State::Closed);
                prop_assert_eq!(n, 0, "a closed connection sent {:?}", op);
            } else if c.state() == State::Closed {
                // Closing may owe one RST (abort, give-up), nothing else.
                prop_assert!(n == rsts && n <= 1, "{} segments while closing", n);
            }
            // Every due timer ran: the next deadline is in the future, or
            // a runtime waiting for it would spin.
            if let Some(t) = c.poll_timeout() {
                prop_assert!(t > ms(now), "overdue timer at {:?}, now {}", t, now);
            }
        }
    }
}
