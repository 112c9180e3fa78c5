//! The command line: `demo [OPTIONS] [COMMAND]`, parsed with clap derive.
//! Every option and command is documented here, which is what `--help`
//! prints.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;

use clap::{Args, Parser, Subcommand, ValueEnum};
use stack::device::tun::Offload;

use crate::services::limits::{self, Limits};

/// A userspace TCP/IP stack as a host on a TUN device.
///
/// With no command, `demo` opens the TUN device and serves, at --addr:
/// ICMP echo (ping), TCP and UDP echo on 7, discard on 9, HTTP on 80 and
/// newline-delimited JSON-RPC 2.0 on 7070. Create the device first with
/// `sudo scripts/setup-tun.sh`. Logging goes to stderr, filtered by
/// RUST_LOG (default `info`; e.g. RUST_LOG=debug).
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(name = "demo", version)]
pub struct Cli {
    /// The TUN device to open. It must exist and be owned by you: run
    /// `sudo scripts/setup-tun.sh` to create it.
    #[arg(long, value_name = "NAME", default_value = "tun0", global = true)]
    pub tun: String,

    /// The IPv4 address this host owns on the TUN network (the kernel's
    /// side is 10.0.0.1 by default).
    #[arg(long, value_name = "IPV4", default_value = "10.0.0.2", global = true)]
    pub addr: Ipv4Addr,

    /// The IPv6 address this host also owns (the kernel's side is
    /// fd00::1, which `setup-tun.sh` adds), or `none`. Every service
    /// answers there too (`ping -6`, `curl -g 'http://[fd00::2]/'`,
    /// `nc -6 fd00::2 7`). Off when --mtu is below IPv6's 1280.
    #[arg(long, value_name = "IPV6", default_value = "fd00::2", global = true)]
    pub addr6: Addr6,

    /// Answer for every address routed into the TUN device, not only
    /// --addr and --addr6 (e.g. after `ip route add 10.99.0.0/16 dev
    /// tun0`, `curl 10.99.1.2/` is answered, and `/` shows the address
    /// dialled): the services listen on 0.0.0.0 and [::].
    #[arg(long, global = true)]
    pub any: bool,

    /// The largest IP packet sent, in bytes (at least 576, RFC 1122). It
    /// should match the TUN device's MTU; TCP's MSS follows from it.
    #[arg(long, value_name = "N", default_value_t = 1500, global = true,
          value_parser = clap::value_parser!(u16).range(576..))]
    pub mtu: u16,

    /// Also write every packet sent and received to FILE in pcap format;
    /// open it in Wireshark.
    #[arg(long, value_name = "FILE", global = true)]
    pub pcap: Option<PathBuf>,

    /// Checksum and segmentation offload on the TUN device: `auto` takes
    /// what the kernel grants (checksum offload and TSO for IPv4 when it
    /// can), `on` refuses to start without both, `off` attaches plainly.
    /// With offload the kernel hands over and takes TCP super-segments of
    /// up to 64 KiB. The start-up log line says what was granted.
    #[arg(long, value_name = "MODE", value_enum, default_value_t = OffloadArg::Auto, global = true)]
    pub offload: OffloadArg,

    /// Receive memory all TCP connections together may hold, in MiB
    /// (`stack::Config::memory_budget`). At the budget out-of-order data
    /// is pruned first, then drained buffers shrink, and windows stop
    /// growing; `GET /stats` shows `memory_in_use` and the counters.
    #[arg(long, value_name = "MIB", default_value_t = 256, global = true,
          value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    pub memory_budget: u64,

    /// Threads serving connections (tokio workers). By default one per CPU
    /// but one for `serve`, whose stack has a receive thread of its own
    /// to keep busy, and one per CPU for `kernel-serve`: a second worker
    /// on a CPU the stack needs only adds wake-ups (about 2 us per JSON-RPC
    /// round trip on one CPU, BENCHMARKS.md).
    #[arg(long, value_name = "N", global = true,
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub workers: Option<u16>,

    /// How many of the last packets in and out the live page's packet log
    /// keeps (one summary line each, as tcpdump prints them); 0 keeps
    /// none and costs nothing per packet.
    #[arg(long, value_name = "N", default_value_t = 512, global = true,
          value_parser = clap::value_parser!(u32).range(0..=65_536))]
    pub packet_log: u32,

    /// The server's limits (issue 12); each hit is counted under "demo" in
    /// `GET /stats`.
    #[command(flatten)]
    pub limits: LimitArgs,

    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// `--addr6`: an IPv6 address, or `none`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addr6(pub Option<Ipv6Addr>);

impl FromStr for Addr6 {
    type Err = String;

    fn from_str(s: &str) -> Result<Addr6, String> {
        if s == "none" {
            return Ok(Addr6(None));
        }
        s.parse()
            .map(|a| Addr6(Some(a)))
            .map_err(|_| format!("'{s}' is not an IPv6 address (e.g. fd00::2) or 'none'"))
    }
}

/// `--offload`: the TUN device's [`Offload`] mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OffloadArg {
    /// Take whatever the kernel grants.
    Auto,
    /// Require checksum offload and TSO.
    On,
    /// No offload.
    Off,
}

impl OffloadArg {
    /// The device's mode.
    pub fn mode(self) -> Offload {
        match self {
            OffloadArg::Auto => Offload::Auto,
            OffloadArg::On => Offload::On,
            OffloadArg::Off => Offload::Off,
        }
    }
}

/// The server's limits, as flags; the defaults are `services::limits`'.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct LimitArgs {
    /// Connections served at once over all ports; at the cap a new one
    /// closes the connection idle longest.
    #[arg(long, value_name = "N", default_value_t = limits::MAX_CONNECTIONS, global = true,
          value_parser = at_least_one)]
    pub max_connections: usize,

    /// Connections each listener holds between handshake and accept (the
    /// backlog of listen(2)).
    #[arg(long, value_name = "N", default_value_t = limits::BACKLOG, global = true,
          value_parser = backlog)]
    pub backlog: usize,

    /// Seconds a whole HTTP request head may take (408 after), and a
    /// JSON-RPC line on port 7070 from its first byte (closed after).
    #[arg(long, value_name = "SECS", default_value_t = limits::HEAD_TIMEOUT.as_secs(), global = true,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub head_timeout: u64,

    /// The slowest average HTTP request body rate, bytes/s, after a grace
    /// of as many seconds as --head-timeout.
    #[arg(long, value_name = "BYTES", default_value_t = limits::BODY_MIN_RATE, global = true,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub body_min_rate: u64,

    /// Seconds an HTTP connection may wait idle for its next request.
    #[arg(long, value_name = "SECS", default_value_t = limits::HTTP_IDLE_TIMEOUT.as_secs(), global = true,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub idle_timeout: u64,

    /// Seconds an echo, discard or JSON-RPC connection may stay idle.
    #[arg(long, value_name = "SECS", default_value_t = limits::STREAM_IDLE_TIMEOUT.as_secs(), global = true,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub stream_idle_timeout: u64,

    /// Seconds a write may make no progress (a peer whose window stays
    /// shut) before the connection is dropped.
    #[arg(long, value_name = "SECS", default_value_t = limits::WRITE_TIMEOUT.as_secs(), global = true,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub write_timeout: u64,

    /// The largest N served by GET /bytes/N (413 beyond).
    #[arg(long, value_name = "BYTES", default_value_t = limits::MAX_BYTES, global = true)]
    pub max_bytes: u64,
}

/// A listen backlog: 1 to the stack's largest.
fn backlog(s: &str) -> Result<usize, String> {
    let max = stack::config::MAX_ACCEPT_BACKLOG;
    match s.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!("{s:?} is not a backlog from 1 to {max}")),
    }
}

/// A count of at least 1.
fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{s:?} is not a number of at least 1")),
    }
}

impl LimitArgs {
    /// The limits these flags give.
    pub fn limits(&self) -> Limits {
        let secs = std::time::Duration::from_secs;
        Limits {
            max_connections: self.max_connections,
            backlog: self.backlog,
            head_timeout: secs(self.head_timeout),
            body_min_rate: self.body_min_rate,
            body_grace: secs(self.head_timeout),
            http_idle_timeout: secs(self.idle_timeout),
            stream_idle_timeout: secs(self.stream_idle_timeout),
            write_timeout: secs(self.write_timeout),
            max_bytes: self.max_bytes,
        }
    }
}

/// The commands.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Serve the demo's services at --addr on the TUN device (the default).
    Serve,

    /// Fetch URL with an HTTP/1.1 GET through the stack, from an ephemeral
    /// port; print the 4-tuple used, then the response.
    Get {
        /// http://IPV4[:PORT][/PATH], e.g. http://10.0.0.1:8000/ (an IPv4
        /// address: there is no DNS).
        #[arg(value_name = "URL")]
        url: String,
    },

    /// Call a JSON-RPC 2.0 method on a newline-delimited server through
    /// the stack, and print the result as JSON.
    ///
    /// Example: `demo call 10.0.0.1:7070 add 2 3` prints 5.
    Call {
        /// The server, IPV4:PORT or [IPV6]:PORT, e.g. 10.0.0.1:7070 or
        /// [fd00::1]:7070.
        #[arg(value_name = "ADDR")]
        server: SocketAddr,
        /// The method name, e.g. add, echo, sockets, rpc.discover.
        #[arg(value_name = "METHOD")]
        method: String,
        /// The params: each a JSON number if it parses as one, else a
        /// string, sent as a positional array; or a single JSON array or
        /// object sent as it is. None: no params.
        #[arg(value_name = "ARGS", allow_negative_numbers = true)]
        args: Vec<String>,
    },

    /// Serve the same services with the Linux kernel's own TCP/IP instead
    /// of the stack (no TUN device): the baseline the benchmark compares
    /// against. Ports below 1024 need root.
    KernelServe {
        /// The local address to listen on, IPv4 or IPv6.
        #[arg(long, value_name = "IP")]
        listen: IpAddr,
    },
}

impl Cli {
    /// The command to run, with `serve` as the default.
    pub fn action(&self) -> Command {
        self.command.clone().unwrap_or(Command::Serve)
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("demo").chain(args.iter().copied()))
    }

    #[test]
    fn definition_is_consistent() {
        <Cli as CommandFactory>::command().debug_assert();
    }

    #[test]
    fn defaults_match_the_design() {
        let cli = parse(&[]).expect("no args");
        assert_eq!(cli.tun, "tun0");
        assert_eq!(cli.addr, Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(cli.addr6, Addr6(Some("fd00::2".parse().expect("v6"))));
        assert!(!cli.any);
        assert!(parse(&["--any"]).expect("--any").any);
        assert_eq!(cli.mtu, 1500);
        assert_eq!(cli.memory_budget, 256);
        assert_eq!(cli.pcap, None);
        assert_eq!(cli.offload.mode(), Offload::Auto);
        assert_eq!(cli.action(), Command::Serve);
        assert_eq!(cli.limits.limits(), Limits::default());
        assert_eq!(cli.workers, None);
        assert_eq!(cli.packet_log, 512);
    }

    #[test]
    fn limit_flags_set_the_limits() {
        let cli = parse(&[
            "--max-connections",
            "8",
            "--head-timeout",
            "2",
            "--write-timeout",
            "3",
            "--max-bytes",
            "1000",
            "--backlog",
            "65535",
        ])
        .expect("limits");
        let l = cli.limits.limits();
        assert_eq!(l.max_connections, 8);
        assert_eq!(l.head_timeout, std::time::Duration::from_secs(2));
        assert_eq!(l.write_timeout, std::time::Duration::from_secs(3));
        assert_eq!(l.max_bytes, 1000);
        assert_eq!(l.backlog, 65535);
        assert!(parse(&["--max-connections", "0"]).is_err());
        assert!(parse(&["--backlog", "0"]).is_err());
        assert!(parse(&["--backlog", "65536"]).is_err());
        assert!(parse(&["--head-timeout", "0"]).is_err());
    }

    #[test]
    fn commands_and_global_options() {
        let cli =
            parse(&["call", "10.0.0.1:7070", "add", "2", "-3", "--mtu", "9000"]).expect("call");
        assert_eq!(cli.mtu, 9000);
        assert_eq!(
            cli.action(),
            Command::Call {
                server: "10.0.0.1:7070".parse().expect("addr"),
                method: "add".into(),
                args: vec!["2".into(), "-3".into()],
            }
        );
        let cli = parse(&[
            "--tun",
            "tun7",
            "--pcap",
            "x.pcap",
            "get",
            "http://10.0.0.1:8000/",
        ])
        .expect("get");
        assert_eq!(cli.tun, "tun7");
        assert_eq!(cli.pcap, Some(PathBuf::from("x.pcap")));
        let cli = parse(&["get", "--offload", "off", "http://10.0.0.1/"]).expect("off");
        assert_eq!(cli.offload.mode(), Offload::Off);
        let cli = parse(&["--offload", "on"]).expect("on");
        assert_eq!(cli.offload.mode(), Offload::On);
        let cli = parse(&["kernel-serve", "--listen", "127.0.0.1"]).expect("kernel-serve");
        assert_eq!(
            cli.action(),
            Command::KernelServe {
                listen: Ipv4Addr::LOCALHOST.into()
            }
        );
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(parse(&["--addr", "10.0.0"]).is_err());
        assert!(parse(&["--addr6", "fd00::2::3"]).is_err());
        assert_eq!(
            parse(&["--addr6", "none"]).expect("none").addr6,
            Addr6(None)
        );
        assert!(parse(&["--mtu", "100"]).is_err());
        assert!(parse(&["--memory-budget", "0"]).is_err());
        assert_eq!(
            parse(&["--memory-budget", "8"])
                .expect("8 MiB")
                .memory_budget,
            8
        );
        assert!(parse(&["--offload", "maybe"]).is_err());
        assert!(parse(&["kernel-serve"]).is_err());
        assert!(parse(&["call", "10.0.0.1", "add"]).is_err());
    }
}
