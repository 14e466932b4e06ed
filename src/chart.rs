//! The size chart: one bar per variant, split into the base image's layers
//! and the layers the variant's Dockerfile added, as SVG for the README.
//!
//! Drawn with plotters' SVG backend and no font library: text goes into
//! the SVG as `<text>` elements that the browser lays out, so the output
//! depends only on the figures and is the same on every machine.

use anyhow::anyhow;
use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::report::Report;

/// The chart's size in pixels.
const SIZE: (u32, u32) = (900, 520);

const BASE_COLOUR: RGBColor = RGBColor(0x4c, 0x72, 0xb0);
const ADDED_COLOUR: RGBColor = RGBColor(0xdd, 0x84, 0x52);
const UNSPLIT_COLOUR: RGBColor = RGBColor(0x9a, 0x9a, 0x9a);

/// The chart of the report's variants, as an SVG document.
pub fn sizes_svg(report: &Report) -> anyhow::Result<String> {
    let mut svg = String::new();
    draw(report, &mut svg)
        .map_err(|e| anyhow!("failed to draw the chart: {e}"))?;
    svg.push('\n');
    Ok(svg)
}

fn megabytes(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn draw(
    report: &Report,
    svg: &mut String,
) -> Result<(), Box<dyn std::error::Error>> {
    let rows = &report.variants;
    let n = rows.len() as u32;
    let top = rows.iter().map(|r| megabytes(r.size_bytes)).fold(1.0, f64::max);

    let root = SVGBackend::with_string(svg, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Image size per variant", ("sans-serif", 26))
        .margin(20)
        .x_label_area_size(40)
        .y_label_area_size(70)
        // A segmented range `0..k` has k + 1 segments.
        .build_cartesian_2d(
            (0..n.saturating_sub(1)).into_segmented(),
            0.0..top * 1.15,
        )?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(WHITE)
        .y_desc("Size (MB)")
        .y_label_formatter(&|v| format!("{v:.0}"))
        .x_label_formatter(&|x| match x {
            SegmentValue::CenterOf(i) => rows
                .get(*i as usize)
                .map(|r| r.name.clone())
                .unwrap_or_default(),
            _ => String::new(),
        })
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 16))
        .draw()?;

    let bar = |i: usize, from: f64, to: f64, colour: RGBColor| {
        let i = i as u32;
        let mut rect = Rectangle::new(
            [(SegmentValue::Exact(i), from), (SegmentValue::Exact(i + 1), to)],
            colour.filled(),
        );
        rect.set_margin(0, 0, 45, 45);
        rect
    };
    let split = |r: &crate::report::Row| r.base_size_bytes.map(megabytes);

    chart
        .draw_series(rows.iter().enumerate().filter_map(|(i, r)| {
            split(r).map(|base| bar(i, 0.0, base, BASE_COLOUR))
        }))?
        .label("Base image layers")
        .legend(|(x, y)| legend_box(x, y, BASE_COLOUR));
    chart
        .draw_series(rows.iter().enumerate().filter_map(|(i, r)| {
            let total = megabytes(r.size_bytes);
            split(r).map(|base| bar(i, base, total, ADDED_COLOUR))
        }))?
        .label("Layers the Dockerfile added")
        .legend(|(x, y)| legend_box(x, y, ADDED_COLOUR));
    if rows.iter().any(|r| r.base_size_bytes.is_none()) {
        chart
            .draw_series(rows.iter().enumerate().filter_map(|(i, r)| {
                let total = megabytes(r.size_bytes);
                r.base_size_bytes
                    .is_none()
                    .then(|| bar(i, 0.0, total, UNSPLIT_COLOUR))
            }))?
            .label("Not split (base image unknown)")
            .legend(|(x, y)| legend_box(x, y, UNSPLIT_COLOUR));
    }

    let above = ("sans-serif", 15)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Bottom));
    chart.draw_series(rows.iter().enumerate().map(|(i, r)| {
        Text::new(
            format!("{:.1} MB", megabytes(r.size_bytes)),
            (
                SegmentValue::CenterOf(i as u32),
                megabytes(r.size_bytes) + top * 0.01,
            ),
            above.clone(),
        )
    }))?;

    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.3))
        .label_font(("sans-serif", 15))
        .draw()?;
    root.present()?;
    Ok(())
}

fn legend_box(x: i32, y: i32, colour: RGBColor) -> Rectangle<(i32, i32)> {
    Rectangle::new([(x, y - 6), (x + 14, y + 6)], colour.filled())
}
