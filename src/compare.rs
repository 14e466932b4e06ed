//! `imgopt compare`: the variants against the baseline variant, the
//! current images against the committed baseline file, and the budgets.
//!
//! Everything here is plain code over measurements: [`compare`] makes a
//! [`Comparison`], and the renderers turn it into a table or a JSON
//! document. Whether the command passes is [`Comparison::passed`]: every
//! budget row passed or was skipped for a stated reason.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::baseline::{Baseline, Entry};
use crate::config::{Budgets, Limits};
use crate::measure::{percent_change, Measurement};
use crate::render::{finish_table, human_size, new_table, signed_percent};
use crate::stats::Summary;

/// The version of the `compare --format json` document.
pub const JSON_FORMAT_VERSION: u32 = 1;

/// What `compare` needs besides the measurements.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    /// The name of the baseline variant.
    pub baseline_variant: Option<&'a str>,
    /// The committed baseline file, when there is one to compare with.
    pub baseline_file: Option<&'a Baseline>,
    /// Why growth is not checked, e.g. because the baseline was just
    /// updated; `None` checks it.
    pub growth_unchecked: Option<&'a str>,
    /// The budgets from the configuration.
    pub budgets: &'a Budgets,
    /// Build timings by variant, when builds were timed.
    pub builds: &'a BTreeMap<String, Summary>,
    /// Startup timings by variant, as `verify` saved them.
    pub startups: &'a BTreeMap<String, Summary>,
}

/// The whole comparison, in configuration order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// Always [`JSON_FORMAT_VERSION`].
    pub format_version: u32,
    /// The baseline variant's name.
    pub baseline_variant: Option<String>,
    /// Whether every budget passed.
    pub passed: bool,
    /// Every variant against the baseline variant.
    pub variants: Vec<VariantRow>,
    /// Every variant against the baseline file (empty without one).
    pub over_time: Vec<OverTimeRow>,
    /// One row per budget and variant.
    pub budgets: Vec<BudgetRow>,
}

/// One variant against the baseline variant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VariantRow {
    /// The variant.
    pub name: String,
    /// Its size in bytes.
    pub size_bytes: u64,
    /// Its size change against the baseline variant, in percent.
    pub change_percent: Option<f64>,
    /// Whether it is the baseline variant.
    pub is_baseline: bool,
    /// Its layer count.
    pub layers: usize,
    /// Its build time, over one or more timed builds.
    pub build: Option<Summary>,
    /// Its startup time, when `verify` measured this image.
    pub startup: Option<Summary>,
}

/// One variant against its entry in the baseline file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OverTimeRow {
    /// The variant.
    pub name: String,
    /// Its accepted size, `None` for a variant new since the baseline.
    pub before_bytes: Option<u64>,
    /// Its size now.
    pub after_bytes: u64,
    /// `after - before`, in bytes.
    pub delta_bytes: Option<i64>,
    /// The change in percent.
    pub delta_percent: Option<f64>,
    /// Its accepted layer count.
    pub layers_before: Option<usize>,
    /// Its layer count now.
    pub layers_after: usize,
    /// Whether its base image changed (by ID, or a different `FROM`);
    /// `None` when either side does not know the base's ID.
    pub base_changed: Option<bool>,
}

/// One budget checked for one variant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetRow {
    /// The variant.
    pub variant: String,
    /// The budget's key in `imgopt.toml`, e.g. `max_growth_percent`.
    pub budget: &'static str,
    /// The limit, in the budget's unit (bytes, percent or layers).
    pub limit: f64,
    /// The measured value in the same unit, when it could be measured.
    pub measured: Option<f64>,
    /// The verdict.
    pub status: Status,
    /// Why a budget was skipped, or what else explains a failure.
    pub note: Option<String>,
}

/// A budget's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Within the limit.
    Pass,
    /// Over the limit.
    Fail,
    /// Not checked; the row's note says why.
    Skipped,
}

impl Comparison {
    /// The rows of the budgets that failed.
    pub fn failures(&self) -> impl Iterator<Item = &BudgetRow> {
        self.budgets.iter().filter(|b| b.status == Status::Fail)
    }
}

/// Compares the measurements (in configuration order) and checks the
/// budgets.
pub fn compare(measurements: &[Measurement], inputs: &Inputs) -> Comparison {
    let baseline = inputs
        .baseline_variant
        .and_then(|name| measurements.iter().find(|m| m.name == name));
    let variants: Vec<VariantRow> = measurements
        .iter()
        .map(|m| VariantRow {
            name: m.name.clone(),
            size_bytes: m.size_bytes,
            change_percent: baseline
                .and_then(|b| percent_change(b.size_bytes, m.size_bytes)),
            is_baseline: baseline.is_some_and(|b| b.name == m.name),
            layers: m.layers,
            build: inputs.builds.get(&m.name).cloned(),
            startup: inputs.startups.get(&m.name).cloned(),
        })
        .collect();
    let entry = |name: &str| {
        inputs.baseline_file.and_then(|file| file.variants.get(name))
    };
    let over_time = match inputs.baseline_file {
        Some(_) => measurements
            .iter()
            .map(|m| over_time_row(m, entry(&m.name)))
            .collect(),
        None => Vec::new(),
    };

    let mut budgets = Vec::new();
    for (m, row) in measurements.iter().zip(&variants) {
        let limits = inputs.budgets.for_variant(&m.name);
        let over = over_time.iter().find(|r| r.name == m.name);
        check(&mut budgets, m, row, over, &limits, inputs);
    }
    let passed = budgets.iter().all(|b| b.status != Status::Fail);
    Comparison {
        format_version: JSON_FORMAT_VERSION,
        baseline_variant: baseline.map(|b| b.name.clone()),
        passed,
        variants,
        over_time,
        budgets,
    }
}

fn over_time_row(m: &Measurement, before: Option<&Entry>) -> OverTimeRow {
    let delta = before.map(|b| m.size_bytes as i64 - b.size_bytes as i64);
    OverTimeRow {
        name: m.name.clone(),
        before_bytes: before.map(|b| b.size_bytes),
        after_bytes: m.size_bytes,
        delta_bytes: delta,
        delta_percent: before
            .and_then(|b| percent_change(b.size_bytes, m.size_bytes)),
        layers_before: before.map(|b| b.layers),
        layers_after: m.layers,
        base_changed: before.and_then(|b| base_changed(b, m)),
    }
}

/// A different `FROM` is a change; so is the same tag now naming another
/// image, which is what a re-pushed `node:18` looks like.
fn base_changed(before: &Entry, now: &Measurement) -> Option<bool> {
    if before.base_image != now.base_image {
        return Some(true);
    }
    match (&before.base_image_id, &now.base_image_id) {
        (Some(a), Some(b)) => Some(a != b),
        _ => None,
    }
}

fn check(
    rows: &mut Vec<BudgetRow>,
    m: &Measurement,
    variant: &VariantRow,
    over: Option<&OverTimeRow>,
    limits: &Limits,
    inputs: &Inputs,
) {
    let mut push = |budget, limit: f64, measured: Option<f64>, ok, note| {
        let status = match (measured, ok) {
            (None, _) => Status::Skipped,
            (Some(_), true) => Status::Pass,
            (Some(_), false) => Status::Fail,
        };
        rows.push(BudgetRow {
            variant: m.name.clone(),
            budget,
            limit,
            measured,
            status,
            note,
        });
    };

    if let Some(limit) = limits.max_size_bytes {
        let size = m.size_bytes as f64;
        push(
            "max_size_bytes",
            limit as f64,
            Some(size),
            size <= limit as f64,
            None,
        );
    }
    if let Some(limit) = limits.max_layers {
        let layers = m.layers as f64;
        push(
            "max_layers",
            limit as f64,
            Some(layers),
            m.layers <= limit,
            None,
        );
    }
    if let Some(limit) = limits.min_reduction_percent {
        if !variant.is_baseline {
            let reduction = variant.change_percent.map(|c| -c);
            let ok = reduction.is_some_and(|r| r >= limit);
            let note = reduction
                .is_none()
                .then(|| "the baseline variant was not measured".to_string());
            push("min_reduction_percent", limit, reduction, ok, note);
        }
    }

    let growth_note = || match (inputs.growth_unchecked, over) {
        (Some(why), _) => Some(why.to_string()),
        (None, None) => Some("no baseline file".to_string()),
        (None, Some(row)) if row.before_bytes.is_none() => {
            Some("not in the baseline file yet".to_string())
        }
        (None, Some(row)) if row.base_changed == Some(true) => Some(
            "the base image changed: part of the change is the base's"
                .to_string(),
        ),
        _ => None,
    };
    let checkable = inputs.growth_unchecked.is_none()
        && over.is_some_and(|r| r.before_bytes.is_some());
    let over_checked = over.filter(|_| checkable);
    if let Some(limit) = limits.max_growth_percent {
        let growth = over_checked.and_then(|r| r.delta_percent);
        let ok = growth.is_some_and(|g| g <= limit);
        push("max_growth_percent", limit, growth, ok, growth_note());
    }
    if let Some(limit) = limits.max_growth_bytes {
        let growth = over_checked.and_then(|r| r.delta_bytes);
        let ok = growth.is_some_and(|g| g <= limit as i64);
        let growth = growth.map(|g| g as f64);
        push("max_growth_bytes", limit as f64, growth, ok, growth_note());
    }
}

/// How many extra decimals (or, for bytes, exact counts) a budget row
/// may take so that a measured value other than its limit reads as other.
const MAX_DETAIL: usize = 15;

/// The limit (`<= 5.0%`) and the measured value (`+10.3%`, or `-` when
/// not measured) of a budget row, for people. Shown at the usual
/// precision unless a value different from its limit would then read
/// the same, as `<= 0.0% (measured +0.0%)` did; then with as much more
/// as it takes.
fn row_texts(row: &BudgetRow) -> (String, String) {
    let Some(measured) = row.measured else {
        return (limit_text(row.budget, row.limit, 0), "-".into());
    };
    let mut detail = 0;
    while detail < MAX_DETAIL
        && measured != row.limit
        && reads_same(
            &number(row.budget, measured, detail),
            &number(row.budget, row.limit, detail),
        )
    {
        detail += 1;
    }
    (
        limit_text(row.budget, row.limit, detail),
        measured_text(row.budget, measured, detail),
    )
}

/// The magnitude of a budget's value in its unit, without sign or
/// percent; `detail` adds decimals, or shows bytes exactly.
fn number(budget: &str, value: f64, detail: usize) -> String {
    let magnitude = value.abs();
    match budget {
        "max_size_bytes" | "max_growth_bytes" if detail == 0 => {
            human_size(magnitude as u64)
        }
        "max_size_bytes" | "max_growth_bytes" => {
            format!("{} B", magnitude as u64)
        }
        "max_layers" => format!("{magnitude}"),
        _ => fixed(magnitude, 1 + detail),
    }
}

/// Whether two numbers with an optional unit read as the same value:
/// `200 MB` and `200.00 MB` do.
fn reads_same(a: &str, b: &str) -> bool {
    let split = |s: &str| {
        let (n, unit) = s.split_once(' ').unwrap_or((s, ""));
        (n.parse::<f64>().ok(), unit.to_string())
    };
    match (split(a), split(b)) {
        ((Some(x), unit_a), (Some(y), unit_b)) => x == y && unit_a == unit_b,
        _ => a == b,
    }
}

/// `value` with `decimals` decimals, or in scientific notation when it is
/// so large that the digits would fill the screen (a limit of `1e300`).
fn fixed(value: f64, decimals: usize) -> String {
    if value.abs() >= 1e15 {
        format!("{value:.decimals$e}")
    } else {
        format!("{value:.decimals$}")
    }
}

fn limit_text(budget: &str, limit: f64, detail: usize) -> String {
    let value = number(budget, limit, detail);
    match budget {
        "min_reduction_percent" => format!(">= {value}%"),
        "max_growth_percent" => format!("<= {value}%"),
        _ => format!("<= {value}"),
    }
}

fn measured_text(budget: &str, value: f64, detail: usize) -> String {
    let number = number(budget, value, detail);
    let sign = if value < 0.0 { "-" } else { "+" };
    match budget {
        "max_growth_percent" => format!("{sign}{number}%"),
        "max_growth_bytes" => format!("{sign}{number}"),
        "min_reduction_percent" if value < 0.0 => format!("-{number}%"),
        "min_reduction_percent" => format!("{number}%"),
        _ => number,
    }
}

/// A size change with its sign, e.g. `+20.00 MB`.
pub fn signed_size(bytes: i64) -> String {
    let sign = if bytes < 0 { "-" } else { "+" };
    format!("{sign}{}", human_size(bytes.unsigned_abs()))
}

/// One line per failed budget, for stderr: which variant, which budget,
/// the limit and the measured value.
pub fn failure_lines(comparison: &Comparison) -> Vec<String> {
    comparison
        .failures()
        .map(|row| {
            let (limit, measured) = row_texts(row);
            let mut line = format!(
                "budget failed: variant '{}': {} {limit} (measured \
                 {measured})",
                row.variant, row.budget
            );
            if let Some(note) = &row.note {
                line.push_str(&format!("; {note}"));
            }
            line
        })
        .collect()
}

/// A timing the way hyperfine shows it: `mean ± σ` and a range, or the
/// single figure for one run.
fn timing(summary: Option<&Summary>) -> (String, String) {
    match summary {
        None => ("-".into(), String::new()),
        Some(s) if s.runs == 1 => (s.display(), String::new()),
        Some(s) => (
            s.display(),
            format!("{:.3} s … {:.3} s ({} runs)", s.min, s.max, s.runs),
        ),
    }
}

/// The comparison as tables for people: variants, over time, budgets.
pub fn render_table(c: &Comparison, baseline_path: &str) -> String {
    let timed = c
        .variants
        .iter()
        .any(|v| v.build.as_ref().is_some_and(|b| b.runs > 1));
    let mut header =
        vec!["Variant", "Size", "vs baseline", "Layers", "Build time"];
    if timed {
        header.push("Build range");
    }
    header.push("Startup");
    let mut variants = new_table(&header);
    for v in &c.variants {
        let change = if v.is_baseline {
            "baseline".to_string()
        } else {
            v.change_percent.map(signed_percent).unwrap_or_else(|| "-".into())
        };
        let (build, range) = timing(v.build.as_ref());
        let mut row = vec![
            v.name.clone(),
            human_size(v.size_bytes),
            change,
            v.layers.to_string(),
            build,
        ];
        if timed {
            row.push(range);
        }
        row.push(timing(v.startup.as_ref()).0);
        variants.add_row(row);
    }
    let mut out = format!(
        "Variants against the baseline variant\n{}",
        finish_table(variants, &[1, 2, 3, 4, 5, 6], &[0])
    );

    if !c.over_time.is_empty() {
        let mut over = new_table(&[
            "Variant",
            "Before",
            "After",
            "Change",
            "Change %",
            "Layers",
            "Base image",
        ]);
        for r in &c.over_time {
            let layers = match r.layers_before {
                Some(before) => format!("{before} → {}", r.layers_after),
                None => r.layers_after.to_string(),
            };
            over.add_row([
                r.name.clone(),
                r.before_bytes.map(human_size).unwrap_or_else(|| "new".into()),
                human_size(r.after_bytes),
                r.delta_bytes.map(signed_size).unwrap_or_else(|| "-".into()),
                r.delta_percent
                    .map(signed_percent)
                    .unwrap_or_else(|| "-".into()),
                layers,
                match r.base_changed {
                    Some(true) => "changed",
                    Some(false) => "same",
                    None => "unknown",
                }
                .to_string(),
            ]);
        }
        out.push_str(&format!(
            "\nAgainst the baseline file {baseline_path}\n{}",
            finish_table(over, &[1, 2, 3, 4], &[0])
        ));
    }

    if !c.budgets.is_empty() {
        let mut budgets = new_table(&[
            "Variant", "Budget", "Limit", "Measured", "Result", "Note",
        ]);
        for b in &c.budgets {
            let (limit, measured) = row_texts(b);
            budgets.add_row([
                b.variant.clone(),
                b.budget.to_string(),
                limit,
                measured,
                match b.status {
                    Status::Pass => "pass",
                    Status::Fail => "FAIL",
                    Status::Skipped => "skipped",
                }
                .to_string(),
                b.note.clone().unwrap_or_default(),
            ]);
        }
        out.push_str(&format!(
            "\nBudgets\n{}",
            finish_table(budgets, &[2, 3], &[0, 5])
        ));
    }
    out
}

/// The comparison as a JSON document (format version 1), pretty-printed.
pub fn render_json(c: &Comparison) -> String {
    crate::render::json_text(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(budget: &'static str, limit: f64, measured: f64) -> BudgetRow {
        BudgetRow {
            variant: "v".into(),
            budget,
            limit,
            measured: Some(measured),
            status: Status::Fail,
            note: None,
        }
    }

    fn texts(budget: &'static str, limit: f64, measured: f64) -> [String; 2] {
        let (limit, measured) = row_texts(&row(budget, limit, measured));
        [limit, measured]
    }

    #[test]
    fn a_failing_value_never_reads_as_its_limit() {
        assert_eq!(
            texts("max_growth_percent", 0.0, 0.04),
            ["<= 0.00%", "+0.04%"]
        );
        assert_eq!(
            texts("max_growth_percent", 5.0, 5.000_001),
            ["<= 5.000000%", "+5.000001%"]
        );
        assert_eq!(
            texts("min_reduction_percent", 30.0, 29.96),
            [">= 30.00%", "29.96%"]
        );
        assert_eq!(
            texts("max_size_bytes", 200e6, 200_000_001.0),
            ["<= 200000000 B", "200000001 B"]
        );
        assert_eq!(
            texts("max_growth_bytes", 1000.0, 1001.0),
            ["<= 1000 B", "+1001 B"]
        );
    }

    #[test]
    fn values_that_read_apart_keep_the_usual_precision() {
        assert_eq!(
            texts("max_growth_percent", 5.0, 10.34),
            ["<= 5.0%", "+10.3%"]
        );
        assert_eq!(
            texts("max_growth_percent", 5.0, 5.0),
            ["<= 5.0%", "+5.0%"]
        );
        assert_eq!(texts("max_layers", 20.0, 21.0), ["<= 20", "21"]);
        assert_eq!(
            texts("min_reduction_percent", 30.0, -4.0),
            [">= 30.0%", "-4.0%"]
        );
    }

    #[test]
    fn a_huge_limit_is_shown_in_scientific_notation() {
        let [limit, measured] = texts("max_growth_percent", 1e300, 2.0);

        assert_eq!(limit, "<= 1.0e300%");
        assert_eq!(measured, "+2.0%");
        let line = failure_lines(&Comparison {
            format_version: JSON_FORMAT_VERSION,
            baseline_variant: None,
            passed: false,
            variants: Vec::new(),
            over_time: Vec::new(),
            budgets: vec![row("max_growth_percent", 1e300, 1e301)],
        });
        assert_eq!(
            line,
            ["budget failed: variant 'v': max_growth_percent <= 1.0e300% \
              (measured +1.0e301%)"]
        );
    }
}
