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

    let mut chart = ChartBuilder::on(&upper)
        .margin(6)
        .x_label_area_size(18)
        .y_label_area_size(48)
        .caption("requests / s and failures / s", ("sans-serif", 13))
        .build_cartesian_2d(0.0..end, 0.0..top)?;
    chart
        .configure_mesh()
        .light_line_style(WHITE.mix(0.0))
        .x_labels(8)
        .y_labels(4)
        .label_style(("sans-serif", 11))
        .draw()?;
    chart
        .draw_series(LineSeries::new(requests, BLUE.stroke_width(2)))?
        .label("requests")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 14, y)], BLUE.stroke_width(2)));
    chart
        .draw_series(LineSeries::new(failures, RED.stroke_width(2)))?
        .label("failures")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 14, y)], RED.stroke_width(2)));
    if let Some(at) = flip {
        chart
            .draw_series(LineSeries::new(
                [(at, 0.0), (at, top)],
                ORANGE.stroke_width(2),
            ))?
            .label("flip")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 14, y)], ORANGE.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .border_style(GREY)
        .background_style(WHITE.mix(0.85))
        .label_font(("sans-serif", 11))
        .position(SeriesLabelPosition::UpperRight)
        .draw()?;

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
    let mut chart = ChartBuilder::on(&lower)
        .margin(6)
        .x_label_area_size(22)
        .y_label_area_size(48)
        .caption("latency (ms): p50, p99", ("sans-serif", 13))
        .build_cartesian_2d(0.0..end, 0.0..slowest)?;
    chart
        .configure_mesh()
        .light_line_style(WHITE.mix(0.0))
        .x_labels(8)
        .y_labels(4)
        .x_desc("seconds from the guard's start")
        .label_style(("sans-serif", 11))
        .draw()?;
    chart
        .draw_series(LineSeries::new(p50, GREY.stroke_width(2)))?
        .label("p50")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 14, y)], GREY.stroke_width(2)));
    chart
        .draw_series(LineSeries::new(p99, BLUE.stroke_width(2)))?
        .label("p99")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 14, y)], BLUE.stroke_width(2)));
    if let Some(at) = flip {
        chart.draw_series(LineSeries::new(
            [(at, 0.0), (at, slowest)],
            ORANGE.stroke_width(2),
        ))?;
    }
    chart
        .configure_series_labels()
        .border_style(GREY)
        .background_style(WHITE.mix(0.85))
        .label_font(("sans-serif", 11))
        .position(SeriesLabelPosition::UpperRight)
        .draw()?;
    root.present()?;
    Ok(())
}
