//! The live page in a real browser: headless Chromium, inside the test's
//! network namespace, loads `http://10.0.0.2/` from the demo on the
//! stack, lets the page poll `/live.json` for a few seconds of virtual
//! time, and prints the DOM it ended with (`--dump-dom`). The test reads
//! that DOM as a user reads the page: the browser's own 4-tuple, its row
//! in the socket table, its SYN in the packet log; and, with a thousand
//! connections open, a table drawn only in part, saying so.
//!
//! `--virtual-time-budget` makes the wait deterministic: Chromium runs
//! the page's timers on a virtual clock that stands still while a fetch
//! is pending, so the page gets the same number of polls however slow the
//! machine, and the run ends as soon as the budget is spent (about a
//! second of real time).
//!
//! A screenshot of the page (1280x1000) is kept as a test artefact in
//! `$CARGO_TARGET_TMPDIR/live-page.png`; with `UPDATE_SCREENSHOT=1` it
//! also replaces `docs/live-page.png`, the one README.md shows.
//!
//! Needs root (namespaces, TUN devices) and Chromium (Debian package
//! `chromium`); without either the test prints SKIPPED and returns, and
//! under CI (`CI` set) fails instead.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::{can_run, path_str, text, Ns, HOST, STACK};

/// Virtual time the page runs before the DOM is read: about six polls.
const VIRTUAL_TIME_MS: &str = "3000";

/// Real time one Chromium run may take before `timeout` ends it.
const BROWSER_TIMEOUT_SECS: &str = "60";

/// What makes a run headless, quiet and local: no sandbox (we are root),
/// no GPU, shared memory in /tmp (a container's /dev/shm may be tiny),
/// and none of the background fetches (updates, sync, first-run pages) a
/// browser would otherwise try; the namespace has no route out in any
/// case.
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--no-proxy-server",
    "--hide-scrollbars",
];

/// How many connections the page must stay usable with.
const MANY: usize = 1000;

/// The table's row cap in `live.js` (`MAX_ROWS`).
const MAX_ROWS: usize = 400;

/// Opens `sys.argv[1]` connections to the discard port, says so, and
/// holds them until its stdin closes.
const HOLD_CONNECTIONS: &str = r#"
import socket, sys
held = [socket.create_connection(("10.0.0.2", 9)) for _ in range(int(sys.argv[1]))]
print("ready", flush=True)
sys.stdin.read()
"#;

/// Whether `chromium` runs here; prints why not, and panics under CI.
fn have_chromium(test: &str) -> bool {
    let ok = Command::new("chromium")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{test}: chromium is not installed; CI must run the browser test");
    }
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: no chromium (apt-get install chromium)"
    );
    false
}

/// Runs headless Chromium on `url` inside the namespace with `flags`,
/// bounded by [`BROWSER_TIMEOUT_SECS`]; its stdout.
fn chromium(ns: &Ns, url: &str, flags: &[&str]) -> String {
    let profile = ns.file("chromium-profile");
    let profile_flag = format!("--user-data-dir={}", path_str(&profile));
    let budget = format!("--virtual-time-budget={VIRTUAL_TIME_MS}");
    let mut args = vec!["timeout", "-k", "5", BROWSER_TIMEOUT_SECS, "chromium"];
    args.extend_from_slice(CHROMIUM_FLAGS);
    args.extend_from_slice(&[&profile_flag, &budget]);
    args.extend_from_slice(flags);
    args.push(url);
    let out = ns.exec(&args);
    assert!(
        out.status.success(),
        "chromium {flags:?} failed ({}): {}",
        out.status,
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// The text of the element with `id` in `dom` (no nested tags).
fn by_id<'a>(dom: &'a str, id: &str) -> &'a str {
    let at = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in the page: {dom}"));
    let rest = &dom[at..];
    let start = rest.find('>').expect("end of the tag") + 1;
    let end = rest[start..].find('<').expect("end of the text");
    &rest[start..start + end]
}

/// The `<tr ...>...</tr>` of the socket table row keyed `key`.
fn row<'a>(dom: &'a str, key: &str) -> &'a str {
    let at = dom
        .find(&format!("data-key=\"{key}\""))
        .unwrap_or_else(|| panic!("no row {key:?} in the table: {dom}"));
    let start = dom[..at].rfind("<tr").expect("the row's tag");
    let end = at + dom[at..].find("</tr>").expect("the row's end");
    &dom[start..end]
}

/// A process that is killed when this is dropped, test failed or not.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_live_page_shows_the_browsers_own_connection_and_its_syn() {
    let test = "the_live_page_shows_the_browsers_own_connection_and_its_syn";
    if !can_run(test) || !have_chromium(test) {
        return;
    }
    let mut ns = Ns::new("browser");
    ns.start_demo();
    let url = format!("http://{STACK}/");

    let dom = chromium(&ns, &url, &["--dump-dom"]);

    // The page names the browser's end of its connection: the kernel's
    // address and an ephemeral port from the namespace's range; ours is
    // the well-known 80.
    let remote = by_id(&dom, "you-remote");
    assert_eq!(by_id(&dom, "you-local"), format!("{STACK}:80"));
    assert_eq!(by_id(&dom, "you-well-known"), "80");
    let port: u16 = by_id(&dom, "you-ephemeral").parse().expect("a port");
    assert_eq!(remote, format!("{HOST}:{port}"));
    let range = text(&ns.ok(&["cat", "/proc/sys/net/ipv4/ip_local_port_range"]));
    let (low, high) = range.split_once(char::is_whitespace).expect("two ports");
    let ephemeral = low.trim().parse::<u16>().expect("low")..=high.trim().parse().expect("high");
    assert!(ephemeral.contains(&port), "{port} not in {range}");

    // Its row in the socket table: marked as the visitor's, ESTABLISHED.
    let mine = row(&dom, &format!("tcp {STACK}:80 {remote}"));
    let tag = &mine[..mine.find('>').expect("tag end")];
    assert!(tag.contains("mine"), "not marked as the visitor's: {mine}");
    assert!(
        mine.contains(r#"<td class="state">ESTABLISHED</td>"#),
        "{mine}"
    );
    assert!(mine.contains(&format!(">{remote}<")), "{mine}");
    // The listeners are there too, by port.
    row(&dom, &format!("tcp {STACK}:80 *"));
    row(&dom, &format!("tcp {STACK}:7070 *"));

    // The packet log has the SYN that opened it, as tcpdump prints it.
    let syn = format!("IP {HOST}.{port} &gt; {STACK}.80: Flags [S], seq ");
    assert!(
        dom.contains(&syn),
        "no SYN from {remote} in the packet log: {dom}"
    );

    // The RPC console learnt the methods from rpc.discover, and the
    // polls never failed.
    assert!(dom.contains(">add</option>"), "no RPC methods: {dom}");
    assert!(!dom.contains(r#"id="status" class="note error""#), "{dom}");

    // A screenshot, with a little more going on: a held echo connection
    // and some traffic.
    let _echo = Killed(
        ns.command(&["nc", STACK, "7"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("nc"),
    );
    ns.ok(&["ping", "-c", "2", "-i", "0.2", STACK]);
    ns.curl(&["-o", "/dev/null", &format!("http://{STACK}/bytes/100000")]);
    let shot = ns.file("live-page.png");
    let flag = format!("--screenshot={}", path_str(&shot));
    chromium(&ns, &url, &[flag.as_str(), "--window-size=1280,1000"]);
    let png = fs::read(&shot).expect("the screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    keep_screenshot(&png);
}

/// With a thousand connections the table draws its first rows, says how
/// many there are, and still has the visitor's own.
#[test]
fn with_a_thousand_connections_the_table_draws_its_first_400_rows() {
    let test = "with_a_thousand_connections_the_table_draws_its_first_400_rows";
    if !can_run(test) || !have_chromium(test) {
        return;
    }
    let mut ns = Ns::new("browser-many");
    ns.start_demo();
    let url = format!("http://{STACK}/");
    let mut hold = Killed(
        ns.command(&["python3", "-c", HOLD_CONNECTIONS, &MANY.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3"),
    );
    let mut ready = String::new();
    BufReader::new(hold.0.stdout.take().expect("piped"))
        .read_line(&mut ready)
        .expect("read");
    assert_eq!(ready.trim(), "ready", "could not open {MANY} connections");
    let dom = chromium(&ns, &url, &["--dump-dom"]);
    let count = by_id(&dom, "sockets-count");
    let total: usize = count
        .strip_prefix(&format!("showing {MAX_ROWS} of "))
        .unwrap_or_else(|| panic!("no row cap: {count:?}"))
        .parse()
        .expect("a count");
    assert!(total > MANY, "{count}");
    assert_eq!(dom.matches("<tr data-key=").count(), MAX_ROWS);
    let remote = by_id(&dom, "you-remote");
    let mine = row(&dom, &format!("tcp {STACK}:80 {remote}"));
    assert!(
        mine.contains(r#"<td class="state">ESTABLISHED</td>"#),
        "{mine}"
    );
}

/// Keeps the screenshot past the namespace's scratch directory, and
/// replaces README.md's with it when `UPDATE_SCREENSHOT=1`.
fn keep_screenshot(png: &[u8]) {
    let artefact = Path::new(env!("CARGO_TARGET_TMPDIR")).join("live-page.png");
    fs::write(&artefact, png).expect("write the artefact");
    let _ = writeln!(
        std::io::stderr(),
        "live page screenshot: {}",
        artefact.display()
    );
    if std::env::var("UPDATE_SCREENSHOT").as_deref() == Ok("1") {
        let docs: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
        fs::create_dir_all(&docs).expect("docs/");
        fs::write(docs.join("live-page.png"), png).expect("write docs/live-page.png");
    }
}
