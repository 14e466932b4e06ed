//! `imgopt report`: the saved results as a table, Markdown or JSON, without
//! an engine.
//!
//! A [`Report`] is built from the results file in configuration order,
//! one row per variant that has a measurement. The renderers return text
//! and do no I/O. The Markdown is meant to be committed inside a README,
//! so it depends on nothing but the measured figures: the same results
//! give the same bytes, and a rerun leaves no diff.

use serde::Serialize;

use crate::config::Config;
use crate::measure::percent_change;
use crate::render::{human_seconds, signed_percent};
use crate::results::Results;
use crate::stats::Summary;

/// The version of the `report --format json` document.
pub const JSON_FORMAT_VERSION: u32 = 1;

/// The saved figures of the configured variants.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Always [`JSON_FORMAT_VERSION`].
    pub format_version: u32,
    /// The baseline variant, when it was measured.
    pub baseline: Option<String>,
    /// One row per measured variant, in configuration order.
    pub variants: Vec<Row>,
}

/// One variant's saved figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// The variant's name.
    pub name: String,
    /// The tag it was measured under.
    pub image: String,
    /// The image's ID.
    pub image_id: String,
    /// Its size in bytes.
    pub size_bytes: u64,
    /// The bytes of its base image's layers, when known.
    pub base_size_bytes: Option<u64>,
    /// Its layer count.
    pub layers: usize,
    /// The wall time of its last build, in seconds.
    pub build_seconds: Option<f64>,
    /// Its startup time, when `verify` measured it.
    pub startup: Option<Summary>,
    /// Its size change against the baseline variant, in percent.
    pub change_percent: Option<f64>,
    /// Whether it is the baseline variant.
    pub is_baseline: bool,
    /// When it was measured (RFC 3339).
    pub measured_at: String,
}

impl Report {
    /// The report of the configured variants that have a measurement.
    pub fn from_results(config: &Config, results: &Results) -> Report {
        let measured: Vec<_> = config
            .variants
            .iter()
            .filter_map(|v| {
                let record = results.records.get(&v.name)?;
                Some((v, record, record.measurement.as_ref()?))
            })
            .collect();
        let baseline =
            measured.iter().find(|(v, _, _)| v.baseline).map(|(_, _, m)| *m);
        let variants = measured
            .iter()
            .map(|(v, record, m)| Row {
                name: v.name.clone(),
                image: m.image.clone(),
                image_id: m.image_id.clone(),
                size_bytes: m.size_bytes,
                base_size_bytes: m.base_size_bytes,
                layers: m.layers,
                build_seconds: record.build_seconds.or(m.build_seconds),
                startup: record.startup.clone(),
                change_percent: baseline
                    .and_then(|b| percent_change(b.size_bytes, m.size_bytes)),
                is_baseline: v.baseline,
                measured_at: record.measured_at.clone(),
            })
            .collect();
        Report {
            format_version: JSON_FORMAT_VERSION,
            baseline: baseline.map(|b| b.name.clone()),
            variants,
        }
    }
}

/// The column headers of the table and the Markdown.
const HEADER: [&str; 6] = [
    "Version",
    "Image size",
    "Layers",
    "Build time",
    "Startup",
    "vs baseline",
];

/// Columns 1 to 5 hold numbers and are right-aligned.
const NUMERIC: [usize; 5] = [1, 2, 3, 4, 5];

/// The rows' cells, as text, with one unit per column.
fn cells(report: &Report) -> Vec<[String; 6]> {
    let unit = size_unit(report.variants.iter().map(|r| r.size_bytes));
    report
        .variants
        .iter()
        .map(|r| {
            let name = if r.is_baseline {
                format!("{} (baseline)", r.name)
            } else {
                r.name.clone()
            };
            let change = if r.is_baseline {
                "baseline".to_string()
            } else {
                r.change_percent
                    .map(signed_percent)
                    .unwrap_or_else(|| "-".into())
            };
            [
                name,
                unit.format(r.size_bytes),
                r.layers.to_string(),
                r.build_seconds.map(human_seconds).unwrap_or_else(dash),
                r.startup.as_ref().map(startup).unwrap_or_else(dash),
                change,
            ]
        })
        .collect()
}

fn dash() -> String {
    "-".into()
}

/// A startup time in seconds with two decimals, `± σ` when repeated.
fn startup(s: &Summary) -> String {
    match s.stddev {
        Some(sd) => format!("{:.2} s ± {sd:.2} s", s.mean),
        None => format!("{:.2} s", s.mean),
    }
}

/// A decimal size unit shared by a whole column.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SizeUnit {
    name: &'static str,
    bytes: f64,
}

impl SizeUnit {
    /// The size in this unit with one decimal, e.g. `187.4 MB`.
    pub fn format(self, bytes: u64) -> String {
        if self.bytes == 1.0 {
            return format!("{bytes} B");
        }
        format!("{:.1} {}", bytes as f64 / self.bytes, self.name)
    }
}

/// The unit that shows the smallest size with at least one digit before
/// the point; larger sizes then read as larger numbers in the same unit.
pub fn size_unit(sizes: impl Iterator<Item = u64>) -> SizeUnit {
    let smallest = sizes.min().unwrap_or(0);
    let units = [("GB", 1e9), ("MB", 1e6), ("kB", 1e3)];
    units
        .into_iter()
        .find(|(_, b)| smallest as f64 >= *b)
        .map(|(name, bytes)| SizeUnit { name, bytes })
        .unwrap_or(SizeUnit { name: "B", bytes: 1.0 })
}

/// The report as a table for the terminal.
pub fn render_table(report: &Report) -> String {
    let mut table = crate::render::new_table(&HEADER);
    for row in cells(report) {
        table.add_row(row);
    }
    crate::render::finish_table(table, &NUMERIC, &[0])
}

/// The report as a Markdown table, columns padded so the source reads as
/// a table too; numbers right-aligned, pipes in names escaped.
pub fn render_markdown(report: &Report) -> String {
    let rows: Vec<Vec<String>> = cells(report)
        .into_iter()
        .map(|row| row.iter().map(|c| escape(c)).collect())
        .collect();
    let header: Vec<String> = HEADER.iter().map(|h| h.to_string()).collect();
    let widths: Vec<usize> = (0..HEADER.len())
        .map(|i| {
            rows.iter()
                .chain([&header])
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
                .max(3)
        })
        .collect();

    let line = |row: &[String]| {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, cell)| {
                if NUMERIC.contains(&i) {
                    format!("{cell:>w$}", w = widths[i])
                } else {
                    format!("{cell:<w$}", w = widths[i])
                }
            })
            .collect();
        format!("| {} |\n", cells.join(" | "))
    };
    let rule: Vec<String> = widths
        .iter()
        .enumerate()
        .map(|(i, w)| {
            if NUMERIC.contains(&i) {
                format!("{}:", "-".repeat(w - 1))
            } else {
                format!(":{}", "-".repeat(w - 1))
            }
        })
        .collect();

    let mut out = line(&header);
    out.push_str(&format!("| {} |\n", rule.join(" | ")));
    for row in &rows {
        out.push_str(&line(row));
    }
    out
}

/// Escapes what would break a Markdown table cell.
fn escape(cell: &str) -> String {
    cell.replace('\\', "\\\\").replace('|', "\\|").replace('\n', " ")
}

/// The report as a JSON document (format version 1).
pub fn render_json(report: &Report) -> String {
    crate::render::json_text(report)
}

/// The block `report --update` writes between the README's markers: the
/// Markdown table and, when a chart was written, a link to it.
pub fn readme_block(report: &Report, chart_link: Option<&str>) -> String {
    let mut out = render_markdown(report);
    out.push_str(
        "\nSizes are the engine's uncompressed image sizes, as \
         `docker images` shows them.\n",
    );
    if let Some(link) = chart_link {
        out.push_str(&format!(
            "\n![Image size per variant: base image layers and the layers \
             the Dockerfile added]({link})\n"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_size_column_uses_the_unit_of_its_smallest_value() {
        let unit = size_unit([1_104_000_000, 96_500_000].into_iter());

        assert_eq!(unit.format(1_104_000_000), "1104.0 MB");
        assert_eq!(unit.format(96_500_000), "96.5 MB");
        assert_eq!(size_unit([999].into_iter()).format(999), "999 B");
    }

    #[test]
    fn pipes_and_backslashes_in_names_are_escaped() {
        assert_eq!(escape(r"a|b\c"), r"a\|b\\c");
    }
}
