//! `virtpod install`: our hook definitions (hooks.d/ in the repository, built into the binary)
//! written where podman reads them, with the absolute path of the installed binary.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::hooks::{check, dirs::HookSet, validate::PODMAN_EXTENSION_STAGES};

pub const DEFAULT_HOOKS_DIR: &str = "/usr/share/containers/oci/hooks.d";

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
];

/// One definition with its hook path set to `binary`.
pub fn render(template: &str, binary: &Path) -> Result<String> {
    let mut hook: serde_json::Value = serde_json::from_str(template).context("hooks.d template")?;
    hook["hook"]["path"] = binary.to_string_lossy().into_owned().into();
    Ok(serde_json::to_string_pretty(&hook)? + "\n")
}

/// Copies this binary to `<prefix>/bin/virtpod` when a prefix is given; returns the path the
/// hooks will run.
pub fn place_binary(prefix: Option<&Path>) -> Result<PathBuf> {
    let me = std::env::current_exe().context("finding this binary")?;
    let Some(prefix) = prefix else {
        return Ok(me);
    };
    let prefix = std::env::current_dir()?.join(prefix);
    let target = prefix.join("bin/virtpod");
    if fs::canonicalize(&target).ok() != fs::canonicalize(&me).ok() {
        fs::create_dir_all(prefix.join("bin"))?;
        let tmp = target.with_extension("new");
        fs::copy(&me, &tmp)
            .with_context(|| format!("copying {} to {}", me.display(), tmp.display()))?;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755))?;
        fs::rename(&tmp, &target)?;
        println!("installed {}", target.display());
    }
    Ok(target)
}

/// Writes every definition into `dir` (atomically: podman may be reading it), then checks the
/// directory the way `virtpod hooks check` does. Returns the files written.
pub fn install(dir: &Path, binary: &Path) -> Result<Vec<PathBuf>> {
    if !binary.is_absolute() {
        bail!("the hook path must be absolute, got {}", binary.display());
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = Vec::new();
    for (name, template) in FILES {
        let path = dir.join(name);
        let tmp = dir.join(format!(".{name}.tmp"));
        fs::write(&tmp, render(template, binary)?)
            .with_context(|| format!("writing {}", tmp.display()))?;
        fs::rename(&tmp, &path)?;
        written.push(path);
    }
    let set = HookSet::load(&[dir.to_path_buf()], PODMAN_EXTENSION_STAGES);
    let (report, ok) = check::report(&set);
    if !ok {
        bail!("{} does not pass `virtpod hooks check`; podman would refuse every container:\n{report}", dir.display());
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installed_definitions_pass_the_check_and_run_this_binary() {
        let t = tempfile::tempdir().unwrap();
        let bin = std::env::current_exe().unwrap();
        let written = install(t.path(), &bin).unwrap();
        assert_eq!(written.len(), FILES.len());
        let text = fs::read_to_string(&written[0]).unwrap();
        assert!(text.contains(&*bin.to_string_lossy()), "{text}");
    }
}
