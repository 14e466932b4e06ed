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

/// What the local override may change: only build arguments, so a machine's
/// stand-ins can never change what the project means by a variant.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLocal {
    #[serde(default)]
    build_args: BuildArgs,
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
        if let Some(local) = local {
            build_args.extend(local.build_args.clone());
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
        };

        let config =
            Config::parse(SAMPLE, Path::new("/repo"), Some(&local)).unwrap();

        assert_eq!(config.build_args["NODE_IMAGE"], "imgopt-standin/node:18");
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
