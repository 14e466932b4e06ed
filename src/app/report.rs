//! `imgopt report`: the saved results, printed or written into a README
//! with the size chart beside it. It never talks to the engine.
//!
//! Everything is rendered, checked and staged in temporary files before
//! anything is written: a file whose markers are missing or wrong, or
//! that cannot be written (read-only, not a regular file), is left
//! untouched, and so is the chart. Files whose bytes would not change are not rewritten, so a
//! rerun leaves even their modification times alone.

use std::path::Path;

use anyhow::{bail, Context};

use crate::chart;
use crate::cli::{ReportFormat, ReportOptions};
use crate::config::Config;
use crate::error::ExitCode;
use crate::fsutil::{self, PendingWrite};
use crate::markers;
use crate::progress::Reporter;
use crate::report::{self, Report};
use crate::results::Results;

use super::print;

pub(super) fn run_report(
    config: &Config,
    options: &ReportOptions,
    reporter: &Reporter,
) -> anyhow::Result<ExitCode> {
    let results = Results::load(&config.results)?;
    let report = Report::from_results(config, &results);
    if report.variants.is_empty() {
        bail!(
            "no measured variants in '{}': run `imgopt measure` first",
            config.results.display()
        );
    }

    let svg = match &options.chart {
        Some(_) => Some(chart::sizes_svg(&report)?),
        None => None,
    };
    let readme = match &options.update {
        Some(file) => Some((file, updated_text(file, &report, options)?)),
        None => None,
    };

    // Both files are prepared before either is written: a README that
    // cannot be written leaves the chart alone too.
    let chart = match (&options.chart, &svg) {
        (Some(path), Some(svg)) => {
            Some((path, prepare_if_changed(path, svg)?))
        }
        _ => None,
    };
    let readme = match readme {
        Some((file, text)) => Some((file, prepare_if_changed(file, &text)?)),
        None => None,
    };
    // Known limit: should the second rename fail after the first one
    // (the disk vanishing in between), the first file stays written;
    // two renames cannot be one atomic step.
    if let Some((path, pending)) = chart {
        if let Some(pending) = pending {
            pending.commit()?;
        }
        reporter.line(&format!("wrote the chart {}", path.display()));
    }
    if let Some((file, pending)) = readme {
        if let Some(pending) = pending {
            pending.commit()?;
        }
        reporter.line(&format!("updated the report in {}", file.display()));
        return Ok(ExitCode::Success);
    }
    print(&match options.format {
        ReportFormat::Table => report::render_table(&report),
        ReportFormat::Markdown => report::render_markdown(&report),
        ReportFormat::Json => report::render_json(&report),
    })?;
    Ok(ExitCode::Success)
}

/// The file's text with its report block replaced; an error, and nothing
/// written, when the markers are not exactly one pair in order.
fn updated_text(
    file: &Path,
    report: &Report,
    options: &ReportOptions,
) -> anyhow::Result<String> {
    let bytes = fsutil::read_regular(file)?.ok_or_else(|| {
        anyhow::anyhow!("failed to read '{}': no such file", file.display())
    })?;
    let text = String::from_utf8(bytes).with_context(|| {
        format!("failed to read '{}': not UTF-8 text", file.display())
    })?;
    let link = options.chart.as_deref().map(|chart| link_to(file, chart));
    let block = report::readme_block(report, link.as_deref());
    markers::replace_block(&text, &block).with_context(|| {
        format!("cannot update '{}' (left unchanged)", file.display())
    })
}

/// The chart's path as a Markdown link from the file's directory: a
/// relative path (with `..` where needed), so the link works wherever the
/// repository is checked out.
fn link_to(file: &Path, chart: &Path) -> String {
    let absolute = |p: &Path| std::path::absolute(p).ok();
    let dir = file.parent().unwrap_or(Path::new(""));
    let relative = match (absolute(dir), absolute(chart)) {
        (Some(dir), Some(chart)) => pathdiff::diff_paths(chart, dir),
        _ => None,
    };
    let path = relative.unwrap_or_else(|| chart.to_path_buf());
    path.components()
        .map(|c| match c {
            std::path::Component::RootDir => String::new(),
            other => other.as_os_str().to_string_lossy().into_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// A write of `text` to `path`, `None` when the file already holds
/// exactly these bytes, so a rerun leaves its modification time alone.
fn prepare_if_changed(
    path: &Path,
    text: &str,
) -> anyhow::Result<Option<PendingWrite>> {
    if fsutil::read_regular(path)?.is_some_and(|old| old == text.as_bytes()) {
        return Ok(None);
    }
    PendingWrite::prepare(path, text.as_bytes()).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_link_is_relative_to_the_updated_file() {
        let link = |file: &str, chart: &str| {
            link_to(Path::new(file), Path::new(chart))
        };

        assert_eq!(
            link("/r/README.md", "/r/docs/sizes.svg"),
            "docs/sizes.svg"
        );
        assert_eq!(link("/r/sub/R.md", "/r/charts/s.svg"), "../charts/s.svg");
        assert_eq!(link("/r/sub/R.md", "/tmp/s.svg"), "../../tmp/s.svg");
    }
}
