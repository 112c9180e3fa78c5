//! The figures in `benches/results/*.csv`: reading them, and reducing
//! repeated runs to one figure each (their median).
//!
//! Lines that start with `#` are comments: where each run came from.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::Error;

/// One figure of `scripts/bench-tun.sh` (a row of `bench-tun.csv` or
/// `loss.csv`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Figure {
    /// Packet loss each way, in percent.
    pub loss: f64,
    /// The script's key: `dl`, `ul`, `cps1`, `cpsN`, ... (`6` for IPv6).
    pub workload: String,
    /// The server measured: `on`, `off`, `smoltcp`, `kernel`, `relay-*`,
    /// or any name a hand-made run gave it.
    pub column: String,
    pub value: f64,
    pub unit: String,
}

/// One round of a demultiplexing benchmark (a row of `demux.csv`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct DemuxRound {
    /// What was measured: the family, and the commit if not the current.
    pub series: String,
    pub sockets: u32,
    /// Nanoseconds per segment.
    pub ns: f64,
}

/// Every row of the CSV file at `path`.
pub fn read<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<T>, Error> {
    let mut reader = csv::ReaderBuilder::new()
        .comment(Some(b'#'))
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| Error::new(path, e))?;
    reader
        .deserialize()
        .collect::<Result<Vec<T>, _>>()
        .map_err(|e| Error::new(path, e))
}

/// Appends `rows` to the CSV file at `path` after a `# comment` line that
/// says where they come from; a new file gets the header first.
pub fn append<T: Serialize>(path: &Path, comment: &str, rows: &[T]) -> Result<(), Error> {
    let fresh = std::fs::metadata(path).map_or(true, |m| m.len() == 0);
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::new(path, e))?;
    writeln!(file, "# {comment}").map_err(|e| Error::new(path, e))?;
    let mut writer = csv::WriterBuilder::new()
        .has_headers(fresh)
        .from_writer(file);
    for row in rows {
        writer.serialize(row).map_err(|e| Error::new(path, e))?;
    }
    writer.flush().map_err(|e| Error::new(path, e))
}

/// The median of `values`; `None` if there are none.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    match sorted.len() {
        0 => None,
        n if n % 2 == 1 => sorted.get(mid).copied(),
        _ => Some((sorted.get(mid - 1)? + sorted.get(mid)?) / 2.0),
    }
}

/// The figures of `figures` at `loss`, the median of each (workload,
/// column) pair's rows.
pub fn medians_at(figures: &[Figure], loss: f64) -> BTreeMap<(String, String), f64> {
    let mut runs: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
    for f in figures.iter().filter(|f| f.loss == loss) {
        runs.entry((f.workload.clone(), f.column.clone()))
            .or_default()
            .push(f.value);
    }
    runs.into_iter()
        .filter_map(|(key, values)| Some((key, median(&values)?)))
        .collect()
}

/// The columns of `figures` in order of first appearance, so a chart's
/// legend follows the file.
pub fn columns(figures: &[Figure]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for f in figures {
        if !out.contains(&f.column) {
            out.push(f.column.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appended_rows_read_back_after_the_old_ones() {
        let path = std::env::temp_dir().join(format!("demux-{}.csv", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let round = |sockets, ns| DemuxRound {
            series: "IPv4, a \"quoted\" name".to_string(),
            sockets,
            ns,
        };
        append(&path, "first run", &[round(1, 90.5)]).unwrap();
        append(&path, "second run", &[round(1, 91.0), round(100, 99.25)]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.matches("series,sockets,ns").count(), 1, "{text}");
        assert!(text.starts_with("# first run\n"), "{text}");
        let back: Vec<DemuxRound> = read(&path).unwrap();
        assert_eq!(back, [round(1, 90.5), round(1, 91.0), round(100, 99.25)]);
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0]), Some(3.0));
        assert_eq!(median(&[5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    #[test]
    fn repeated_runs_reduce_to_their_median_per_loss() {
        let fig = |loss, column: &str, value| Figure {
            loss,
            workload: "dl".into(),
            column: column.into(),
            value,
            unit: "MB/s".into(),
        };
        let figures = [
            fig(0.0, "on", 10.0),
            fig(0.0, "on", 30.0),
            fig(0.0, "on", 20.0),
            fig(1.0, "on", 1.0),
            fig(0.0, "kernel", 7.0),
        ];
        let m = medians_at(&figures, 0.0);
        assert_eq!(m.len(), 2);
        assert_eq!(m.get(&("dl".into(), "on".into())), Some(&20.0));
        assert_eq!(m.get(&("dl".into(), "kernel".into())), Some(&7.0));
        assert_eq!(columns(&figures), ["on", "kernel"]);
    }
}
