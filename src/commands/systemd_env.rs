use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use virtpod::systemd::{env, manager};

/// The systemd variant: give systemd's services the container's environment (`-e`, compose
/// `environment:`), as `virtpod init` does. Run once, early in boot, by
/// virtpod-systemd-env.service; `systemd.setenv=` arguments still win.
#[derive(clap::Args)]
pub struct SystemdEnv {
    /// PID 1's /proc directory, whose environ and cmdline are read.
    #[arg(long, default_value = "/proc/1")]
    pid1: PathBuf,
    /// systemd's private D-Bus socket.
    #[arg(long, default_value = manager::PRIVATE_SOCKET)]
    socket: String,
}

impl SystemdEnv {
    pub fn exec(self) -> ExitCode {
        let read = |f: &str| {
            let path = self.pid1.join(f);
            std::fs::read(&path).with_context(|| format!("reading {}", path.display()))
        };
        let plan = match read("environ").and_then(|e| Ok(env::plan(&e, &read("cmdline")?))) {
            Ok(plan) => plan,
            Err(e) => return super::fail("systemd-env", e),
        };
        for (name, why) in &plan.skipped {
            tracing::info!("{name} not passed to services: {why}");
        }
        if let Err(e) = manager::set_environment(&self.socket, &plan.set) {
            return super::fail("systemd-env", e);
        }
        // Names only: values may be secrets, and the journal keeps them.
        let names: Vec<&str> = plan
            .set
            .iter()
            .map(|a| a.split_once('=').map_or(a.as_str(), |(n, _)| n))
            .collect();
        println!(
            "virtpod systemd-env: services get the container's {}",
            if names.is_empty() {
                "(empty) environment".to_string()
            } else {
                names.join(", ")
            }
        );
        ExitCode::SUCCESS
    }
}
