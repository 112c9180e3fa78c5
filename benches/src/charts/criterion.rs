//! The demultiplexing figures of a criterion run, as rows of `demux.csv`.
//!
//! Criterion leaves each benchmark's estimates in
//! `<target>/criterion/<group>/<function>/<parameter>/new/estimates.json`
//! (nanoseconds). The figure it prints in the middle of `time: [..]` is
//! the slope's point estimate, or the mean's when it sampled flat; that
//! is the figure taken here, as BENCHMARKS.md's tables take it.

use std::fs;
use std::path::Path;

use serde::Deserialize;

use super::data::DemuxRound;
use super::Error;

/// The criterion groups of `benches/benches/table.rs` and their family.
pub const DEMUX_GROUPS: [(&str, &str); 2] = [("demux", "IPv4"), ("demux_v6", "IPv6")];

/// The benchmark function of those groups that the chart draws: every
/// probe a cache miss.
const FUNCTION: &str = "established";

#[derive(Deserialize)]
struct Estimates {
    mean: Estimate,
    slope: Option<Estimate>,
}

#[derive(Deserialize)]
struct Estimate {
    point_estimate: f64,
}

/// The last run's `demux/established/N` and `demux_v6/established/N`
/// under `criterion` (criterion's output directory), one round per
/// benchmark, named "IPv4 `label`" and "IPv6 `label`"; sorted by series
/// and number of sockets. A group criterion has not run is left out.
///
/// # Errors
///
/// A directory that cannot be listed, or an estimates file that cannot
/// be read or parsed.
pub fn demux_rounds(criterion: &Path, label: &str) -> Result<Vec<DemuxRound>, Error> {
    let mut rounds = Vec::new();
    for (group, family) in DEMUX_GROUPS {
        let dir = criterion.join(group).join(FUNCTION);
        if !dir.is_dir() {
            continue;
        }
        let entries = fs::read_dir(&dir).map_err(|e| Error::new(&dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::new(&dir, e))?;
            // Criterion's own files sit beside the parameters' directories.
            let Some(sockets) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            let file = entry.path().join("new").join("estimates.json");
            let text = fs::read_to_string(&file).map_err(|e| Error::new(&file, e))?;
            let estimates: Estimates =
                serde_json::from_str(&text).map_err(|e| Error::new(&file, e))?;
            rounds.push(DemuxRound {
                series: format!("{family} {label}").trim_end().to_string(),
                sockets,
                // A tenth of a nanosecond, as the tables give it: the
                // rounds differ by far more.
                ns: (estimates.slope.unwrap_or(estimates.mean).point_estimate * 10.0).round()
                    / 10.0,
            });
        }
    }
    rounds.sort_by(|a, b| (&a.series, a.sockets).cmp(&(&b.series, b.sockets)));
    Ok(rounds)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn estimates(dir: &Path, group: &str, n: &str, json: &str) {
        let dir = dir.join(group).join(FUNCTION).join(n).join("new");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("estimates.json"), json).unwrap();
    }

    fn json(mean: f64, slope: Option<f64>) -> String {
        let slope = slope.map_or("null".to_string(), |s| {
            format!("{{\"point_estimate\":{s}}}")
        });
        format!("{{\"mean\":{{\"point_estimate\":{mean}}},\"median\":{{\"point_estimate\":1}},\"slope\":{slope}}}")
    }

    #[test]
    fn takes_the_slope_or_else_the_mean_of_each_parameter() {
        let dir = std::env::temp_dir().join(format!("criterion-{}", std::process::id()));
        estimates(&dir, "demux", "100", &json(95.0, Some(92.5349)));
        estimates(&dir, "demux", "1", &json(90.0, None));
        estimates(&dir, "demux_v6", "1", &json(120.0, Some(119.0)));
        // criterion's report directory beside the parameters
        fs::create_dir_all(dir.join("demux").join(FUNCTION).join("report")).unwrap();

        let rounds = demux_rounds(&dir, "after").unwrap();
        let round = |series: &str, sockets, ns| DemuxRound {
            series: series.to_string(),
            sockets,
            ns,
        };
        assert_eq!(
            rounds,
            [
                round("IPv4 after", 1, 90.0),
                round("IPv4 after", 100, 92.5),
                round("IPv6 after", 1, 119.0),
            ]
        );
        assert_eq!(demux_rounds(&dir.join("nothing"), "x").unwrap(), []);
        fs::remove_dir_all(dir).unwrap();
    }
}
