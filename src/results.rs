//! The results file: what earlier commands measured, for later ones.
//!
//! `measure` writes it and `compare` and `report` read it. Records are keyed
//! by variant (or image reference) and tied to an image ID: figures measured
//! later for the same image attach to its record, and a rebuilt image
//! starts a fresh one, so no figure is ever shown against the wrong image.
//! The file is plain JSON with a format version and is written atomically
//! (a temporary file renamed over the old one), so a crash or Ctrl-C never
//! leaves half a file.
//!
//! Format version 1:
//!
//! ```json
//! {
//!   "format_version": 1,
//!   "records": {
//!     "week2": {
//!       "image_id": "sha256:...",
//!       "measured_at": "2026-12-03T17:00:00Z",
//!       "engine_version": "20.10.24+dfsg1",
//!       "git_commit": "0a1b2c...",
//!       "measurement": { "name": "week2", "size_bytes": 1234, ... }
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
use crate::stats::Summary;

/// The format version this build of imgopt reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// Everything measured so far, by variant name or image reference.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Results {
    /// The format version of the file.
    pub format_version: u32,
    /// One record per variant or measured reference (`image:REF`).
    pub records: BTreeMap<String, Record>,
    /// Fields this version does not know, kept so that an older imgopt
    /// rewriting the file loses nothing a newer one wrote.
    #[serde(flatten)]
    pub unknown: serde_json::Map<String, serde_json::Value>,
}

/// The figures measured for one image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The image the figures belong to.
    pub image_id: String,
    /// When the record was last written (RFC 3339, UTC).
    pub measured_at: String,
    /// The engine that measured it.
    pub engine_version: String,
    /// The commit checked out when it was measured, if in a git checkout.
    pub git_commit: Option<String>,
    /// The wall time of the last build of this image, in seconds.
    pub build_seconds: Option<f64>,
    /// The image measurement, once `measure` ran.
    pub measurement: Option<Measurement>,
    /// Time from container start to a healthy `/health`, once `verify`
    /// ran.
    #[serde(default)]
    pub startup: Option<Summary>,
    /// Fields this version does not know, kept on rewrite.
    #[serde(flatten)]
    pub unknown: serde_json::Map<String, serde_json::Value>,
}

/// Where and when a record is written.
#[derive(Debug, Clone, PartialEq)]
pub struct Provenance {
    /// When (RFC 3339, UTC).
    pub time: String,
    /// The engine's version.
    pub engine_version: String,
    /// The checked-out commit.
    pub git_commit: Option<String>,
}

impl Record {
    /// An empty record for an image.
    pub fn new(image_id: &str) -> Record {
        Record {
            image_id: image_id.to_string(),
            measured_at: String::new(),
            engine_version: String::new(),
            git_commit: None,
            build_seconds: None,
            measurement: None,
            startup: None,
            unknown: serde_json::Map::new(),
        }
    }
}

impl Results {
    /// Reads the results file; a missing file is an empty result set.
    pub fn load(path: &Path) -> anyhow::Result<Results> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Results::new());
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("failed to read results '{}'", path.display())
                });
            }
        };
        let results: Results =
            serde_json::from_str(&text).with_context(|| {
                format!(
                "results file '{}' is not valid (move it aside and measure again)",
                path.display()
            )
            })?;
        if results.format_version != FORMAT_VERSION {
            bail!(
                "results file '{}' has format version {}, this imgopt \
                 reads version {FORMAT_VERSION} (move it aside and measure again)",
                path.display(),
                results.format_version
            );
        }
        Ok(results)
    }

    /// An empty result set.
    pub fn new() -> Results {
        Results {
            format_version: FORMAT_VERSION,
            records: BTreeMap::new(),
            unknown: serde_json::Map::new(),
        }
    }

    /// The record for `name` and `image_id`, made fresh when there is none
    /// or when the one there belongs to another image.
    pub fn record_mut(
        &mut self,
        name: &str,
        image_id: &str,
        provenance: &Provenance,
    ) -> &mut Record {
        let record = self
            .records
            .entry(name.to_string())
            .or_insert_with(|| Record::new(image_id));
        if record.image_id != image_id {
            *record = Record::new(image_id);
        }
        record.measured_at = provenance.time.clone();
        record.engine_version = provenance.engine_version.clone();
        record.git_commit = provenance.git_commit.clone();
        record
    }

    /// The record for an image ID under any name, e.g. to find the build
    /// time of an image measured with `--image`.
    pub fn by_image_id(&self, image_id: &str) -> Option<&Record> {
        self.records.values().find(|r| r.image_id == image_id)
    }

    /// Writes the results atomically (a temporary file beside the target,
    /// renamed over it), keeping the file's permissions and writing
    /// through a symlink rather than replacing it.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let text = crate::render::json_text(self);
        write_atomic(path, text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provenance(time: &str) -> Provenance {
        Provenance {
            time: time.into(),
            engine_version: "20.10".into(),
            git_commit: None,
        }
    }

    #[test]
    fn figures_for_the_same_image_attach_to_its_record() {
        let mut results = Results::new();
        results
            .record_mut("week2", "sha256:a", &provenance("t1"))
            .build_seconds = Some(3.0);

        let record =
            results.record_mut("week2", "sha256:a", &provenance("t2"));

        assert_eq!(record.build_seconds, Some(3.0));
        assert_eq!(record.measured_at, "t2");
    }

    #[test]
    fn a_rebuilt_image_starts_a_fresh_record() {
        let mut results = Results::new();
        results
            .record_mut("week2", "sha256:a", &provenance("t1"))
            .build_seconds = Some(3.0);

        let record =
            results.record_mut("week2", "sha256:b", &provenance("t2"));

        assert_eq!(record.build_seconds, None);
        assert_eq!(record.image_id, "sha256:b");
    }

    #[test]
    fn saved_results_load_back_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/results.json");
        let mut results = Results::new();
        results.record_mut("a", "sha256:a", &provenance("t")).build_seconds =
            Some(1.5);

        results.save(&path).unwrap();

        assert_eq!(Results::load(&path).unwrap(), results);
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1
        );
    }

    #[test]
    fn fields_from_a_newer_imgopt_survive_a_rewrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.json");
        std::fs::write(
            &path,
            r#"{"format_version": 1, "future": [1],
                "records": {"a": {"image_id": "sha256:a",
                  "measured_at": "t", "engine_version": "e",
                  "git_commit": null, "build_seconds": null,
                  "measurement": null, "verify_extra": {"x": 2}}}}"#,
        )
        .unwrap();

        Results::load(&path).unwrap().save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();

        assert!(text.contains("\"future\""), "{text}");
        assert!(text.contains("\"verify_extra\""), "{text}");
    }

    #[test]
    fn a_missing_file_is_empty_and_a_foreign_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.json");
        assert!(Results::load(&path).unwrap().records.is_empty());

        std::fs::write(&path, r#"{"format_version": 99, "records": {}}"#)
            .unwrap();
        let err = Results::load(&path).unwrap_err().to_string();

        assert!(err.contains("format version 99"), "{err}");
    }
}
