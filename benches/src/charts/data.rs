//! The figures in `benches/results/*.csv`: reading them, and reducing
//! repeated runs to one figure each (their median).
//!
//! Lines that start with `#` are comments: where each run came from.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

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
#[derive(Debug, Clone, PartialEq, Deserialize)]
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
