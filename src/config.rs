//! The project configuration: which variants exist, how each is built, and
//! in which order.
//!
//! The committed file (`imgopt.toml` at the repository root) names the real
//! public base images. A machine that cannot reach Docker Hub keeps
//! stand-in build arguments in `imgopt.local.toml` beside it, which is not
//! committed and is merged over the committed file, so the same commands
//! work on both kinds of machine. Paths in either file are relative to the
//! directory that holds the committed file.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Deserialize;

/// The committed configuration's file name.
pub const CONFIG_FILE: &str = "imgopt.toml";

/// The local override's file name, looked up beside the configuration.
pub const LOCAL_FILE: &str = "imgopt.local.toml";

/// The custom base's tag when the configuration names none.
pub const DEFAULT_BASE_TAG: &str = "yourname/node-base:1.0";

/// Build arguments by name. Sorted, so builds and output are reproducible.
pub type BuildArgs = BTreeMap<String, String>;

/// The loaded, validated configuration with every path made absolute.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The directory that holds the configuration file.
    pub root: PathBuf,
    /// The build context of every variant.
    pub context: PathBuf,
    /// Build arguments for every build, from the committed file.
    pub build_args: BuildArgs,
    /// Build arguments from the local override; they win over the
    /// committed file's, the variant's own included.
    pub local_build_args: BuildArgs,
    /// The custom base image, when the project has one.
    pub base: Option<BaseImage>,
    /// The image variants, in the order they are built and shown.
    pub variants: Vec<Variant>,
    /// Where measurements are saved for later commands.
    pub results: PathBuf,
    /// The local override that was merged in, if there was one.
    pub local_override: Option<PathBuf>,
    /// The committed baseline file that `compare` checks growth against.
    pub baseline_file: PathBuf,
    /// The limits `compare` enforces; empty when the file sets none.
    pub budgets: Budgets,
    /// How `imgopt verify` runs the images.
    pub verify: VerifySettings,
}

/// How `imgopt verify` runs each image: the service images beside it and
/// its time limits.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifySettings {
    /// The Postgres image, e.g. `postgres:15.13`.
    pub postgres_image: String,
    /// The Redis image, e.g. `redis:7.4.4`.
    pub redis_image: String,
    /// The port the app listens on inside its container.
    pub app_port: u16,
    /// How long a container may take to be ready or healthy.
    pub timeout: std::time::Duration,
    /// The healthcheck interval used for the measurement, in place of the
    /// image's (its test command is kept).
    pub health_interval: std::time::Duration,
}

/// The budgets of `[budgets]`: project-wide limits, and per-variant
/// limits that replace them field by field.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Budgets {
    /// Limits for every variant.
    pub defaults: Limits,
    /// Limits of one variant, by name, over the defaults.
    pub variants: BTreeMap<String, Limits>,
}

/// One set of limits; each is optional and unset means unchecked.
#[derive(Debug, Clone, Copy, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// The smallest reduction in size against the baseline variant, in
    /// percent (the baseline variant itself is exempt).
    pub min_reduction_percent: Option<f64>,
    /// The largest growth against the baseline file, in percent.
    pub max_growth_percent: Option<f64>,
    /// The largest growth against the baseline file, in bytes.
    pub max_growth_bytes: Option<u64>,
    /// The most layers the image may have.
    pub max_layers: Option<usize>,
    /// The largest the image may be, in bytes.
    pub max_size_bytes: Option<u64>,
}

impl Limits {
    /// These limits with every limit `over` sets replacing ours.
    pub fn overlaid(self, over: &Limits) -> Limits {
        Limits {
            min_reduction_percent: over
                .min_reduction_percent
                .or(self.min_reduction_percent),
            max_growth_percent: over
                .max_growth_percent
                .or(self.max_growth_percent),
            max_growth_bytes: over.max_growth_bytes.or(self.max_growth_bytes),
            max_layers: over.max_layers.or(self.max_layers),
            max_size_bytes: over.max_size_bytes.or(self.max_size_bytes),
        }
    }
}

impl Budgets {
    /// The limits that apply to a variant.
    pub fn for_variant(&self, name: &str) -> Limits {
        match self.variants.get(name) {
            Some(own) => self.defaults.overlaid(own),
            None => self.defaults,
        }
    }
}

/// The custom base image that some variants build on.
#[derive(Debug, Clone, PartialEq)]
pub struct BaseImage {
    /// The tag it is built under, e.g. `yourname/node-base:1.0`.
    pub tag: String,
    /// Its own build context.
    pub context: PathBuf,
    /// Its Dockerfile.
    pub dockerfile: PathBuf,
    /// Build arguments of its own.
    pub build_args: BuildArgs,
}

/// One image variant of the service.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// The short name used on the command line, e.g. `multi-stage`.
    pub name: String,
    /// Its Dockerfile.
    pub dockerfile: PathBuf,
    /// The tag the image is built under.
    pub tag: String,
    /// The stage to build, when not the last one.
    pub target: Option<String>,
    /// Build arguments of its own.
    pub build_args: BuildArgs,
    /// Whether it is the baseline that the others are compared with.
    pub baseline: bool,
    /// The build argument that receives the custom base image's tag. A
    /// variant that sets it needs the base built first.
    pub base_arg: Option<String>,
}

/// A variant name that the configuration does not know.
#[derive(Debug, thiserror::Error)]
pub struct UnknownVariant {
    /// The name that was asked for.
    pub name: String,
    /// The names the configuration knows, in its order.
    pub known: Vec<String>,
}

impl fmt::Display for UnknownVariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown variant '{}' (known variants: {})",
            self.name,
            self.known.join(", ")
        )
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default = "default_context")]
    context: PathBuf,
    #[serde(default = "default_results")]
    results: PathBuf,
    #[serde(default)]
    build_args: BuildArgs,
    base: Option<RawBase>,
    #[serde(default, rename = "variant")]
    variants: Vec<RawVariant>,
    #[serde(default = "default_baseline_file")]
    baseline_file: PathBuf,
    #[serde(default)]
    budgets: RawBudgets,
    #[serde(default)]
    verify: RawVerify,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawVerify {
    postgres_image: String,
    redis_image: String,
    app_port: u16,
    #[serde(with = "humantime_serde_str")]
    timeout: std::time::Duration,
    #[serde(with = "humantime_serde_str")]
    health_interval: std::time::Duration,
}

impl Default for RawVerify {
    fn default() -> RawVerify {
        // The official images, pinned, as the variants' bases are.
        RawVerify {
            postgres_image: "postgres:15.13".into(),
            redis_image: "redis:7.4.4".into(),
            app_port: 3000,
            timeout: std::time::Duration::from_secs(60),
            health_interval: std::time::Duration::from_millis(250),
        }
    }
}

/// Durations written the way people write them: `60s`, `250ms`, `1m`.
mod humantime_serde_str {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<std::time::Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

/// The service images a machine's stand-ins replace in the local override.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLocalVerify {
    postgres_image: Option<String>,
    redis_image: Option<String>,
}

/// `[budgets]`: the same fields as [`Limits`], plus per-variant tables.
/// Spelled out rather than flattened, because serde's `flatten` and
/// `deny_unknown_fields` do not work together.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBudgets {
    min_reduction_percent: Option<f64>,
    max_growth_percent: Option<f64>,
    max_growth_bytes: Option<u64>,
    max_layers: Option<usize>,
    max_size_bytes: Option<u64>,
    #[serde(default)]
    variant: BTreeMap<String, Limits>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBase {
    /// The whole tag; or the three parts below, each with a default.
    tag: Option<String>,
    namespace: Option<String>,
    name: Option<String>,
    version: Option<String>,
    context: PathBuf,
    dockerfile: Option<PathBuf>,
    #[serde(default)]
    build_args: BuildArgs,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVariant {
    name: String,
    dockerfile: PathBuf,
    tag: String,
    target: Option<String>,
    #[serde(default)]
    build_args: BuildArgs,
    #[serde(default)]
    baseline: bool,
    base_arg: Option<String>,
}

/// What the local override may change: only build arguments and the
/// service images `verify` starts, so a machine's stand-ins can never
/// change what the project means by a variant.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLocal {
    #[serde(default)]
    build_args: BuildArgs,
    #[serde(default)]
    verify: RawLocalVerify,
}

fn default_context() -> PathBuf {
    PathBuf::from(".")
}

fn default_results() -> PathBuf {
    PathBuf::from(".imgopt/results.json")
}

fn default_baseline_file() -> PathBuf {
    PathBuf::from(BASELINE_FILE)
}

/// The committed baseline file's default name, at the project root.
pub const BASELINE_FILE: &str = "imgopt-baseline.json";

impl Config {
    /// Loads the configuration at `path` and the local override beside it.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        // A FIFO or a device would block the read, or never end.
        if path.exists() && !path.is_file() {
            bail!(
                "the configuration '{}' is not a regular file",
                path.display()
            );
        }
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "failed to read the configuration '{}' (run imgopt in the \
                 project's root or pass --config)",
                path.display()
            )
        })?;
        let root = path
            .parent()
            .map(Path::to_path_buf)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));
        let root = std::path::absolute(&root).with_context(|| {
            format!("failed to resolve '{}'", root.display())
        })?;
        let local_path = root.join(LOCAL_FILE);
        let local = if local_path.exists() {
            Some(read_local(&local_path)?)
        } else {
            None
        };

        let mut config = Config::parse(&text, &root, local.as_ref())
            .with_context(|| {
                format!("invalid configuration '{}'", path.display())
            })?;
        config.local_override = local.map(|_| local_path);
        Ok(config)
    }

    fn parse(
        text: &str,
        root: &Path,
        local: Option<&RawLocal>,
    ) -> anyhow::Result<Config> {
        let raw: RawConfig = toml::from_str(text)?;
        validate(&raw)?;

        let local_build_args =
            local.map(|l| l.build_args.clone()).unwrap_or_default();
        let mut verify = raw.verify;
        if let Some(local) = local {
            if let Some(image) = &local.verify.postgres_image {
                verify.postgres_image.clone_from(image);
            }
            if let Some(image) = &local.verify.redis_image {
                verify.redis_image.clone_from(image);
            }
        }
        let base = raw.base.map(|b| {
            let tag = base_tag(&b);
            let context = root.join(&b.context);
            let dockerfile = match b.dockerfile {
                Some(file) => root.join(file),
                None => context.join("Dockerfile"),
            };
            BaseImage { tag, context, dockerfile, build_args: b.build_args }
        });
        let budgets = Budgets {
            defaults: Limits {
                min_reduction_percent: raw.budgets.min_reduction_percent,
                max_growth_percent: raw.budgets.max_growth_percent,
                max_growth_bytes: raw.budgets.max_growth_bytes,
                max_layers: raw.budgets.max_layers,
                max_size_bytes: raw.budgets.max_size_bytes,
            },
            variants: raw.budgets.variant,
        };
        let any_baseline = raw.variants.iter().any(|v| v.baseline);
        let variants = raw
            .variants
            .into_iter()
            .enumerate()
            .map(|(i, v)| Variant {
                name: v.name,
                dockerfile: root.join(v.dockerfile),
                tag: v.tag,
                target: v.target,
                build_args: v.build_args,
                // Without an explicit baseline, the first variant is it.
                baseline: v.baseline || (!any_baseline && i == 0),
                base_arg: v.base_arg,
            })
            .collect();

        Ok(Config {
            context: root.join(raw.context),
            results: root.join(raw.results),
            baseline_file: root.join(raw.baseline_file),
            budgets,
            root: root.to_path_buf(),
            build_args: raw.build_args,
            local_build_args,
            base,
            variants,
            local_override: None,
            verify: VerifySettings {
                postgres_image: verify.postgres_image,
                redis_image: verify.redis_image,
                app_port: verify.app_port,
                timeout: verify.timeout,
                health_interval: verify.health_interval,
            },
        })
    }

    /// Checks that every context and Dockerfile exists, so a mistake is
    /// reported before anything is built. Commands that build call it;
    /// `report` and `--no-build` need no Dockerfile.
    pub fn check_paths(&self) -> anyhow::Result<()> {
        if !self.context.is_dir() {
            bail!("context '{}' is not a directory", self.context.display());
        }
        let dockerfiles = self
            .variants
            .iter()
            .map(|v| (format!("variant '{}'", v.name), &v.dockerfile));
        let base =
            self.base.iter().map(|b| ("[base]".to_string(), &b.dockerfile));
        for (owner, dockerfile) in dockerfiles.chain(base) {
            if !dockerfile.is_file() {
                bail!(
                    "{owner}: dockerfile '{}' is not a file",
                    dockerfile.display()
                );
            }
        }
        if let Some(base) = &self.base {
            if !base.context.is_dir() {
                bail!(
                    "[base]: context '{}' is not a directory",
                    base.context.display()
                );
            }
        }
        Ok(())
    }

    /// The variants named on the command line, in configuration order; all
    /// of them when no name is given.
    pub fn select(&self, names: &[String]) -> anyhow::Result<Vec<&Variant>> {
        if let Some(name) = names.iter().find(|n| self.variant(n).is_none()) {
            return Err(UnknownVariant {
                name: name.clone(),
                known: self.variants.iter().map(|v| v.name.clone()).collect(),
            }
            .into());
        }
        Ok(self
            .variants
            .iter()
            .filter(|v| names.is_empty() || names.contains(&v.name))
            .collect())
    }

    /// The variant with this name.
    pub fn variant(&self, name: &str) -> Option<&Variant> {
        self.variants.iter().find(|v| v.name == name)
    }

    /// The baseline variant that the others are compared with.
    pub fn baseline(&self) -> Option<&Variant> {
        self.variants.iter().find(|v| v.baseline)
    }

    /// The build arguments for a variant, lowest precedence first: the
    /// project's, the variant's own, the local override's, the custom
    /// base's tag, the command line's. The local override beats the
    /// variant so that a machine's stand-ins apply everywhere.
    pub fn variant_build_args(
        &self,
        variant: &Variant,
        cli: &BuildArgs,
    ) -> BuildArgs {
        let mut args = self.build_args.clone();
        args.extend(variant.build_args.clone());
        args.extend(self.local_build_args.clone());
        if let (Some(arg), Some(base)) = (&variant.base_arg, &self.base) {
            args.insert(arg.clone(), base.tag.clone());
        }
        args.extend(cli.clone());
        args
    }

    /// The build arguments for the custom base image.
    pub fn base_build_args(
        &self,
        base: &BaseImage,
        cli: &BuildArgs,
    ) -> BuildArgs {
        let mut args = self.build_args.clone();
        args.extend(base.build_args.clone());
        args.extend(self.local_build_args.clone());
        args.extend(cli.clone());
        args
    }
}

/// The base's tag: `tag` when given, else `namespace/name:version` with
/// each part defaulting to [`DEFAULT_BASE_TAG`]'s.
fn base_tag(base: &RawBase) -> String {
    if let Some(tag) = &base.tag {
        return tag.clone();
    }
    let part = |value: &Option<String>, default: &str| {
        value.clone().unwrap_or_else(|| default.to_string())
    };
    format!(
        "{}/{}:{}",
        part(&base.namespace, "yourname"),
        part(&base.name, "node-base"),
        part(&base.version, "1.0")
    )
}

fn read_local(path: &Path) -> anyhow::Result<RawLocal> {
    if !path.is_file() {
        bail!("local override '{}' is not a regular file", path.display());
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read '{}'", path.display()))?;
    toml::from_str(&text).with_context(|| {
        format!("invalid local override '{}'", path.display())
    })
}

fn validate(raw: &RawConfig) -> anyhow::Result<()> {
    if raw.variants.is_empty() {
        bail!("no variants: add at least one [[variant]] table");
    }
    if raw.verify.health_interval < std::time::Duration::from_millis(1) {
        bail!("[verify] health_interval must be at least 1ms");
    }
    let mut seen = std::collections::BTreeSet::new();
    let base = raw.base.as_ref().map(base_tag);
    let mut tags = std::collections::BTreeMap::new();
    if let Some(tag) = &base {
        check_tag(tag).context("[base]")?;
        tags.insert(tag.as_str(), "[base]".to_string());
    }
    for v in &raw.variants {
        check_name(&v.name)?;
        if !seen.insert(v.name.as_str()) {
            bail!("variant '{}' is defined twice", v.name);
        }
        check_tag(&v.tag).with_context(|| format!("variant '{}'", v.name))?;
        let owner = format!("variant '{}'", v.name);
        if let Some(other) = tags.insert(v.tag.as_str(), owner) {
            bail!(
                "variant '{}' and {other} share the tag '{}'; each image \
                 needs its own",
                v.name,
                v.tag
            );
        }
        if v.base_arg.is_some() && raw.base.is_none() {
            bail!(
                "variant '{}' sets base_arg but there is no [base] table",
                v.name
            );
        }
    }
    if let Some(base) = &raw.base {
        let parts = [&base.namespace, &base.name, &base.version];
        if base.tag.is_some() && parts.iter().any(|p| p.is_some()) {
            bail!("[base] sets both tag and namespace/name/version; keep one");
        }
        for part in parts.into_iter().flatten() {
            if part.trim().is_empty() || part.contains([':', ' ']) {
                bail!("[base] has an invalid tag part '{part}'");
            }
        }
    }
    let baselines = raw.variants.iter().filter(|v| v.baseline).count();
    if baselines > 1 {
        bail!("{baselines} variants are marked baseline; mark one");
    }
    validate_budgets(raw)
}

/// Variant names appear on command lines, in tables and as keys of the
/// results file: no spaces or control characters (they would break the
/// terminal's lines), no ':' (kept for `image:REF` keys), and no leading
/// '-' (it would read as a flag).
fn check_name(name: &str) -> anyhow::Result<()> {
    let bad = |c: char| c.is_whitespace() || c.is_control() || c == ':';
    if name.is_empty() || name.starts_with('-') || name.chars().any(bad) {
        bail!(
            "variant name '{}' is not valid: no spaces, control \
             characters or ':', and no leading '-'",
            name.escape_debug()
        );
    }
    Ok(())
}

/// Checks an image reference the way the engine will, so a bad tag fails
/// at load time and not after other images were built: an optional
/// registry host, lowercase path components, an optional tag.
pub fn check_tag(reference: &str) -> anyhow::Result<()> {
    let invalid = |why: &str| {
        anyhow::anyhow!(
            "tag '{}' is not a valid image reference: {why}",
            reference.escape_debug()
        )
    };
    let (name, tag) = match reference.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name, Some(tag)),
        _ => (reference, None),
    };
    if let Some(tag) = tag {
        let fine = |c: char| c.is_ascii_alphanumeric() || "._-".contains(c);
        if tag.is_empty() || tag.len() > 128 || !tag.chars().all(fine) {
            return Err(invalid("the tag after ':' takes letters, digits, '.', '_' and '-' (128 at most)"));
        }
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    // A first part with a dot or a port, or `localhost`, is a registry.
    if parts.len() > 1
        && (parts[0].contains(['.', ':']) || parts[0] == "localhost")
    {
        parts.remove(0);
    }
    let fine = |c: char| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c)
    };
    if parts.iter().any(|p| p.is_empty() || !p.chars().all(fine)) {
        return Err(invalid(
            "repository names take lowercase letters, digits, '.', '_', \
             '-' and '/'",
        ));
    }
    Ok(())
}

fn validate_budgets(raw: &RawConfig) -> anyhow::Result<()> {
    let b = &raw.budgets;
    let mut sets = vec![(
        "[budgets]".to_string(),
        b.min_reduction_percent,
        b.max_growth_percent,
    )];
    for (name, limits) in &b.variant {
        if !raw.variants.iter().any(|v| &v.name == name) {
            bail!("[budgets.variant.{name}] names no variant");
        }
        sets.push((
            format!("[budgets.variant.{name}]"),
            limits.min_reduction_percent,
            limits.max_growth_percent,
        ));
    }
    for (table, reduction, growth) in sets {
        if let Some(p) = reduction.filter(|p| !(0.0..=100.0).contains(p)) {
            bail!(
                "{table} min_reduction_percent must be a finite number, \
                 0 to 100 (it is {})",
                short_number(p)
            );
        }
        if let Some(p) = growth.filter(|p| !(*p >= 0.0 && p.is_finite())) {
            bail!(
                "{table} max_growth_percent must be a finite number, \
                 0 or more (it is {})",
                short_number(p)
            );
        }
    }
    Ok(())
}

/// A number from the configuration, for an error: as written for
/// ordinary sizes, `1e300` rather than 301 digits for huge ones.
fn short_number(value: f64) -> String {
    let magnitude = value.abs();
    if value.is_finite()
        && magnitude != 0.0
        && !(1e-6..1e15).contains(&magnitude)
    {
        format!("{value:e}")
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
        [build_args]
        NODE_IMAGE = "node:18.20.8"

        [base]
        tag = "yourname/node-base:1.0"
        context = "custom-base-image"

        [[variant]]
        name = "week2"
        dockerfile = "dockerfiles/Dockerfile.week2"
        tag = "imgopt-app:week2"

        [[variant]]
        name = "custom-base"
        dockerfile = "dockerfiles/Dockerfile.custom-base"
        tag = "imgopt-app:custom-base"
        base_arg = "BASE_IMAGE"
        build_args = { EXTRA = "1" }
    "#;

    fn parse(text: &str) -> anyhow::Result<Config> {
        Config::parse(text, Path::new("/repo"), None)
    }

    #[test]
    fn paths_are_resolved_against_the_config_directory() {
        let config = parse(SAMPLE).unwrap();

        assert_eq!(config.context, Path::new("/repo/."));
        assert_eq!(
            config.variants[0].dockerfile,
            Path::new("/repo/dockerfiles/Dockerfile.week2")
        );
        let base = config.base.unwrap();
        assert_eq!(
            base.dockerfile,
            Path::new("/repo/custom-base-image/Dockerfile")
        );
        assert_eq!(config.results, Path::new("/repo/.imgopt/results.json"));
    }

    #[test]
    fn the_first_variant_is_the_baseline_unless_one_is_marked() {
        let config = parse(SAMPLE).unwrap();
        assert_eq!(config.baseline().unwrap().name, "week2");

        let marked = SAMPLE.replacen(
            "base_arg = \"BASE_IMAGE\"",
            "base_arg = \"BASE_IMAGE\"\nbaseline = true",
            1,
        );
        let config = parse(&marked).unwrap();
        assert_eq!(config.baseline().unwrap().name, "custom-base");
        assert!(!config.variants[0].baseline);
    }

    #[test]
    fn build_args_layer_project_variant_base_then_command_line() {
        let config = parse(SAMPLE).unwrap();
        let variant = config.variant("custom-base").unwrap();
        let cli = BuildArgs::from([("EXTRA".into(), "cli".into())]);

        let args = config.variant_build_args(variant, &cli);

        assert_eq!(args["NODE_IMAGE"], "node:18.20.8");
        assert_eq!(args["BASE_IMAGE"], "yourname/node-base:1.0");
        assert_eq!(args["EXTRA"], "cli");
    }

    #[test]
    fn the_local_override_beats_project_and_variant_build_args() {
        let local = RawLocal {
            build_args: BuildArgs::from([
                ("NODE_IMAGE".into(), "imgopt-standin/node:18".into()),
                ("EXTRA".into(), "local".into()),
            ]),
            verify: RawLocalVerify::default(),
        };
        let config =
            Config::parse(SAMPLE, Path::new("/repo"), Some(&local)).unwrap();
        let variant = config.variant("custom-base").unwrap();
        let base = config.base.as_ref().unwrap();

        let args = config.variant_build_args(variant, &BuildArgs::new());
        let base_args = config.base_build_args(base, &BuildArgs::new());

        assert_eq!(args["NODE_IMAGE"], "imgopt-standin/node:18");
        assert_eq!(args["EXTRA"], "local");
        assert_eq!(base_args["NODE_IMAGE"], "imgopt-standin/node:18");
    }

    #[test]
    fn verify_defaults_to_the_pinned_official_images_unless_overridden() {
        let config = parse(SAMPLE).unwrap();
        assert_eq!(config.verify.postgres_image, "postgres:15.13");
        assert_eq!(config.verify.timeout.as_secs(), 60);

        let local: RawLocal = toml::from_str(
            "[verify]\npostgres_image = \"imgopt-standin/postgres:15\"\n",
        )
        .unwrap();
        let text = format!("{SAMPLE}\n[verify]\ntimeout = \"90s\"\n");
        let config =
            Config::parse(&text, Path::new("/repo"), Some(&local)).unwrap();

        assert_eq!(config.verify.postgres_image, "imgopt-standin/postgres:15");
        assert_eq!(config.verify.redis_image, "redis:7.4.4");
        assert_eq!(config.verify.timeout.as_secs(), 90);
    }

    #[test]
    fn the_local_override_may_not_change_verify_timings() {
        let result: Result<RawLocal, _> =
            toml::from_str("[verify]\ntimeout = \"1s\"\n");

        assert!(result.is_err());
    }

    #[test]
    fn an_unknown_variant_lists_the_known_ones() {
        let config = parse(SAMPLE).unwrap();

        let err = config.select(&["slim".into()]).unwrap_err();

        assert_eq!(
            err.to_string(),
            "unknown variant 'slim' (known variants: week2, custom-base)"
        );
    }

    #[test]
    fn selection_keeps_config_order_whatever_the_argument_order() {
        let config = parse(SAMPLE).unwrap();

        let names: Vec<_> = config
            .select(&["custom-base".into(), "week2".into()])
            .unwrap()
            .iter()
            .map(|v| v.name.as_str())
            .collect();

        assert_eq!(names, ["week2", "custom-base"]);
    }

    #[test]
    fn variant_budgets_replace_the_project_ones_field_by_field() {
        let text = format!(
            "{SAMPLE}\n[budgets]\nmin_reduction_percent = 60\n\
             max_layers = 20\n\n[budgets.variant.custom-base]\n\
             max_layers = 8\nmax_size_bytes = 120_000_000\n"
        );

        let config = parse(&text).unwrap();
        let own = config.budgets.for_variant("custom-base");
        let other = config.budgets.for_variant("week2");

        assert_eq!(own.max_layers, Some(8));
        assert_eq!(own.min_reduction_percent, Some(60.0));
        assert_eq!(own.max_size_bytes, Some(120_000_000));
        assert_eq!(other.max_layers, Some(20));
        assert_eq!(other.max_size_bytes, None);
    }

    #[test]
    fn no_budgets_table_means_nothing_is_checked() {
        let config = parse(SAMPLE).unwrap();

        assert_eq!(config.budgets.for_variant("week2"), Limits::default());
        assert_eq!(
            config.baseline_file,
            Path::new("/repo/imgopt-baseline.json")
        );
    }

    #[test]
    fn mistakes_in_the_budgets_are_reported() {
        let cases = [
            ("[budgets]\nmax_size = 1\n", "unknown field"),
            ("[budgets.variant.slim]\nmax_layers = 1\n", "names no variant"),
            ("[budgets.variant.week2]\nmax_layer = 1\n", "unknown field"),
            ("[budgets]\nmin_reduction_percent = 160\n", "0 to 100"),
            ("[budgets]\nmax_growth_percent = -1\n", "0 or more"),
            (
                "[budgets]\nmax_growth_percent = inf\n",
                "must be a finite number, 0 or more (it is inf)",
            ),
            (
                "[budgets]\nmax_growth_percent = -1e300\n",
                "0 or more (it is -1e300)",
            ),
            (
                "[budgets]\nmin_reduction_percent = nan\n",
                "must be a finite number, 0 to 100 (it is NaN)",
            ),
            (
                "[budgets]\nmin_reduction_percent = -inf\n",
                "finite number, 0 to 100 (it is -inf)",
            ),
            (
                "[budgets]\nmin_reduction_percent = 1e300\n",
                "0 to 100 (it is 1e300)",
            ),
            ("[budgets]\nmax_layers = -1\n", "invalid value"),
        ];

        for (extra, expected) in cases {
            let text = format!("{SAMPLE}\n{extra}");
            let err = format!("{:#}", parse(&text).unwrap_err());
            assert!(err.contains(expected), "{extra:?} gave {err}");
        }
    }

    #[test]
    fn image_references_are_checked_as_the_engine_would() {
        for good in [
            "app:1",
            "yourname/node-base:1.0",
            "127.0.0.1:5000/team/app:v1.2_3",
            "registry.example.com/App-not-here-but-host:x",
            "localhost/app",
            "app",
        ] {
            let checked = check_tag(good);
            if good.contains("App-not") {
                assert!(checked.is_err(), "{good}");
            } else {
                assert!(checked.is_ok(), "{good}: {checked:?}");
            }
        }
        for bad in ["App:1", "a b:1", "a:1:2", "a:", "a//b", "a:t@g"] {
            assert!(check_tag(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_base_tag_is_made_of_namespace_name_and_version() {
        let parts = SAMPLE.replace(
            "tag = \"yourname/node-base:1.0\"\n",
            "namespace = \"acme\"\nversion = \"2.1\"\n",
        );
        let bare = SAMPLE.replace("tag = \"yourname/node-base:1.0\"\n", "");

        let tag = |text: &str| parse(text).unwrap().base.unwrap().tag;

        assert_eq!(tag(&parts), "acme/node-base:2.1");
        assert_eq!(tag(&bare), DEFAULT_BASE_TAG);
        assert_eq!(tag(SAMPLE), "yourname/node-base:1.0");
    }

    #[test]
    fn mistakes_in_the_file_are_reported() {
        let cases = [
            ("", "no variants"),
            ("[[variant]]\nname = \"a\"\n", "missing field"),
            ("colour = 1\n", "unknown field"),
            (
                "[[variant]]\nname='a'\ndockerfile='D'\ntag='t'\n\
                 [[variant]]\nname='a'\ndockerfile='D'\ntag='u'\n",
                "defined twice",
            ),
            (
                "[[variant]]\nname='a'\ndockerfile='D'\ntag='t'\n\
                 base_arg='B'\n",
                "no [base] table",
            ),
            (
                "[[variant]]\nname='a'\ndockerfile='D'\ntag='t'\n\
                 [[variant]]\nname='b'\ndockerfile='D'\ntag='t'\n",
                "share the tag 't'",
            ),
            (
                "[[variant]]\nname='a b'\ndockerfile='D'\ntag='t'\n",
                "variant name 'a b' is not valid",
            ),
            (
                "[[variant]]\nname='a'\ndockerfile='D'\ntag='Up:1'\n",
                "not a valid image reference",
            ),
            (
                "[base]\ntag='a/b:1'\nversion='2'\ncontext='c'\n\
                 [[variant]]\nname='a'\ndockerfile='D'\ntag='t'\n",
                "keep one",
            ),
        ];

        for (text, expected) in cases {
            let err = format!("{:#}", parse(text).unwrap_err());
            assert!(err.contains(expected), "{text:?} gave {err}");
        }
    }
}
