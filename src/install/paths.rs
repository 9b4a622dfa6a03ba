//! Where `virtpod install` puts each file. Two views of one path: the host's (what podman and
//! the shell will see, and what goes into files) and the one written to, under `--root`
//! (DESTDIR), which is where a container has the host's directories mounted.

use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Result};
use clap_complete::aot::Shell;

/// Where the binary, man pages and completions go when no `--prefix` is given.
pub const DEFAULT_PREFIX: &str = "/usr/local";

/// virtpod's own hooks directory under the prefix when no `--hooks-dir` is given: read by
/// podman through containers.conf's `hooks_dir`, by nothing else (containers_conf.rs says why).
pub const HOOKS_UNDER_PREFIX: &str = "share/virtpod/oci-hooks.d";

/// The shells we write completions for, and where each one looks under a prefix.
pub const COMPLETIONS: &[(Shell, &str)] = &[
    (Shell::Bash, "share/bash-completion/completions/virtpod"),
    (Shell::Zsh, "share/zsh/site-functions/_virtpod"),
    (Shell::Fish, "share/fish/vendor_completions.d/virtpod.fish"),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Everything is written under this directory; `None` is the host itself.
    pub root: Option<PathBuf>,
    /// As the host sees it.
    pub prefix: PathBuf,
    /// As the host sees it.
    pub hooks_dir: PathBuf,
}

impl Layout {
    /// Relative paths are taken from `cwd` on the host itself. Under a root they are refused:
    /// they name the host's paths, and the host has no current directory to resolve them from.
    /// The hooks directory defaults to PREFIX/share/virtpod/oci-hooks.d.
    pub fn new(
        root: Option<PathBuf>,
        prefix: Option<PathBuf>,
        hooks_dir: Option<PathBuf>,
        cwd: &Path,
    ) -> Result<Layout> {
        let prefix = prefix.unwrap_or_else(|| DEFAULT_PREFIX.into());
        let hooks_dir = hooks_dir.unwrap_or_else(|| prefix.join(HOOKS_UNDER_PREFIX));
        if root.is_some() {
            for (flag, path) in [("--prefix", &prefix), ("--hooks-dir", &hooks_dir)] {
                if !path.is_absolute() {
                    bail!("{flag} {} must be absolute with --root: it is the path the host sees, written under the root", path.display());
                }
                if path.components().any(|c| c == Component::ParentDir) {
                    bail!(
                        "{flag} {} must not contain `..` with --root: it would leave the root",
                        path.display()
                    );
                }
            }
        }
        Ok(Layout {
            prefix: cwd.join(prefix),
            hooks_dir: cwd.join(hooks_dir),
            root,
        })
    }

    /// Where the host's `path` is written: under the root, if any.
    pub fn on_disk(&self, path: &Path) -> PathBuf {
        match &self.root {
            None => path.to_path_buf(),
            Some(root) => root.join(path.strip_prefix("/").unwrap_or(path)),
        }
    }

    /// The installed binary, as the host sees it: the path the hooks run.
    pub fn binary(&self) -> PathBuf {
        self.prefix.join("bin/virtpod")
    }

    /// Section 1 of the manual under the prefix, as the host sees it.
    pub fn man1(&self) -> PathBuf {
        self.prefix.join("share/man/man1")
    }

    /// The completion file of each shell, as the host sees it.
    pub fn completions(&self) -> Vec<(Shell, PathBuf)> {
        COMPLETIONS
            .iter()
            .map(|(shell, rel)| (*shell, self.prefix.join(rel)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(root: Option<&str>, prefix: Option<&str>, hooks: &str) -> Result<Layout> {
        Layout::new(
            root.map(PathBuf::from),
            prefix.map(PathBuf::from),
            Some(hooks.into()),
            Path::new("/work"),
        )
    }

    #[test]
    fn the_hooks_directory_defaults_to_virtpods_own_under_the_prefix() {
        let l = Layout::new(Some("/host".into()), None, None, Path::new("/work")).unwrap();
        assert_eq!(
            l.hooks_dir,
            Path::new("/usr/local/share/virtpod/oci-hooks.d")
        );
        let l = Layout::new(None, Some("/opt/vp".into()), None, Path::new("/work")).unwrap();
        assert_eq!(l.hooks_dir, Path::new("/opt/vp/share/virtpod/oci-hooks.d"));
    }

    #[test]
    fn under_a_root_files_are_written_below_it_and_name_the_host_paths() {
        let l = layout(
            Some("/host"),
            Some("/usr/local"),
            "/etc/containers/oci/hooks.d",
        )
        .unwrap();
        assert_eq!(l.binary(), Path::new("/usr/local/bin/virtpod"));
        assert_eq!(
            l.on_disk(&l.binary()),
            Path::new("/host/usr/local/bin/virtpod")
        );
        assert_eq!(
            l.on_disk(&l.hooks_dir),
            Path::new("/host/etc/containers/oci/hooks.d")
        );
        assert_eq!(
            l.on_disk(&l.man1()),
            Path::new("/host/usr/local/share/man/man1")
        );
        let files: Vec<PathBuf> = l.completions().iter().map(|(_, p)| l.on_disk(p)).collect();
        assert_eq!(
            files,
            [
                "/host/usr/local/share/bash-completion/completions/virtpod",
                "/host/usr/local/share/zsh/site-functions/_virtpod",
                "/host/usr/local/share/fish/vendor_completions.d/virtpod.fish",
            ]
            .map(PathBuf::from)
        );
    }

    #[test]
    fn a_relative_root_is_where_files_go_and_the_prefix_defaults_to_usr_local() {
        let l = layout(Some("out"), None, "/usr/share/containers/oci/hooks.d").unwrap();
        assert_eq!(l.binary(), Path::new("/usr/local/bin/virtpod"));
        assert_eq!(
            l.on_disk(&l.binary()),
            Path::new("out/usr/local/bin/virtpod")
        );
    }

    #[test]
    fn without_a_root_paths_are_the_host_ones_and_relative_ones_start_at_the_cwd() {
        let l = layout(None, Some("opt"), "hooks.d").unwrap();
        assert_eq!(l.binary(), Path::new("/work/opt/bin/virtpod"));
        assert_eq!(l.on_disk(&l.binary()), l.binary());
        assert_eq!(l.on_disk(&l.hooks_dir), Path::new("/work/hooks.d"));
        assert_eq!(
            layout(None, None, "/h").unwrap().man1(),
            Path::new("/usr/local/share/man/man1")
        );
    }

    #[test]
    fn under_a_root_host_paths_must_be_absolute_and_stay_inside() {
        let e = layout(Some("/host"), Some("usr/local"), "/h").unwrap_err();
        assert!(
            e.to_string()
                .contains("--prefix usr/local must be absolute"),
            "{e}"
        );
        let e = layout(Some("/host"), None, "hooks.d").unwrap_err();
        assert!(
            e.to_string()
                .contains("--hooks-dir hooks.d must be absolute"),
            "{e}"
        );
        let e = layout(Some("/host"), Some("/usr/../../etc"), "/h").unwrap_err();
        assert!(e.to_string().contains("`..`"), "{e}");
    }
}
