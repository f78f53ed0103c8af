//! A guard's time series as an SVG chart, drawn by plotters on the server:
//! requests and failures per second above, p50/p99 latency below, and the
//! flip (when the guard's body first changed the world) as a vertical line
//! on both. Text in the SVG is escaped by plotters' SVG backend.

use crate::probes::series::Series;
use plotters::prelude::*;

const WIDTH: u32 = 760;
const HEIGHT: u32 = 300;
const RED: RGBColor = RGBColor(0xc6, 0x28, 0x28);
const BLUE: RGBColor = RGBColor(0x15, 0x65, 0xc0);
const GREY: RGBColor = RGBColor(0x61, 0x61, 0x61);
const ORANGE: RGBColor = RGBColor(0xef, 0x6c, 0x00);

/// The chart of `series`, with the flip marked at `flip_ms` from the
/// guard's start; an error text if plotters could not draw it.
pub fn guard_svg(series: &Series, flip_ms: Option<u64>) -> Result<String, String> {
    let mut svg = String::new();
    draw(&mut svg, series, flip_ms).map_err(|e| format!("the chart could not be drawn: {e}"))?;
    Ok(svg)
}

fn draw<'a>(
    svg: &'a mut String,
    series: &Series,
    flip_ms: Option<u64>,
) -> Result<(), Box<dyn std::error::Error + 'a>> {
    let root = SVGBackend::with_string(svg, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE)?;
    let (upper, lower) = root.split_vertically(HEIGHT / 2);
    let seconds = |i: usize| i as f64 * series.bucket_ms as f64 / 1000.0;
    let end = seconds(series.requests.len()).max(0.1);
    let per_second = 1000.0 / series.bucket_ms as f64;
    let rate = |counts: &[u64]| -> Vec<(f64, f64)> {
        counts
            .iter()
            .enumerate()
            .map(|(i, n)| (seconds(i), *n as f64 * per_second))
            .collect()
    };
    let requests = rate(&series.requests);
    let failures = rate(&series.failures);
    let top = requests.iter().map(|p| p.1).fold(1.0, f64::max) * 1.1;
    let flip = flip_ms.map(|ms| ms as f64 / 1000.0);

    panel(
        &upper,
        Panel {
            caption: "requests / s and failures / s",
            x_desc: None,
            end,
            top,
            lines: vec![(requests, BLUE, "requests"), (failures, RED, "failures")],
            flip: flip.map(|at| (at, true)),
        },
    )?;

    let points = |values: &[f64]| -> Vec<(f64, f64)> {
        values
            .iter()
            .enumerate()
            .filter(|(i, _)| series.requests[*i] > series.failures[*i])
            .map(|(i, v)| (seconds(i), *v))
            .collect()
    };
    let p50 = points(&series.p50_ms);
    let p99 = points(&series.p99_ms);
    let slowest = p99.iter().map(|p| p.1).fold(1.0, f64::max) * 1.1;
    panel(
        &lower,
        Panel {
            caption: "latency (ms): p50, p99",
            x_desc: Some("seconds from the guard's start"),
            end,
            top: slowest,
            lines: vec![(p50, GREY, "p50"), (p99, BLUE, "p99")],
            // The flip is in the upper panel's legend already.
            flip: flip.map(|at| (at, false)),
        },
    )?;
    root.present()?;
    Ok(())
}

/// A line of a panel: its points, colour and legend label.
type Line<'s> = (Vec<(f64, f64)>, RGBColor, &'s str);

/// One of the chart's two panels: its lines over `0..end` seconds and
/// `0..top`, with their legend, and the flip as a vertical line (named in
/// the legend when its flag says so).
struct Panel<'s> {
    caption: &'s str,
    x_desc: Option<&'s str>,
    end: f64,
    top: f64,
    lines: Vec<Line<'s>>,
    flip: Option<(f64, bool)>,
}

fn panel<'a>(
    area: &DrawingArea<SVGBackend<'a>, plotters::coord::Shift>,
    panel: Panel<'_>,
) -> Result<(), Box<dyn std::error::Error + 'a>> {
    let mut chart = ChartBuilder::on(area)
        .margin(6)
        .x_label_area_size(if panel.x_desc.is_some() { 22 } else { 18 })
        .y_label_area_size(48)
        .caption(panel.caption, ("sans-serif", 13))
        .build_cartesian_2d(0.0..panel.end, 0.0..panel.top)?;
    let mut mesh = chart.configure_mesh();
    mesh.light_line_style(WHITE.mix(0.0))
        .x_labels(8)
        .y_labels(4)
        .label_style(("sans-serif", 11));
    if let Some(desc) = panel.x_desc {
        mesh.x_desc(desc);
    }
    mesh.draw()?;
    let legend = |color: RGBColor| {
        move |(x, y): (i32, i32)| PathElement::new([(x, y), (x + 14, y)], color.stroke_width(2))
    };
    for (points, color, label) in panel.lines {
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))?
            .label(label)
            .legend(legend(color));
    }
    if let Some((at, named)) = panel.flip {
        let line = chart.draw_series(LineSeries::new(
            [(at, 0.0), (at, panel.top)],
            ORANGE.stroke_width(2),
        ))?;
        if named {
            line.label("flip").legend(legend(ORANGE));
        }
    }
    chart
        .configure_series_labels()
        .border_style(GREY)
        .background_style(WHITE.mix(0.85))
        .label_font(("sans-serif", 11))
        .position(SeriesLabelPosition::UpperRight)
        .draw()?;
    Ok(())
}
