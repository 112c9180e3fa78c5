//! The chart generator on the committed figures: every chart is
//! well-formed SVG with a bar or a dot for each figure, and the committed
//! charts are what the committed figures draw.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use benches::charts::data::{self, DemuxRound, Figure};
use benches::charts::{self, BULK, CONNECTIONS, LOSS};

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh directory for one test's output.
fn out_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("charts-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Generates into a fresh directory; the files written, by name.
fn generate(test: &str) -> (PathBuf, Vec<String>) {
    let out = out_dir(test);
    let written = charts::generate(&crate_dir().join("results"), &out).unwrap();
    let names = written
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    (out, names)
}

/// The SVG's elements named `tag` whose attribute `attr` is a colour
/// (not white, not `none`): the bars and dots, as the chart's
/// background, grid and legend box are white, grey lines or unfilled.
fn coloured(svg: &str, tag: &str, attr: &str) -> usize {
    let doc = roxmltree::Document::parse(svg).unwrap();
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    doc.descendants()
        .filter(|n| n.has_tag_name(tag))
        .filter(|n| !matches!(n.attribute(attr), None | Some("none") | Some("#FFFFFF")))
        .count()
}

fn texts(svg: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(svg).unwrap();
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| n.text().unwrap_or("").trim().to_string())
        .collect()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

fn figures(file: &str) -> Vec<Figure> {
    data::read(&crate_dir().join("results").join(file)).unwrap()
}

/// (bars, series) a bar chart of `groups` draws from `figures`.
fn bars_of(figures: &[Figure], groups: &[(&str, &str)]) -> (usize, usize) {
    let medians = data::medians_at(figures, 0.0);
    let drawn: Vec<&(String, String)> = medians
        .keys()
        .filter(|(workload, _)| groups.iter().any(|(key, _)| key == workload))
        .collect();
    let series: BTreeSet<&String> = drawn.iter().map(|(_, column)| column).collect();
    (drawn.len(), series.len())
}

#[test]
fn every_chart_has_a_mark_for_each_figure() {
    let (out, names) = generate("marks");
    assert_eq!(
        names,
        ["demux.svg", "bulk.svg", "connections.svg", "loss.svg"]
    );
    let svg = |name: &str| read(&out.join(name));

    // Bars: one per (group, column) figure, and a legend marker per column.
    let tun = figures("bench-tun.csv");
    for (name, groups) in [
        ("bulk.svg", &BULK[..]),
        ("connections.svg", &CONNECTIONS[..]),
    ] {
        let (bars, series) = bars_of(&tun, groups);
        assert!(bars >= 16, "{name}: {bars} bars");
        let svg = svg(name);
        assert_eq!(coloured(&svg, "rect", "fill"), bars + series, "{name}");
        let texts = texts(&svg);
        for (_, label) in groups {
            assert!(
                texts.iter().any(|t| t == label),
                "{name} lacks the group {label}"
            );
        }
    }

    // Demux: a filled dot per (series, sockets) median, a hollow one per round.
    let rounds: Vec<DemuxRound> = data::read(&crate_dir().join("results/demux.csv")).unwrap();
    let medians: BTreeSet<(&str, u32)> = rounds
        .iter()
        .map(|r| (r.series.as_str(), r.sockets))
        .collect();
    let demux = svg("demux.svg");
    assert_eq!(coloured(&demux, "circle", "fill"), medians.len());
    assert_eq!(coloured(&demux, "circle", "stroke"), rounds.len());

    // Loss: a dot per (panel, column, loss).
    let loss = figures("loss.csv");
    let points: BTreeSet<(&str, &str, u64)> = loss
        .iter()
        .filter(|f| LOSS.iter().any(|(key, _)| *key == f.workload))
        .map(|f| (f.workload.as_str(), f.column.as_str(), f.loss.to_bits()))
        .collect();
    assert_eq!(points.len(), 24);
    assert_eq!(coloured(&svg("loss.svg"), "circle", "fill"), points.len());

    std::fs::remove_dir_all(out).unwrap();
}

/// CI fails when a figure changed and the charts were not drawn again:
/// run `cargo run -p benches --bin charts` and commit both.
#[test]
fn committed_charts_are_drawn_from_the_committed_figures() {
    let (out, names) = generate("fresh");
    for name in names {
        let committed = crate_dir().join("charts").join(&name);
        assert!(
            read(&committed) == read(&out.join(&name)),
            "{} is stale: run `cargo run -p benches --bin charts`",
            committed.display()
        );
    }
    std::fs::remove_dir_all(out).unwrap();
}

#[test]
fn a_missing_figures_file_skips_its_chart_and_a_bad_one_fails() {
    let results = out_dir("results");
    std::fs::create_dir_all(&results).unwrap();
    let out = out_dir("partial");
    std::fs::copy(
        crate_dir().join("results/demux.csv"),
        results.join("demux.csv"),
    )
    .unwrap();
    let written = charts::generate(&results, &out).unwrap();
    assert_eq!(written, [out.join("demux.svg")]);

    std::fs::write(
        results.join("loss.csv"),
        "loss,workload,column,value,unit\n1,dl,on,fast,MB/s\n",
    )
    .unwrap();
    let err = charts::generate(&results, &out).unwrap_err().to_string();
    assert!(err.contains("loss.csv"), "{err}");
    for dir in [results, out] {
        std::fs::remove_dir_all(dir).unwrap();
    }
}
