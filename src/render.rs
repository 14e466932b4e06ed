//! Renderers: measurements in, text out.
//!
//! Each renderer returns a `String` and does no I/O, so output is tested by
//! snapshot and written by the caller. The JSON document is a stable format
//! for scripts, documented in the README and versioned by
//! [`JSON_FORMAT_VERSION`].

use comfy_table::{
    presets, CellAlignment, ColumnConstraint, ContentArrangement, Table, Width,
};
use serde::Serialize;

use crate::engine::EngineInfo;
use crate::measure::Measurement;

/// The narrowest a wrapping column gets on a narrow terminal.
const MIN_WRAP_WIDTH: u16 = 16;

/// The version of the `measure --format json` document.
pub const JSON_FORMAT_VERSION: u32 = 1;

/// Sizes the way `docker images` shows them: decimal units.
pub fn human_size(bytes: u64) -> String {
    humansize::format_size(bytes, humansize::DECIMAL)
}

/// A duration in seconds with one decimal, e.g. `12.3 s`.
pub fn human_seconds(seconds: f64) -> String {
    format!("{seconds:.1} s")
}

/// A signed percentage with one decimal, e.g. `-72.4%`.
pub fn signed_percent(percent: f64) -> String {
    format!("{percent:+.1}%")
}

/// The measurement table: one row per image, in the order given, each
/// compared with `baseline` when there is one.
pub fn measurement_table(
    measurements: &[Measurement],
    baseline: Option<&Measurement>,
) -> String {
    let mut table = new_table(&[
        "Variant",
        "Image",
        "Size",
        "vs baseline",
        "Layers",
        "Base image",
        "Build time",
        "User",
        "Health",
        "NODE_ENV",
    ]);
    for m in measurements {
        table.add_row([
            m.name.clone(),
            m.image.clone(),
            human_size(m.size_bytes),
            versus(m, baseline),
            m.layers.to_string(),
            m.base_image.clone().unwrap_or_else(|| "-".into()),
            m.build_seconds.map(human_seconds).unwrap_or_else(|| "-".into()),
            m.user.clone(),
            if m.healthcheck { "yes" } else { "no" }.to_string(),
            m.node_env.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    finish_table(table, &[2, 3, 4, 6], &[1, 5])
}

/// A table in the house style, with `header`.
pub fn new_table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.to_vec());
    table
}

/// Right-aligns the `numeric` columns and lets only the `wrapping` ones
/// (long names) wrap on a narrow terminal: a number or a short word split
/// over two lines is worse than a table wider than the screen.
pub fn finish_table(
    mut table: Table,
    numeric: &[usize],
    wrapping: &[usize],
) -> String {
    for column in numeric {
        if let Some(c) = table.column_mut(*column) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    let widest: Vec<u16> = (0..table.column_count())
        .map(|i| {
            table
                .header()
                .into_iter()
                .chain(table.row_iter())
                .filter_map(|row| row.cell_iter().nth(i))
                .map(|cell| cell.content().chars().count())
                .max()
                .unwrap_or(0)
                .try_into()
                .unwrap_or(u16::MAX)
        })
        .collect();
    for (i, column) in table.column_iter_mut().enumerate() {
        let constraint = if wrapping.contains(&i) {
            // Wrap long names, but never down to a letter a line.
            let floor = widest[i].min(MIN_WRAP_WIDTH);
            ColumnConstraint::LowerBoundary(Width::Fixed(floor))
        } else {
            ColumnConstraint::ContentWidth
        };
        column.set_constraint(constraint);
    }
    format!("{table}\n")
}

fn versus(m: &Measurement, baseline: Option<&Measurement>) -> String {
    match baseline {
        Some(b) if b.name == m.name && b.image_id == m.image_id => {
            "baseline".into()
        }
        Some(b) => m
            .size_change_percent(b)
            .map(signed_percent)
            .unwrap_or_else(|| "-".into()),
        None => "-".into(),
    }
}

/// A serializable document as pretty JSON with a final newline, the one
/// JSON layout of every `--format json` and of the files imgopt writes.
pub fn json_text(document: &impl Serialize) -> String {
    let mut text = serde_json::to_string_pretty(document)
        .expect("plain data with string keys always serializes");
    text.push('\n');
    text
}

/// The table `imgopt build` prints: what was built, under which tag and
/// ID, and how long it took. Rows are `(name, tag, id, seconds)`.
pub fn build_table(built: &[(&str, &str, &str, f64)]) -> String {
    let mut table = new_table(&["Variant", "Image", "ID", "Build time"]);
    for (name, tag, id, seconds) in built {
        let short = id.trim_start_matches("sha256:");
        table.add_row([
            name.to_string(),
            tag.to_string(),
            short.chars().take(12).collect(),
            human_seconds(*seconds),
        ]);
    }
    finish_table(table, &[3], &[1])
}

/// The `measure --format json` document.
#[derive(Debug, Serialize)]
pub struct MeasureDocument<'a> {
    /// Always [`JSON_FORMAT_VERSION`].
    pub format_version: u32,
    /// The engine that measured.
    pub engine: &'a EngineInfo,
    /// The name of the baseline image, when one was measured.
    pub baseline: Option<&'a str>,
    /// One entry per image, in the table's order.
    pub images: Vec<ImageDocument<'a>>,
}

/// One image in the JSON document: the measurement and figures derived
/// from it.
#[derive(Debug, Serialize)]
pub struct ImageDocument<'a> {
    /// Everything measured, flattened into this object.
    #[serde(flatten)]
    pub measurement: &'a Measurement,
    /// The size in decimal units, as in the table.
    pub size_human: String,
    /// The size change against the baseline in percent, when there is one.
    pub size_change_percent: Option<f64>,
}

/// Renders the JSON document, pretty-printed, with a final newline.
pub fn measurement_json(
    engine: &EngineInfo,
    measurements: &[Measurement],
    baseline: Option<&Measurement>,
) -> String {
    let document = MeasureDocument {
        format_version: JSON_FORMAT_VERSION,
        engine,
        baseline: baseline.map(|b| b.name.as_str()),
        images: measurements
            .iter()
            .map(|m| ImageDocument {
                measurement: m,
                size_human: human_size(m.size_bytes),
                size_change_percent: baseline
                    .and_then(|b| m.size_change_percent(b))
                    .map(|p| (p * 100.0).round() / 100.0),
            })
            .collect(),
    };
    json_text(&document)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Measurement> {
        let make =
            |name: &str, size, layers, user: &str, hc, env: Option<&str>| {
                Measurement {
                    name: name.into(),
                    image: format!("imgopt-app:{name}"),
                    image_id: format!("sha256:{name}"),
                    size_bytes: size,
                    layers,
                    history_entries: layers + 4,
                    base_image: Some("node:18.20.8".into()),
                    base_image_id: None,
                    build_seconds: Some(42.25),
                    user: user.into(),
                    healthcheck: hc,
                    node_env: env.map(Into::into),
                    base_layers: None,
                    base_size_bytes: None,
                }
            };
        vec![
            make("week2", 1_104_000_000, 12, "root", false, None),
            make(
                "multi-stage",
                187_400_000,
                8,
                "node",
                true,
                Some("production"),
            ),
            make(
                "custom-base",
                96_500_000,
                5,
                "1000:1000",
                true,
                Some("production"),
            ),
        ]
    }

    fn engine() -> EngineInfo {
        EngineInfo {
            host: "unix:///var/run/docker.sock".into(),
            version: "20.10.24+dfsg1".into(),
            api_version: "1.41".into(),
        }
    }

    #[test]
    fn the_table_compares_every_variant_with_the_baseline() {
        let m = sample();

        insta::assert_snapshot!(measurement_table(&m, Some(&m[0])));
    }

    #[test]
    fn the_json_document_carries_bytes_and_human_sizes() {
        let m = sample();

        insta::assert_snapshot!(measurement_json(&engine(), &m, Some(&m[0])));
    }

    #[test]
    fn without_a_baseline_no_change_is_shown() {
        let m = sample();

        let table = measurement_table(&m[1..2], None);

        assert!(!table.contains('%'), "{table}");
    }

    #[test]
    fn human_units_are_decimal_like_docker_images() {
        assert_eq!(human_size(1_104_000_000), "1.10 GB");
        assert_eq!(human_size(999), "999 B");
        assert_eq!(signed_percent(-82.53), "-82.5%");
        assert_eq!(signed_percent(3.0), "+3.0%");
    }
}
