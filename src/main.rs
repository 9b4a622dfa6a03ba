use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// libvirt in a container: PID 1 of the appliance image and its helpers.
#[derive(Parser)]
#[command(name = "virtpod", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run as PID 1 of the appliance: supervise libvirt's daemons, stop guests cleanly on stop.
    ///
    /// Arguments use systemd's kernel-command-line vocabulary:
    /// systemd.setenv=NAME=VALUE, systemd.mask=SERVICE, systemd.wants=SERVICE.
    Init {
        /// Directory of service definitions (one TOML file per service).
        #[arg(long, default_value = virtpod::init::catalog::DEFAULT_DIR)]
        catalog: PathBuf,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Exit 0 when every service init runs is ready and libvirt answers; say why not otherwise.
    Health,
}

fn main() -> ExitCode {
    virtpod::logging::init();
    let cli = Cli::parse();
    match cli.command {
        Command::Init { catalog, args } => {
            let code = virtpod::init::run::run(virtpod::init::run::Options { catalog, args });
            ExitCode::from(code.clamp(0, 255) as u8)
        }
        Command::Health => {
            match virtpod::init::health::check(std::path::Path::new(virtpod::init::state::PATH)) {
                Ok(summary) => {
                    println!("{summary}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    println!("unhealthy: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
