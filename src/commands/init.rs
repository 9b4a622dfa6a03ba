use std::path::PathBuf;
use std::process::ExitCode;

/// Run as PID 1 of the appliance: supervise libvirt's daemons, stop guests cleanly on stop.
///
/// Arguments use systemd's kernel-command-line vocabulary:
/// systemd.setenv=NAME=VALUE, systemd.mask=SERVICE, systemd.wants=SERVICE.
#[derive(clap::Args)]
pub struct Init {
    /// Directory of service definitions (one TOML file per service).
    #[arg(long, default_value = virtpod::init::catalog::DEFAULT_DIR)]
    catalog: PathBuf,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

impl Init {
    pub fn exec(self) -> ExitCode {
        let code = virtpod::init::run::run(virtpod::init::run::Options {
            catalog: self.catalog,
            args: self.args,
        });
        ExitCode::from(code.clamp(0, 255) as u8)
    }
}
