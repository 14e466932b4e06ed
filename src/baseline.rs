//! The committed baseline file: what each variant measured when someone
//! last accepted it, so `compare` can tell whether an image grew.
//!
//! It lives at the project root (`imgopt-baseline.json` unless
//! `baseline_file` in `imgopt.toml` says otherwise) and is meant to be
//! committed, so it holds only figures that matter for a review and is
//! written with sorted keys, pretty-printed, atomically. Nothing in it
//! depends on when or where it was written except the provenance fields.
//!
//! Format version 1:
//!
//! ```json
//! {
//!   "format_version": 1,
//!   "engine_version": "20.10.24+dfsg1",
//!   "git_commit": "0a1b2c...",
//!   "variants": {
//!     "multi-stage": {
//!       "image_id": "sha256:...",
//!       "size_bytes": 189012345,
//!       "layers": 9,
//!       "base_image": "node:18.20.8-alpine3.21",
//!       "base_image_id": "sha256:...",
//!       "base_size_bytes": 182000000
//!     }
//!   }
//! }
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use crate::fsutil::write_atomic;
use crate::measure::Measurement;

/// The format version this build of imgopt reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// The accepted figures of every variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    /// The format version of the file.
    pub format_version: u32,
    /// The engine that measured the figures.
    pub engine_version: String,
    /// The commit checked out when they were measured.
    pub git_commit: Option<String>,
    /// The figures, by variant name.
    pub variants: BTreeMap<String, Entry>,
}

/// The accepted figures of one variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// The image that was measured.
    pub image_id: String,
    /// Its size in bytes.
    pub size_bytes: u64,
    /// Its layer count.
    pub layers: usize,
    /// The base image its Dockerfile resolved to.
    pub base_image: Option<String>,
    /// That base image's ID, to tell a base that changed under its tag.
    pub base_image_id: Option<String>,
    /// The bytes of the base image's layers within it, when known.
    pub base_size_bytes: Option<u64>,
}

impl Entry {
    /// The figures of a measurement.
    pub fn of(m: &Measurement) -> Entry {
        Entry {
            image_id: m.image_id.clone(),
            size_bytes: m.size_bytes,
            layers: m.layers,
            base_image: m.base_image.clone(),
            base_image_id: m.base_image_id.clone(),
            base_size_bytes: m.base_size_bytes,
        }
    }
}

impl Baseline {
    /// A baseline of these measurements.
    pub fn of(
        measurements: &[Measurement],
        engine_version: &str,
        git_commit: Option<String>,
    ) -> Baseline {
        Baseline {
            format_version: FORMAT_VERSION,
            engine_version: engine_version.to_string(),
            git_commit,
            variants: measurements
                .iter()
                .map(|m| (m.name.clone(), Entry::of(m)))
                .collect(),
        }
    }

    /// Reads the baseline file; `None` when there is none.
    pub fn load(path: &Path) -> anyhow::Result<Option<Baseline>> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(None)
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("failed to read baseline '{}'", path.display())
                })
            }
        };
        let baseline: Baseline =
            serde_json::from_str(&text).with_context(|| {
                format!(
                    "baseline file '{}' is not valid (write a new one with \
                     `imgopt compare --update-baseline`)",
                    path.display()
                )
            })?;
        if baseline.format_version != FORMAT_VERSION {
            bail!(
                "baseline file '{}' has format version {}, this imgopt \
                 reads version {FORMAT_VERSION} (write a new one with \
                 `imgopt compare --update-baseline`)",
                path.display(),
                baseline.format_version
            );
        }
        Ok(Some(baseline))
    }

    /// The file's text: pretty JSON with a final newline, keys sorted.
    pub fn to_text(&self) -> String {
        crate::render::json_text(self)
    }

    /// Writes the file atomically.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        write_atomic(path, self.to_text().as_bytes()).with_context(|| {
            format!("failed to save baseline '{}'", path.display())
        })
    }
}

/// The error for a missing baseline file, with the command that makes one.
pub fn missing(path: &Path) -> anyhow::Error {
    anyhow::anyhow!(
        "no baseline file at '{}': measure and write one with \
         `imgopt compare --update-baseline`, then commit it",
        path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(size: u64) -> Entry {
        Entry {
            image_id: "sha256:a".into(),
            size_bytes: size,
            layers: 3,
            base_image: Some("alpine:3".into()),
            base_image_id: Some("sha256:b".into()),
            base_size_bytes: Some(10),
        }
    }

    #[test]
    fn a_saved_baseline_loads_back_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("imgopt-baseline.json");
        let baseline = Baseline {
            format_version: FORMAT_VERSION,
            engine_version: "20.10".into(),
            git_commit: None,
            variants: BTreeMap::from([("v".into(), entry(100))]),
        };

        baseline.save(&path).unwrap();

        assert_eq!(Baseline::load(&path).unwrap(), Some(baseline));
    }

    #[test]
    fn a_missing_file_is_none_and_a_foreign_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("imgopt-baseline.json");
        assert_eq!(Baseline::load(&path).unwrap(), None);

        std::fs::write(
            &path,
            r#"{"format_version": 2, "engine_version": "", "git_commit": null, "variants": {}}"#,
        )
        .unwrap();
        let err = format!("{:#}", Baseline::load(&path).unwrap_err());

        assert!(err.contains("format version 2"), "{err}");
        assert!(err.contains("--update-baseline"), "{err}");
    }
}
