//! The charts of BENCHMARKS.md, drawn as SVG from the figures committed in
//! `benches/results/` (`cargo run -p benches --bin charts`).
//!
//! Each chart draws one file: `demux.csv` (ns per segment against the
//! number of sockets), `bench-tun.csv` (bulk throughput and connections/s
//! of ours, smoltcp, the kernel and the relay ceiling, IPv4 and IPv6) and
//! `loss.csv` (throughput against packet loss). A chart whose file is
//! missing is skipped; a file that does not parse is an error. Repeated
//! runs in a file are drawn as their median.
//!
//! Nothing here measures: `scripts/bench-tun.sh --csv` writes its
//! figures, [`criterion`] reads a criterion run's, and this draws them.

pub mod criterion;
pub mod data;
mod draw;

use std::fmt;
use std::path::{Path, PathBuf};

use data::{DemuxRound, Figure};
use draw::{Bars, Line, Lines, Scale};
use plotters::chart::SeriesLabelPosition;

/// What went wrong, and with which file.
#[derive(Debug)]
pub struct Error {
    file: PathBuf,
    cause: String,
}

impl Error {
    fn new(file: &Path, cause: impl fmt::Display) -> Error {
        Error {
            file: file.to_path_buf(),
            cause: cause.to_string(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.cause)
    }
}

impl std::error::Error for Error {}

/// The bulk chart's groups: bench-tun.sh's workload keys and their names.
pub const BULK: [(&str, &str); 4] = [
    ("dl", "download"),
    ("dl6", "download v6"),
    ("ul", "upload"),
    ("ul6", "upload v6"),
];

/// The connections/s chart's groups.
pub const CONNECTIONS: [(&str, &str); 4] = [
    ("cps1", "sequential"),
    ("cps16", "sequential v6"),
    ("cpsN", "parallel"),
    ("cpsN6", "parallel v6"),
];

/// The loss chart's panels.
pub const LOSS: [(&str, &str); 2] = [("dl", "download"), ("ul", "upload")];

/// Draws every chart whose figures are in `results` into `out` (created
/// if missing); returns the files written.
///
/// # Errors
///
/// A figures file that cannot be read or parsed, or an SVG that cannot be
/// written.
pub fn generate(results: &Path, out: &Path) -> Result<Vec<PathBuf>, Error> {
    std::fs::create_dir_all(out).map_err(|e| Error::new(out, e))?;
    let mut written = Vec::new();
    let demux = results.join("demux.csv");
    if demux.exists() {
        let path = out.join("demux.svg");
        demux_chart(&data::read(&demux)?, &path)?;
        written.push(path);
    }
    let tun = results.join("bench-tun.csv");
    if tun.exists() {
        let figures: Vec<Figure> = data::read(&tun)?;
        let path = out.join("bulk.svg");
        bar_chart(&figures, &BULK, "Bulk throughput over TUN", "MB/s", &path)?;
        written.push(path);
        let path = out.join("connections.svg");
        let title = "Connections per second over TUN";
        bar_chart(&figures, &CONNECTIONS, title, "conn/s", &path)?;
        written.push(path);
    }
    let loss = results.join("loss.csv");
    if loss.exists() {
        let path = out.join("loss.svg");
        loss_chart(&data::read(&loss)?, &path)?;
        written.push(path);
    }
    Ok(written)
}

fn demux_chart(rounds: &[DemuxRound], path: &Path) -> Result<(), Error> {
    let mut series: Vec<&str> = Vec::new();
    for r in rounds {
        if !series.contains(&r.series.as_str()) {
            series.push(&r.series);
        }
    }
    let lines = series
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let mine: Vec<&DemuxRound> = rounds.iter().filter(|r| r.series == *name).collect();
            let mut sockets: Vec<u32> = mine.iter().map(|r| r.sockets).collect();
            sockets.sort_unstable();
            sockets.dedup();
            let points = sockets
                .iter()
                .filter_map(|&n| {
                    let at_n: Vec<f64> = mine
                        .iter()
                        .filter(|r| r.sockets == n)
                        .map(|r| r.ns)
                        .collect();
                    Some((f64::from(n), data::median(&at_n)?))
                })
                .collect();
            Line {
                label: (*name).to_string(),
                color: draw::palette(i),
                points,
                rounds: mine.iter().map(|r| (f64::from(r.sockets), r.ns)).collect(),
            }
        })
        .collect();
    let chart = Lines {
        title: "Demultiplexing, cold strided probes (median of rounds; dots: each round)",
        x_desc: "sockets in the table",
        y_desc: "ns per segment",
        x: Scale::Log,
        y: Scale::Linear,
        lines,
        legend: SeriesLabelPosition::UpperLeft,
    };
    draw::lines(path, &[chart], (900, 500))
}

fn bar_chart(
    figures: &[Figure],
    groups: &[(&str, &str)],
    title: &str,
    unit: &str,
    path: &Path,
) -> Result<(), Error> {
    let medians = data::medians_at(figures, 0.0);
    let keys: Vec<&str> = groups.iter().map(|(key, _)| *key).collect();
    let columns: Vec<String> = data::columns(figures)
        .into_iter()
        .filter(|c| {
            keys.iter()
                .any(|k| medians.contains_key(&((*k).to_string(), c.clone())))
        })
        .collect();
    let series = columns
        .iter()
        .enumerate()
        .map(|(i, column)| draw::Series {
            label: draw::column_label(column),
            color: draw::column_color(column, i),
            values: keys
                .iter()
                .map(|k| medians.get(&((*k).to_string(), column.clone())).copied())
                .collect(),
        })
        .collect();
    let chart = Bars {
        title,
        y_desc: unit,
        groups: groups.iter().map(|(_, label)| *label).collect(),
        series,
    };
    draw::bars(path, &chart, (1000, 500))
}

fn loss_chart(figures: &[Figure], path: &Path) -> Result<(), Error> {
    let columns = data::columns(figures);
    let panels: Vec<Lines<'_>> = LOSS
        .iter()
        .map(|(key, label)| {
            let lines = columns
                .iter()
                .enumerate()
                .map(|(i, column)| {
                    let mine: Vec<&Figure> = figures
                        .iter()
                        .filter(|f| f.workload == *key && f.column == *column)
                        .collect();
                    let mut losses: Vec<f64> = mine.iter().map(|f| f.loss).collect();
                    losses.sort_by(f64::total_cmp);
                    losses.dedup();
                    let points = losses
                        .iter()
                        .filter_map(|&loss| {
                            let at: Vec<f64> = mine
                                .iter()
                                .filter(|f| f.loss == loss)
                                .map(|f| f.value)
                                .collect();
                            Some((loss, data::median(&at)?))
                        })
                        .collect();
                    Line {
                        label: draw::column_label(column),
                        color: draw::column_color(column, i),
                        points,
                        rounds: Vec::new(),
                    }
                })
                .filter(|line| !line.points.is_empty())
                .collect();
            Lines {
                title: label,
                x_desc: "packet loss each way (%)",
                y_desc: "MB/s (log scale)",
                x: Scale::Linear,
                y: Scale::Log,
                lines,
                legend: SeriesLabelPosition::UpperRight,
            }
        })
        .collect();
    draw::lines(path, &panels, (1100, 450))
}
