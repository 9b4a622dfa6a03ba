//! Writing one installed file: only when its content or mode differs (so a second run changes
//! nothing and says so), and atomically, since podman or a shell may read it at any moment.

use std::fmt;
use std::fs;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Written,
    Unchanged,
    /// Not installed, and not asked for by name either (see `install::run`).
    Skipped,
    /// Another package's file we could not check (see `install::hook_files`).
    Unchecked,
    /// Taken away (`virtpod uninstall`, or an older install's file in a shared directory).
    Removed,
    /// Nothing there to take away.
    Absent,
}

/// One line of `virtpod install`'s output: a file (as written, under the root), what happened
/// to it, and a note for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done {
    pub path: PathBuf,
    pub outcome: Outcome,
    pub note: String,
}

impl fmt::Display for Done {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = match self.outcome {
            Outcome::Written => "wrote",
            Outcome::Unchanged => "unchanged",
            Outcome::Skipped => "skipped",
            Outcome::Unchecked => "unchecked",
            Outcome::Removed => "removed",
            Outcome::Absent => "absent",
        };
        write!(f, "{verb} {}", self.path.display())?;
        if !self.note.is_empty() {
            write!(f, " ({})", self.note)?;
        }
        Ok(())
    }
}

/// Whether `path` already holds exactly `content` with `mode`.
pub fn is_current(path: &Path, content: &[u8], mode: u32) -> bool {
    let Ok(meta) = fs::metadata(path) else {
        return false;
    };
    meta.is_file()
        && meta.len() == content.len() as u64
        && meta.permissions().mode() & 0o7777 == mode
        && fs::read(path).is_ok_and(|old| old == content)
}

/// Writes `content` to `path` with `mode` (parents made) unless it is already there. A file
/// beside it is renamed over it, so readers see the old file or the new one, never half. `fix`
/// is what to tell a person who may not write there.
pub fn write_atomic(path: &Path, content: &[u8], mode: u32, fix: &str) -> Result<Outcome> {
    if is_current(path, content, mode) {
        return Ok(Outcome::Unchanged);
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| anyhow!("{} names no file", path.display()))?;
    // A dot name not ending in .json: podman reads only *.json in a hooks directory.
    let tmp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
    let result = fs::create_dir_all(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
        .and_then(|()| write_new(&tmp, content, mode))
        .and_then(|()| {
            fs::rename(&tmp, path)
                .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))
        });
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        let denied = e.downcast_ref::<std::io::Error>().is_some_and(|e| {
            matches!(
                e.kind(),
                ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem
            )
        });
        let e = e.context(format!("installing {}", path.display()));
        return Err(if denied {
            anyhow!("{e:#}; fix: {fix}")
        } else {
            e
        });
    }
    Ok(Outcome::Written)
}

fn write_new(tmp: &Path, content: &[u8], mode: u32) -> Result<()> {
    let _ = fs::remove_file(tmp);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    file.write_all(content)
        .and_then(|()| file.set_permissions(fs::Permissions::from_mode(mode)))
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", tmp.display()))
}

/// Removes the file at `path` (a symlink itself, never what it points to): `Removed`, or
/// `Absent` when nothing is there. A directory is refused, never emptied.
pub fn remove(path: &Path) -> Result<Outcome> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(Outcome::Absent),
        Err(e) => Err(e).with_context(|| format!("cannot look at {}", path.display())),
        Ok(m) if m.is_dir() => Err(anyhow!(
            "{} is a directory, not the file virtpod install writes: left as it is",
            path.display()
        )),
        Ok(_) => fs::remove_file(path)
            .map(|()| Outcome::Removed)
            .with_context(|| format!("cannot remove {} (run as root: sudo)", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    #[test]
    fn a_second_write_of_the_same_content_is_unchanged_and_leaves_the_file_alone() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("a/b/file");
        assert_eq!(
            write_atomic(&path, b"one", 0o644, "fix").unwrap(),
            Outcome::Written
        );
        let inode = fs::metadata(&path).unwrap().ino();
        assert_eq!(
            write_atomic(&path, b"one", 0o644, "fix").unwrap(),
            Outcome::Unchanged
        );
        assert_eq!(fs::metadata(&path).unwrap().ino(), inode);
        // Other content, or only another mode: written again, by a new file renamed over it.
        assert_eq!(
            write_atomic(&path, b"two", 0o644, "fix").unwrap(),
            Outcome::Written
        );
        assert_ne!(fs::metadata(&path).unwrap().ino(), inode);
        assert_eq!(
            write_atomic(&path, b"two", 0o755, "fix").unwrap(),
            Outcome::Written
        );
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o755);
        assert_eq!(fs::read(&path).unwrap(), b"two");
        // Nothing left beside it.
        let names: Vec<_> = fs::read_dir(t.path().join("a/b")).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn a_mode_is_not_narrowed_by_the_umask() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("shared");
        write_atomic(&path, b"x", 0o664, "fix").unwrap();
        assert!(is_current(&path, b"x", 0o664));
    }

    #[test]
    fn a_failed_write_names_the_file_and_only_a_refusal_the_fix() {
        let t = tempfile::tempdir().unwrap();
        // A file where the directory should be: not a permission problem, so no fix added.
        fs::write(t.path().join("d"), "").unwrap();
        let e = write_atomic(&t.path().join("d/file"), b"x", 0o644, "run as root").unwrap_err();
        let text = format!("{e:#}");
        assert!(
            text.contains("installing ") && text.contains("d/file"),
            "{text}"
        );
        assert!(!text.contains("run as root"), "{text}");
        // sysfs refuses a new directory even to root.
        let e = write_atomic(Path::new("/sys/virtpod/file"), b"x", 0o644, "run as root");
        let text = format!("{:#}", e.unwrap_err());
        assert!(text.starts_with("installing /sys/virtpod/file: "), "{text}");
        assert!(text.ends_with("; fix: run as root"), "{text}");
    }
}
