//! Draws BENCHMARKS.md's charts: `benches/results/*.csv` -> `benches/charts/*.svg`.
//!
//! ```text
//! charts                                 draw benches/results/ into benches/charts/
//! charts RESULTS OUT                     draw other directories
//! charts demux-from-criterion LABEL [CRITERION_DIR]
//!     append the last criterion run of demux(_v6)/established/N to
//!     benches/results/demux.csv as series "IPv4 LABEL" and "IPv6 LABEL"
//!     (CRITERION_DIR: $CARGO_TARGET_DIR/criterion, else target/criterion)
//! ```
//!
//! Run it with `cargo run -p benches --bin charts [-- ARGS]`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use benches::charts::{self, criterion, data, Error};

fn main() -> ExitCode {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let result = match args.first().and_then(|a| a.to_str()) {
        Some("demux-from-criterion") => match args.get(1).and_then(|a| a.to_str()) {
            Some(label) => {
                let dir = args
                    .get(2)
                    .map_or_else(|| default_criterion(&crate_dir), PathBuf::from);
                import_demux(&dir, label, &crate_dir.join("results/demux.csv"))
            }
            None => {
                eprintln!("usage: charts demux-from-criterion LABEL [CRITERION_DIR]");
                return ExitCode::FAILURE;
            }
        },
        _ => {
            let results = args
                .first()
                .map_or_else(|| crate_dir.join("results"), PathBuf::from);
            let out = args
                .get(1)
                .map_or_else(|| crate_dir.join("charts"), PathBuf::from);
            charts::generate(&results, &out).map(|written| {
                for path in written {
                    println!("{}", path.display());
                }
            })
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("charts: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Where criterion writes: under cargo's target directory.
fn default_criterion(crate_dir: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| crate_dir.join("../target"), PathBuf::from)
        .join("criterion")
}

fn import_demux(criterion: &Path, label: &str, csv: &Path) -> Result<(), Error> {
    let rounds = criterion::demux_rounds(criterion, label)?;
    if rounds.is_empty() {
        println!("no demux rounds under {}", criterion.display());
        return Ok(());
    }
    let comment = format!(
        "rounds \"{label}\": `charts demux-from-criterion` from {}",
        criterion.display()
    );
    data::append(csv, &comment, &rounds)?;
    println!("{} rounds appended to {}", rounds.len(), csv.display());
    Ok(())
}
