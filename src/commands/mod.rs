//! One file per `virtpod` subcommand: its clap arguments and the few lines that run it on top of
//! the library. main.rs only parses and dispatches.

pub mod cdi;
pub mod device;
pub mod doctor;
pub mod forward;
pub mod health;
pub mod hook;
pub mod hooks;
pub mod init;
pub mod install;
pub mod login_gate;
#[cfg(feature = "systemd")]
pub mod one_cpu;
pub mod prepare;
#[cfg(feature = "systemd")]
pub mod systemd_env;

use std::path::PathBuf;
use std::process::ExitCode;

/// Where the hook and `cdi` look for the host's devices.
#[derive(clap::Args)]
pub struct DeviceArgs {
    /// The host's device directory (tests point it at a directory of their own).
    #[arg(long, default_value = "/dev")]
    dev_root: PathBuf,
    /// sysfs, for USB vendor:product selections.
    #[arg(long, default_value = "/sys")]
    sys_root: PathBuf,
    /// udev's database, bound read-only for usb and udev.
    #[arg(long, default_value = "/run/udev")]
    udev_dir: PathBuf,
    /// Where `virtpod device add` records what it added to each container (given again at
    /// every start by the precreate hook).
    #[arg(long, default_value = virtpod::hook::added::DEFAULT_DIR)]
    added_dir: PathBuf,
}

impl DeviceArgs {
    pub fn host_paths(self, state: PathBuf) -> virtpod::hook::HostPaths {
        virtpod::hook::HostPaths {
            dev: self.dev_root,
            sys: self.sys_root,
            udev: self.udev_dir,
            state,
            added: self.added_dir,
            allow_modules: Vec::new(),
            modprobe: None,
        }
    }
}

/// 0 for true, 1 for false: the convention of every check-like command.
pub fn exit_ok(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// An error for a person: `virtpod <command>: <error with its context chain>`, exit 1.
pub fn fail(command: &str, e: anyhow::Error) -> ExitCode {
    eprintln!("virtpod {command}: {e:#}");
    ExitCode::FAILURE
}
