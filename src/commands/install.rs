use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use virtpod::install::Request;

/// Where the host side goes: the same options for install and uninstall, so that uninstall
/// takes back exactly the list install wrote.
#[derive(clap::Args)]
pub struct Places {
    /// Write every file under DIR, as `make install DESTDIR=DIR`; the paths inside the files
    /// (the hooks' binary, the drop-in's hooks directory) are the host's, without DIR. Implies
    /// --prefix /usr/local.
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Copy the binary to PREFIX/bin/virtpod and point the hooks there; man pages and completions
    /// go under PREFIX/share. Without --prefix and --root the hooks run this binary where it is,
    /// and man pages and completions go under /usr/local (skipped with a note if not writable).
    #[arg(long, value_name = "PREFIX")]
    prefix: Option<PathBuf>,
    /// The hooks directory to write our definitions into (under --root) [default:
    /// PREFIX/share/virtpod/oci-hooks.d]. Never podman's shared /usr/share/containers/oci/hooks.d
    /// or /etc/containers/oci/hooks.d: buildah and CRI-O read those and fail on our precreate stage.
    #[arg(long, value_name = "DIR")]
    hooks_dir: Option<PathBuf>,
    /// Leave the host's podman configuration alone: no drop-in in
    /// /etc/containers/containers.conf.d naming the hooks directory, no older install's files
    /// taken out of the shared hooks directories. For a podman told where the hooks are some other
    /// way (CONTAINERS_CONF naming them in hooks_dir, or podman --hooks-dir).
    #[arg(long)]
    no_host_conf: bool,
    /// Only the man pages and shell completions (no binary, no hooks), as an image build does
    /// for itself: `virtpod install --docs-only --prefix /usr`.
    #[arg(long)]
    docs_only: bool,
}

impl Places {
    fn request(self, binary: Option<PathBuf>) -> Request {
        Request {
            root: self.root,
            prefix: self.prefix,
            hooks_dir: self.hooks_dir,
            binary,
            docs_only: self.docs_only,
            host_conf: !self.no_host_conf,
        }
    }
}

/// Put virtpod's host side onto this host: the binary, our hook definitions in a directory of
/// their own with the containers.conf.d drop-in that names it to podman, man pages and shell
/// completions.
///
/// Each file is written atomically and only when it changed; each output line names it and says
/// `wrote` or `unchanged` (and `removed` for an older install's hook files in the directories
/// buildah and CRI-O read). From an image, with the host's directories mounted under /host:
/// `podman run --rm -v /usr/local:/host/usr/local -v /etc/containers:/host/etc/containers -v
/// /usr/share/containers:/host/usr/share/containers --entrypoint /usr/bin/virtpod
/// localhost/virtpod:debian install --root /host`.
#[derive(clap::Args)]
pub struct Install {
    #[command(flatten)]
    places: Places,
    /// The binary to copy to PREFIX/bin/virtpod [default: /usr/libexec/virtpod/virtpod-host, the
    /// image's static build without libvirt, if present; else this binary].
    #[arg(long, value_name = "FILE", conflicts_with = "docs_only")]
    binary: Option<PathBuf>,
}

/// Take back what `virtpod install` with the same options wrote, and nothing else: each output
/// line names a file and says `removed` or `absent`.
#[derive(clap::Args)]
pub struct Uninstall {
    #[command(flatten)]
    places: Places,
}

/// A closed stdout (`| head`) must not stop an install halfway.
fn show(done: virtpod::install::Done) {
    let _ = writeln!(std::io::stdout(), "{done}");
}

impl Install {
    /// `cli` is the whole command line's definition, for the man pages and completions.
    pub fn exec(self, cli: clap::Command) -> ExitCode {
        let req = self.places.request(self.binary);
        match virtpod::install::run(req, &cli, &mut show) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => super::fail("install", e),
        }
    }
}

impl Uninstall {
    /// `cli`: the man pages and completions to take back are named after its commands.
    pub fn exec(self, cli: clap::Command) -> ExitCode {
        let req = self.places.request(None);
        match virtpod::install::uninstall(req, &cli, &mut show) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => super::fail("uninstall", e),
        }
    }
}
