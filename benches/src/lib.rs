//! Criterion benchmarks live in benches/; the peers of `scripts/bench-tun.sh`
//! in src/bin. [`charts`] draws BENCHMARKS.md's charts from the figures in
//! `benches/results/`.

pub mod charts;
