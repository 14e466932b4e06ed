//! `imgopt compare`: build (N times when timing), measure, compare with
//! the baseline variant and the baseline file, check the budgets, and
//! write the baseline file when asked.
//!
//! The baseline file is read before anything is built, so a missing one
//! fails in a second rather than after the builds; it is written only
//! after every variant was measured, so a failed build never replaces
//! the accepted figures.

use std::collections::BTreeMap;

use crate::baseline::{self, Baseline};
use crate::cli::{CompareOptions, Format};
use crate::compare::{self, Inputs};
use crate::config::Config;
use crate::error::ExitCode;
use crate::fsutil;
use crate::progress::Reporter;
use crate::stats::Summary;

use super::{print, Session};

pub(super) async fn run_compare(
    config: &Config,
    options: &CompareOptions,
    reporter: &Reporter,
) -> anyhow::Result<ExitCode> {
    let variants = config.select(&with_baseline(config, options))?;
    let previous = load_previous(config, options, reporter)?;
    if previous.is_none() && !options.update_baseline {
        return Err(baseline::missing(&config.baseline_file));
    }
    if let Some(previous) = &previous {
        let known = |name: &str| config.variant(name).is_some();
        for note in previous.stale_notes(known) {
            reporter.line(&note);
        }
    }
    if options.update_baseline {
        // A file that cannot be replaced fails now, not after the builds.
        fsutil::check_writable(&config.baseline_file)?;
    }
    let mut session = Session::open(config, reporter).await?;

    let mut timings: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    if options.build_first {
        for run in 1..=options.runs {
            if options.runs > 1 {
                reporter.line(&format!("build run {run} of {}", options.runs));
            }
            for built in session.build_all(&variants, &options.build).await? {
                timings.entry(built.name).or_default().push(built.seconds);
            }
        }
    }
    let measured =
        session.measure_all(&variants, &options.build.build_args).await?;

    let builds: BTreeMap<String, Summary> = measured
        .iter()
        .filter_map(|m| {
            let samples = match timings.get(&m.name) {
                Some(samples) => samples.clone(),
                // Not built now: the last build of this very image.
                None => m.build_seconds.into_iter().collect(),
            };
            Some((m.name.clone(), Summary::of(&samples)?))
        })
        .collect();
    let startups: BTreeMap<String, Summary> = measured
        .iter()
        .filter_map(|m| {
            let record = session.results.records.get(&m.name)?;
            let same_image = record.image_id == m.image_id;
            Some((
                m.name.clone(),
                record.startup.clone().filter(|_| same_image)?,
            ))
        })
        .collect();

    let path = shown_path(config);
    if options.update_baseline {
        let mut updated = Baseline::of(
            &measured,
            &session.provenance.engine_version,
            session.provenance.git_commit.clone(),
        );
        if let Some(previous) = &previous {
            // Variants not compared this time keep their accepted figures.
            for (name, entry) in &previous.variants {
                if config.variant(name).is_some() {
                    updated
                        .variants
                        .entry(name.clone())
                        .or_insert_with(|| entry.clone());
                }
            }
        }
        updated.save(&config.baseline_file)?;
        reporter.line(&format!("wrote the baseline file {path}"));
    }

    let comparison = compare::compare(
        &measured,
        &Inputs {
            baseline_variant: config.baseline().map(|b| b.name.as_str()),
            baseline_file: previous.as_ref(),
            growth_unchecked: options
                .update_baseline
                .then_some("growth accepted: the baseline was updated"),
            budgets: &config.budgets,
            builds: &builds,
            startups: &startups,
        },
    );
    reporter.clear();
    print(&match options.format {
        Format::Table => compare::render_table(&comparison, &path),
        Format::Json => compare::render_json(&comparison),
    })?;
    if comparison.passed {
        return Ok(ExitCode::Success);
    }
    for line in compare::failure_lines(&comparison) {
        reporter.line(&line);
    }
    Ok(ExitCode::Failure)
}

/// The baseline file's figures; with `--update-baseline`, a file that
/// holds no usable baseline is replaced (with a warning) rather than
/// being an error that only this very command could fix.
fn load_previous(
    config: &Config,
    options: &CompareOptions,
    reporter: &Reporter,
) -> anyhow::Result<Option<Baseline>> {
    match Baseline::load(&config.baseline_file) {
        Ok(previous) => Ok(previous),
        Err(e) if options.update_baseline => {
            let unusable = e.downcast_ref::<baseline::Unusable>();
            let Some(unusable) = unusable else {
                return Err(e);
            };
            reporter.warn(&unusable.replacing());
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The selected variants plus the baseline variant, which the
/// across-variant view and `min_reduction_percent` compare with.
fn with_baseline(config: &Config, options: &CompareOptions) -> Vec<String> {
    let mut names = options.build.variants.clone();
    if let Some(baseline) = config.baseline() {
        if !names.is_empty() && !names.contains(&baseline.name) {
            names.push(baseline.name.clone());
        }
    }
    names
}

/// The baseline file's path as people know it: relative to the project.
fn shown_path(config: &Config) -> String {
    let path = &config.baseline_file;
    path.strip_prefix(&config.root).unwrap_or(path).display().to_string()
}
