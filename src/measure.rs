//! Measurements: the plain data that every renderer and later command reads.
//!
//! A [`Measurement`] is made from an image's [`ImageFacts`] plus what only
//! the build knows (its wall time, the base image its Dockerfile resolved
//! to). It carries no display state: tables, JSON and Markdown are made
//! from it elsewhere.

use serde::{Deserialize, Serialize};

use crate::engine::ImageFacts;

/// What imgopt measured about one image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// The variant's name, or the reference for an image measured with
    /// `--image`.
    pub name: String,
    /// The tag or reference the image was measured under.
    pub image: String,
    /// The image's content-addressed ID.
    pub image_id: String,
    /// Its size in bytes, as the engine reports it.
    pub size_bytes: u64,
    /// The layers of its root filesystem (`RootFS.Layers`).
    pub layers: usize,
    /// Its history rows, empty-layer rows included.
    pub history_entries: usize,
    /// The image the final stage is built on, as its `FROM` resolved.
    pub base_image: Option<String>,
    /// That base image's ID on this engine, when it has it.
    pub base_image_id: Option<String>,
    /// The wall time of the build that made it, in seconds.
    pub build_seconds: Option<f64>,
    /// The user it runs as (`root` when the image sets none).
    pub user: String,
    /// Whether the image declares a `HEALTHCHECK`.
    pub healthcheck: bool,
    /// The value of `NODE_ENV` in its environment.
    pub node_env: Option<String>,
    /// How many of its layers are the base image's: set when the base's
    /// `RootFS` layers are a prefix of this image's.
    #[serde(default)]
    pub base_layers: Option<usize>,
    /// The bytes those base layers hold (the base image's size); the rest
    /// of `size_bytes` is what the Dockerfile added.
    #[serde(default)]
    pub base_size_bytes: Option<u64>,
}

impl Measurement {
    /// Measures an image from the engine's description of it.
    pub fn from_facts(name: &str, image: &str, facts: &ImageFacts) -> Self {
        Measurement {
            name: name.to_string(),
            image: image.to_string(),
            image_id: facts.id.clone(),
            size_bytes: facts.size,
            layers: facts.layers.len(),
            history_entries: facts.history.len(),
            base_image: None,
            base_image_id: None,
            build_seconds: None,
            user: effective_user(&facts.user),
            healthcheck: facts.healthcheck.is_some(),
            node_env: env_value(&facts.env, "NODE_ENV"),
            base_layers: None,
            base_size_bytes: None,
        }
    }

    /// Splits the image into its base's layers and the Dockerfile's, when
    /// the base's layers are a prefix of the image's own. A base that was
    /// rebuilt or re-tagged since the image was built shares no prefix,
    /// and the split stays unknown rather than wrong.
    pub fn attribute_base(&mut self, own: &ImageFacts, base: &ImageFacts) {
        let shared = !base.layers.is_empty()
            && own.layers.len() >= base.layers.len()
            && own.layers.starts_with(&base.layers);
        if shared {
            self.base_layers = Some(base.layers.len());
            self.base_size_bytes = Some(base.size.min(own.size));
        } else {
            self.base_layers = None;
            self.base_size_bytes = None;
        }
    }

    /// The bytes the Dockerfile added on top of its base, when known.
    pub fn added_bytes(&self) -> Option<u64> {
        self.base_size_bytes.map(|b| self.size_bytes.saturating_sub(b))
    }

    /// Whether the image runs its process as root.
    pub fn runs_as_root(&self) -> bool {
        let name = self.user.split(':').next().unwrap_or_default();
        name == "root" || name == "0"
    }

    /// The change in size against another measurement, in percent.
    pub fn size_change_percent(&self, baseline: &Measurement) -> Option<f64> {
        percent_change(baseline.size_bytes, self.size_bytes)
    }
}

/// The change from `before` to `after` in percent; none when `before` is 0.
pub fn percent_change(before: u64, after: u64) -> Option<f64> {
    (before > 0)
        .then(|| (after as f64 - before as f64) / before as f64 * 100.0)
}

fn effective_user(user: &str) -> String {
    if user.trim().is_empty() {
        "root".to_string()
    } else {
        user.to_string()
    }
}

fn env_value(env: &[String], key: &str) -> Option<String> {
    env.iter().rev().find_map(|entry| {
        let (k, v) = entry.split_once('=')?;
        (k == key).then(|| v.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::HistoryEntry;

    fn facts() -> ImageFacts {
        ImageFacts {
            id: "sha256:abc".into(),
            size: 1_000,
            layers: vec!["sha256:1".into(), "sha256:2".into()],
            history: vec![HistoryEntry::default(); 5],
            env: vec!["PATH=/bin".into(), "NODE_ENV=production".into()],
            ..ImageFacts::default()
        }
    }

    #[test]
    fn layers_come_from_the_root_filesystem_not_the_history() {
        let m = Measurement::from_facts("v", "app:v", &facts());

        assert_eq!(m.layers, 2);
        assert_eq!(m.history_entries, 5);
    }

    #[test]
    fn an_image_without_a_user_runs_as_root() {
        let m = Measurement::from_facts("v", "app:v", &facts());

        assert_eq!(m.user, "root");
        assert!(m.runs_as_root());
    }

    #[test]
    fn a_numeric_non_zero_user_is_not_root() {
        let mut f = facts();
        f.user = "1000:1000".into();
        let m = Measurement::from_facts("v", "app:v", &f);

        assert!(!m.runs_as_root());
        f.user = "0:0".into();
        assert!(Measurement::from_facts("v", "app:v", &f).runs_as_root());
    }

    #[test]
    fn node_env_is_read_from_the_image_environment() {
        let m = Measurement::from_facts("v", "app:v", &facts());
        assert_eq!(m.node_env.as_deref(), Some("production"));

        let mut f = facts();
        f.env.clear();
        assert_eq!(Measurement::from_facts("v", "a", &f).node_env, None);
    }

    #[test]
    fn base_layers_are_counted_only_when_they_prefix_the_image() {
        let own = facts();
        let base = ImageFacts {
            size: 600,
            layers: vec!["sha256:1".into()],
            ..ImageFacts::default()
        };
        let mut m = Measurement::from_facts("v", "app:v", &own);

        m.attribute_base(&own, &base);
        assert_eq!(m.base_layers, Some(1));
        assert_eq!(m.added_bytes(), Some(400));

        let rebuilt = ImageFacts { layers: vec!["sha256:9".into()], ..base };
        m.attribute_base(&own, &rebuilt);
        assert_eq!((m.base_layers, m.added_bytes()), (None, None));
    }

    #[test]
    fn size_change_is_relative_to_the_baseline() {
        let grew = percent_change(100, 110).unwrap();

        assert_eq!(percent_change(200, 50), Some(-75.0));
        assert!((grew - 10.0).abs() < 1e-9, "{grew}");
        assert_eq!(percent_change(0, 10), None);
    }
}
