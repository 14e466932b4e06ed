//! Writing files so that readers see the old bytes or the new, never half
//! of each: a temporary file beside the target, renamed over it.
//!
//! Used for files people commit or edit (the baseline file, a README), so
//! the target's permissions are kept: a temporary file is created private
//! (mode 0600), and renaming it as is would quietly change them.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

/// Replaces `path` with `bytes` atomically, keeping its permissions (a new
/// file gets the usual 0644).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).with_context(|| {
        format!("failed to create directory '{}'", dir.display())
    })?;
    let mut file =
        tempfile::NamedTempFile::new_in(dir).with_context(|| {
            format!("failed to create a temporary file in '{}'", dir.display())
        })?;
    file.write_all(bytes)
        .and_then(|()| file.as_file().sync_all())
        .with_context(|| format!("failed to write '{}'", path.display()))?;
    let permissions = match std::fs::metadata(path) {
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
    file.persist(path)
        .with_context(|| format!("failed to write '{}'", path.display()))?;
    Ok(())
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
    use super::*;

    #[test]
    fn a_rewrite_keeps_the_file_permissions_and_leaves_no_temporary() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("README.md");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(
            &path,
            std::fs::Permissions::from_mode(0o664),
        )
        .unwrap();

        write_atomic(&path, b"new").unwrap();

        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o664);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_new_file_is_readable_by_everyone() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docs/sizes.svg");

        write_atomic(&path, b"<svg/>").unwrap();

        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
    }
}
