//! Which virtpod binary goes onto the host, and copying it to PREFIX/bin/virtpod.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::paths::Layout;
use super::write::{write_atomic, Done};

/// Where the image carries the host-side build: no libvirt and statically linked, so it runs on
/// any host whatever its libraries (the image's own /usr/bin/virtpod links libvirt).
pub const HOST_BUILD: &str = "/usr/libexec/virtpod/virtpod-host";

/// The binary to copy and why that one, for the output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub path: PathBuf,
    pub why: &'static str,
}

/// `--binary` if given, else the image's host build if there is one, else `this` (the running
/// binary).
pub fn choose(explicit: Option<&Path>, host_build: &Path, this: &Path) -> Source {
    match explicit {
        Some(path) => Source {
            path: path.into(),
            why: "--binary",
        },
        None if host_build.is_file() => Source {
            path: host_build.into(),
            why: "the image's host build",
        },
        None => Source {
            path: this.into(),
            why: "this binary",
        },
    }
}

/// Copies `source` to the layout's binary.
pub fn place(layout: &Layout, source: &Source) -> Result<Done> {
    let content = fs::read(&source.path).with_context(|| {
        format!(
            "reading {} ({}) to install it",
            source.path.display(),
            source.why
        )
    })?;
    let target = layout.on_disk(&layout.binary());
    let outcome = write_atomic(
        &target,
        &content,
        0o755,
        "run as root (sudo), or choose another place with --prefix or --root",
    )?;
    Ok(Done {
        path: target,
        outcome,
        note: format!("copy of {}, {}", source.path.display(), source.why),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_host_build_is_preferred_to_this_binary_and_binary_to_both() {
        let t = tempfile::tempdir().unwrap();
        let host_build = t.path().join("virtpod-host");
        let this = Path::new("/usr/bin/virtpod");
        assert_eq!(choose(None, &host_build, this).path, this);
        fs::write(&host_build, "").unwrap();
        assert_eq!(choose(None, &host_build, this).path, host_build);
        let given = Path::new("/tmp/mine");
        assert_eq!(choose(Some(given), &host_build, this).path, given);
    }

    #[test]
    fn the_copy_lands_under_the_root_executable_and_once() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("build");
        fs::write(&src, "binary").unwrap();
        let root = t.path().join("root");
        let layout = Layout::new(Some(root.clone()), None, Some("/h".into()), t.path()).unwrap();
        let source = choose(Some(&src), Path::new("/nonexistent"), Path::new("/x"));
        let done = place(&layout, &source).unwrap();
        assert_eq!(done.path, root.join("usr/local/bin/virtpod"));
        assert_eq!(done.outcome, super::super::Outcome::Written);
        assert!(done
            .to_string()
            .contains(&format!("copy of {}", src.display())));
        assert_eq!(
            place(&layout, &source).unwrap().outcome,
            super::super::Outcome::Unchanged
        );
    }
}
