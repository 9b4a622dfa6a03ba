use std::path::PathBuf;
use std::process::ExitCode;

/// Check this host for what the appliance and the hook need; name each problem and its fix.
/// Exit 1 when something fails.
#[derive(clap::Args)]
pub struct Doctor {
    /// libvirt's socket as the appliance exposes it on the host.
    #[arg(long, default_value = virtpod::doctor::DEFAULT_SOCKET)]
    socket: PathBuf,
    /// A hooks directory, as podman's --hooks-dir (repeatable; default: the ones this podman
    /// reads unconfigured: podman 4 both /usr/share/… and /etc/containers/oci/hooks.d, podman 5
    /// only /usr/share/containers/oci/hooks.d).
    #[arg(long = "hooks-dir")]
    hooks_dirs: Vec<PathBuf>,
}

impl Doctor {
    pub fn exec(self) -> ExitCode {
        let findings = virtpod::doctor::run(&virtpod::doctor::Options {
            socket: self.socket,
            hooks_dirs: self.hooks_dirs,
        });
        let (report, ok) = virtpod::doctor::render(&findings);
        print!("{report}");
        super::exit_ok(ok)
    }
}
