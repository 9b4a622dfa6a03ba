//! `virtpod-libvirt`: the only virtpod binary that links libvirt. `virtpod init` runs it for
//! its libvirt work and `virtpod health` for libvirt's answer, so that PID 1 and the host-side
//! commands (hook, hooks, install, doctor, cdi) never load libvirt's ~50 shared libraries,
//! whatever features the binary was built with. Not for direct use: init's exit-code protocol
//! is in `virtpod::init::helpers`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use virtpod::init::{helpers, run::GUEST_RECORD, settings::Settings};
use virtpod::libvirt::{login::Login, tasks};

/// libvirt work for `virtpod init` and `virtpod health` (not for direct use).
#[derive(Parser)]
#[command(name = "virtpod-libvirt", version)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Exit 0 once libvirt answers a real call.
    Ready,
    /// Start the guests recorded at the last stop.
    BootGuests(Record),
    /// Record and stop the running guests as VIRTPOD_ON_SHUTDOWN etc. say.
    StopGuests(Record),
    /// Print libvirt's version, from a real call; exit 1 saying why when libvirt does not answer.
    Version,
}

#[derive(clap::Args)]
struct Record {
    /// The record of the guests to start again.
    #[arg(long, default_value = GUEST_RECORD)]
    record: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    virtpod::logging::init();
    // init validated the settings before starting anything; the same rule here.
    let env = std::env::vars().collect();
    let settings = match Settings::from_env(&env) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::from(helpers::GUESTS_FORCED as u8);
        }
    };
    // With SASL on, libvirt asks init's helpers for a password too (login.rs).
    let login = match settings.sasl.as_deref().map(Login::from_file).transpose() {
        Ok(login) => login,
        Err(e) => {
            tracing::error!("{e:#}");
            return ExitCode::from(helpers::GUESTS_FORCED as u8);
        }
    };
    let login = login.as_ref();
    let code = match cli.task {
        Task::Ready => tasks::wait_ready(login),
        Task::BootGuests(r) => tasks::boot_guests(&r.record, login),
        Task::StopGuests(r) => tasks::stop_guests(&r.record, &settings.policy, login),
        Task::Version => match tasks::version(login) {
            Ok(v) => {
                println!("{v}");
                0
            }
            Err(e) => {
                eprintln!("{e:#}");
                1
            }
        },
    };
    ExitCode::from(code.clamp(0, 255) as u8)
}
