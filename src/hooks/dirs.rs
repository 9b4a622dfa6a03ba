//! Hook directories as podman reads them: several, in increasing precedence; only `*.json`
//! files; a file in a later directory masks the file of the same name in an earlier one; any
//! invalid file makes the whole set invalid (podman then refuses to create containers).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::schema::{self, Hook};
use super::validate::{self, Invalid};

/// One file as read: its hook, or what is wrong with it.
#[derive(Debug)]
pub struct File {
    pub dir: PathBuf,
    pub name: String,
    pub outcome: Outcome,
}

#[derive(Debug)]
pub enum Outcome {
    Valid(Hook),
    /// What is wrong, and whether it is a "does not exist" error (see `first_error`).
    Invalid(String, bool),
    /// Not `*.json`: podman ignores it.
    Ignored,
    /// A `*.json` symlink to nothing: podman skips it silently.
    Dangling,
}

impl File {
    pub fn path(&self) -> PathBuf {
        self.dir.join(&self.name)
    }
}

#[derive(Debug, Default)]
pub struct HookSet {
    /// Every entry of every directory, directories in the given order, names sorted.
    pub files: Vec<File>,
    /// Directories that could not be listed, why, and whether because they do not exist.
    pub unreadable: Vec<(PathBuf, String, bool)>,
    /// The hook in effect per file name: the index into `files` of the last directory's.
    pub effective: BTreeMap<String, usize>,
}

impl HookSet {
    pub fn load(dirs: &[PathBuf], extension_stages: &[&str]) -> HookSet {
        let mut set = HookSet::default();
        for dir in dirs {
            let mut names: Vec<String> = match std::fs::read_dir(dir) {
                Ok(entries) => entries
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect(),
                Err(e) => {
                    let not_found = e.kind() == std::io::ErrorKind::NotFound;
                    set.unreadable.push((dir.clone(), e.to_string(), not_found));
                    continue;
                }
            };
            names.sort();
            for name in names {
                let outcome = read_one(&dir.join(&name), &name, extension_stages);
                if let Outcome::Valid(_) = outcome {
                    set.effective.insert(name.clone(), set.files.len());
                }
                set.files.push(File {
                    dir: dir.clone(),
                    name,
                    outcome,
                });
            }
        }
        set
    }

    /// Files whose hook is masked by a file of the same name in a later directory:
    /// (masked file, the file that wins).
    pub fn masked(&self) -> Vec<(&File, &File)> {
        self.files
            .iter()
            .enumerate()
            .filter_map(|(i, f)| {
                let winner = *self.effective.get(&f.name)?;
                (winner != i && matches!(f.outcome, Outcome::Valid(_) | Outcome::Invalid(..)))
                    .then(|| (f, &self.files[winner]))
            })
            .collect()
    }

    /// The first problem that makes podman refuse containers, as "path: reason".
    ///
    /// podman (containers/common) gathers a directory's errors into one chain rooted at its
    /// first error and ignores the chain when that root is a "does not exist" error: a missing
    /// directory, or a first bad file whose hook path does not exist. Such a directory's bad files
    /// are skipped silently, the rest of its hooks still load.
    pub fn first_error(&self) -> Option<String> {
        for (dir, why, not_found) in &self.unreadable {
            if !not_found {
                return Some(format!("{}: {why}", dir.display()));
            }
        }
        let mut dirs: Vec<&PathBuf> = self.files.iter().map(|f| &f.dir).collect();
        dirs.dedup();
        for dir in dirs {
            let first =
                self.files
                    .iter()
                    .filter(|f| &f.dir == dir)
                    .find_map(|f| match &f.outcome {
                        Outcome::Invalid(why, not_found) => Some((f, why, *not_found)),
                        _ => None,
                    });
            if let Some((f, why, false)) = first {
                return Some(format!("{}: {why}", f.path().display()));
            }
        }
        None
    }

    /// Effective hooks whose names differ only in case: podman's order between them is
    /// undefined (an unstable sort of lower-cased names over a map).
    pub fn case_ties(&self) -> Vec<(&str, &str)> {
        let ordered = self.ordered();
        ordered
            .windows(2)
            .filter(|w| w[0].name.to_lowercase() == w[1].name.to_lowercase())
            .map(|w| (w[0].name.as_str(), w[1].name.as_str()))
            .collect()
    }

    /// The effective hooks in injection order: file names lower-cased, by code point.
    pub fn ordered(&self) -> Vec<&File> {
        let mut v: Vec<&File> = self.effective.values().map(|i| &self.files[*i]).collect();
        v.sort_by_key(|f| f.name.to_lowercase());
        v
    }
}

fn read_one(path: &Path, name: &str, extension_stages: &[&str]) -> Outcome {
    if !name.ends_with(".json") {
        return Outcome::Ignored;
    }
    // The hook's rules for what it reads: a regular file, capped; a FIFO never blocks, a
    // symlink to /dev/zero never fills memory.
    let text = match crate::files::read_config(path, crate::files::CONFIG_LIMIT) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Outcome::Dangling,
        Err(e) => return Outcome::Invalid(format!("cannot read: {e}"), false),
    };
    let hook = match schema::parse(&text) {
        Ok(h) => h,
        Err(e) => return Outcome::Invalid(e.to_string(), false),
    };
    match validate::validate(&hook, extension_stages, |p| Path::new(p).exists()) {
        Ok(()) => Outcome::Valid(hook),
        Err(e @ Invalid::PathMissing(_)) => Outcome::Invalid(e.to_string(), true),
        Err(e) => Outcome::Invalid(e.to_string(), false),
    }
}
