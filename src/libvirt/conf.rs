//! Editing libvirt's configuration files (qemu.conf, libvirtd.conf, …) without losing a user's
//! own settings: virtpod owns one marked block at the end of the file and rewrites only that.
//! A key the user set outside the block is theirs; virtpod leaves it and says so.

use std::path::Path;

use anyhow::{Context, Result};

const BEGIN: &str = "# BEGIN virtpod: written by `virtpod init` at every start; set these keys above this block to override";
const END: &str = "# END virtpod";

/// One `key = value` line; `value` is already in libvirt's syntax (`"text"`, `0`, `[ ]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub key: &'static str,
    pub value: String,
}

impl Setting {
    pub fn new(key: &'static str, value: impl Into<String>) -> Self {
        Setting {
            key,
            value: value.into(),
        }
    }
}

/// The result of merging: the new text and the keys left to the user.
#[derive(Debug, PartialEq, Eq)]
pub struct Merged {
    pub text: String,
    pub user_kept: Vec<&'static str>,
}

pub fn merge(existing: &str, settings: &[Setting]) -> Merged {
    let mut user_lines: Vec<&str> = Vec::new();
    let mut in_block = false;
    for line in existing.lines() {
        if line == BEGIN {
            in_block = true;
        } else if in_block && line == END {
            in_block = false;
        } else if !in_block {
            user_lines.push(line);
        }
    }
    while user_lines.last().is_some_and(|l| l.trim().is_empty()) {
        user_lines.pop();
    }
    let user_keys: Vec<&str> = user_lines.iter().filter_map(|l| key_of(l)).collect();

    let mut text = String::new();
    for line in &user_lines {
        text.push_str(line);
        text.push('\n');
    }
    let mut user_kept = Vec::new();
    let ours: Vec<&Setting> = settings
        .iter()
        .filter(|s| {
            let theirs = user_keys.contains(&s.key);
            if theirs {
                user_kept.push(s.key);
            }
            !theirs
        })
        .collect();
    if !ours.is_empty() {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(BEGIN);
        text.push('\n');
        for s in ours {
            text.push_str(&format!("{} = {}\n", s.key, s.value));
        }
        text.push_str(END);
        text.push('\n');
    }
    Merged { text, user_kept }
}

/// The key an active (uncommented) `key = value` line sets.
fn key_of(line: &str) -> Option<&str> {
    let (key, _) = line.trim_start().split_once('=')?;
    let key = key.trim_end();
    let valid = !key.is_empty()
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !key.starts_with(|c: char| c.is_ascii_digit());
    valid.then_some(key)
}

/// What `apply` did to a file.
#[derive(Debug, PartialEq, Eq)]
pub struct Applied {
    /// Keys the user set in the file, left as they are.
    pub user_kept: Vec<&'static str>,
    /// The file is a mount point (a user's own file bind-mounted into the container): it is
    /// used as it is, never replaced nor edited, since it belongs to whoever mounted it.
    pub used_as_is: bool,
    /// With `used_as_is`: our keys the file does not set.
    pub missing: Vec<&'static str>,
}

/// Merge `settings` into the file at `path` (created when missing); writes only on change, by
/// writing beside it and renaming, so a reader never sees half a file.
pub fn apply(path: &Path, settings: &[Setting]) -> Result<Applied> {
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let merged = merge(&existing, settings);
    let mut applied = Applied {
        user_kept: merged.user_kept,
        used_as_is: false,
        missing: Vec::new(),
    };
    if merged.text != existing {
        let tmp = path.with_extension("virtpod-tmp");
        std::fs::write(&tmp, &merged.text).with_context(|| format!("writing {}", tmp.display()))?;
        if let Err(e) = std::fs::rename(&tmp, path) {
            let _ = std::fs::remove_file(&tmp);
            // EBUSY: the target is a mount point, the mark of a bind-mounted file.
            if e.raw_os_error() != Some(nix::libc::EBUSY) {
                return Err(e).with_context(|| format!("replacing {}", path.display()));
            }
            applied.used_as_is = true;
            applied.missing = settings
                .iter()
                .map(|s| s.key)
                .filter(|k| !applied.user_kept.contains(k))
                .collect();
        }
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Vec<Setting> {
        vec![
            Setting::new("namespaces", "[ ]"),
            Setting::new("remember_owner", "0"),
        ]
    }

    #[test]
    fn appends_a_block_and_is_idempotent() {
        let original = "# stock comment\n#namespaces = [ \"mount\" ]\nuser = \"root\"\n";
        let once = merge(original, &settings());
        assert!(once.text.starts_with(original));
        assert!(once.text.contains("namespaces = [ ]\nremember_owner = 0\n"));
        assert!(once.user_kept.is_empty());
        let twice = merge(&once.text, &settings());
        assert_eq!(twice.text, once.text);
    }

    #[test]
    fn a_users_own_setting_wins() {
        let original = "namespaces = [ \"mount\" ]\n";
        let m = merge(original, &settings());
        assert_eq!(m.user_kept, vec!["namespaces"]);
        assert!(m.text.contains("namespaces = [ \"mount\" ]"));
        assert!(!m.text.contains("namespaces = [ ]"));
        assert!(m.text.contains("remember_owner = 0"));
    }

    #[test]
    fn block_is_replaced_not_duplicated_when_settings_change() {
        let first = merge("x = 1\n", &settings()).text;
        let second = merge(&first, &[Setting::new("remember_owner", "1")]).text;
        assert_eq!(second.matches(BEGIN).count(), 1);
        assert!(second.contains("remember_owner = 1") && !second.contains("namespaces"));
        assert!(second.starts_with("x = 1\n"));
    }

    #[test]
    fn apply_writes_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("qemu.conf");
        let applied = apply(&path, &settings()).unwrap();
        assert!(!applied.used_as_is);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("remember_owner = 0"));
        apply(&path, &settings()).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    }
}
