use std::path::PathBuf;
use std::process::ExitCode;

/// Only prepare the container for libvirt (settings, directories, /dev/kvm, stale sockets)
/// and exit: for the image run with systemd as PID 1 (virtpod-prepare.service).
#[derive(clap::Args)]
pub struct Prepare {
    /// Directory of service definitions: which daemons will run and need settings.
    #[arg(long, default_value = virtpod::init::catalog::DEFAULT_DIR)]
    catalog: PathBuf,
    /// Only give this socket the access VIRTPOD_SOCKET_* say, `rw=PATH` or `ro=PATH` (repeatable;
    /// for systemd's socket units, which libvirtd's own settings do not reach).
    #[arg(long = "socket", value_parser = parse_socket)]
    sockets: Vec<(bool, PathBuf)>,
}

fn parse_socket(s: &str) -> Result<(bool, PathBuf), String> {
    match s.split_once('=') {
        Some(("rw", p)) => Ok((false, PathBuf::from(p))),
        Some(("ro", p)) => Ok((true, PathBuf::from(p))),
        _ => Err(format!("{s:?}: expected rw=PATH or ro=PATH")),
    }
}

impl Prepare {
    pub fn exec(self) -> ExitCode {
        let result = if self.sockets.is_empty() {
            virtpod::init::run::prepare_only(&self.catalog)
        } else {
            virtpod::init::run::socket_access_only(&self.sockets)
        };
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!("{e:#}");
                ExitCode::FAILURE
            }
        }
    }
}
