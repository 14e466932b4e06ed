//! The custom base image's plain logic: where a push goes, how a push is
//! going, what the base holds and how much of each variant it accounts for.
//!
//! Everything here is synchronous code over plain data (strings, layer
//! digests), so it is tested without an engine; `app::base` runs the
//! commands and `engine::registry` talks to the engine.

use anyhow::{bail, Context};
use oci_spec::distribution::Reference;
use serde::Serialize;

use crate::measure::Measurement;
use crate::render::{finish_table, human_size, new_table};

/// Where the base image's packages manifest lives inside the image. The
/// builder stage of `custom-base-image/Dockerfile` writes it.
pub const PACKAGES_FILE: &str = "/usr/share/node-base/packages.txt";

/// Docker Hub's registry name in a parsed reference.
const DOCKER_HUB: &str = "docker.io";

/// What `imgopt base push` will do: tag `source` as `target` (when they
/// differ), then push `target` to `registry`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PushPlan {
    /// The local image, e.g. `yourname/node-base:1.0`.
    pub source: String,
    /// The reference pushed, e.g. `127.0.0.1:5000/yourname/node-base:1.0`.
    pub target: String,
    /// The repository part of `target` as the engine names it (registry
    /// included, tag excluded).
    pub repository: String,
    /// The tag part of `target`.
    pub tag: String,
    /// The registry host (and port), `docker.io` for Docker Hub.
    pub registry: String,
}

impl PushPlan {
    /// Plans a push of the local image `source`, to `registry` when one
    /// is given (the image is tagged for it), else to the registry its own
    /// name points at (Docker Hub for `yourname/node-base:1.0`).
    pub fn new(source: &str, registry: Option<&str>) -> anyhow::Result<Self> {
        let parsed: Reference = source.parse().with_context(|| {
            format!("'{source}' is not a valid image reference")
        })?;
        if parsed.digest().is_some() {
            bail!("cannot push '{source}': name a tag, not a digest");
        }
        let tag = parsed.tag().unwrap_or("latest").to_string();
        let path = parsed.repository().to_string();
        let registry = match registry {
            Some(host) => registry_host(host)?,
            None => parsed.registry().to_string(),
        };
        let repository = if registry == DOCKER_HUB {
            // The engine's own spelling for Hub images has no host.
            path.clone()
        } else {
            format!("{registry}/{path}")
        };
        let target = format!("{repository}:{tag}");
        Ok(PushPlan {
            source: source.to_string(),
            target,
            repository,
            tag,
            registry,
        })
    }

    /// Whether the image needs a new tag before the push.
    pub fn needs_tag(&self) -> bool {
        normalize(&self.source) != normalize(&self.target)
    }

    /// Whether the push goes to Docker Hub.
    pub fn is_docker_hub(&self) -> bool {
        self.registry == DOCKER_HUB
    }

    /// What to do about the target name, given the image it names now
    /// (`existing`) and the source image's id. A target that names another
    /// image is the user's: it is refused, never overwritten, so a failed
    /// push cannot cost the user a name they had.
    pub fn tag_action(
        &self,
        existing: Option<&str>,
        source_id: &str,
    ) -> anyhow::Result<TagAction> {
        if !self.needs_tag() {
            return Ok(TagAction::Keep);
        }
        match existing {
            None => Ok(TagAction::Create),
            Some(id) if id == source_id => Ok(TagAction::Keep),
            Some(_) => bail!(
                "'{}' already exists and points at another image; remove \
                 it or choose another --registry/--tag",
                self.target
            ),
        }
    }
}

/// Whether a push makes the target name first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagAction {
    /// The target name is new: make it, and remove it again unless the
    /// push succeeds.
    Create,
    /// The target is the source, or already names the same image: use
    /// it, and never remove it.
    Keep,
}

/// A reference the way the engine spells it, so `docker.io/a/b:1` and
/// `a/b:1` compare equal.
fn normalize(reference: &str) -> String {
    reference.strip_prefix("docker.io/").unwrap_or(reference).to_string()
}

/// Checks a `--registry` value: a host with an optional port, as `docker
/// tag` takes it, not a URL.
fn registry_host(host: &str) -> anyhow::Result<String> {
    let host = host.trim().trim_end_matches('/');
    if host.contains("://") {
        bail!(
            "--registry takes a host[:port] like 127.0.0.1:5000, not a URL \
             ('{host}')"
        );
    }
    let probe = format!("{host}/probe:1");
    let parsed: Result<Reference, _> = probe.parse();
    match parsed {
        Ok(r) if r.registry() == host && !host.is_empty() => {
            Ok(host.to_string())
        }
        _ => bail!(
            "--registry '{host}' is not a registry host (expected \
             host[:port], e.g. registry.example.com or 127.0.0.1:5000)"
        ),
    }
}

/// The digest in a push's last status line, `1.0: digest: sha256:...
/// size: 528`.
pub fn digest_in_status(status: &str) -> Option<String> {
    let rest = status.split_once("digest: ")?.1;
    let digest = rest.split_whitespace().next()?;
    digest.starts_with("sha256:").then(|| digest.to_string())
}

/// A push's progress, from the engine's status messages.
///
/// Known limit: bollard 0.21's `PushImageInfo` drops the layer id that the
/// engine sends with each message, so layers are counted by their status
/// changes ("Preparing", then "Pushed" or "Layer already exists"), and the
/// bytes shown are those of the layer that reported last.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushProgress {
    /// Layers the engine is pushing.
    pub layers: usize,
    /// Layers uploaded by this push.
    pub pushed: usize,
    /// Layers the registry already had.
    pub existed: usize,
    /// Bytes of the last layer that reported, and its size.
    pub current: Option<(u64, u64)>,
}

/// What a status message changed, for the reporter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushStep {
    /// A layer finished (pushed or already there): a line worth keeping.
    LayerDone(String),
    /// Bytes moved or a layer started: worth a live-line update.
    Moved,
    /// Nothing to show.
    Quiet,
}

impl PushProgress {
    /// Takes one status message (`Pushing`, `Pushed`, ...) and its
    /// progress detail.
    pub fn apply(
        &mut self,
        status: &str,
        detail: Option<(i64, i64)>,
    ) -> PushStep {
        match status {
            "Preparing" => {
                self.layers += 1;
                PushStep::Moved
            }
            "Pushing" => {
                if let Some((current, total)) = detail {
                    self.current =
                        Some((current.max(0) as u64, total.max(0) as u64));
                }
                PushStep::Moved
            }
            "Pushed" => {
                self.pushed += 1;
                PushStep::LayerDone(self.layer_line("pushed"))
            }
            "Layer already exists" => {
                self.existed += 1;
                PushStep::LayerDone(self.layer_line("already in registry"))
            }
            _ => PushStep::Quiet,
        }
    }

    fn layer_line(&self, what: &str) -> String {
        format!(
            "layer {}/{} {what}",
            self.pushed + self.existed,
            self.layers.max(self.pushed + self.existed)
        )
    }

    /// The live status: layers done and the bytes of the last one.
    pub fn summary(&self) -> String {
        let done = self.pushed + self.existed;
        let mut text = format!("{done}/{} layers", self.layers.max(done));
        if let Some((current, total)) = self.current {
            text.push_str(&format!(
                ", {} of {}",
                human_size(current),
                human_size(total)
            ));
        }
        text
    }
}

/// How much of a variant's image the base accounts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BaseShare {
    /// The variant's layers start with all of the base's: it is built on
    /// this build of the base, which accounts for the base's whole size.
    Whole,
    /// The variant shares only the first `n` layers: it was built on an
    /// older build of the base; rebuild it.
    Stale(usize),
    /// The variant shares no layer with the base.
    None,
}

/// Compares the base's layers with a variant's: a base layer counts only
/// where it is a prefix of the variant's, since a layer's digest depends
/// on its content, not on what lies below it.
pub fn base_share(base: &[String], variant: &[String]) -> BaseShare {
    let shared = base.iter().zip(variant).take_while(|(b, v)| b == v).count();
    match shared {
        0 => BaseShare::None,
        n if n == base.len() => BaseShare::Whole,
        n => BaseShare::Stale(n),
    }
}

/// One OS package that files of the base come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Package {
    /// The package name, e.g. `libc6`.
    pub name: String,
    /// Its version, e.g. `2.36-9+deb12u10`.
    pub version: String,
}

/// Reads the packages manifest: one `name version` per line; blank lines
/// and `#` comments skipped.
pub fn parse_packages(text: &str) -> Vec<Package> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (name, version) =
                line.split_once(char::is_whitespace).unwrap_or((line, ""));
            Package {
                name: name.to_string(),
                version: version.trim().to_string(),
            }
        })
        .collect()
}

/// The version of the `base build --format json` document.
pub const JSON_FORMAT_VERSION: u32 = 1;

/// What `imgopt base build` found: the base measured, its packages, and
/// its share of each variant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BaseReport {
    /// Always [`JSON_FORMAT_VERSION`].
    pub format_version: u32,
    /// The base image, measured like a variant.
    pub base: Measurement,
    /// The OS packages its files come from; `None` when the image carries
    /// no manifest at [`PACKAGES_FILE`].
    pub packages: Option<Vec<Package>>,
    /// One entry per configured variant, in configuration order.
    pub variants: Vec<VariantShare>,
}

/// How much of one variant's image the base accounts for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VariantShare {
    /// The variant's name.
    pub name: String,
    /// Its tag.
    pub image: String,
    /// Its size in bytes; `None` when it is not built.
    pub size_bytes: Option<u64>,
    /// How it relates to the base; `None` when it is not built.
    pub share: Option<BaseShare>,
    /// The bytes of the variant that are the base's (0 unless `Whole`).
    pub base_bytes: u64,
    /// `base_bytes` as a percentage of the variant's size.
    pub base_percent: Option<f64>,
}

impl VariantShare {
    /// Compares a built variant's layers and size with the base's.
    pub fn new(
        name: &str,
        image: &str,
        variant: Option<(&[String], u64)>,
        base: (&[String], u64),
    ) -> VariantShare {
        let Some((layers, size)) = variant else {
            return VariantShare {
                name: name.into(),
                image: image.into(),
                size_bytes: None,
                share: None,
                base_bytes: 0,
                base_percent: None,
            };
        };
        let share = base_share(base.0, layers);
        let base_bytes = if share == BaseShare::Whole { base.1 } else { 0 };
        VariantShare {
            name: name.into(),
            image: image.into(),
            size_bytes: Some(size),
            share: Some(share),
            base_bytes,
            base_percent: (size > 0)
                .then(|| base_bytes as f64 / size as f64 * 100.0),
        }
    }
}

/// The report as tables for people.
pub fn report_table(report: &BaseReport) -> String {
    let m = &report.base;
    let mut out = format!(
        "Base image {} ({})\n",
        m.image,
        m.image_id.trim_start_matches("sha256:").get(..12).unwrap_or("?")
    );
    let mut table =
        new_table(&["Size", "Bytes", "Layers", "User", "Packages"]);
    table.add_row([
        human_size(m.size_bytes),
        m.size_bytes.to_string(),
        m.layers.to_string(),
        m.user.clone(),
        report
            .packages
            .as_ref()
            .map_or("unknown".into(), |p| p.len().to_string()),
    ]);
    out.push_str(&finish_table(table, &[0, 1, 2, 4], &[]));

    match &report.packages {
        Some(packages) => {
            let list: Vec<String> = packages
                .iter()
                .map(|p| format!("{} {}", p.name, p.version).trim().into())
                .collect();
            out.push_str(&format!(
                "Packages its files come from ({PACKAGES_FILE}): {}\n",
                list.join(", ")
            ));
        }
        None => out.push_str(&format!(
            "Packages: unknown (the image has no {PACKAGES_FILE})\n"
        )),
    }

    let mut table =
        new_table(&["Variant", "Image", "Size", "Base part", "Share"]);
    for v in &report.variants {
        let (size, part, share) = match (v.size_bytes, v.share) {
            (None, _) | (_, None) => {
                ("-".into(), "not built".into(), "-".into())
            }
            (Some(size), Some(share)) => (
                human_size(size),
                match share {
                    BaseShare::Whole => human_size(v.base_bytes),
                    BaseShare::Stale(n) => {
                        format!("older base ({n} layers shared): rebuild")
                    }
                    BaseShare::None => "none".into(),
                },
                v.base_percent.map_or("-".into(), |p| format!("{p:.1}%")),
            ),
        };
        table.add_row([v.name.clone(), v.image.clone(), size, part, share]);
    }
    out.push_str(&finish_table(table, &[2, 3, 4], &[1, 3]));
    out
}

/// The report as a JSON document (format version 1).
pub fn report_json(report: &BaseReport) -> String {
    crate::render::json_text(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_push_to_a_registry_tags_the_image_for_it() {
        let plan =
            PushPlan::new("yourname/node-base:1.0", Some("127.0.0.1:5000"))
                .unwrap();

        assert_eq!(plan.target, "127.0.0.1:5000/yourname/node-base:1.0");
        assert_eq!(plan.repository, "127.0.0.1:5000/yourname/node-base");
        assert_eq!(plan.tag, "1.0");
        assert_eq!(plan.registry, "127.0.0.1:5000");
        assert!(plan.needs_tag());
    }

    #[test]
    fn a_push_without_a_registry_goes_where_the_name_points() {
        let hub = PushPlan::new("yourname/node-base:1.0", None).unwrap();
        let own =
            PushPlan::new("registry.example:5000/team/base:2", None).unwrap();

        assert_eq!(hub.registry, "docker.io");
        assert!(hub.is_docker_hub());
        assert_eq!(hub.target, "yourname/node-base:1.0");
        assert!(!hub.needs_tag());
        assert_eq!(own.registry, "registry.example:5000");
        assert!(!own.needs_tag());
    }

    #[test]
    fn a_registry_given_as_a_url_or_path_is_refused() {
        for bad in ["http://127.0.0.1:5000", "a b", "", "host/path"] {
            let err = PushPlan::new("a/b:1", Some(bad)).unwrap_err();
            assert!(err.to_string().contains("--registry"), "{bad}: {err}");
        }
    }

    #[test]
    fn only_a_new_target_name_is_made_and_later_removed() {
        let plan = plan_to_registry();

        let fresh = plan.tag_action(None, "sha256:aaa").unwrap();
        let same = plan.tag_action(Some("sha256:aaa"), "sha256:aaa").unwrap();

        assert_eq!(fresh, TagAction::Create);
        assert_eq!(same, TagAction::Keep);
    }

    #[test]
    fn a_target_name_held_by_another_image_is_refused() {
        let plan = plan_to_registry();

        let err = plan
            .tag_action(Some("sha256:bbb"), "sha256:aaa")
            .unwrap_err()
            .to_string();

        assert!(err.contains("'127.0.0.1:5000/ns/x:1' already exists"));
        assert!(err.contains("points at another image"), "{err}");
        assert!(err.contains("--registry/--tag"), "{err}");
    }

    #[test]
    fn pushing_an_image_under_its_own_name_needs_no_tag() {
        let plan = PushPlan::new("127.0.0.1:5000/ns/x:1", None).unwrap();

        let action = plan.tag_action(Some("sha256:aaa"), "sha256:aaa");

        assert_eq!(action.unwrap(), TagAction::Keep);
    }

    fn plan_to_registry() -> PushPlan {
        PushPlan::new("ns/x:1", Some("127.0.0.1:5000")).unwrap()
    }

    #[test]
    fn the_digest_is_read_from_the_last_status_line() {
        let line = "1.0: digest: sha256:0123abcd size: 528";

        assert_eq!(digest_in_status(line).as_deref(), Some("sha256:0123abcd"));
        assert_eq!(digest_in_status("Pushed"), None);
    }

    #[test]
    fn progress_counts_layers_by_their_status() {
        let mut p = PushProgress::default();
        for _ in 0..3 {
            p.apply("Preparing", None);
        }
        p.apply("Waiting", None);
        p.apply("Pushing", Some((512, 2048)));
        let existed = p.apply("Layer already exists", None);
        let pushed = p.apply("Pushed", None);

        assert_eq!(
            existed,
            PushStep::LayerDone("layer 1/3 already in registry".into())
        );
        assert_eq!(pushed, PushStep::LayerDone("layer 2/3 pushed".into()));
        assert_eq!(p.summary(), "2/3 layers, 512 B of 2.05 kB");
    }

    #[test]
    fn the_base_accounts_for_a_variant_only_through_a_layer_prefix() {
        let l =
            |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let base = l(&["a", "b"]);

        assert_eq!(base_share(&base, &l(&["a", "b", "c"])), BaseShare::Whole);
        assert_eq!(
            base_share(&base, &l(&["a", "x", "c"])),
            BaseShare::Stale(1)
        );
        assert_eq!(base_share(&base, &l(&["x", "a", "b"])), BaseShare::None);
    }

    fn report() -> BaseReport {
        let l =
            |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let base_layers = l(&["sha256:a"]);
        let facts = crate::engine::ImageFacts {
            id: "sha256:0123456789abcdef".into(),
            size: 97_400_000,
            layers: base_layers.clone(),
            user: "1000:1000".into(),
            ..Default::default()
        };
        let base = (&base_layers[..], 97_400_000);
        let on_base = l(&["sha256:a", "sha256:b"]);
        let other = l(&["sha256:x"]);
        BaseReport {
            format_version: JSON_FORMAT_VERSION,
            base: Measurement::from_facts(
                "base",
                "yourname/node-base:1.0",
                &facts,
            ),
            packages: Some(parse_packages("libc6 2.36-9\nnodejs 18.19.0\n")),
            variants: vec![
                VariantShare::new(
                    "week2",
                    "imgopt-app:week2",
                    Some((&other, 973_000_000)),
                    base,
                ),
                VariantShare::new(
                    "multi-stage",
                    "imgopt-app:multi-stage",
                    None,
                    base,
                ),
                VariantShare::new(
                    "custom-base",
                    "imgopt-app:custom-base",
                    Some((&on_base, 101_000_000)),
                    base,
                ),
            ],
        }
    }

    #[test]
    fn the_base_report_table_shows_the_share_of_each_variant() {
        insta::assert_snapshot!(report_table(&report()));
    }

    #[test]
    fn the_base_report_json_is_versioned_and_carries_bytes() {
        let json: serde_json::Value =
            serde_json::from_str(&report_json(&report())).unwrap();

        assert_eq!(json["format_version"], 1);
        assert_eq!(json["variants"][2]["share"], "whole");
        assert_eq!(json["variants"][2]["base_bytes"], 97_400_000);
        assert_eq!(json["variants"][0]["share"], "none");
        assert!(json["variants"][1]["size_bytes"].is_null());
        assert_eq!(json["packages"][1]["name"], "nodejs");
    }

    #[test]
    fn the_packages_manifest_is_name_and_version_per_line() {
        let text = "# packages\nlibc6 2.36-9\n\nnodejs 18.19.0+dfsg-6\nbare\n";

        let packages = parse_packages(text);

        assert_eq!(packages.len(), 3);
        assert_eq!(packages[1].name, "nodejs");
        assert_eq!(packages[1].version, "18.19.0+dfsg-6");
        assert_eq!(packages[2].version, "");
    }
}
