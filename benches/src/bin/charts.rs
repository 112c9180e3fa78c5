//! Draws BENCHMARKS.md's charts: `benches/results/*.csv` -> `benches/charts/*.svg`.
//!
//! `cargo run -p benches --bin charts` from anywhere in the workspace;
//! `charts RESULTS OUT` reads and writes other directories.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut args = std::env::args_os().skip(1);
    let results = args
        .next()
        .map_or_else(|| crate_dir.join("results"), PathBuf::from);
    let out = args
        .next()
        .map_or_else(|| crate_dir.join("charts"), PathBuf::from);
    match benches::charts::generate(&results, &out) {
        Ok(written) => {
            for path in written {
                println!("{}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("charts: {e}");
            ExitCode::FAILURE
        }
    }
}
