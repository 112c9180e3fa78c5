//! The demo's end-to-end harness, shared by `e2e.rs` and `browser.rs`: a
//! private network namespace holding `tun0` (made by
//! `scripts/setup-tun.sh --netns`, so the script is exercised too), the
//! built `demo` binary serving at 10.0.0.2 inside it, and helpers to run
//! the kernel-side tools there.
//!
//! These tests need root (namespaces, TUN devices). Without it they print
//! SKIPPED and return; under CI (`CI` set) that is a failure instead, so
//! CI cannot pass by skipping.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// The demo's address (its default) and the kernel's side of `tun0`.
pub const STACK: &str = "10.0.0.2";
pub const HOST: &str = "10.0.0.1";

/// How long the demo may take to answer its first ping after starting.
pub const START_TIMEOUT: Duration = Duration::from_secs(15);

/// Ctrl-C must end the demo within this (issue 6).
pub const SIGINT_DEADLINE: Duration = Duration::from_secs(2);

/// Upper bound for any single tool run (curl --max-time, nc -w).
pub const TOOL_TIMEOUT_SECS: &str = "30";

/// Whether this process may create namespaces and TUN devices; the same
/// rule as `stack/tests/common/mod.rs`. Prints why not; panics under CI.
pub fn can_run(test: &str) -> bool {
    let Err(why) = stack::device::netns::check_privileges() else {
        return true;
    };
    if std::env::var_os("CI").is_some() {
        panic!("{test}: {why}; CI must run the real-TUN tests");
    }
    // Straight to stderr: the test harness captures `eprintln!` of
    // passing tests, and a skip must be seen.
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
    false
}

pub fn demo_bin() -> &'static str {
    env!("CARGO_BIN_EXE_demo")
}

pub fn setup_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/setup-tun.sh")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A namespace holding `tun0` (kernel side 10.0.0.1/24), a scratch
/// directory, and at most one serving demo. Drop stops the demo and
/// removes everything, even when the test failed.
pub struct Ns {
    name: String,
    dir: PathBuf,
    demo: Option<Child>,
    kernel_server: Option<Child>,
}

pub static NEXT: AtomicU32 = AtomicU32::new(0);

impl Ns {
    /// A fresh namespace, unique per process and test, made by the script.
    pub fn new(tag: &str) -> Ns {
        let name = format!(
            "e2e-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let dir = std::env::temp_dir().join(format!("demo-{name}"));
        fs::create_dir_all(&dir).expect("scratch dir");
        let ns = Ns {
            name,
            dir,
            demo: None,
            kernel_server: None,
        };
        let out = Command::new(setup_script())
            .args(["--netns", &ns.name])
            .output()
            .expect("run setup-tun.sh");
        assert!(
            out.status.success(),
            "setup-tun.sh --netns {} failed: {}{}",
            ns.name,
            text(&out.stdout),
            text(&out.stderr)
        );
        assert!(
            text(&out.stdout).contains("tun0 is up"),
            "setup-tun.sh said: {}",
            text(&out.stdout)
        );
        ns
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).args(args);
        c
    }

    /// Runs a command inside the namespace with no input.
    pub fn exec(&self, args: &[&str]) -> Output {
        self.command(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    /// Runs a command inside the namespace with `input` on its stdin.
    pub fn exec_input(&self, args: &[&str], input: &[u8]) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{args:?}: {e}"));
        let mut stdin = child.stdin.take().expect("piped stdin");
        let input = input.to_vec();
        // A writer thread, so a tool that echoes while reading cannot
        // deadlock against us.
        let writer = thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let out = child.wait_with_output().expect("wait");
        writer.join().expect("writer thread");
        out
    }

    /// Runs a command inside the namespace that must succeed; its stdout.
    pub fn ok(&self, args: &[&str]) -> Vec<u8> {
        let out = self.exec(args);
        assert!(
            out.status.success(),
            "{args:?} failed ({}): {}",
            out.status,
            text(&out.stderr)
        );
        out.stdout
    }

    /// `curl` inside the namespace with the usual safety flags; stdout.
    pub fn curl(&self, args: &[&str]) -> Vec<u8> {
        let mut full = vec![
            "curl",
            "-sS",
            "--noproxy",
            "*",
            "--max-time",
            TOOL_TIMEOUT_SECS,
        ];
        full.extend_from_slice(args);
        self.ok(&full)
    }

    /// GET `path` from the demo: (status, body).
    pub fn get(&self, path: &str) -> (u16, Vec<u8>) {
        let body = self.file(&format!("get-{}", NEXT.fetch_add(1, Ordering::Relaxed)));
        let url = format!("http://{STACK}{path}");
        let code = self.curl(&["-o", path_str(&body), "-w", "%{http_code}", &url]);
        let status = text(&code).trim().parse().expect("status code");
        let bytes = fs::read(&body).unwrap_or_default();
        let _ = fs::remove_file(&body);
        (status, bytes)
    }

    /// A path in the scratch directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Starts the serving demo (defaults: tun0, 10.0.0.2) and waits until
    /// it answers a ping, bounded by [`START_TIMEOUT`].
    pub fn start_demo(&mut self) {
        self.start_demo_with(&[]);
    }

    /// [`Ns::start_demo`] with these extra flags.
    pub fn start_demo_with(&mut self, flags: &[&str]) {
        let log = fs::File::create(self.file("demo.log")).expect("log file");
        let mut args = vec![demo_bin()];
        args.extend_from_slice(flags);
        let child = self
            .command(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn demo");
        self.demo = Some(child);
        let start = Instant::now();
        loop {
            if let Some(status) = self.demo.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("demo exited early ({status}): {}", self.demo_log());
            }
            if self.exec(&["ping", "-c1", "-W1", STACK]).status.success() {
                return;
            }
            assert!(
                start.elapsed() < START_TIMEOUT,
                "demo did not answer ping within {START_TIMEOUT:?}: {}",
                self.demo_log()
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn demo_log(&self) -> String {
        fs::read_to_string(self.file("demo.log")).unwrap_or_default()
    }

    /// Sends SIGINT (Ctrl-C) to the serving demo and asserts it ends
    /// within [`SIGINT_DEADLINE`] with an exit code, not a crash, and
    /// without a warning on the way out.
    pub fn interrupt_demo(&mut self) {
        let mut child = self.demo.take().expect("a running demo");
        // `ip netns exec` execs the demo, so the child's pid is the demo's.
        let pid = child.id().to_string();
        let start = Instant::now();
        let sent = Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .expect("kill");
        assert!(sent.success(), "kill -INT {pid} failed");
        let status = loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                break status;
            }
            if start.elapsed() > SIGINT_DEADLINE {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "demo still running {SIGINT_DEADLINE:?} after SIGINT: {}",
                    self.demo_log()
                );
            }
            thread::sleep(Duration::from_millis(10));
        };
        let log = self.demo_log();
        assert_clean_exit(status, &log);
        let interrupted = log
            .find("interrupted")
            .unwrap_or_else(|| panic!("no 'interrupted' line: {log}"));
        let after = &log[interrupted..];
        assert!(!after.contains("WARN"), "warnings after Ctrl-C: {after}");
    }

    /// Starts `demo kernel-serve --listen 10.0.0.1`: the same services on
    /// the kernel's sockets, on the kernel's side of tun0. Waits until its
    /// HTTP port answers.
    pub fn start_kernel_server(&mut self) {
        let log = fs::File::create(self.file("kernel.log")).expect("log file");
        let child = self
            .command(&[demo_bin(), "kernel-serve", "--listen", HOST])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn kernel-serve");
        self.kernel_server = Some(child);
        let start = Instant::now();
        let probe = format!("http://{HOST}/");
        while !self
            .exec(&["curl", "-s", "--noproxy", "*", "-o", "/dev/null", &probe])
            .status
            .success()
        {
            assert!(
                start.elapsed() < START_TIMEOUT,
                "kernel-serve did not start: {}",
                fs::read_to_string(self.file("kernel.log")).unwrap_or_default()
            );
            thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        for child in [self.demo.take(), self.kernel_server.take()]
            .into_iter()
            .flatten()
        {
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = Command::new(setup_script())
            .args(["--netns", &self.name, "--down"])
            .output();
        // Fallback in case the script kept it (it only removes a namespace
        // holding nothing but lo): it is ours in any case.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
}

/// The demo exits with 130 on Ctrl-C; a crash (a signal, a panic's 101)
/// is a failure.
pub fn assert_clean_exit(status: ExitStatus, log: &str) {
    assert_eq!(
        status.code(),
        Some(130),
        "demo ended with {status} after SIGINT: {log}"
    );
}
