//! `demo`: the userspace stack as a host at 10.0.0.2 on `tun0`, serving
//! ICMP echo, TCP/UDP echo (7), discard (9), HTTP (80) and JSON-RPC
//! (7070); or, as a client through the same stack, `demo get URL` and
//! `demo call ADDR METHOD ARGS...`. Run `demo --help`.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use tracing::{info, warn};

use demo::cli::{Cli, Command};
use demo::client;
use demo::kernel::{kernel_serve, KernelHost};
use demo::services::udp_echo;
use demo::stack_host::StackHost;
use demo::{ConnInfo, Service, Services};
use stack::device::packet_log::PacketLog;
use stack::device::pcap::PcapWriter;
use stack::device::tun::{Offload, TunDevice};
use stack::device::Device;
use stack::{Config, Stack, TcpStream};

/// How long `demo call` waits for the answer.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The exit status after Ctrl-C, as shells report a SIGINT death.
const INTERRUPTED: u8 = 130;

fn main() -> ExitCode {
    demo::init_logging();
    let cli = Cli::parse();
    let result = match cli.action() {
        // Serving ends well only by Ctrl-C.
        Command::Serve => match serve(&cli) {
            Ok(()) => return ExitCode::from(INTERRUPTED),
            Err(e) => Err(e),
        },
        Command::Get { url } => get(&cli, &url),
        Command::Call {
            server,
            method,
            args,
        } => call(&cli, server, &method, &args),
        Command::KernelServe { listen } => {
            let workers = cli.workers.map(usize::from);
            kernel_serve(
                listen,
                Arc::new(KernelHost::new()),
                cli.limits.limits(),
                workers,
            )
            .map_err(|e| e.to_string())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Opens the TUN device (with a capture around it if asked, and the
/// packet log `log` if given) and starts the stack on it.
fn start_stack(cli: &Cli, log: Option<&PacketLog>) -> Result<Stack, String> {
    let mtu = usize::from(cli.mtu);
    let mut mode = cli.offload.mode();
    let device = loop {
        let tun = TunDevice::open_with(&cli.tun, mtu, mode).map_err(|e| e.to_string())?;
        // The device carries the choice: the stack uses whatever it
        // offers (super-segments in and out, checksums left to the
        // kernel).
        info!(
            "{}: offloads: {} (--offload {})",
            cli.tun,
            tun.offloads(),
            format!("{:?}", cli.offload).to_lowercase()
        );
        let Some(path) = &cli.pcap else {
            break Box::new(tun) as Box<dyn Device>;
        };
        let wanted = tun.max_packet();
        let pcap = PcapWriter::create(tun, path)
            .map_err(|e| format!("cannot write the capture {}: {e}", path.display()))?;
        // A capture wrapper that does not pass the device's packet size
        // on would size the stack's receive buffers by the MTU and
        // truncate the kernel's super-segments: capture without offload
        // then, unless offload was required.
        if pcap.max_packet() >= wanted || mode == Offload::Off {
            break Box::new(pcap);
        }
        if mode == Offload::On {
            return Err("--pcap cannot capture super-segments: use --offload auto or off".into());
        }
        warn!("--pcap: capturing without offload (the capture does not pass super-segments on)");
        drop(pcap);
        mode = Offload::Off;
    };
    let mut config = Config::with_addr(cli.addr).with_mtu(mtu);
    config.addr6 = cli.addr6.0;
    config.any_address = cli.any;
    if config.addr6.is_some() && mtu < stack::wire::ipv6::MIN_MTU {
        warn!("--mtu {mtu} is below IPv6's 1280: IPv6 off");
        config.addr6 = None;
    }
    // At most 2^20 MiB (clap checks it): 2^40 bytes.
    config.memory_budget = usize::try_from(cli.memory_budget << 20).unwrap_or(usize::MAX);
    let device = match log {
        Some(log) => Box::new(log.wrap(device)),
        None => device,
    };
    Stack::new(device, config).map_err(|e| format!("cannot start the stack: {e}"))
}

/// The client commands block on the stack's sockets: Ctrl-C shuts the
/// stack down (the peer gets RSTs, not silence) and exits.
fn start_client_stack(cli: &Cli) -> Result<Stack, String> {
    let stack = start_stack(cli, None)?;
    let on_signal = stack.clone();
    ctrlc::set_handler(move || {
        on_signal.shutdown();
        std::process::exit(i32::from(INTERRUPTED));
    })
    .map_err(|e| format!("cannot install the Ctrl-C handler: {e}"))?;
    Ok(stack)
}

/// Runs every service on the stack, each connection a tokio task, until
/// Ctrl-C (which resets the open connections and releases the device).
///
/// # Errors
/// The stack or a service could not start, or every service's loop
/// ended (the warnings before say why).
fn serve(cli: &Cli) -> Result<(), String> {
    let log = (cli.packet_log > 0).then(|| PacketLog::new(cli.packet_log as usize));
    let stack = start_stack(cli, log.as_ref())?;
    // The stack's receive thread keeps a CPU busy under load: the
    // services get the others (see --workers).
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let workers = cli
        .workers
        .map_or(cpus.saturating_sub(1).max(1), usize::from);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .thread_name("demo")
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let services = Services::with_limits(
        Arc::new(StackHost::new(stack.clone(), log)),
        cli.limits.limits(),
    );
    let mut loops = tokio::task::JoinSet::new();
    let entered = runtime.enter();
    for ip in service_addresses(cli, &stack) {
        for service in Service::ALL {
            let local = SocketAddr::new(ip, service.port());
            let listener =
                stack::tokio::TcpListener::bind_with_backlog(&stack, local, cli.limits.backlog)
                    .map_err(|e| format!("cannot listen on TCP {local}: {e}"))?;
            let services = Arc::clone(&services);
            loops.spawn(async move {
                let err = services
                    .accept_loop(service, || async {
                        let (stream, remote) = listener.accept().await?;
                        let info = ConnInfo {
                            local: stream.local_addr()?,
                            remote,
                        };
                        Ok((stream, info))
                    })
                    .await;
                warn!(?service, %err, "accept loop ended");
            });
        }
        let local = SocketAddr::new(ip, 7);
        let udp = stack::tokio::UdpSocket::bind(&stack, local)
            .map_err(|e| format!("cannot bind UDP {local}: {e}"))?;
        let services = Arc::clone(&services);
        loops.spawn(async move {
            let err = udp_echo::serve(&udp, &services.counters().udp_echo_refused).await;
            warn!(%err, "UDP echo ended");
        });
    }
    info!(
        "{} on {}: ping, TCP 7 echo, UDP 7 echo, TCP 9 discard, TCP 80 HTTP, TCP 7070 JSON-RPC; try: curl {}/",
        stack.addr(),
        cli.tun,
        stack.addr()
    );
    if cli.any {
        info!(
            "--any: also answering for every address routed into {}",
            cli.tun
        );
    }
    if let Some(addr6) = stack.config().addr6 {
        info!(
            "{addr6} on {}: the same services over IPv6; try: curl -g 'http://[{addr6}]/'",
            cli.tun
        );
    }
    let stop = runtime.block_on(async {
        tokio::select! {
            signal = tokio::signal::ctrl_c() => signal
                .map_err(|e| format!("cannot wait for Ctrl-C: {e}")),
            () = async { while loops.join_next().await.is_some() {} } => {
                Err("every service stopped (see the warnings above)".to_owned())
            }
        }
    });
    if stop.is_ok() {
        info!("interrupted: resetting open connections and releasing the device");
    }
    // The tasks go first, so that no accept loop sees the stack vanish
    // and reports it.
    drop(entered);
    runtime.shutdown_background();
    stack.shutdown();
    stop
}

/// The addresses the services wait on: the stack's own (IPv4, and IPv6
/// when it has one), or with --any each family's wildcard, for every
/// address routed to the stack.
fn service_addresses(cli: &Cli, stack: &Stack) -> Vec<IpAddr> {
    let v4 = if cli.any {
        Ipv4Addr::UNSPECIFIED
    } else {
        stack.addr()
    };
    let v6 = stack
        .addr6()
        .map(|a| if cli.any { Ipv6Addr::UNSPECIFIED } else { a });
    std::iter::once(IpAddr::V4(v4))
        .chain(v6.map(IpAddr::V6))
        .collect()
}

/// A connection's two ends.
fn ends(stream: &TcpStream) -> Result<(SocketAddr, SocketAddr), String> {
    let local = stream.local_addr().map_err(|e| e.to_string())?;
    let peer = stream.peer_addr().map_err(|e| e.to_string())?;
    Ok((local, peer))
}

/// `demo get URL`: an active open from an ephemeral port through the
/// stack; the body (at most `client::DEFAULT_MAX_BODY`) to stdout.
fn get(cli: &Cli, url: &str) -> Result<(), String> {
    let url = client::parse_url(url)?;
    let stack = start_client_stack(cli)?;
    let stream = TcpStream::connect(&stack, url.addr)
        .map_err(|e| format!("connect to {}: {e}", url.addr))?;
    let (local, peer) = ends(&stream)?;
    // Everything but the body goes to stderr, so `demo get URL > FILE`
    // saves the body alone, as curl does.
    eprintln!(
        "connected: {} -> {} (our ephemeral port {})",
        local,
        peer,
        local.port()
    );
    let response = client::http_get(&stream, &url.authority, &url.path, client::DEFAULT_MAX_BODY)
        .map_err(|e| format!("GET {}: {e}", url.path))?;
    drop(stream);
    eprintln!("HTTP/1.1 {} {}", response.status, response.reason);
    for (name, value) in &response.headers {
        eprintln!("{name}: {value}");
    }
    eprintln!();
    let mut out = std::io::stdout().lock();
    out.write_all(&response.body).map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())?;
    stack.shutdown();
    Ok(())
}

/// `demo call ADDR METHOD ARGS...`: JSON-RPC over a connection through the
/// stack.
fn call(cli: &Cli, server: SocketAddr, method: &str, args: &[String]) -> Result<(), String> {
    let stack = start_client_stack(cli)?;
    let stream =
        TcpStream::connect(&stack, server).map_err(|e| format!("connect to {server}: {e}"))?;
    let (local, peer) = ends(&stream)?;
    eprintln!("connected: {local} -> {peer}");
    let reader = stream.try_clone().map_err(|e| e.to_string())?;
    let result = client::rpc_call(
        reader,
        stream.try_clone().map_err(|e| e.to_string())?,
        method,
        client::call_params(args),
        CALL_TIMEOUT,
    );
    let _ = stream.shutdown(Shutdown::Both);
    drop(stream);
    let outcome = match result {
        Ok(value) => {
            println!("{value}");
            Ok(())
        }
        Err(e) => Err(format!("{method} failed: {e}")),
    };
    stack.shutdown();
    outcome
}
