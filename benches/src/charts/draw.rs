//! Drawing with plotters' SVG backend: grouped bars, and lines with dots.
//!
//! Text is left to the SVG viewer (`<text>` with a generic font family);
//! plotters only estimates its size for the layout, so no font is loaded.

use std::io;
use std::path::Path;

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::Error;

/// Okabe and Ito's colours, told apart with any colour vision (yellow
/// left out: it does not show on white).
const PALETTE: [RGBColor; 7] = [
    RGBColor(0x00, 0x72, 0xb2),
    RGBColor(0xe6, 0x9f, 0x00),
    RGBColor(0x00, 0x9e, 0x73),
    RGBColor(0xcc, 0x79, 0xa7),
    RGBColor(0xd5, 0x5e, 0x00),
    RGBColor(0x56, 0xb4, 0xe9),
    RGBColor(0x00, 0x00, 0x00),
];

const FONT: &str = "sans-serif";

/// The `i`th colour of the palette, round and round.
pub(super) fn palette(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// bench-tun.sh's columns keep their colour from chart to chart; other
/// columns take the palette in order.
pub(super) fn column_color(column: &str, i: usize) -> RGBColor {
    match column {
        "on" => palette(0),
        "off" => palette(5),
        "smoltcp" => palette(1),
        "kernel" => palette(2),
        "relay-vnet" => palette(3),
        "relay-plain" => palette(4),
        "relay-tun-rs" => RGBColor(0x99, 0x99, 0x99),
        _ => palette(i),
    }
}

/// bench-tun.sh's column names as its table heads them.
pub(super) fn column_label(column: &str) -> String {
    match column {
        "on" => "ours, offload on".to_string(),
        "off" => "ours, offload off".to_string(),
        "kernel" => "kernel over veth".to_string(),
        "relay-vnet" => "relay vnet (ceiling)".to_string(),
        "relay-plain" => "relay plain (ceiling)".to_string(),
        "relay-tun-rs" => "relay tun-rs (ceiling)".to_string(),
        // A hand-made run's column, `server@commit`.
        other => match other.split_once('@') {
            Some((server, commit)) => format!("{server} ({commit})"),
            None => other.to_string(),
        },
    }
}

/// One column's bars, one value per group (`None`: not measured).
pub(super) struct Series {
    pub(super) label: String,
    pub(super) color: RGBColor,
    pub(super) values: Vec<Option<f64>>,
}

/// A grouped bar chart: in each group, a bar per series.
pub(super) struct Bars<'a> {
    pub(super) title: &'a str,
    pub(super) y_desc: &'a str,
    pub(super) groups: Vec<&'a str>,
    pub(super) series: Vec<Series>,
}

/// A line through `points`, a filled dot on each, and a hollow dot on
/// each of `rounds` (the runs the points summarise).
pub(super) struct Line {
    pub(super) label: String,
    pub(super) color: RGBColor,
    pub(super) points: Vec<(f64, f64)>,
    pub(super) rounds: Vec<(f64, f64)>,
}

#[derive(Clone, Copy)]
pub(super) enum Scale {
    Linear,
    Log,
}

/// One panel of lines.
pub(super) struct Lines<'a> {
    pub(super) title: &'a str,
    pub(super) x_desc: &'a str,
    pub(super) y_desc: &'a str,
    pub(super) x: Scale,
    pub(super) y: Scale,
    pub(super) lines: Vec<Line>,
    /// Where the legend goes: a corner the lines leave free.
    pub(super) legend: SeriesLabelPosition,
}

type DrawResult = Result<(), DrawingAreaErrorKind<io::Error>>;

/// Draws `chart` into the SVG file `path`, `size` pixels.
pub(super) fn bars(path: &Path, chart: &Bars<'_>, size: (u32, u32)) -> Result<(), Error> {
    let root = SVGBackend::new(path, size).into_drawing_area();
    draw_bars(&root, chart)
        .and_then(|()| root.present())
        .map_err(|e| Error::new(path, e))
}

fn draw_bars(root: &DrawingArea<SVGBackend<'_>, Shift>, chart: &Bars<'_>) -> DrawResult {
    root.fill(&WHITE)?;
    let values = chart.series.iter().flat_map(|s| s.values.iter().flatten());
    // Room above the tallest bar for its figure and for the legend.
    let top = values.fold(1.0f64, |m, v| m.max(*v)) * 1.3;
    let groups = chart.groups.len();
    let mut ctx = ChartBuilder::on(root)
        .caption(chart.title, (FONT, 22))
        .margin(15)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..groups as f64, 0f64..top)?;
    ctx.configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_desc(chart.y_desc)
        .y_label_formatter(&|v| figure(*v))
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 15))
        .draw()?;

    // Group g spans [g, g + 1): its bars fill the middle 80%.
    let width = 0.8 / chart.series.len().max(1) as f64;
    let value_style =
        TextStyle::from((FONT, 12).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom));
    for (j, series) in chart.series.iter().enumerate() {
        let color = series.color;
        let bars: Vec<(f64, f64)> = series
            .values
            .iter()
            .enumerate()
            .filter_map(|(g, v)| Some((g as f64 + 0.1 + j as f64 * width, (*v)?)))
            .collect();
        ctx.draw_series(
            bars.iter()
                .map(|&(x, v)| Rectangle::new([(x, 0.0), (x + width * 0.95, v)], color.filled())),
        )?
        .label(series.label.as_str())
        .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 12, y + 6)], color.filled()));
        ctx.draw_series(
            bars.iter()
                .map(|&(x, v)| Text::new(figure(v), (x + width * 0.475, v), value_style.clone())),
        )?;
    }
    ctx.configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font((FONT, 14))
        .draw()?;

    // The groups' names under the axis, centred under their bars.
    let label_style =
        TextStyle::from((FONT, 15).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
    for (g, name) in chart.groups.iter().enumerate() {
        let (x, y) = ctx.backend_coord(&(g as f64 + 0.5, 0.0));
        root.draw(&Text::new(*name, (x, y + 8), label_style.clone()))?;
    }
    Ok(())
}

/// A figure as a label: whole from 100 up, else at most three decimals
/// and no trailing zeros ("0.5", "2.6", "10").
fn figure(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}

/// Draws `panels` side by side into the SVG file `path`, `size` pixels.
pub(super) fn lines(path: &Path, panels: &[Lines<'_>], size: (u32, u32)) -> Result<(), Error> {
    let root = SVGBackend::new(path, size).into_drawing_area();
    draw_panels(&root, panels)
        .and_then(|()| root.present())
        .map_err(|e| Error::new(path, e))
}

fn draw_panels(root: &DrawingArea<SVGBackend<'_>, Shift>, panels: &[Lines<'_>]) -> DrawResult {
    root.fill(&WHITE)?;
    let areas = root.split_evenly((1, panels.len().max(1)));
    for (area, panel) in areas.iter().zip(panels) {
        let points = || {
            panel
                .lines
                .iter()
                .flat_map(|l| l.points.iter().chain(&l.rounds))
        };
        let (x_lo, x_hi) = bounds(points().map(|p| p.0));
        let (y_lo, y_hi) = bounds(points().map(|p| p.1));
        match (panel.x, panel.y) {
            (Scale::Log, Scale::Log) => draw_lines(
                area,
                panel,
                (x_lo / 2.0..x_hi * 2.0).log_scale(),
                (y_lo / 2.0..y_hi * 2.0).log_scale(),
            )?,
            (Scale::Log, Scale::Linear) => draw_lines(
                area,
                panel,
                (x_lo / 2.0..x_hi * 2.0).log_scale(),
                0.0..y_hi * 1.15,
            )?,
            (Scale::Linear, Scale::Log) => draw_lines(
                area,
                panel,
                x_lo.min(0.0)..x_hi * 1.05,
                (y_lo / 2.0..y_hi * 2.0).log_scale(),
            )?,
            (Scale::Linear, Scale::Linear) => {
                draw_lines(area, panel, x_lo.min(0.0)..x_hi * 1.05, 0.0..y_hi * 1.15)?
            }
        }
    }
    Ok(())
}

/// The least and greatest of `values`, (1, 1) if there are none (so a
/// log scale still has a range).
fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values
        .fold(None, |acc: Option<(f64, f64)>, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
        .unwrap_or((1.0, 1.0))
}

fn draw_lines<X, Y>(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    panel: &Lines<'_>,
    x: X,
    y: Y,
) -> DrawResult
where
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let mut ctx = ChartBuilder::on(area)
        .caption(panel.title, (FONT, 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(x, y)?;
    ctx.configure_mesh()
        .x_desc(panel.x_desc)
        .y_desc(panel.y_desc)
        .x_label_formatter(&|v| figure(*v))
        .y_label_formatter(&|v| figure(*v))
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 15))
        .draw()?;
    for line in &panel.lines {
        let color = line.color;
        ctx.draw_series(LineSeries::new(
            line.points.iter().copied(),
            color.stroke_width(2),
        ))?
        .label(line.label.as_str())
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        ctx.draw_series(
            line.points
                .iter()
                .map(|&p| Circle::new(p, 4, color.filled())),
        )?;
        ctx.draw_series(
            line.rounds
                .iter()
                .map(|&p| Circle::new(p, 3, color.stroke_width(1))),
        )?;
    }
    ctx.configure_series_labels()
        .position(panel.legend.clone())
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font((FONT, 14))
        .draw()?;
    Ok(())
}
