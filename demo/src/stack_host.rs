//! [`HostInfo`] for the userspace stack: its socket table and counters as
//! JSON, for `GET /sockets`, `GET /stats` and the RPC methods.

use serde_json::{json, Map, Value};
use stack::api::TcpInfo;

use crate::HostInfo;

/// The stack seen as a host.
pub struct StackHost {
    stack: stack::Stack,
}

impl StackHost {
    pub fn new(stack: stack::Stack) -> StackHost {
        StackHost { stack }
    }
}

impl HostInfo for StackHost {
    /// One object per socket: protocol, local, remote, state and queue
    /// depths; TCP connections add [`tcp_info_columns`].
    fn sockets(&self) -> Value {
        Value::Array(
            self.stack
                .sockets()
                .into_iter()
                .map(|s| {
                    let mut row = json!({
                        "protocol": s.protocol.as_str(),
                        "local": s.local.to_string(),
                        "remote": s.remote.map(|r| r.to_string()),
                        "state": s.state,
                        "recv_queue": s.recv_queue,
                        "send_queue": s.send_queue,
                    });
                    if let (Some(info), Value::Object(row)) = (&s.tcp, &mut row) {
                        row.extend(tcp_info_columns(info));
                    }
                    row
                })
                .collect(),
        )
    }

    fn stats(&self) -> Value {
        let counters: Map<String, Value> = self
            .stack
            .stats()
            .snapshot()
            .into_iter()
            .map(|(name, value)| (name.to_string(), Value::from(value)))
            .collect();
        Value::Object(counters)
    }

    fn metrics(&self) -> String {
        stack::metrics::render(&self.stack)
    }
}

/// A connection's `TCP_INFO` columns, as `ss -i` shows them: `srtt_us`
/// and `rttvar_us` (`srtt_us` null before the first sample), `rto_ms`,
/// `snd_mss`, `cwnd` and `ssthresh` in bytes (`ssthresh` null while
/// still unbounded), `in_flight` and `unacked` in bytes of sequence
/// space, `retransmits` in segments, `delivery_rate` in bytes per
/// second (see [`TcpInfo::delivery_rate`]).
pub fn tcp_info_columns(info: &TcpInfo) -> Map<String, Value> {
    let micros = |d: std::time::Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    let millis = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let columns = json!({
        "srtt_us": info.srtt.map(micros),
        "rttvar_us": micros(info.rttvar),
        "rto_ms": millis(info.rto),
        "snd_mss": info.snd_mss,
        "cwnd": info.cwnd,
        "ssthresh": info.ssthresh,
        "in_flight": info.in_flight,
        "unacked": info.unacked,
        "retransmits": info.retransmits,
        "delivery_rate": info.delivery_rate,
    });
    match columns {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;
    use stack::api::TcpInfo;
    use stack::tcp::state::State;

    use super::tcp_info_columns;

    fn info() -> TcpInfo {
        TcpInfo {
            state: State::Established,
            srtt: Some(Duration::from_micros(10_250)),
            rttvar: Duration::from_micros(5_000),
            rto: Duration::from_millis(200),
            rto_backoffs: 0,
            snd_mss: 1448,
            advmss: 1460,
            cwnd: 14_480,
            ssthresh: None,
            in_flight: 2896,
            unacked: 2896,
            retransmits: 3,
            bytes_sent: 100_000,
            bytes_retransmitted: 4344,
            bytes_acked: 92_760,
            bytes_received: 0,
            delivery_rate: 282_536,
            send_queue: 7240,
            recv_queue: 0,
            peer_window: 65_535,
            recv_window: 1 << 20,
            sack: true,
            timestamps: true,
            window_scale: Some((5, 7)),
        }
    }

    #[test]
    fn tcp_info_columns_are_in_the_units_their_names_say() {
        let got = serde_json::Value::Object(tcp_info_columns(&info()));
        let want = json!({
            "srtt_us": 10_250, "rttvar_us": 5000, "rto_ms": 200,
            "snd_mss": 1448, "cwnd": 14_480, "ssthresh": null,
            "in_flight": 2896, "unacked": 2896, "retransmits": 3,
            "delivery_rate": 282_536,
        });
        assert_eq!(got, want);
    }

    #[test]
    fn tcp_info_columns_show_unknowns_as_null() {
        let fresh = TcpInfo {
            srtt: None,
            ssthresh: Some(2896),
            ..info()
        };
        let got = tcp_info_columns(&fresh);
        assert_eq!(got["srtt_us"], serde_json::Value::Null);
        assert_eq!(got["ssthresh"], json!(2896));
    }
}
