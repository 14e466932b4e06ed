//! Writing files so that readers see the old bytes or the new, never half
//! of each: a temporary file beside the target, renamed over it.
//!
//! Used for files people commit or edit (the baseline file, a README), so
//! the write respects what those people set up: a symlink is written
//! through (the file it names gets the bytes, the link stays a link), the
//! target's permissions are kept (a temporary file is created private,
//! mode 0600, and renaming it as is would quietly change them), and a file
//! made read-only is refused rather than replaced. Anything that is not a
//! regular file (a directory, a device, a FIFO) is refused before it is
//! read, since reading `/dev/zero` or a FIFO never ends.
//!
//! Writing happens in two steps, [`PendingWrite::prepare`] and
//! [`PendingWrite::commit`], so a command that updates several files can
//! prepare all of them and write none when one cannot be prepared.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

/// How many symlinks in a row are followed before giving up, as Linux
/// does (`ELOOP`).
const MAX_LINKS: usize = 40;

/// Replaces `path` with `bytes` atomically, keeping its permissions (a new
/// file gets the usual 0644) and writing through a symlink.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    PendingWrite::prepare(path, bytes)?.commit()
}

/// New bytes for a file, already in a temporary file beside the real
/// target, waiting to be renamed over it. Dropped without a commit, the
/// temporary file is removed and the target is left as it was.
#[derive(Debug)]
pub struct PendingWrite {
    file: tempfile::NamedTempFile,
    /// The real file: `path` with its symlinks followed.
    target: PathBuf,
    /// The path as given, for messages.
    shown: PathBuf,
}

impl PendingWrite {
    /// Checks that `path` may be replaced and writes `bytes` to a
    /// temporary file in the directory of the file it really names.
    pub fn prepare(path: &Path, bytes: &[u8]) -> anyhow::Result<Self> {
        let target = writable_target(path)?;
        let dir = match target.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        std::fs::create_dir_all(dir).with_context(|| {
            format!("failed to create directory '{}'", dir.display())
        })?;
        let mut file =
            tempfile::NamedTempFile::new_in(dir).with_context(|| {
                format!(
                    "failed to create a temporary file in '{}'",
                    dir.display()
                )
            })?;
        file.write_all(bytes)
            .and_then(|()| file.as_file().sync_all())
            .with_context(|| {
                format!("failed to write '{}'", path.display())
            })?;
        let permissions = match std::fs::metadata(&target) {
            Ok(meta) => Some(meta.permissions()),
            Err(_) => default_permissions(),
        };
        if let Some(permissions) = permissions {
            std::fs::set_permissions(file.path(), permissions).with_context(
                || {
                    format!(
                        "failed to set the permissions of '{}'",
                        path.display()
                    )
                },
            )?;
        }
        Ok(PendingWrite { file, target, shown: path.to_path_buf() })
    }

    /// Renames the temporary file over the target.
    pub fn commit(self) -> anyhow::Result<()> {
        let shown = self.shown;
        self.file.persist(&self.target).with_context(|| {
            format!("failed to write '{}'", shown.display())
        })?;
        Ok(())
    }
}

/// Checks, before any work is done, that [`write_atomic`] may replace
/// `path`: it is missing, or a regular file that is not read-only.
pub fn check_writable(path: &Path) -> anyhow::Result<()> {
    writable_target(path).map(drop)
}

/// The file `path` names, with symlinks followed (also a dangling one,
/// whose target a write creates), refused when it exists and is not a
/// regular file or is read-only.
fn writable_target(path: &Path) -> anyhow::Result<PathBuf> {
    let target = follow_links(path)?;
    if let Some(meta) = regular_metadata(path, &target)? {
        if meta.permissions().readonly() {
            bail!(
                "'{}' is read-only; make it writable to update it",
                path.display()
            );
        }
    }
    Ok(target)
}

/// The contents of `path` (through symlinks), `None` when there is no
/// such file; an error, before reading a byte, for anything that is not
/// a regular file.
pub fn read_regular(path: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    let target = follow_links(path)?;
    if regular_metadata(path, &target)?.is_none() {
        return Ok(None);
    }
    std::fs::read(&target)
        .map(Some)
        .with_context(|| format!("failed to read '{}'", path.display()))
}

/// The metadata of the real file `target` (named `path` by the user),
/// `None` when it does not exist, an error when it is not a regular file.
fn regular_metadata(
    path: &Path,
    target: &Path,
) -> anyhow::Result<Option<std::fs::Metadata>> {
    let meta = match std::fs::metadata(target) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(e).with_context(|| {
                format!("failed to inspect '{}'", path.display())
            })
        }
    };
    if !meta.is_file() {
        bail!(
            "'{}' is not a regular file (a directory, device or pipe); \
             give the path of a file",
            path.display()
        );
    }
    Ok(Some(meta))
}

/// `path` with the symlinks at its end followed, one by one, so a link
/// whose target does not exist yet still leads to where the file goes.
/// Symlinked directories on the way need no help: the system follows
/// them when the file is opened or renamed.
fn follow_links(path: &Path) -> anyhow::Result<PathBuf> {
    let mut current = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match std::fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {}
            _ => return Ok(current),
        }
        let link = std::fs::read_link(&current).with_context(|| {
            format!("failed to read the symlink '{}'", current.display())
        })?;
        current = match current.parent() {
            Some(dir) if link.is_relative() => dir.join(link),
            _ => link,
        };
    }
    bail!("'{}' is a loop of symlinks", path.display())
}

#[cfg(unix)]
fn default_permissions() -> Option<std::fs::Permissions> {
    use std::os::unix::fs::PermissionsExt;
    Some(std::fs::Permissions::from_mode(0o644))
}

/// Elsewhere a fresh temporary file already has ordinary permissions.
#[cfg(not(unix))]
fn default_permissions() -> Option<std::fs::Permissions> {
    None
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::{symlink, PermissionsExt};

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn set_mode(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .unwrap();
    }

    fn entries(dir: &Path) -> usize {
        std::fs::read_dir(dir).unwrap().count()
    }

    #[test]
    fn a_rewrite_keeps_the_file_permissions_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("README.md");
        std::fs::write(&path, "old").unwrap();
        set_mode(&path, 0o664);

        write_atomic(&path, b"new").unwrap();

        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(mode(&path), 0o664);
        assert_eq!(entries(dir.path()), 1);
    }

    #[test]
    fn a_new_file_is_readable_by_everyone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docs/sizes.svg");

        write_atomic(&path, b"<svg/>").unwrap();

        assert_eq!(mode(&path), 0o644);
    }

    #[test]
    fn a_symlink_stays_a_link_and_its_target_gets_the_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        let real = elsewhere.join("bl.json");
        std::fs::write(&real, "old").unwrap();
        let link = dir.path().join("imgopt-baseline.json");
        symlink(&real, &link).unwrap();
        // A relative link to that link: both hops are followed.
        let second = dir.path().join("second.json");
        symlink("imgopt-baseline.json", &second).unwrap();

        write_atomic(&link, b"new").unwrap();
        write_atomic(&second, b"newer").unwrap();

        assert!(link.symlink_metadata().unwrap().file_type().is_symlink());
        assert!(second.symlink_metadata().unwrap().is_symlink());
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "newer");
        assert_eq!(entries(&elsewhere), 1, "temporary left behind");
        assert_eq!(entries(dir.path()), 3);
    }

    #[test]
    fn a_dangling_symlink_creates_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("README.md");
        symlink("docs/real.md", &link).unwrap();

        write_atomic(&link, b"text").unwrap();

        assert!(link.symlink_metadata().unwrap().is_symlink());
        let real = dir.path().join("docs/real.md");
        assert_eq!(std::fs::read_to_string(real).unwrap(), "text");
    }

    #[test]
    fn a_symlink_loop_is_an_error_not_a_hang() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        symlink("b", &a).unwrap();
        symlink("a", dir.path().join("b")).unwrap();

        let err = write_atomic(&a, b"x").unwrap_err().to_string();

        assert!(err.contains("loop of symlinks"), "{err}");
    }

    #[test]
    fn a_read_only_file_is_refused_and_left_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("README.md");
        std::fs::write(&path, "old").unwrap();
        set_mode(&path, 0o444);

        let err = write_atomic(&path, b"new").unwrap_err().to_string();

        assert!(err.contains("is read-only; make it writable"), "{err}");
        assert!(err.contains("README.md"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
        assert_eq!(entries(dir.path()), 1);
        assert!(check_writable(&path).is_err());
        assert!(check_writable(&dir.path().join("new.json")).is_ok());
    }

    #[test]
    fn what_is_not_a_regular_file_is_refused_before_it_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("link");
        symlink("/dev/zero", &link).unwrap();

        for path in [Path::new("/dev/zero"), Path::new("/dev/full"), &link] {
            let read = read_regular(path).unwrap_err().to_string();
            let write = write_atomic(path, b"x").unwrap_err().to_string();

            assert!(read.contains("not a regular file"), "{read}");
            assert!(write.contains("not a regular file"), "{write}");
        }
        let err = write_atomic(dir.path(), b"x").unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
    }

    #[test]
    fn a_fifo_is_refused_without_waiting_for_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.unwrap().success(), "mkfifo failed");

        let read = read_regular(&fifo).unwrap_err().to_string();
        let write = write_atomic(&fifo, b"x").unwrap_err().to_string();

        assert!(read.contains("not a regular file"), "{read}");
        assert!(write.contains("not a regular file"), "{write}");
    }

    #[test]
    fn a_missing_file_reads_as_none() {
        let dir = tempfile::tempdir().unwrap();

        let read = read_regular(&dir.path().join("none")).unwrap();

        assert_eq!(read, None);
    }

    #[test]
    fn a_pending_write_dropped_uncommitted_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sizes.svg");
        std::fs::write(&path, "old").unwrap();

        let pending = PendingWrite::prepare(&path, b"new").unwrap();
        assert_eq!(entries(dir.path()), 2, "the temporary is beside it");
        drop(pending);

        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
        assert_eq!(entries(dir.path()), 1);
    }
}
