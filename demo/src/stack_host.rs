//! [`HostInfo`] for the userspace stack: its socket table and counters as
//! JSON, for `GET /sockets`, `GET /stats` and the RPC methods.

use std::net::{IpAddr, SocketAddr};

use serde_json::{json, Map, Value};
use stack::api::TcpInfo;
use stack::device::packet_log::{PacketLog, PacketRecord, PacketSummary, Transport};

use crate::HostInfo;

/// The stack seen as a host.
pub struct StackHost {
    stack: stack::Stack,
    log: Option<PacketLog>,
}

impl StackHost {
    /// `stack`, with the log of the packets its device carries if kept.
    pub fn new(stack: stack::Stack, log: Option<PacketLog>) -> StackHost {
        StackHost { stack, log }
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

    fn packets(&self, since: u64) -> Value {
        let Some(log) = &self.log else {
            return json!({ "next": since, "packets": [] });
        };
        let (records, next) = log.since(since);
        json!({
            "next": next,
            "packets": records.iter().map(packet_json).collect::<Vec<_>>(),
        })
    }
}

/// One packet of the log, as [`HostInfo::packets`] documents it.
pub fn packet_json(record: &PacketRecord) -> Value {
    let s = record.summary.as_ref();
    let endpoint = |ip: Option<IpAddr>, addr: Option<SocketAddr>| {
        addr.map(|a| a.to_string())
            .or_else(|| ip.map(|ip| ip.to_string()))
    };
    let tcp = s.and_then(|s| match s.transport {
        Transport::Tcp(tcp) => Some(tcp),
        _ => None,
    });
    json!({
        "seq": record.seq,
        "time": record.time_of_day(),
        "dir": record.dir.as_str(),
        "proto": s.map_or("ip", PacketSummary::protocol),
        "src": endpoint(s.map(|s| s.src), s.and_then(PacketSummary::src_addr)),
        "dst": endpoint(s.map(|s| s.dst), s.and_then(PacketSummary::dst_addr)),
        "flags": tcp.map(|t| t.flags.to_string()),
        "seq_no": tcp.map(|t| t.seq),
        "ack": tcp.and_then(|t| t.ack),
        "win": tcp.map(|t| t.window),
        "len": s.map_or(record.bytes, |s| s.len),
        "line": record.to_string(),
    })
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
    fn a_logged_syn_becomes_the_documented_json() {
        use stack::device::packet_log::{Direction, PacketLog};
        // 10.0.0.1:53412 -> 10.0.0.2:80 SYN, seq 1000, window 64240.
        let mut syn = vec![0u8; 40];
        syn[0] = 0x45;
        syn[3] = 40;
        syn[9] = 6;
        syn[12..16].copy_from_slice(&[10, 0, 0, 1]);
        syn[16..20].copy_from_slice(&[10, 0, 0, 2]);
        syn[20..22].copy_from_slice(&53412u16.to_be_bytes());
        syn[22..24].copy_from_slice(&80u16.to_be_bytes());
        syn[24..28].copy_from_slice(&1000u32.to_be_bytes());
        syn[32] = 0x50;
        syn[33] = 0x02;
        syn[34..36].copy_from_slice(&64240u16.to_be_bytes());
        let log = PacketLog::new(8);
        log.record(Direction::In, &syn);
        let (records, _) = log.since(0);
        let mut got = super::packet_json(&records[0]);
        assert!(got["time"].as_str().is_some_and(|t| t.len() == 15), "{got}");
        got["time"] = json!("t");
        assert_eq!(
            got,
            json!({
                "seq": 0, "time": "t", "dir": "in", "proto": "tcp",
                "src": "10.0.0.1:53412", "dst": "10.0.0.2:80", "flags": "S",
                "seq_no": 1000, "ack": null, "win": 64240, "len": 0,
                "line": records[0].to_string(),
            })
        );
        assert!(records[0].to_string().ends_with(
            "In  IP 10.0.0.1.53412 > 10.0.0.2.80: Flags [S], seq 1000, win 64240, length 0"
        ));
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
