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

/// Build arguments by name. Sorted, so builds and output are reproducible.
pub type BuildArgs = BTreeMap<String, String>;

/// The loaded, validated configuration with every path made absolute.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The directory that holds the configuration file.
    pub root: PathBuf,
    /// The build context of every variant.
    pub context: PathBuf,
    /// Build arguments for every build, after the local override.
    pub build_args: BuildArgs,
    /// The custom base image, when the project has one.
    pub base: Option<BaseImage>,
    /// The image variants, in the order they are built and shown.
    pub variants: Vec<Variant>,
    /// Where measurements are saved for later commands.
    pub results: PathBuf,
    /// The local override that was merged in, if there was one.
    pub local_override: Option<PathBuf>,
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBase {
    tag: String,
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

impl Config {
    /// Loads the configuration at `path` and the local override beside it.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
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
        let local = if local_path.is_file() {
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

        let mut build_args = raw.build_args;
        let mut verify = raw.verify;
        if let Some(local) = local {
            build_args.extend(local.build_args.clone());
            if let Some(image) = &local.verify.postgres_image {
                verify.postgres_image.clone_from(image);
            }
            if let Some(image) = &local.verify.redis_image {
                verify.redis_image.clone_from(image);
            }
        }
        let base = raw.base.map(|b| {
            let context = root.join(&b.context);
            let dockerfile = match b.dockerfile {
                Some(file) => root.join(file),
                None => context.join("Dockerfile"),
            };
            BaseImage {
                tag: b.tag,
                context,
                dockerfile,
                build_args: b.build_args,
            }
        });
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
            root: root.to_path_buf(),
            build_args,
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
    /// project's, the variant's own, the custom base's tag, the command
    /// line's. The local override already sits in the project's.
    pub fn variant_build_args(
        &self,
        variant: &Variant,
        cli: &BuildArgs,
    ) -> BuildArgs {
        let mut args = self.build_args.clone();
        args.extend(variant.build_args.clone());
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
        args.extend(cli.clone());
        args
    }
}

fn read_local(path: &Path) -> anyhow::Result<RawLocal> {
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
    for v in &raw.variants {
        if v.name.trim().is_empty() {
            bail!("a variant has an empty name");
        }
        if !seen.insert(v.name.as_str()) {
            bail!("variant '{}' is defined twice", v.name);
        }
        if v.tag.trim().is_empty() {
            bail!("variant '{}' has an empty tag", v.name);
        }
        if v.base_arg.is_some() && raw.base.is_none() {
            bail!(
                "variant '{}' sets base_arg but there is no [base] table",
                v.name
            );
        }
    }
    let baselines = raw.variants.iter().filter(|v| v.baseline).count();
    if baselines > 1 {
        bail!("{baselines} variants are marked baseline; mark one");
    }
    Ok(())
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
    fn the_local_override_replaces_project_build_args() {
        let local = RawLocal {
            build_args: BuildArgs::from([(
                "NODE_IMAGE".into(),
                "imgopt-standin/node:18".into(),
            )]),
            verify: RawLocalVerify::default(),
        };

        let config =
            Config::parse(SAMPLE, Path::new("/repo"), Some(&local)).unwrap();

        assert_eq!(config.build_args["NODE_IMAGE"], "imgopt-standin/node:18");
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
        ];

        for (text, expected) in cases {
            let err = format!("{:#}", parse(text).unwrap_err());
            assert!(err.contains(expected), "{text:?} gave {err}");
        }
    }
}
