//! podman's containers.conf, as far as virtpod's hooks are concerned: which files podman reads,
//! the `hooks_dir` they set, and the drop-in that adds virtpod's own hooks directory to it.
//!
//! Why a directory of our own: the hook's main stage, `precreate`, is podman's extension. buildah
//! (every rootful `podman build` with a RUN step), CRI-O and containerd's NRI hook injector read
//! /usr/share/containers/oci/hooks.d and /etc/containers/oci/hooks.d too, know no `precreate`,
//! and fail on the whole directory when one file has it ("unknown stage"). podman alone reads
//! containers.conf's `hooks_dir`; none of the others do. So the definitions live in
//! PREFIX/share/virtpod/oci-hooks.d, and a drop-in names that directory beside the ones podman
//! read before. The list is written whole: `{append=true}` is podman >= 4.8 only, and a
//! containers.conf that podman 4.3 cannot decode fails every podman command.

use std::path::{Path, PathBuf};

/// Where podman (>= 3.4, 4.3 included) reads drop-ins, after containers.conf itself.
pub const DROP_IN_DIR: &str = "/etc/containers/containers.conf.d";
/// Ours: early in the order, so an admin's later drop-in can still override it.
pub const DROP_IN: &str = "/etc/containers/containers.conf.d/50-virtpod-hooks.conf";
/// podman's built-in `hooks_dir` (containers/common's default).
pub const PODMAN_DEFAULT: &str = "/usr/share/containers/oci/hooks.d";
/// The first line of our drop-in: how uninstall and doctor know it is ours.
pub const MARK: &str = "# Written by `virtpod install`";
/// The drop-in's line when `virtpod install` made containers.conf.d for it: `virtpod uninstall`
/// then takes the directory back too, when nothing else is in it.
pub const MADE_DIR: &str =
    "# virtpod install made this directory for this file; virtpod uninstall removes it when empty.";

/// The system-wide files podman reads when CONTAINERS_CONF is unset, in order, as the host
/// sees them; `on_disk` maps a host path to where it is read (under an install's root).
pub fn system_files(on_disk: impl Fn(&Path) -> PathBuf) -> Vec<PathBuf> {
    let mut files = vec![
        PathBuf::from("/usr/share/containers/containers.conf"),
        PathBuf::from("/etc/containers/containers.conf"),
    ];
    files.extend(conf_d(Path::new(DROP_IN_DIR), &on_disk));
    files
}

/// The `*.conf` files of a drop-in directory, sorted as podman reads them, as the host sees them.
pub fn conf_d(dir: &Path, on_disk: impl Fn(&Path) -> PathBuf) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(on_disk(dir))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| dir.join(e.file_name()))
                .filter(|p| p.extension().is_some_and(|e| e == "conf"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// `[engine] hooks_dir` of one containers.conf text, when it sets it.
pub fn hooks_dir(text: &str) -> Option<Vec<String>> {
    string_list(text, "engine", "hooks_dir")
}

/// A list of strings, `[table] key`, of one containers.conf text, when it sets it.
pub fn string_list(text: &str, table: &str, key: &str) -> Option<Vec<String>> {
    let v: toml::Value = toml::from_str(text).ok()?;
    let list = v.get(table)?.get(key)?.as_array()?;
    Some(
        list.iter()
            .filter_map(|s| s.as_str().map(String::from))
            .collect(),
    )
}

/// The `hooks_dir` podman ends up with from `files` (a later file overrides an earlier one),
/// with the file that set it; podman's default when none does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HooksDirs {
    pub dirs: Vec<String>,
    pub set_by: Option<PathBuf>,
}

/// `read` gives a file's text (None: absent or unreadable, as podman skips it).
pub fn effective(files: &[PathBuf], read: impl Fn(&Path) -> Option<String>) -> HooksDirs {
    let mut found = HooksDirs {
        dirs: vec![PODMAN_DEFAULT.to_string()],
        set_by: None,
    };
    for f in files {
        if let Some(dirs) = read(f).as_deref().and_then(hooks_dir) {
            found = HooksDirs {
                dirs,
                set_by: Some(f.clone()),
            };
        }
    }
    found
}

/// Our drop-in: the directories podman read before it (`before`), then ours if missing.
pub fn drop_in(before: &[String], ours: &Path) -> String {
    let ours = ours.display().to_string();
    let mut dirs: Vec<&str> = before.iter().map(String::as_str).collect();
    if !dirs.contains(&ours.as_str()) {
        dirs.push(&ours);
    }
    let list = dirs
        .iter()
        .map(|d| toml::Value::String(d.to_string()).to_string())
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "{MARK}: podman reads virtpod's OCI hooks from a directory of their own, which buildah \
         and CRI-O never read (its `precreate` stage is podman's alone). The list repeats the \
         directories podman read before; `virtpod uninstall` removes this file.\n\
         [engine]\nhooks_dir = [{list}]\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_file_that_sets_hooks_dir_wins_and_none_means_podmans_default() {
        let files: Vec<PathBuf> = ["/a.conf", "/b.conf", "/c.conf"]
            .iter()
            .map(PathBuf::from)
            .collect();
        let none = effective(&files, |_| Some("[engine]\nruntime = \"runc\"\n".into()));
        assert_eq!(none.dirs, [PODMAN_DEFAULT]);
        assert_eq!(none.set_by, None);
        let set = effective(&files, |p| match p.to_str() {
            Some("/a.conf") => Some("[engine]\nhooks_dir = [\"/x\"]\n".into()),
            Some("/b.conf") => Some("[engine]\nhooks_dir = [\"/y\", \"/z\"]\n".into()),
            _ => None,
        });
        assert_eq!(set.dirs, ["/y", "/z"]);
        assert_eq!(set.set_by, Some(PathBuf::from("/b.conf")));
    }

    #[test]
    fn the_drop_in_keeps_what_podman_read_and_adds_ours_once() {
        let ours = Path::new("/usr/local/share/virtpod/oci-hooks.d");
        let text = drop_in(&[PODMAN_DEFAULT.to_string()], ours);
        assert!(text.starts_with(MARK), "{text}");
        assert_eq!(
            hooks_dir(&text).unwrap(),
            [PODMAN_DEFAULT, "/usr/local/share/virtpod/oci-hooks.d"]
        );
        let again = drop_in(&hooks_dir(&text).unwrap(), ours);
        assert_eq!(hooks_dir(&again), hooks_dir(&text));
        // A path with a quote stays one TOML string.
        let odd = drop_in(&[], Path::new("/opt/a \"b\"/hooks"));
        assert_eq!(hooks_dir(&odd).unwrap(), ["/opt/a \"b\"/hooks"]);
    }

    #[test]
    fn drop_ins_are_read_in_name_order() {
        let t = tempfile::tempdir().unwrap();
        for name in ["90-z.conf", "10-a.conf", "README"] {
            std::fs::write(t.path().join(name), "").unwrap();
        }
        let files = conf_d(Path::new("/etc/x"), |p| {
            t.path().join(p.strip_prefix("/etc/x").unwrap())
        });
        assert_eq!(
            files,
            [
                PathBuf::from("/etc/x/10-a.conf"),
                PathBuf::from("/etc/x/90-z.conf")
            ]
        );
    }
}
