//! Our hook definitions (hooks.d/ in the repository, built into the binary) written into
//! virtpod's own hooks directory with the absolute path of the installed binary, and taken back
//! again: `virtpod uninstall`, and an older install's copies in the directories buildah and
//! CRI-O share with podman. The rest of `virtpod install` is in the folder's mod.rs.

use std::fs;
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::hooks::dirs::{HookSet, Outcome as Loaded};
use crate::hooks::validate::{self, Invalid, PODMAN_EXTENSION_STAGES};
use crate::hooks::{check, schema};
use crate::install::write::{self, write_atomic, Done, Outcome};
use crate::install::Layout;

/// The hooks directories podman shares with buildah (every rootful RUN step), CRI-O and
/// containerd's NRI hook injector: none of them knows the `precreate` stage, and one file that
/// has it fails the whole directory for them ("unknown stage \"precreate\"").
pub const SHARED_DIRS: &[&str] = crate::hooks::DEFAULT_DIRS;

/// The files of hooks.d/, by name.
pub const FILES: &[(&str, &str)] = &[
    (
        "virtpod-devices.json",
        include_str!("../../hooks.d/virtpod-devices.json"),
    ),
    (
        "virtpod-devices-poststop.json",
        include_str!("../../hooks.d/virtpod-devices-poststop.json"),
    ),
    (
        "virtpod-usb-hotplug.json",
        include_str!("../../hooks.d/virtpod-usb-hotplug.json"),
    ),
];

/// One definition with its hook path set to `binary`.
pub fn render(template: &str, binary: &Path) -> Result<String> {
    let mut hook: serde_json::Value = serde_json::from_str(template).context("hooks.d template")?;
    hook["hook"]["path"] = binary.to_string_lossy().into_owned().into();
    Ok(serde_json::to_string_pretty(&hook)? + "\n")
}

/// Writes every definition into the layout's hooks directory, running `binary` (as the host
/// sees it), then checks the directory the way `virtpod hooks check` does: one invalid file
/// and podman refuses every container.
pub fn install(layout: &Layout, binary: &Path) -> Result<Vec<Done>> {
    if !binary.is_absolute() {
        bail!("the hook path must be absolute, got {}", binary.display());
    }
    if let Some(shared) = SHARED_DIRS
        .iter()
        .find(|d| layout.hooks_dir == Path::new(d))
    {
        bail!(
            "--hooks-dir {shared} is read by buildah and CRI-O as well, which fail on our precreate \
             stage (every rootful `podman build` with a RUN step would fail): leave --hooks-dir \
             out (virtpod's own directory, named to podman by a containers.conf.d drop-in), or \
             give a directory of its own"
        );
    }
    let dir = layout.on_disk(&layout.hooks_dir);
    let mut done = Vec::new();
    for (name, template) in FILES {
        let path = dir.join(name);
        let outcome = write_atomic(
            &path,
            render(template, binary)?.as_bytes(),
            0o644,
            "run as root (sudo), or pass --hooks-dir a directory you can write \
             (rootless podman reads it when given as --hooks-dir or hooks_dir in containers.conf)",
        )?;
        done.push(Done {
            path,
            outcome,
            note: format!("runs {}", binary.display()),
        });
    }
    let mut set = HookSet::load(std::slice::from_ref(&dir), PODMAN_EXTENSION_STAGES);
    if let Some(root) = &layout.root {
        done.extend(find_paths_under(&mut set, root));
    }
    let (report, ok) = check::report(&set);
    if !ok {
        bail!("{} does not pass `virtpod hooks check`; podman would refuse every container:\n{report}", dir.display());
    }
    Ok(done)
}

/// Takes our definitions out of the layout's hooks directory, and, when that is virtpod's own
/// (PREFIX/share/virtpod/oci-hooks.d), the directory and PREFIX/share/virtpod once empty.
pub fn uninstall(layout: &Layout) -> Result<Vec<Done>> {
    let dir = layout.on_disk(&layout.hooks_dir);
    let mut done = Vec::new();
    for (name, _) in FILES {
        let path = dir.join(name);
        let outcome = write::remove(&path)?;
        done.push(Done {
            path,
            outcome,
            note: String::new(),
        });
    }
    // Only virtpod's own directory goes, and only once empty (rmdir refuses the rest): a
    // directory given with --hooks-dir may have been there before the install.
    let own = layout
        .prefix
        .join(crate::install::paths::HOOKS_UNDER_PREFIX);
    if layout.hooks_dir == own && fs::remove_dir(&dir).is_ok() {
        done.push(Done {
            path: dir.clone(),
            outcome: Outcome::Removed,
            note: "empty".into(),
        });
        if let Some(parent) = dir.parent() {
            if fs::remove_dir(parent).is_ok() {
                done.push(Done {
                    path: parent.to_path_buf(),
                    outcome: Outcome::Removed,
                    note: "empty".into(),
                });
            }
        }
    }
    Ok(done)
}

/// Our definitions as older installs wrote them into the shared directories (under the
/// layout's root): removed, since buildah and CRI-O fail on them. Only files of our names that
/// run `virtpod hook` are touched; another project's `precreate` file is doctor's to name.
pub fn remove_legacy(layout: &Layout) -> Result<Vec<Done>> {
    let mut done = Vec::new();
    for shared in SHARED_DIRS {
        let dir = layout.on_disk(Path::new(shared));
        for (name, _) in FILES {
            let path = dir.join(name);
            if !is_ours(&path) {
                continue;
            }
            let outcome = write::remove(&path)?;
            done.push(Done {
                path,
                outcome,
                note: "an older install's: buildah and CRI-O fail on its precreate stage".into(),
            });
        }
    }
    Ok(done)
}

/// A regular hook file (never followed through a symlink) that runs `virtpod hook`.
fn is_ours(path: &Path) -> bool {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return false;
    };
    if !meta.is_file() {
        return false;
    }
    let Ok(hook) = crate::files::read_config(path, 64 * 1024)
        .map_err(|e| e.to_string())
        .and_then(|t| schema::parse(&t).map_err(|e| e.to_string()))
    else {
        return false;
    };
    hook.hook.runs_virtpod_hook()
}

/// Under a root, hook paths name the host's files: a path missing here is looked for again
/// under the root, where the host's file is. Another package's hook may run a file outside the
/// directories mounted under the root: that file cannot be checked from here (and podman only
/// skips it if the host lacks it too), so it is left out of the check and reported instead.
fn find_paths_under(set: &mut HookSet, root: &Path) -> Vec<Done> {
    let mut unchecked = Vec::new();
    for file in &mut set.files {
        if !matches!(file.outcome, Loaded::Invalid(_, true)) {
            continue;
        }
        let Ok(hook) = fs::read_to_string(file.path())
            .map_err(|e| e.to_string())
            .and_then(|text| schema::parse(&text).map_err(|e| e.to_string()))
        else {
            continue;
        };
        let under_root = |p: &str| root.join(p.trim_start_matches('/')).exists();
        file.outcome = match validate::validate(&hook, PODMAN_EXTENSION_STAGES, under_root) {
            Ok(()) => Loaded::Valid(hook),
            Err(Invalid::PathMissing(p)) if !FILES.iter().any(|(ours, _)| *ours == file.name) => {
                unchecked.push(Done {
                    path: file.path(),
                    outcome: Outcome::Unchecked,
                    note: format!(
                        "its hook {p} is not under {}; podman skips the file if the host lacks it",
                        root.display()
                    ),
                });
                Loaded::Ignored
            }
            Err(e @ Invalid::PathMissing(_)) => {
                Loaded::Invalid(format!("{e}, not even under {}", root.display()), true)
            }
            Err(e) => Loaded::Invalid(e.to_string(), false),
        };
    }
    unchecked
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A prefix no host has, so that the binary is found under the root or nowhere.
    const PREFIX: &str = "/virtpod-test-prefix";

    fn layout(root: Option<&Path>, hooks: &Path) -> Layout {
        Layout::new(
            root.map(Into::into),
            Some(PREFIX.into()),
            Some(hooks.into()),
            Path::new("/"),
        )
        .unwrap()
    }

    #[test]
    fn installed_definitions_pass_the_check_and_run_this_binary() {
        let t = tempfile::tempdir().unwrap();
        let bin = std::env::current_exe().unwrap();
        let written = install(&layout(None, t.path()), &bin).unwrap();
        assert_eq!(written.len(), FILES.len());
        let text = fs::read_to_string(&written[0].path).unwrap();
        assert!(text.contains(&*bin.to_string_lossy()), "{text}");
    }

    #[test]
    fn under_a_root_the_hook_path_is_the_host_one_and_found_under_the_root() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        let l = layout(Some(root), Path::new("/etc/virtpod/hooks.d"));
        // The binary only under the root, at the path the host will see without the root.
        let bin = root.join("virtpod-test-prefix/bin/virtpod");
        fs::create_dir_all(bin.parent().unwrap()).unwrap();
        fs::write(&bin, "").unwrap();
        let done = install(&l, &l.binary()).unwrap();
        assert_eq!(
            done[0].path,
            root.join("etc/virtpod/hooks.d/virtpod-devices.json")
        );
        let hook: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&done[0].path).unwrap()).unwrap();
        assert_eq!(hook["hook"]["path"], format!("{PREFIX}/bin/virtpod"));
        assert!(done.iter().all(|d| d.outcome == Outcome::Written));
        let again = install(&l, &l.binary()).unwrap();
        assert!(again.iter().all(|d| d.outcome == Outcome::Unchanged));

        // Another package's hook running a file outside the root: reported, not a failure.
        let other = root.join("etc/virtpod/hooks.d/other.json");
        let def = FILES[0].1.replace("/usr/bin/virtpod", "/opt/other/hook");
        fs::write(&other, def).unwrap();
        let again = install(&l, &l.binary()).unwrap();
        let n = FILES.len();
        assert_eq!(again.len(), n + 1);
        assert_eq!(again[n].path, other);
        assert_eq!(again[n].outcome, Outcome::Unchecked);
        assert!(
            again[n].to_string().contains("/opt/other/hook"),
            "{}",
            again[n]
        );
        fs::remove_file(&other).unwrap();

        // Our binary neither on the host nor under the root fails the check, naming both.
        fs::remove_file(&bin).unwrap();
        let e = install(&l, &l.binary()).unwrap_err().to_string();
        assert!(e.contains("not even under"), "{e}");
    }
}
