//! `virtpod install`: virtpod's host side put onto a host, from the host itself or from an image
//! that has the host's directories mounted under a root (DESTDIR): the binary at
//! PREFIX/bin/virtpod ([`binary`]), our hook definitions in virtpod's own hooks directory
//! ([`hook_files`]) and the containers.conf.d drop-in that names it to podman
//! ([`containers_conf`]), man pages and shell completions under PREFIX/share ([`docs`]).
//! `virtpod uninstall` takes back the same list, computed from the same options.
//! [`paths`] maps each file to where it is written; [`write`] writes it only when it changed,
//! atomically.

pub mod binary;
pub mod containers_conf;
pub mod docs;
pub mod hook_files;
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
    /// None: PREFIX/share/virtpod/oci-hooks.d.
    pub hooks_dir: Option<PathBuf>,
    /// The binary to copy; see [`binary::choose`].
    pub binary: Option<PathBuf>,
    /// Man pages and completions only: no binary, no hooks.
    pub docs_only: bool,
    /// Change the host's podman configuration: our containers.conf.d drop-in, and an older
    /// install's files out of the shared hooks directories. Off for a podman told where the
    /// hooks are some other way (CONTAINERS_CONF, --hooks-dir).
    pub host_conf: bool,
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
        for done in crate::install::hook_files::install(&layout, &hook_binary)? {
            out(done);
        }
        if req.host_conf && !system_conf_is_ours(&layout) {
            // A user's own install: the system's podman configuration is root's.
            out(Done {
                path: containers_conf::DROP_IN.into(),
                outcome: Outcome::Skipped,
                note: format!(
                    "not root: name {} in hooks_dir of ~/.config/containers/containers.conf \
                     (rootless podman), or run as root",
                    layout.hooks_dir.display()
                ),
            });
        } else if req.host_conf {
            out(write_drop_in(&layout)?);
            for done in crate::install::hook_files::remove_legacy(&layout)? {
                out(done);
            }
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

/// Whether this install writes podman's system-wide configuration (the drop-in, an older
/// install's files): as root, or under a root; a user's own install leaves it to root.
fn system_conf_is_ours(layout: &Layout) -> bool {
    layout.root.is_some() || nix::unistd::geteuid().is_root()
}

/// A containers.conf file as read here (under the root), refused unless a small regular file.
fn read_conf(layout: &Layout, path: &Path) -> Option<String> {
    crate::files::read_config(&layout.on_disk(path), crate::files::CONFIG_LIMIT).ok()
}

/// Our drop-in, naming the layout's hooks directory after the directories podman read before
/// it. A drop-in that sorts after ours and sets `hooks_dir` without our directory would hide
/// it: said in the note (and by `virtpod doctor`).
fn write_drop_in(layout: &Layout) -> Result<Done> {
    use containers_conf::{conf_d, effective, system_files, DROP_IN, DROP_IN_DIR};
    let on_disk = |p: &Path| layout.on_disk(p);
    let ours = Path::new(DROP_IN);
    let read = |p: &Path| read_conf(layout, p);
    let before: Vec<PathBuf> = system_files(on_disk)
        .into_iter()
        .filter(|f| f.as_path() < ours || !f.starts_with(DROP_IN_DIR))
        .collect();
    let mut text = containers_conf::drop_in(&effective(&before, read).dirs, &layout.hooks_dir);
    // Made by us now, or by us before (a re-install keeps the line).
    let dir = layout.on_disk(Path::new(DROP_IN_DIR));
    if !dir.exists() || read(ours).is_some_and(|t| t.contains(containers_conf::MADE_DIR)) {
        text.push_str(containers_conf::MADE_DIR);
        text.push('\n');
    }
    let path = layout.on_disk(ours);
    let outcome = write::write_atomic(
        &path,
        text.as_bytes(),
        0o644,
        "run as root (sudo), or pass --no-host-conf and name the hooks directory to podman \
         yourself (hooks_dir in containers.conf, or podman --hooks-dir)",
    )?;
    let later = conf_d(Path::new(DROP_IN_DIR), on_disk)
        .into_iter()
        .filter(|f| f.as_path() > ours)
        .find(|f| {
            read(f)
                .as_deref()
                .and_then(containers_conf::hooks_dir)
                .is_some_and(|d| !d.iter().any(|d| Path::new(d) == layout.hooks_dir))
        });
    let note = match later {
        Some(f) => format!(
            "podman reads {} through hooks_dir; but {} sets hooks_dir after it without that \
             directory, so podman will not run the hook: add it there",
            layout.hooks_dir.display(),
            f.display()
        ),
        None => format!(
            "podman reads {} through hooks_dir",
            layout.hooks_dir.display()
        ),
    };
    Ok(Done {
        path,
        outcome,
        note,
    })
}

/// `virtpod uninstall`: takes back what `run` writes for the same request, and nothing else,
/// by the same rules: the binary only when `run` placed it, the drop-in and an older install's
/// files only where `run` would have written them (as root, or under a root) and the drop-in
/// only when it is ours and names this hooks directory, the man pages and completions leniently
/// where `run` skips them.
pub fn uninstall(req: Request, cli: &clap::Command, out: &mut dyn FnMut(Done)) -> Result<()> {
    let cwd = std::env::current_dir().context("finding the current directory")?;
    let placed = req.root.is_some() || req.prefix.is_some();
    let layout = Layout::new(req.root, req.prefix, req.hooks_dir, &cwd)?;
    let take = |path: PathBuf, out: &mut dyn FnMut(Done)| -> Result<()> {
        let path = layout.on_disk(&path);
        let outcome = write::remove(&path)?;
        out(Done {
            path,
            outcome,
            note: String::new(),
        });
        Ok(())
    };
    if !req.docs_only {
        if placed {
            take(layout.binary(), out)?;
        }
        for done in crate::install::hook_files::uninstall(&layout)? {
            out(done);
        }
        if req.host_conf && system_conf_is_ours(&layout) {
            let drop_in = layout.on_disk(Path::new(containers_conf::DROP_IN));
            let text = read_conf(&layout, Path::new(containers_conf::DROP_IN)).unwrap_or_default();
            let names_ours = containers_conf::hooks_dir(&text)
                .is_some_and(|dirs| dirs.iter().any(|d| Path::new(d) == layout.hooks_dir));
            if text.starts_with(containers_conf::MARK) && names_ours {
                take(containers_conf::DROP_IN.into(), out)?;
                // The directory install made for it, if nothing else is in it now.
                let dir = layout.on_disk(Path::new(containers_conf::DROP_IN_DIR));
                if text.contains(containers_conf::MADE_DIR) && std::fs::remove_dir(&dir).is_ok() {
                    out(Done {
                        path: dir,
                        outcome: Outcome::Removed,
                        note: "empty".into(),
                    });
                }
            } else if drop_in.exists() {
                out(Done {
                    path: drop_in,
                    outcome: Outcome::Skipped,
                    note: format!(
                        "not the drop-in virtpod install wrote for {}: left as it is",
                        layout.hooks_dir.display()
                    ),
                });
            }
            for done in crate::install::hook_files::remove_legacy(&layout)? {
                out(done);
            }
        }
    }
    let mut docs = Vec::new();
    for (name, _) in docs::man_pages(cli.clone())? {
        docs.push(layout.man1().join(name));
    }
    // Pages of commands this build lacks: the image's own binary installs the systemd
    // variant's (virtpod-systemd-env.1, …), the host build that uninstalls has none.
    for name in docs::generated_pages(&layout.on_disk(&layout.man1())) {
        let page = layout.man1().join(name);
        if !docs.contains(&page) {
            docs.push(page);
        }
    }
    docs.extend(layout.completions().into_iter().map(|(_, file)| file));
    for file in docs {
        match take(file.clone(), out) {
            // As `run` skips what it cannot write there, this leaves what it cannot remove.
            Err(e) if !placed && !req.docs_only => out(Done {
                path: layout.on_disk(&file),
                outcome: Outcome::Skipped,
                note: format!("{e:#}"),
            }),
            result => result?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(root: Option<&Path>, binary: Option<&Path>) -> Request {
        Request {
            root: root.map(Into::into),
            prefix: None,
            hooks_dir: None,
            binary: binary.map(Into::into),
            docs_only: false,
            host_conf: true,
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
        let r = root.display();
        let own = format!("{r}/usr/local/share/virtpod/oci-hooks.d");
        let first = run_lines(request(Some(&root), Some(&build))).unwrap();
        let shown: Vec<String> = first.iter().map(|d| d.to_string()).collect();
        assert_eq!(
            shown[..5],
            [
                format!(
                    "wrote {r}/usr/local/bin/virtpod (copy of {}, --binary)",
                    build.display()
                ),
                format!("wrote {own}/virtpod-devices.json (runs /usr/local/bin/virtpod)"),
                format!("wrote {own}/virtpod-devices-poststop.json (runs /usr/local/bin/virtpod)"),
                format!("wrote {own}/virtpod-usb-hotplug.json (runs /usr/local/bin/virtpod)"),
                format!(
                    "wrote {r}/etc/containers/containers.conf.d/50-virtpod-hooks.conf \
                     (podman reads /usr/local/share/virtpod/oci-hooks.d through hooks_dir)"
                ),
            ]
        );
        let drop_in = std::fs::read_to_string(
            root.join("etc/containers/containers.conf.d/50-virtpod-hooks.conf"),
        )
        .unwrap();
        assert_eq!(
            containers_conf::hooks_dir(&drop_in).unwrap(),
            [
                "/usr/share/containers/oci/hooks.d",
                "/usr/local/share/virtpod/oci-hooks.d"
            ]
        );
        // virtpod.1, virtpod-hook.1, bash, zsh, fish.
        assert_eq!(first.len(), 5 + 2 + 3, "{shown:#?}");
        let again = run_lines(request(Some(&root), Some(&build))).unwrap();
        assert_eq!(again.len(), first.len());
        assert!(
            again.iter().all(|d| d.outcome == Outcome::Unchanged),
            "{again:#?}"
        );
        let uninstall_lines = |req| {
            let cli = clap::Command::new("virtpod").subcommand(clap::Command::new("hook"));
            let mut lines = Vec::new();
            uninstall(req, &cli, &mut |d| lines.push(d.to_string())).unwrap();
            lines
        };
        let removed = uninstall_lines(request(Some(&root), None));
        assert!(
            removed.iter().all(|l| l.starts_with("removed ")),
            "{removed:#?}"
        );
        // Every file, the two directories of virtpod's own that held the hooks, and the
        // containers.conf.d install made for its drop-in.
        assert_eq!(removed.len(), first.len() + 3, "{removed:#?}");
        let left: Vec<_> = walk(&root).into_iter().filter(|p| p.is_file()).collect();
        assert!(left.is_empty(), "{left:#?}");
        let twice = uninstall_lines(request(Some(&root), None));
        assert!(twice.iter().all(|l| l.starts_with("absent ")), "{twice:#?}");
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut all = Vec::new();
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            all.push(e.path());
            if e.path().is_dir() {
                all.extend(walk(&e.path()));
            }
        }
        all
    }

    #[test]
    fn an_older_install_in_the_shared_directory_is_moved_and_others_are_left() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("host");
        let shared = root.join("usr/share/containers/oci/hooks.d");
        std::fs::create_dir_all(&shared).unwrap();
        let old = crate::install::hook_files::render(
            crate::install::hook_files::FILES[0].1,
            Path::new("/usr/local/bin/virtpod"),
        )
        .unwrap();
        std::fs::write(shared.join("virtpod-devices.json"), old).unwrap();
        let other = r#"{"version":"1.0.0","hook":{"path":"/usr/bin/qm-hook"},"when":{"always":true},"stages":["precreate"]}"#;
        std::fs::write(shared.join("virtpod-devices-poststop.json"), other).unwrap();
        let lines: Vec<String> = run_lines(request(Some(&root), Some(Path::new("/bin/true"))))
            .unwrap()
            .iter()
            .map(|d| d.to_string())
            .collect();
        assert!(
            lines.contains(&format!(
                "removed {}/virtpod-devices.json (an older install's: buildah and CRI-O fail on its precreate stage)",
                shared.display()
            )),
            "{lines:#?}"
        );
        assert!(
            shared.join("virtpod-devices-poststop.json").exists(),
            "not ours (it runs another program): left"
        );
    }

    #[test]
    fn the_shared_hooks_directories_are_refused_with_the_reason() {
        let t = tempfile::tempdir().unwrap();
        let mut req = request(Some(t.path()), Some(Path::new("/bin/true")));
        req.hooks_dir = Some("/usr/share/containers/oci/hooks.d".into());
        let e = run_lines(req).unwrap_err().to_string();
        assert!(e.contains("buildah and CRI-O"), "{e}");
    }

    #[test]
    fn a_later_drop_in_that_hides_our_directory_is_said() {
        let t = tempfile::tempdir().unwrap();
        let conf_d = t.path().join("etc/containers/containers.conf.d");
        std::fs::create_dir_all(&conf_d).unwrap();
        std::fs::write(
            conf_d.join("10-admin.conf"),
            "[engine]\nhooks_dir = [\"/opt/hooks\"]\n",
        )
        .unwrap();
        std::fs::write(
            conf_d.join("90-late.conf"),
            "[engine]\nhooks_dir = [\"/late\"]\n",
        )
        .unwrap();
        let lines = run_lines(request(Some(t.path()), Some(Path::new("/bin/true")))).unwrap();
        let drop_in = lines
            .iter()
            .find(|d| d.path.ends_with("50-virtpod-hooks.conf"))
            .unwrap();
        assert!(drop_in.note.contains("90-late.conf"), "{drop_in}");
        let text = std::fs::read_to_string(&drop_in.path).unwrap();
        assert_eq!(
            containers_conf::hooks_dir(&text).unwrap(),
            ["/opt/hooks", "/usr/local/share/virtpod/oci-hooks.d"],
            "the admin's earlier list is kept"
        );
    }

    #[test]
    fn uninstall_for_another_prefix_leaves_the_drop_in_of_this_one() {
        let t = tempfile::tempdir().unwrap();
        run_lines(request(Some(t.path()), Some(Path::new("/bin/true")))).unwrap();
        let mut other = request(Some(t.path()), None);
        other.prefix = Some("/opt/x".into());
        let cli = clap::Command::new("virtpod");
        let mut lines = Vec::new();
        uninstall(other, &cli, &mut |d| lines.push(d)).unwrap();
        let drop_in = t
            .path()
            .join("etc/containers/containers.conf.d/50-virtpod-hooks.conf");
        assert!(drop_in.exists(), "{lines:#?}");
        assert!(
            lines
                .iter()
                .any(|d| d.path == drop_in && d.outcome == Outcome::Skipped),
            "{lines:#?}"
        );
        // The /usr/local install is whole.
        assert!(t
            .path()
            .join("usr/local/share/virtpod/oci-hooks.d/virtpod-devices.json")
            .exists());
    }

    #[test]
    fn the_drop_in_directory_install_made_goes_with_uninstall_and_only_then() {
        let conf_d = |t: &tempfile::TempDir| t.path().join("etc/containers/containers.conf.d");
        let cli = clap::Command::new("virtpod");
        // A host without containers.conf.d: install makes it, re-install keeps the mark,
        // uninstall takes it back.
        let t = tempfile::tempdir().unwrap();
        run_lines(request(Some(t.path()), Some(Path::new("/bin/true")))).unwrap();
        run_lines(request(Some(t.path()), Some(Path::new("/bin/true")))).unwrap();
        let mut lines = Vec::new();
        uninstall(request(Some(t.path()), None), &cli, &mut |d| lines.push(d)).unwrap();
        assert!(!conf_d(&t).exists(), "{lines:#?}");
        assert!(lines
            .iter()
            .any(|d| d.path == conf_d(&t) && d.outcome == Outcome::Removed));
        // A host that had it: it stays.
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(conf_d(&t)).unwrap();
        run_lines(request(Some(t.path()), Some(Path::new("/bin/true")))).unwrap();
        uninstall(request(Some(t.path()), None), &cli, &mut |_| {}).unwrap();
        assert!(conf_d(&t).is_dir());
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
        assert!(!t.path().join("usr/local/share/virtpod").exists());
    }
}
