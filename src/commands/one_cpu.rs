use std::ffi::OsString;
use std::process::ExitCode;
use std::time::Duration;

use virtpod::systemd::one_cpu;

/// The systemd variant's libvirtd on one CPU until libvirt first answers, as under `virtpod
/// init` (systemd/libvirtd.service.d/virtpod-cpu.conf): `virtpod one-cpu -- PROGRAM ARGS…`
/// executes PROGRAM on this process's first CPU; `virtpod one-cpu --give-back` waits until
/// libvirt answers, then gives every thread still on that CPU alone all of them back.
#[derive(clap::Args)]
pub struct OneCpu {
    /// Wait for libvirt's first answer, then give the CPUs back.
    #[arg(long, conflicts_with = "command")]
    give_back: bool,
    /// With --give-back: seconds to wait for libvirt before giving them back anyway.
    #[arg(long, default_value_t = 90)]
    within: u64,
    /// The program to run on one CPU, and its arguments.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        required_unless_present = "give_back"
    )]
    command: Vec<OsString>,
}

impl OneCpu {
    pub fn exec(self) -> ExitCode {
        if !self.give_back {
            let e = one_cpu::exec_on_one_cpu(&self.command);
            eprintln!("virtpod one-cpu: {e:#}");
            return ExitCode::from(127);
        }
        let exe = match std::env::current_exe() {
            Ok(exe) => exe,
            Err(e) => return super::fail("one-cpu", anyhow::Error::new(e)),
        };
        match one_cpu::give_back_when_ready(&exe, Duration::from_secs(self.within)) {
            Ok(given) => {
                tracing::info!(threads = given, "libvirt answers: every CPU given back");
                ExitCode::SUCCESS
            }
            Err(e) => super::fail("one-cpu", e),
        }
    }
}
