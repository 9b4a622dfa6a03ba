use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use virtpod::install::Request;

/// Put virtpod's host side onto this host: the binary, our hook definitions where podman reads
/// them, man pages and shell completions.
///
/// Each file is written atomically and only when it changed; each output line names it and says
/// `wrote` or `unchanged`. From an image, with the host's directories mounted under /host:
/// `podman run --rm -v /usr/local:/host/usr/local -v
/// /usr/share/containers/oci/hooks.d:/host/usr/share/containers/oci/hooks.d --entrypoint /usr/bin/virtpod
/// localhost/virtpod:debian install --root /host --hooks-dir /usr/share/containers/oci/hooks.d`.
#[derive(clap::Args)]
pub struct Install {
    /// Write every file under DIR, as `make install DESTDIR=DIR`; the paths inside the files
    /// (the hooks' binary) are the host's, without DIR. Implies --prefix /usr/local.
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Copy the binary to PREFIX/bin/virtpod and point the hooks there; man pages and completions
    /// go under PREFIX/share. Without --prefix and --root the hooks run this binary where it is,
    /// and man pages and completions go under /usr/local (skipped with a note if not writable).
    #[arg(long, value_name = "PREFIX")]
    prefix: Option<PathBuf>,
    /// The podman hooks directory to write our definitions into (under --root).
    #[arg(long, value_name = "DIR", default_value = virtpod::hook::install::DEFAULT_HOOKS_DIR)]
    hooks_dir: PathBuf,
    /// The binary to copy to PREFIX/bin/virtpod [default: /usr/libexec/virtpod/virtpod-host, the
    /// image's static build without libvirt, if present; else this binary].
    #[arg(long, value_name = "FILE")]
    binary: Option<PathBuf>,
    /// Install only the man pages and shell completions (no binary, no hooks), as an image build
    /// does for itself: `virtpod install --docs-only --prefix /usr`.
    #[arg(long, conflicts_with = "binary")]
    docs_only: bool,
}

impl Install {
    /// `cli` is the whole command line's definition, for the man pages and completions.
    pub fn exec(self, cli: clap::Command) -> ExitCode {
        let req = Request {
            root: self.root,
            prefix: self.prefix,
            hooks_dir: self.hooks_dir,
            binary: self.binary,
            docs_only: self.docs_only,
        };
        // A closed stdout (`| head`) must not stop an install halfway.
        let mut show = |done| {
            let _ = writeln!(std::io::stdout(), "{done}");
        };
        match virtpod::install::run(req, &cli, &mut show) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => super::fail("install", e),
        }
    }
}
