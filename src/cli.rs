//! The command line, and its one-way translation into plain options.
//!
//! clap ends here: [`parse`] turns the arguments into [`Options`], and the
//! rest of imgopt never sees clap. Usage errors exit 2, like every other
//! error that stops imgopt from doing its job.

use std::path::PathBuf;

use anyhow::bail;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{BuildArgs, CONFIG_FILE};

const EXIT_CODES: &str = "\
Exit codes:
  0    done; everything under test passed
  1    the thing under test failed (a build, a budget, a health check)
  2    imgopt could not do its job (engine, configuration, arguments)
  130  interrupted (Ctrl-C)";

const COMPARE_EXIT_CODES: &str = "\
Exit codes:
  0    every budget passed (or none is set)
  1    a budget failed, or a variant failed to build
  2    imgopt could not do its job: no engine, bad configuration, or no
       baseline file (create it with `imgopt compare --update-baseline`)
  130  interrupted (Ctrl-C)";

const REPORT_EXIT_CODES: &str = "\
Exit codes:
  0    the report was printed or written
  2    no results to report, or the file to update lacks exactly one pair
       of markers <!-- imgopt:report:start --> / <!-- imgopt:report:end -->
       (nothing is written then)";

/// Build, measure and compare Docker images of a Node.js service.
#[derive(Debug, Parser)]
#[command(name = "imgopt", version, after_help = EXIT_CODES)]
struct Cli {
    /// More output on stderr: -v adds build logs, -vv debug tracing.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,

    /// The project configuration file.
    #[arg(
        long,
        global = true,
        env = "IMGOPT_CONFIG",
        default_value = CONFIG_FILE,
        value_name = "FILE"
    )]
    config: PathBuf,

    #[command(subcommand)]
    command: CliCommand,
}

#[derive(Debug, Subcommand)]
enum CliCommand {
    /// Build image variants (all of them when none is named).
    #[command(after_help = EXIT_CODES)]
    Build(BuildCli),
    /// Build and measure image variants, or measure any local image.
    #[command(after_help = EXIT_CODES)]
    Measure(MeasureCli),
    /// Build and measure the variants, compare them with the baseline
    /// variant and the committed baseline file, and check the budgets.
    #[command(after_help = COMPARE_EXIT_CODES)]
    Compare(CompareCli),
    /// Show the saved results as a table, Markdown or JSON, or rewrite a
    /// README's report block and chart; needs no engine.
    #[command(after_help = REPORT_EXIT_CODES)]
    Report(ReportCli),
    /// Build, measure and publish the custom base image.
    #[command(subcommand)]
    Base(BaseCli),
    /// Start each image with Postgres and Redis, check it works and
    /// measure its startup and runtime footprint.
    #[command(after_help = EXIT_CODES)]
    Verify(VerifyCli),
}

#[derive(Debug, Args)]
struct VerifyCli {
    #[command(flatten)]
    targets: TargetsCli,

    /// Start the app this many times to time its startup.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    runs: u32,

    /// How long a container may take to be ready or healthy (e.g. 90s);
    /// the configuration's `[verify] timeout` by default.
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout)]
    timeout: Option<std::time::Duration>,

    /// Use Postgres and Redis that already run: only the app is started.
    #[arg(long, requires_all = ["database_url", "redis_url"])]
    external: bool,

    /// The app's DATABASE_URL in --external mode; it must be reachable
    /// from inside a container.
    #[arg(
        long,
        value_name = "URL",
        requires = "external",
        value_parser = url_parser(&["postgres", "postgresql"])
    )]
    database_url: Option<String>,

    /// The app's REDIS_URL in --external mode.
    #[arg(
        long,
        value_name = "URL",
        requires = "external",
        value_parser = url_parser(&["redis", "rediss"])
    )]
    redis_url: Option<String>,

    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Debug, Subcommand)]
enum BaseCli {
    /// Build the custom base image, measure it, and show how much of each
    /// variant it accounts for.
    #[command(after_help = EXIT_CODES)]
    Build(BaseBuildCli),
    /// Push the custom base image to a registry and print its digest.
    #[command(after_help = EXIT_CODES)]
    Push(BasePushCli),
}

#[derive(Debug, Args)]
struct BaseBuildCli {
    /// Build under this tag instead of the configured one.
    #[arg(long, value_name = "NAME:TAG")]
    tag: Option<String>,

    /// Set a build-time variable, like `docker build --build-arg`.
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    build_args: Vec<String>,

    /// Do not use the engine's layer cache.
    #[arg(long)]
    no_cache: bool,

    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Debug, Args)]
struct BasePushCli {
    /// Push this local image instead of the configured base tag.
    #[arg(long, value_name = "NAME:TAG")]
    tag: Option<String>,

    /// The registry to push to (host[:port]); the image is tagged for it.
    /// Without it, the registry the image's name points at.
    #[arg(long, value_name = "HOST")]
    registry: Option<String>,

    /// Log in as this user, with the password read from stdin; without
    /// it, the login comes from Docker's config.json.
    #[arg(long, short = 'u', requires = "password_stdin")]
    username: Option<String>,

    /// Read the password from stdin, as `docker login` does.
    #[arg(long, requires = "username")]
    password_stdin: bool,

    /// Show what would be tagged and pushed, and with which login,
    /// without doing it.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Debug, Args)]
struct CompareCli {
    #[command(flatten)]
    build: BuildCli,

    /// Compare the images as they are, without building them first.
    #[arg(long, conflicts_with_all = ["runs", "no_cache", "build_args"])]
    no_build: bool,

    /// Build each variant N times and report the build time's mean ±
    /// standard deviation, min and max (add --no-cache for cold builds).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    runs: u32,

    /// Write the measured figures to the baseline file (after a
    /// successful measurement), accepting any growth.
    #[arg(long)]
    update_baseline: bool,

    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Debug, Args)]
struct ReportCli {
    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    format: ReportFormat,

    /// Rewrite the block between <!-- imgopt:report:start --> and
    /// <!-- imgopt:report:end --> in FILE with the Markdown table, and
    /// write the chart beside it (docs/sizes.svg); prints nothing.
    #[arg(long, value_name = "FILE")]
    update: Option<PathBuf>,

    /// Write the SVG size chart to FILE.
    #[arg(long, value_name = "FILE", conflicts_with = "no_chart")]
    chart: Option<PathBuf>,

    /// With --update, do not write or link the chart.
    #[arg(long)]
    no_chart: bool,
}

/// How `imgopt report` prints the saved results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// A table for people.
    Table,
    /// A Markdown table, e.g. for a README.
    Markdown,
    /// A JSON document for scripts (format version 1).
    Json,
}

#[derive(Debug, Args)]
struct BuildCli {
    /// Variants to build, by name; all when none is given.
    #[arg(value_name = "VARIANT")]
    variants: Vec<String>,

    /// Set a build-time variable, like `docker build --build-arg`; a bare
    /// KEY takes its value from the environment.
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    build_args: Vec<String>,

    /// Do not use the engine's layer cache.
    #[arg(long)]
    no_cache: bool,
}

/// What `measure` and `verify` work on: the variants (built first unless
/// told not to) or local images.
#[derive(Debug, Args)]
struct TargetsCli {
    #[command(flatten)]
    build: BuildCli,

    /// Use the images as they are, without building them first.
    #[arg(long)]
    no_build: bool,

    /// Use a local image by reference or ID instead of the variants
    /// (repeat the flag for more); nothing is built.
    #[arg(
        long = "image",
        value_name = "REF",
        value_parser = clap::builder::NonEmptyStringValueParser::new(),
        conflicts_with_all = ["variants", "no_cache", "build_args"]
    )]
    images: Vec<String>,
}

#[derive(Debug, Args)]
struct MeasureCli {
    #[command(flatten)]
    targets: TargetsCli,

    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

/// How results are printed on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A table for people.
    Table,
    /// A JSON document for scripts (format version 1).
    Json,
}

/// Everything the command line asked for, as plain data.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// How many `-v` flags were given.
    pub verbosity: u8,
    /// The configuration file.
    pub config: PathBuf,
    /// The command to run.
    pub command: Command,
}

/// The command to run, with its options.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `imgopt build`.
    Build(BuildOptions),
    /// `imgopt measure`.
    Measure(MeasureOptions),
    /// `imgopt compare`.
    Compare(CompareOptions),
    /// `imgopt report`.
    Report(ReportOptions),
    /// `imgopt base build`.
    BaseBuild(BaseBuildOptions),
    /// `imgopt base push`.
    BasePush(BasePushOptions),
    /// `imgopt verify`.
    Verify(VerifyOptions),
}

/// What to verify, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifyOptions {
    /// The variants to verify, and how to build them first.
    pub build: BuildOptions,
    /// Whether to build the variants before verifying them.
    pub build_first: bool,
    /// Local images to verify instead of the variants.
    pub images: Vec<String>,
    /// How many times to start each app for the startup figures.
    pub runs: u32,
    /// Overrides the configuration's timeout.
    pub timeout: Option<std::time::Duration>,
    /// Services the user runs; `None` starts Postgres and Redis.
    pub external: Option<ExternalServices>,
    /// The output format.
    pub format: Format,
}

/// Postgres and Redis that the user already runs.
#[derive(Debug, Clone, PartialEq)]
pub struct ExternalServices {
    /// The app's `DATABASE_URL`.
    pub database_url: String,
    /// The app's `REDIS_URL`.
    pub redis_url: String,
}

/// How to build the custom base image.
#[derive(Debug, Clone, PartialEq)]
pub struct BaseBuildOptions {
    /// The tag to build under instead of the configured one.
    pub tag: Option<String>,
    /// Build arguments and cache use; `variants` is unused.
    pub build: BuildOptions,
    /// The output format.
    pub format: Format,
}

/// Where and how to push the custom base image.
#[derive(Debug, Clone, PartialEq)]
pub struct BasePushOptions {
    /// The local image to push instead of the configured base tag.
    pub tag: Option<String>,
    /// The registry host to tag and push for.
    pub registry: Option<String>,
    /// The user to log in as; the password comes from stdin.
    pub username: Option<String>,
    /// Only show what would be done.
    pub dry_run: bool,
}

/// What to compare, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct CompareOptions {
    /// The variants (the baseline variant is always added), and how to
    /// build them.
    pub build: BuildOptions,
    /// Whether to build the variants before measuring them.
    pub build_first: bool,
    /// How many times to build each variant.
    pub runs: u32,
    /// Whether to write the baseline file from this measurement.
    pub update_baseline: bool,
    /// The output format.
    pub format: Format,
}

/// What to report, and where.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportOptions {
    /// The output format on stdout (unused with `update`).
    pub format: ReportFormat,
    /// The file whose marked block to rewrite.
    pub update: Option<PathBuf>,
    /// Where to write the SVG chart, if anywhere.
    pub chart: Option<PathBuf>,
}

/// Which variants to build, and how.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BuildOptions {
    /// Variant names; empty means all.
    pub variants: Vec<String>,
    /// Build arguments from the command line; they win over the config's.
    pub build_args: BuildArgs,
    /// Build without the layer cache.
    pub no_cache: bool,
}

/// What to measure.
#[derive(Debug, Clone, PartialEq)]
pub struct MeasureOptions {
    /// The variants to measure, and how to build them first.
    pub build: BuildOptions,
    /// Whether to build the variants before measuring them.
    pub build_first: bool,
    /// Local images to measure instead of the variants.
    pub images: Vec<String>,
    /// The output format.
    pub format: Format,
}

/// Parses the process's arguments; usage errors print and exit 2.
pub fn parse() -> anyhow::Result<Options> {
    Cli::parse().into_options()
}

/// Parses the given arguments (the first is the program name).
pub fn parse_from<I, T>(args: I) -> anyhow::Result<Options>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    Cli::try_parse_from(args)?.into_options()
}

impl Cli {
    fn into_options(self) -> anyhow::Result<Options> {
        let command = match self.command {
            CliCommand::Build(build) => Command::Build(build.into_options()?),
            CliCommand::Measure(m) => Command::Measure(MeasureOptions {
                build: m.targets.build.into_options()?,
                build_first: !m.targets.no_build,
                images: m.targets.images,
                format: m.format,
            }),
            CliCommand::Compare(c) => Command::Compare(CompareOptions {
                build: c.build.into_options()?,
                build_first: !c.no_build,
                runs: c.runs,
                update_baseline: c.update_baseline,
                format: c.format,
            }),
            CliCommand::Base(BaseCli::Build(b)) => {
                let build = BuildCli {
                    variants: Vec::new(),
                    build_args: b.build_args,
                    no_cache: b.no_cache,
                };
                Command::BaseBuild(BaseBuildOptions {
                    tag: b.tag,
                    build: build.into_options()?,
                    format: b.format,
                })
            }
            CliCommand::Base(BaseCli::Push(p)) => {
                Command::BasePush(BasePushOptions {
                    tag: p.tag,
                    registry: p.registry,
                    // `requires` pairs it with --password-stdin.
                    username: p.username,
                    dry_run: p.dry_run,
                })
            }
            CliCommand::Verify(v) => Command::Verify(VerifyOptions {
                build: v.targets.build.into_options()?,
                build_first: !v.targets.no_build,
                images: v.targets.images,
                runs: v.runs,
                timeout: v.timeout,
                external: match (v.external, v.database_url, v.redis_url) {
                    (true, Some(database_url), Some(redis_url)) => {
                        Some(ExternalServices { database_url, redis_url })
                    }
                    _ => None,
                },
                format: v.format,
            }),
            CliCommand::Report(r) => Command::Report(r.into_options()),
        };
        Ok(Options { verbosity: self.verbose, config: self.config, command })
    }
}

/// Where the chart goes when `--update` is given without `--chart`,
/// relative to the updated file's directory.
pub const DEFAULT_CHART: &str = "docs/sizes.svg";

impl ReportCli {
    fn into_options(self) -> ReportOptions {
        let chart = match (&self.chart, &self.update) {
            _ if self.no_chart => None,
            (Some(chart), _) => Some(chart.clone()),
            (None, Some(update)) => Some(
                update
                    .parent()
                    .unwrap_or(std::path::Path::new(""))
                    .join(DEFAULT_CHART),
            ),
            (None, None) => None,
        };
        ReportOptions { format: self.format, update: self.update, chart }
    }
}

impl BuildCli {
    fn into_options(self) -> anyhow::Result<BuildOptions> {
        let mut build_args = BuildArgs::new();
        for arg in &self.build_args {
            if let Some((key, value)) = parse_build_arg(arg)? {
                build_args.insert(key, value);
            }
        }
        Ok(BuildOptions {
            variants: self.variants,
            build_args,
            no_cache: self.no_cache,
        })
    }
}

/// A verify timeout: a duration people write (`90s`, `2m`), at least one
/// second, since no container is ready sooner.
fn parse_timeout(text: &str) -> Result<std::time::Duration, String> {
    let duration =
        humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if duration < std::time::Duration::from_secs(1) {
        return Err("the timeout must be at least 1s".into());
    }
    Ok(duration)
}

/// A parser for URLs with one of `schemes`, e.g. `postgres://...`.
fn url_parser(
    schemes: &'static [&'static str],
) -> impl Fn(&str) -> Result<String, String> + Clone {
    move |text: &str| {
        let scheme = text.split_once("://").map(|(s, _)| s);
        match scheme {
            Some(s) if schemes.contains(&s) => Ok(text.to_string()),
            _ => Err(format!(
                "expected a URL starting with {}",
                schemes
                    .iter()
                    .map(|s| format!("{s}://"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            )),
        }
    }
}

/// Reads `KEY=VALUE`, or a bare `KEY` from the environment as
/// `docker build` does (skipped when the variable is unset).
fn parse_build_arg(arg: &str) -> anyhow::Result<Option<(String, String)>> {
    let (key, value) = match arg.split_once('=') {
        Some((key, value)) => (key, Some(value.to_string())),
        None => (arg, std::env::var(arg).ok()),
    };
    if key.is_empty() || key.chars().any(char::is_whitespace) {
        bail!("invalid --build-arg '{arg}': expected KEY=VALUE");
    }
    Ok(value.map(|v| (key.to_string(), v)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measure(args: &[&str]) -> anyhow::Result<MeasureOptions> {
        let argv = ["imgopt", "measure"].iter().chain(args);
        match parse_from(argv)?.command {
            Command::Measure(m) => Ok(m),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn build_args_repeat_and_the_last_one_wins() {
        let m = measure(&[
            "--build-arg",
            "A=1",
            "--build-arg",
            "B=x=y",
            "--build-arg",
            "A=2",
        ])
        .unwrap();

        assert_eq!(m.build.build_args["A"], "2");
        assert_eq!(m.build.build_args["B"], "x=y");
    }

    #[test]
    fn a_bare_build_arg_reads_the_environment_and_skips_when_unset() {
        let m = measure(&["--build-arg", "IMGOPT_TEST_SURELY_UNSET"]).unwrap();

        assert!(m.build.build_args.is_empty());
    }

    #[test]
    fn a_build_arg_without_a_name_is_refused() {
        let err = measure(&["--build-arg", "=1"]).unwrap_err();

        assert!(err.to_string().contains("expected KEY=VALUE"), "{err}");
    }

    #[test]
    fn image_mode_cannot_be_mixed_with_variants() {
        assert!(measure(&["--image", "x:1", "week2"]).is_err());
        assert!(measure(&["--image", ""]).is_err());
        assert!(measure(&["--image", "x:1", "--no-build"]).is_ok());
    }

    #[test]
    fn measure_builds_first_unless_told_not_to() {
        assert!(measure(&[]).unwrap().build_first);
        assert!(!measure(&["--no-build"]).unwrap().build_first);
    }

    #[test]
    fn compare_times_one_build_unless_asked_for_more() {
        let parse = |args: &[&str]| {
            let argv = ["imgopt", "compare"].iter().chain(args);
            match parse_from(argv).map(|o| o.command) {
                Ok(Command::Compare(c)) => Ok(c),
                Ok(other) => panic!("parsed as {other:?}"),
                Err(e) => Err(e),
            }
        };

        assert_eq!(parse(&[]).unwrap().runs, 1);
        assert_eq!(parse(&["--runs", "5"]).unwrap().runs, 5);
        assert!(parse(&["--runs", "0"]).is_err());
        assert!(parse(&["--runs", "3", "--no-build"]).is_err());
    }

    #[test]
    fn report_update_puts_the_chart_beside_the_updated_file() {
        let parse = |args: &[&str]| {
            let argv = ["imgopt", "report"].iter().chain(args);
            match parse_from(argv).unwrap().command {
                Command::Report(r) => r,
                other => panic!("parsed as {other:?}"),
            }
        };

        let beside = parse(&["--update", "site/README.md"]);
        let none = parse(&["--update", "README.md", "--no-chart"]);
        let plain = parse(&["--format", "markdown"]);

        assert_eq!(beside.chart, Some(PathBuf::from("site/docs/sizes.svg")));
        assert_eq!(none.chart, None);
        assert_eq!(
            (plain.chart, plain.format),
            (None, ReportFormat::Markdown)
        );
    }

    #[test]
    fn global_flags_work_after_the_subcommand() {
        let options =
            parse_from(["imgopt", "build", "-vv", "--config", "x.toml"])
                .unwrap();

        assert_eq!(options.verbosity, 2);
        assert_eq!(options.config, PathBuf::from("x.toml"));
    }

    #[test]
    fn base_push_takes_a_username_only_with_password_stdin() {
        let push = |args: &[&str]| {
            parse_from(["imgopt", "base", "push"].iter().chain(args))
        };

        assert!(push(&["--username", "alice"]).is_err());
        assert!(push(&["--password-stdin"]).is_err());
        let options =
            push(&["--registry", "h:1", "-u", "a", "--password-stdin"])
                .unwrap();
        let Command::BasePush(p) = options.command else {
            panic!("parsed as {:?}", options.command);
        };
        assert_eq!(p.registry.as_deref(), Some("h:1"));
        assert_eq!(p.username.as_deref(), Some("a"));
    }

    fn verify(args: &[&str]) -> anyhow::Result<VerifyOptions> {
        let argv = ["imgopt", "verify"].iter().chain(args);
        match parse_from(argv)?.command {
            Command::Verify(v) => Ok(v),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn verify_external_mode_needs_both_urls() {
        assert!(
            verify(&["--external", "--database-url", "postgres://x"]).is_err()
        );
        assert!(verify(&["--redis-url", "redis://x"]).is_err());

        let v = verify(&[
            "--external",
            "--database-url",
            "postgres://db",
            "--redis-url",
            "redis://r",
        ])
        .unwrap();

        assert_eq!(v.external.unwrap().redis_url, "redis://r");
    }

    #[test]
    fn verify_runs_once_by_default_and_reads_a_human_timeout() {
        let v = verify(&["--runs", "5", "--timeout", "90s"]).unwrap();
        assert_eq!(v.runs, 5);
        assert_eq!(v.timeout, Some(std::time::Duration::from_secs(90)));

        assert_eq!(verify(&[]).unwrap().runs, 1);
        assert!(verify(&["--runs", "0"]).is_err());
        assert!(verify(&["--timeout", "0s"]).is_err());
        assert!(verify(&["--timeout", "1ms"]).is_err());
    }

    #[test]
    fn verify_external_urls_must_have_the_right_scheme() {
        let external = |db: &str, redis: &str| {
            verify(&["--external", "--database-url", db, "--redis-url", redis])
        };

        assert!(external("postgres://u@db/app", "redis://r:6379").is_ok());
        assert!(external("garbage", "redis://r").is_err());
        assert!(external("postgres://db", "http://r").is_err());
    }
}
