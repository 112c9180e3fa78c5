#!/usr/bin/env bash
# The one test command: the declared minimum Rust, formatting, lints,
# then every test in the workspace. The real-TUN tests
# (stack/tests/kernel_*.rs, demo/tests/e2e.rs, demo/tests/browser.rs, which
# also needs chromium) need root to create their private network
# namespaces: run as `sudo -E scripts/test.sh`. Without
# root they print SKIPPED and return; under CI (CI set) they fail instead,
# so CI cannot pass by skipping.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== rust-version is true of Cargo.lock"
scripts/check-msrv.sh
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --release -- -D warnings
# Again with the async APIs (the `tokio` features of stack and rpc),
# their tests and examples.
cargo clippy --workspace --all-targets --release --features stack/tokio,rpc/tokio -- -D warnings
echo "== cargo test"
# Release mode: the tests move tens of MiB through two TCP stacks, and
# optimised code keeps the suite to a few minutes. With the `tokio`
# features of stack and rpc, so the async APIs' tests
# (stack/tests/async_*.rs, rpc/tests/async_rpc.rs) run too.
cargo test --workspace --release --features stack/tokio,rpc/tokio -- --test-threads="${TEST_THREADS:-4}"
echo "== benchmarks compile and run once (criterion --test mode)"
cargo bench -p benches -- --test
