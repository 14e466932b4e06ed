//! Runs a command from plain options: the plot of every command.
//!
//! Each command connects to the engine, does its work, saves what it
//! measured after every image (so Ctrl-C or a crash keeps what was done),
//! and writes its results to stdout only at the end. The work races an
//! interrupt (Ctrl-C, SIGTERM, SIGHUP): the interrupt drops the in-flight
//! engine request, which makes the engine cancel the build, and the
//! command returns [`Interrupted`]. Commands that create things to clean
//! up (verify, base push) race the interrupt themselves.

mod base;
mod compare;
mod report;
mod verify;

use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::{Instant, SystemTime};

use anyhow::{bail, Context};

use crate::cli::{BuildOptions, Command, Format, MeasureOptions, Options};
use crate::config::{BuildArgs, Config, Variant};
use crate::context;
use crate::dockerfile::{BaseImage, Dockerfile};
use crate::engine::{BuildRequest, Engine, EngineInfo, ImageNotFound};
use crate::error::{BuildFailed, ExitCode, Interrupted};
use crate::measure::Measurement;
use crate::progress::Reporter;
use crate::render;
use crate::results::{Provenance, Results};

/// Runs the command and returns the exit code it earned.
pub async fn run(options: Options) -> anyhow::Result<ExitCode> {
    let config = Config::load(&options.config)?;
    let reporter = Reporter::new(options.verbosity);
    if let Some(path) = &config.local_override {
        tracing::debug!(path = %path.display(), "merged the local override");
    }

    let (config, reporter) = (&config, &reporter);
    let work: Pin<Box<dyn Future<Output = _> + '_>> = match &options.command {
        Command::Build(build) => Box::pin(run_build(config, build, reporter)),
        Command::Measure(m) => Box::pin(run_measure(config, m, reporter)),
        Command::Compare(c) => {
            Box::pin(compare::run_compare(config, c, reporter))
        }
        Command::Report(r) => Box::pin(std::future::ready(
            report::run_report(config, r, reporter),
        )),
        Command::BaseBuild(b) => {
            Box::pin(base::run_build(config, b, reporter))
        }
        // These race interrupts themselves: their cleanup (containers,
        // networks, a registry tag) must run after the signal, not be
        // dropped with the work.
        Command::Verify(v) => return verify::run(config, v, reporter).await,
        Command::BasePush(p) => {
            return base::run_push(config, p, reporter).await
        }
    };
    tokio::select! {
        result = work => result,
        () = interrupted() => {
            reporter.clear();
            Err(Interrupted.into())
        }
    }
}

/// Completes when imgopt is asked to stop: Ctrl-C (SIGINT), and on Unix
/// SIGTERM (`timeout`, a cancelled CI job) and SIGHUP (a closed
/// terminal). Each is handled as an interrupt: the work is dropped, what
/// it created is cleaned up, and imgopt exits 130.
pub(crate) async fn interrupted() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate()).ok();
        let hup = signal(SignalKind::hangup()).ok();
        tokio::select! {
            () = ctrl_c() => {}
            () = unix_signal(term) => {}
            () = unix_signal(hup) => {}
        }
    }
    #[cfg(not(unix))]
    ctrl_c().await;
}

/// Ctrl-C; never, when the platform cannot deliver it.
async fn ctrl_c() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

#[cfg(unix)]
async fn unix_signal(signal: Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(mut signal) => {
            signal.recv().await;
        }
        None => std::future::pending::<()>().await,
    }
}

/// One image that a command built.
struct Built {
    name: String,
    tag: String,
    id: String,
    seconds: f64,
}

/// The state a command shares while it works.
struct Session<'a> {
    config: &'a Config,
    engine: Engine,
    info: EngineInfo,
    results: Results,
    provenance: Provenance,
    reporter: &'a Reporter,
    /// Set once saving failed, so the warning is given once.
    unsaved: bool,
}

impl<'a> Session<'a> {
    async fn open(
        config: &'a Config,
        reporter: &'a Reporter,
    ) -> anyhow::Result<Session<'a>> {
        let engine = Engine::connect().await?;
        let info = engine.info().await?;
        let results = Results::load(&config.results)?;
        let provenance = Provenance {
            time: humantime::format_rfc3339_seconds(SystemTime::now())
                .to_string(),
            engine_version: info.version.clone(),
            git_commit: git_commit(&config.root),
        };
        Ok(Session {
            config,
            engine,
            info,
            results,
            provenance,
            reporter,
            unsaved: false,
        })
    }

    /// Saves the results file. A file that cannot be written costs the
    /// saved copy, not the measurement: it is still printed.
    fn save(&mut self) -> anyhow::Result<()> {
        if self.unsaved {
            return Ok(());
        }
        if let Err(error) = self.results.save(&self.config.results) {
            self.unsaved = true;
            self.reporter.warn(&format!(
                "{error:#}; results are printed but not saved"
            ));
        }
        Ok(())
    }

    /// Builds the variants in configuration order, the custom base first
    /// when any of them needs it.
    async fn build_all(
        &mut self,
        variants: &[&Variant],
        options: &BuildOptions,
    ) -> anyhow::Result<Vec<Built>> {
        self.config.check_paths().with_context(|| {
            format!(
                "invalid configuration in '{}'",
                self.config.root.display()
            )
        })?;
        let mut built = Vec::new();
        // A variant needs the custom base unless the command line passes
        // its own image for the base's build argument.
        let needs_base = variants.iter().any(|v| {
            v.base_arg
                .as_ref()
                .is_some_and(|arg| !options.build_args.contains_key(arg))
        });
        if let Some(base) = &self.config.base {
            if needs_base {
                let args =
                    self.config.base_build_args(base, &options.build_args);
                let spec = Spec {
                    name: "base",
                    tag: &base.tag,
                    context: &base.context,
                    dockerfile: &base.dockerfile,
                    target: None,
                };
                built.push(self.build_one(&spec, &args, options).await?);
            }
        }
        for variant in variants {
            let args =
                self.config.variant_build_args(variant, &options.build_args);
            let spec = Spec {
                name: &variant.name,
                tag: &variant.tag,
                context: &self.config.context,
                dockerfile: &variant.dockerfile,
                target: variant.target.as_deref(),
            };
            let image = self.build_one(&spec, &args, options).await?;
            // The build that produced an image keeps its time: a cached
            // rebuild that yields the same image must not replace a real
            // build's minutes with its milliseconds.
            let record = self.results.record_mut(
                &variant.name,
                &image.id,
                &self.provenance,
            );
            record.build_seconds.get_or_insert(image.seconds);
            self.save()?;
            built.push(image);
        }
        Ok(built)
    }

    async fn build_one(
        &self,
        spec: &Spec<'_>,
        args: &BuildArgs,
        options: &BuildOptions,
    ) -> anyhow::Result<Built> {
        let args = self.checked_build_args(spec, args, options)?;
        tracing::debug!(name = spec.name, ?args, "build arguments");
        let hidden = [self.state_dir()];
        let context = pack(spec.context, spec.dockerfile, &hidden).await?;
        self.reporter.start(&format!(
            "building {} ({}, context {})",
            spec.name,
            spec.tag,
            render::human_size(context.len)
        ));

        let started = Instant::now();
        let request = BuildRequest {
            context,
            tag: spec.tag,
            build_args: &args,
            target: spec.target,
            no_cache: options.no_cache,
        };
        let id = self
            .engine
            .build(spec.name, request, |event| {
                self.reporter.build_event(spec.name, event)
            })
            .await?;
        let seconds = started.elapsed().as_secs_f64();
        self.reporter.done(&format!(
            "built {} in {}",
            spec.name,
            render::human_seconds(seconds)
        ));
        Ok(Built {
            name: spec.name.to_string(),
            tag: spec.tag.to_string(),
            id,
            seconds,
        })
    }

    /// The build arguments to send, after the checks that need no engine.
    ///
    /// The engine is the judge of a Dockerfile: one that our parser
    /// refuses is still sent, with every argument, so the user sees the
    /// engine's verdict as a failed build. An empty one is refused here,
    /// because the engine would keep a copy of the whole context behind.
    fn checked_build_args(
        &self,
        spec: &Spec<'_>,
        args: &BuildArgs,
        options: &BuildOptions,
    ) -> anyhow::Result<BuildArgs> {
        let text =
            std::fs::read_to_string(spec.dockerfile).with_context(|| {
                format!(
                    "failed to read the Dockerfile of '{}' ('{}')",
                    spec.name,
                    spec.dockerfile.display()
                )
            })?;
        if text.trim().is_empty() {
            return Err(BuildFailed {
                name: spec.name.to_string(),
                step: None,
                message: format!(
                    "the Dockerfile '{}' is empty",
                    spec.dockerfile.display()
                ),
                log_tail: Vec::new(),
            }
            .into());
        }
        let dockerfile = match Dockerfile::parse(&text) {
            Ok(dockerfile) => dockerfile,
            Err(error) => {
                tracing::debug!("{error:#}; sending every build argument");
                return Ok(args.clone());
            }
        };
        if let Some(target) = spec.target {
            let known: Vec<&str> = dockerfile
                .stages()
                .iter()
                .filter_map(|stage| stage.name.as_deref())
                .collect();
            if !known.iter().any(|k| k.eq_ignore_ascii_case(target)) {
                bail!(
                    "'{}' sets target '{target}', which '{}' does not \
                     define (stages: {})",
                    spec.name,
                    spec.dockerfile.display(),
                    known.join(", ")
                );
            }
        }
        let declared = dockerfile.declared_args();
        for key in options.build_args.keys() {
            if !declared.contains(key) {
                self.reporter.warn(&format!(
                    "--build-arg {key} is not declared by '{}' (an ARG \
                     {key} line); the build of '{}' ignores it",
                    spec.dockerfile.display(),
                    spec.name
                ));
            }
        }
        Ok(declared_only(&dockerfile, args, &options.build_args))
    }

    /// The directory (or file) that holds imgopt's own state, which never
    /// travels in a build context.
    fn state_dir(&self) -> PathBuf {
        let results = &self.config.results;
        match results.parent() {
            Some(dir) if dir != self.config.context => dir.to_path_buf(),
            _ => results.clone(),
        }
    }

    /// Measures the variants' images as they are now, in order.
    async fn measure_all(
        &mut self,
        variants: &[&Variant],
        cli_args: &BuildArgs,
    ) -> anyhow::Result<Vec<Measurement>> {
        let mut measured = Vec::with_capacity(variants.len());
        for variant in variants {
            measured.push(self.measure_variant(variant, cli_args).await?);
        }
        Ok(measured)
    }

    /// Measures a variant's image as it is now.
    async fn measure_variant(
        &mut self,
        variant: &Variant,
        cli_args: &BuildArgs,
    ) -> anyhow::Result<Measurement> {
        let facts = self.engine.inspect(&variant.tag).await.map_err(|e| {
            if e.is::<ImageNotFound>() {
                e.context(format!(
                    "variant '{0}' has no image yet: run `imgopt build {0}` \
                     or measure without --no-build",
                    variant.name
                ))
            } else {
                e
            }
        })?;
        let mut m =
            Measurement::from_facts(&variant.name, &variant.tag, &facts);

        let args = self.config.variant_build_args(variant, cli_args);
        let base = Dockerfile::read(&variant.dockerfile)
            .and_then(|d| d.base_image(&args, variant.target.as_deref()));
        let base = match base {
            Ok(base) => Some(base),
            Err(error) => {
                // The image exists; a Dockerfile edited since costs only
                // the base image column.
                self.reporter.warn(&format!(
                    "base image of '{}' unknown: {error:#}",
                    variant.name
                ));
                None
            }
        };
        match base {
            Some(BaseImage::Image(base)) => {
                match self.engine.inspect(&base).await {
                    Ok(base_facts) => {
                        m.attribute_base(&facts, &base_facts);
                        m.base_image_id = Some(base_facts.id);
                    }
                    Err(e) if e.is::<ImageNotFound>() => {}
                    Err(e) => self.reporter.warn(&format!("{e:#}")),
                }
                m.base_image = Some(base);
            }
            Some(BaseImage::Scratch) => m.base_image = Some("scratch".into()),
            None => {}
        }

        let record = self.results.record_mut(
            &variant.name,
            &m.image_id,
            &self.provenance,
        );
        m.build_seconds = record.build_seconds;
        record.measurement = Some(m.clone());
        self.save()?;
        Ok(m)
    }

    /// Measures any local image; figures saved earlier for the same image
    /// (its build time and base) are attached.
    async fn measure_image(
        &mut self,
        reference: &str,
    ) -> anyhow::Result<Measurement> {
        let facts = self.engine.inspect(reference).await?;
        let mut m = Measurement::from_facts(reference, reference, &facts);
        if let Some(record) = self.results.by_image_id(&m.image_id) {
            m.build_seconds = record.build_seconds;
            if let Some(earlier) = &record.measurement {
                m.base_image.clone_from(&earlier.base_image);
                m.base_image_id.clone_from(&earlier.base_image_id);
            }
        }
        // Keyed apart from the variants, so `--image week2` can never
        // overwrite the record of the variant named week2.
        let key = format!("image:{reference}");
        let record =
            self.results.record_mut(&key, &m.image_id, &self.provenance);
        record.measurement = Some(m.clone());
        self.save()?;
        Ok(m)
    }
}

/// What to build, wherever it comes from: a variant or the custom base.
struct Spec<'a> {
    name: &'a str,
    tag: &'a str,
    context: &'a Path,
    dockerfile: &'a Path,
    target: Option<&'a str>,
}

async fn run_build(
    config: &Config,
    options: &BuildOptions,
    reporter: &Reporter,
) -> anyhow::Result<ExitCode> {
    let variants = config.select(&options.variants)?;
    let mut session = Session::open(config, reporter).await?;

    let built = session.build_all(&variants, options).await?;

    reporter.clear();
    print(&render::build_table(
        &built
            .iter()
            .map(|b| {
                (b.name.as_str(), b.tag.as_str(), b.id.as_str(), b.seconds)
            })
            .collect::<Vec<_>>(),
    ))?;
    Ok(ExitCode::Success)
}

async fn run_measure(
    config: &Config,
    options: &MeasureOptions,
    reporter: &Reporter,
) -> anyhow::Result<ExitCode> {
    let variants = if options.images.is_empty() {
        config.select(&options.build.variants)?
    } else {
        Vec::new()
    };
    let mut session = Session::open(config, reporter).await?;

    if options.build_first && !variants.is_empty() {
        session.build_all(&variants, &options.build).await?;
    }
    let mut measured =
        session.measure_all(&variants, &options.build.build_args).await?;
    for reference in &options.images {
        measured.push(session.measure_image(reference).await?);
    }

    let baseline = if options.images.is_empty() {
        baseline_for(config, &session.results, &measured, reporter)
    } else {
        None
    };
    reporter.clear();
    print(&match options.format {
        Format::Table => {
            render::measurement_table(&measured, baseline.as_ref())
        }
        Format::Json => render::measurement_json(
            &session.info,
            &measured,
            baseline.as_ref(),
        ),
    })?;
    Ok(ExitCode::Success)
}

/// The measurement the others are compared with: the baseline variant's,
/// measured now or, when it was not selected, as saved earlier.
fn baseline_for(
    config: &Config,
    results: &Results,
    measured: &[Measurement],
    reporter: &Reporter,
) -> Option<Measurement> {
    let name = &config.baseline()?.name;
    if let Some(m) = measured.iter().find(|m| &m.name == name) {
        return Some(m.clone());
    }
    let saved = results.records.get(name).and_then(|r| r.measurement.clone());
    if saved.is_none() {
        reporter.warn(&format!(
            "baseline '{name}' has not been measured yet; measure it to \
             see the change against it"
        ));
    }
    saved
}

/// Packs a build context off the async runtime, so Ctrl-C is still heard
/// while a large context is read.
async fn pack(
    root: &Path,
    dockerfile: &Path,
    hidden: &[PathBuf],
) -> anyhow::Result<context::ContextTar> {
    let (root, dockerfile) = (root.to_path_buf(), dockerfile.to_path_buf());
    let hidden = hidden.to_vec();
    tokio::task::spawn_blocking(move || {
        context::pack_context_hiding(&root, &dockerfile, &hidden)
    })
    .await
    .context("packing the build context stopped unexpectedly")?
}

/// The build arguments to send: the project's only where the Dockerfile
/// declares them (the engine warns about the others), the command line's
/// always, as `docker build` would.
fn declared_only(
    dockerfile: &Dockerfile,
    args: &BuildArgs,
    cli: &BuildArgs,
) -> BuildArgs {
    let declared = dockerfile.declared_args();
    args.iter()
        .filter(|(k, _)| declared.contains(*k) || cli.contains_key(*k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The checked-out commit, if the project is a git checkout.
fn git_commit(root: &Path) -> Option<String> {
    let output = std::process::Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["rev-parse", "HEAD"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// Writes results to stdout; a closed pipe surfaces as an error that the
/// binary treats as success.
fn print(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("failed to write the results to stdout")
}
