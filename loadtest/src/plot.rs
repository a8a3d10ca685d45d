//! SVG plots of a run (plotters' SVG backend: no system fonts needed): latency percentiles
//! against offered load (sweeps), operations per second over the measurement window, and
//! server memory against sessions (W1).

use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::prelude::*;

use crate::report::RunResult;

const COLORS: [RGBColor; 6] = [BLUE, RED, GREEN, MAGENTA, CYAN, BLACK];

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("plot: {e:?}")
}

pub fn all(r: &RunResult, dir: &Path) -> Result<()> {
    let pts: Vec<_> = r.points.iter().filter(|p| p.latency.count > 0).collect();
    if pts.len() >= 2 {
        latency_vs_load(r, dir)?;
    }
    if r.points.iter().any(|p| !p.per_second.is_empty()) {
        throughput(r, dir)?;
    }
    if let Some(ramp) = r.summary.get("ramp").and_then(|v| v.as_array()) {
        memory(r, ramp, dir)?;
    }
    Ok(())
}

fn latency_vs_load(r: &RunResult, dir: &Path) -> Result<()> {
    let path = dir.join("latency-vs-load.svg");
    let root = SVGBackend::new(&path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let pts: Vec<_> = r.points.iter().filter(|p| p.latency.count > 0).collect();
    let xmax = pts.iter().map(|p| p.offered_per_s).fold(1.0, f64::max) * 1.05;
    let ymax = pts.iter().map(|p| p.latency.p999_us).fold(10.0, f64::max) * 2.0;
    let ymin = pts
        .iter()
        .map(|p| p.latency.p50_us)
        .fold(f64::MAX, f64::min)
        .clamp(1.0, 1e9)
        / 2.0;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "{} {}: latency vs offered load",
                r.workload.to_uppercase(),
                r.target
            ),
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..xmax, (ymin..ymax).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("offered load (per second)")
        .y_desc("latency (µs)")
        .draw()
        .map_err(err)?;
    type Pick = fn(&crate::report::Point) -> f64;
    let series: [(&str, Pick); 3] = [
        ("p50", |p| p.latency.p50_us),
        ("p99", |p| p.latency.p99_us),
        ("p99.9", |p| p.latency.p999_us),
    ];
    for (i, (name, f)) in series.iter().enumerate() {
        let c = COLORS[i];
        let data: Vec<(f64, f64)> = pts
            .iter()
            .map(|p| (p.offered_per_s, f(p).max(ymin)))
            .collect();
        chart
            .draw_series(LineSeries::new(data.clone(), c.stroke_width(2)))
            .map_err(err)?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c));
        chart
            .draw_series(
                data.iter()
                    .map(|&(x, y)| Circle::new((x, y), 3, c.filled())),
            )
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

fn throughput(r: &RunResult, dir: &Path) -> Result<()> {
    let path = dir.join("per-second.svg");
    let root = SVGBackend::new(&path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let tick = 0.25;
    let xmax = r
        .points
        .iter()
        .map(|p| p.per_second.len() as f64 * tick)
        .fold(1.0, f64::max);
    let ymax = r
        .points
        .iter()
        .flat_map(|p| p.per_second.iter().copied())
        .fold(1.0, f64::max)
        * 1.1;
    let op = r.points.first().map(|p| p.op.clone()).unwrap_or_default();
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "{} {}: {op}s per second",
                r.workload.to_uppercase(),
                r.target
            ),
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..xmax, 0f64..ymax)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("seconds into the measurement window")
        .y_desc(format!("{op}s / s"))
        .draw()
        .map_err(err)?;
    for (i, p) in r.points.iter().enumerate() {
        let c = COLORS[i % COLORS.len()];
        let data: Vec<(f64, f64)> = p
            .per_second
            .iter()
            .enumerate()
            .map(|(k, v)| (k as f64 * tick, *v))
            .collect();
        chart
            .draw_series(LineSeries::new(data, c.stroke_width(2)))
            .map_err(err)?
            .label(p.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c));
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

fn memory(r: &RunResult, ramp: &[serde_json::Value], dir: &Path) -> Result<()> {
    let data: Vec<(f64, f64)> = ramp
        .iter()
        .filter_map(|s| {
            Some((
                s.get("sessions")?.as_f64()?,
                s.get("rss_kib")?.as_f64()? / 1024.0,
            ))
        })
        .collect();
    if data.is_empty() {
        return Ok(());
    }
    let path = dir.join("memory-vs-sessions.svg");
    let root = SVGBackend::new(&path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let xmax = data.iter().map(|d| d.0).fold(1.0, f64::max) * 1.05;
    let ymax = data.iter().map(|d| d.1).fold(1.0, f64::max) * 1.1;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "{} {}: server RSS vs sessions",
                r.workload.to_uppercase(),
                r.target
            ),
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..xmax, 0f64..ymax)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("sessions")
        .y_desc("RSS (MiB)")
        .draw()
        .map_err(err)?;
    chart
        .draw_series(LineSeries::new(data.clone(), BLUE.stroke_width(2)))
        .map_err(err)?;
    chart
        .draw_series(
            data.iter()
                .map(|&(x, y)| Circle::new((x, y), 4, BLUE.filled())),
        )
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}
