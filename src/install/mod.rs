//! `virtpod install`: virtpod's host side put onto a host, from the host itself or from an image
//! that has the host's directories mounted under a root (DESTDIR): the binary at
//! PREFIX/bin/virtpod ([`binary`]), our hook definitions in podman's hooks directory
//! ([`crate::hook::install`]), man pages and shell completions under PREFIX/share ([`docs`]).
//! [`paths`] maps each file to where it is written; [`write`] writes it only when it changed,
//! atomically.

pub mod binary;
pub mod docs;
pub mod paths;
pub mod write;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

pub use paths::Layout;
pub use write::{Done, Outcome};

/// What `virtpod install` was asked to do.
#[derive(Debug, Clone)]
pub struct Request {
    pub root: Option<PathBuf>,
    pub prefix: Option<PathBuf>,
    pub hooks_dir: PathBuf,
    /// The binary to copy; see [`binary::choose`].
    pub binary: Option<PathBuf>,
    /// Man pages and completions only: no binary, no hooks.
    pub docs_only: bool,
}

/// Installs what `req` asks for, reporting each file to `out` as it is done. `cli` is the
/// binary's clap definition, for the man pages and completions.
pub fn run(req: Request, cli: &clap::Command, out: &mut dyn FnMut(Done)) -> Result<()> {
    let cwd = std::env::current_dir().context("finding the current directory")?;
    // With neither, the hooks run this binary where it is, as they always did.
    let placed = req.root.is_some() || req.prefix.is_some();
    if req.binary.is_some() && !placed {
        bail!("--binary needs --prefix or --root: it is the file copied to PREFIX/bin/virtpod");
    }
    let layout = Layout::new(req.root, req.prefix, req.hooks_dir, &cwd)?;
    if !req.docs_only {
        let this = std::env::current_exe().context("finding this binary")?;
        let hook_binary = if placed {
            let source =
                binary::choose(req.binary.as_deref(), Path::new(binary::HOST_BUILD), &this);
            out(binary::place(&layout, &source)?);
            layout.binary()
        } else {
            this
        };
        for done in crate::hook::install::install(&layout, &hook_binary)? {
            out(done);
        }
    }
    match docs::install(&layout, cli, out) {
        // Nobody asked for them by name: a user installing the hooks for rootless podman into a
        // directory of their own must not fail on /usr/local.
        Err(e) if !placed && !req.docs_only => {
            out(Done {
                path: layout.on_disk(&layout.prefix.join("share")),
                outcome: Outcome::Skipped,
                note: format!(
                    "man pages and completions: {e:#}; or, for yourself: \
                     virtpod install --docs-only --prefix ~/.local"
                ),
            });
            Ok(())
        }
        result => result,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(root: Option<&Path>, binary: Option<&Path>) -> Request {
        Request {
            root: root.map(Into::into),
            prefix: None,
            hooks_dir: "/etc/containers/oci/hooks.d".into(),
            binary: binary.map(Into::into),
            docs_only: false,
        }
    }

    fn run_lines(req: Request) -> Result<Vec<Done>> {
        let cli = clap::Command::new("virtpod").subcommand(clap::Command::new("hook"));
        let mut lines = Vec::new();
        run(req, &cli, &mut |d| lines.push(d))?;
        Ok(lines)
    }

    #[test]
    fn under_a_root_everything_is_written_once_and_the_hooks_run_the_host_path() {
        let t = tempfile::tempdir().unwrap();
        let (root, build) = (t.path().join("host"), t.path().join("build"));
        std::fs::write(&build, "a static build").unwrap();
        let first = run_lines(request(Some(&root), Some(&build))).unwrap();
        let shown: Vec<String> = first.iter().map(|d| d.to_string()).collect();
        assert_eq!(
            shown[..4],
            [
                format!(
                    "wrote {}/usr/local/bin/virtpod (copy of {}, --binary)",
                    root.display(),
                    build.display()
                ),
                format!(
                    "wrote {}/etc/containers/oci/hooks.d/virtpod-devices.json (runs /usr/local/bin/virtpod)",
                    root.display()
                ),
                format!(
                    "wrote {}/etc/containers/oci/hooks.d/virtpod-devices-poststop.json (runs /usr/local/bin/virtpod)",
                    root.display()
                ),
                format!(
                    "wrote {}/etc/containers/oci/hooks.d/virtpod-usb-hotplug.json (runs /usr/local/bin/virtpod)",
                    root.display()
                ),
            ]
        );
        // virtpod.1, virtpod-hook.1, bash, zsh, fish.
        assert_eq!(first.len(), 4 + 2 + 3, "{shown:#?}");
        let again = run_lines(request(Some(&root), Some(&build))).unwrap();
        assert_eq!(again.len(), first.len());
        assert!(
            again.iter().all(|d| d.outcome == Outcome::Unchanged),
            "{again:#?}"
        );
    }

    #[test]
    fn binary_without_a_place_to_copy_it_is_refused() {
        let e = run_lines(request(None, Some(Path::new("/bin/true")))).unwrap_err();
        assert!(
            e.to_string().contains("--binary needs --prefix or --root"),
            "{e}"
        );
    }

    #[test]
    fn docs_only_writes_no_binary_and_no_hooks() {
        let t = tempfile::tempdir().unwrap();
        let mut req = request(Some(t.path()), None);
        req.docs_only = true;
        let lines = run_lines(req).unwrap();
        assert_eq!(lines.len(), 2 + 3);
        assert!(!t.path().join("usr/local/bin").exists());
        assert!(!t.path().join("etc").exists());
    }
}
