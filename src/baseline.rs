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
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::fsutil::{self, write_atomic};
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

    /// Reads the baseline file; `None` when there is none, an
    /// [`Unusable`] error when it is there but holds no baseline this
    /// imgopt reads.
    pub fn load(path: &Path) -> anyhow::Result<Option<Baseline>> {
        let Some(bytes) = fsutil::read_regular(path).with_context(|| {
            format!("failed to read baseline '{}'", path.display())
        })?
        else {
            return Ok(None);
        };
        let baseline = parse(&bytes).map_err(|problem| Unusable {
            path: path.to_path_buf(),
            problem,
        })?;
        Ok(Some(baseline))
    }

    /// Notes on variants the file names that the configuration no longer
    /// has (`known` says which it has): they are compared with nothing,
    /// and the next `--update-baseline` drops them.
    pub fn stale_notes(&self, known: impl Fn(&str) -> bool) -> Vec<String> {
        self.variants
            .keys()
            .filter(|name| !known(name))
            .map(|name| {
                format!(
                    "note: baseline names variant '{name}', which \
                     imgopt.toml no longer has; `--update-baseline` drops it"
                )
            })
            .collect()
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

/// The file's baseline, or what is wrong with it. The version is read
/// first, so a file of another version is reported as such and not by
/// the first field this version misses in it.
fn parse(bytes: &[u8]) -> Result<Baseline, String> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| format!("is not valid JSON ({e})"))?;
    match value.get("format_version").and_then(|v| v.as_u64()) {
        Some(version) if version == u64::from(FORMAT_VERSION) => {}
        Some(version) => {
            return Err(format!(
                "has format version {version}, this imgopt reads version \
                 {FORMAT_VERSION}"
            ))
        }
        None => return Err("has no format_version number".into()),
    }
    serde_json::from_value(value)
        .map_err(|e| format!("is not a valid baseline file ({e})"))
}

/// A baseline file that is there but cannot be used: not JSON, not a
/// baseline, or another format version. `compare --update-baseline`
/// replaces it; every other command stops with this error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "baseline file '{}' {problem} (run `imgopt compare --update-baseline` \
     to replace it)",
    path.display()
)]
pub struct Unusable {
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it, e.g. `has format version 2, ...`.
    pub problem: String,
}

impl Unusable {
    /// The warning for `--update-baseline`, which replaces the file.
    pub fn replacing(&self) -> String {
        format!(
            "the baseline file '{}' could not be read: it {}; it is being \
             replaced",
            self.path.display(),
            self.problem
        )
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
        assert!(err.contains("--update-baseline` to replace it"), "{err}");
    }

    #[test]
    fn a_foreign_version_is_reported_before_any_missing_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("imgopt-baseline.json");
        std::fs::write(&path, r#"{"format_version": 7, "images": []}"#)
            .unwrap();

        let err = Baseline::load(&path).unwrap_err();

        let unusable = err.downcast_ref::<Unusable>().expect("typed");
        assert!(unusable.problem.contains("format version 7"), "{err}");
        assert!(!err.to_string().contains("missing field"), "{err}");
    }

    #[test]
    fn corrupt_files_are_unusable_with_the_way_to_replace_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("imgopt-baseline.json");
        let cases: [&[u8]; 4] = [
            b"{ truncated",
            b"\xff\xfe not text",
            br#"{"variants": {}}"#,
            br#"{"format_version": 1, "variants": 3}"#,
        ];
        for bytes in cases {
            std::fs::write(&path, bytes).unwrap();

            let err = Baseline::load(&path).unwrap_err();

            let unusable = err.downcast_ref::<Unusable>();
            assert!(unusable.is_some(), "{err:#}");
            let text = err.to_string();
            assert!(
                text.contains(
                    "run `imgopt compare --update-baseline` to replace it"
                ),
                "{text}"
            );
            let warning = unusable.unwrap().replacing();
            assert!(warning.contains("is being replaced"), "{warning}");
        }
    }

    #[test]
    fn a_variant_gone_from_the_config_gets_a_note() {
        let baseline = Baseline {
            format_version: FORMAT_VERSION,
            engine_version: "20.10".into(),
            git_commit: None,
            variants: BTreeMap::from([
                ("kept".into(), entry(1)),
                ("gone".into(), entry(2)),
            ]),
        };

        let notes = baseline.stale_notes(|name| name == "kept");

        assert_eq!(
            notes,
            ["note: baseline names variant 'gone', which imgopt.toml no \
              longer has; `--update-baseline` drops it"]
        );
    }
}
