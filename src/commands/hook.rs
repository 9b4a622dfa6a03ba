use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use virtpod::hook::stage;

use super::DeviceArgs;

/// The OCI hook podman runs on the host: devices by annotation (io.virtpod.device.<class>).
#[derive(clap::Args)]
pub struct Hook {
    /// The hook stage podman or the runtime runs us for.
    stage: Stage,
    /// Log file for every decision (besides stderr).
    #[arg(long, default_value = virtpod::hook::log::DEFAULT_FILE)]
    log: PathBuf,
    /// off, error, warn, info, debug or trace.
    #[arg(long, default_value = "info")]
    log_level: tracing::level_filters::LevelFilter,
    #[command(flatten)]
    devices: DeviceArgs,
    /// Where what each container was given is recorded for poststop.
    #[arg(long, default_value = "/run/virtpod-hook")]
    state_dir: PathBuf,
    /// poststart: the USB hotplug watcher reads events from this file instead of the kernel
    /// (tests; see `virtpod device watch --events`).
    #[arg(long, value_name = "FILE")]
    usb_events: Option<PathBuf>,
    /// precreate: a kernel module containers may ask for (io.virtpod.module.NAME=true) beyond
    /// the list libvirt needs (docs/hook.md, "Kernel modules"); repeatable.
    #[arg(long, value_name = "NAME")]
    allow_module: Vec<String>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Stage {
    Precreate,
    #[value(name = "createRuntime")]
    CreateRuntime,
    Prestart,
    Poststart,
    Poststop,
}

impl Hook {
    /// `virtpod hook ARGS…` parsed by the hook's own definition, as `virtpod hook` would be.
    pub fn parse_alone(args: impl Iterator<Item = std::ffi::OsString>) -> Hook {
        use clap::{Args, FromArgMatches};
        let command = Hook::augment_args(clap::Command::new("virtpod hook"));
        let matches = command.get_matches_from(std::iter::once("virtpod hook".into()).chain(args));
        Hook::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    }

    pub fn exec(self) -> ExitCode {
        virtpod::hook::log::init(self.log_level, &self.log);
        let mut host = self.devices.host_paths(self.state_dir);
        host.allow_modules = self.allow_module;
        let events = self.usb_events;
        // One read for a whole config (podman's are 10–30 KB), not eleven growing ones.
        let mut input = Vec::with_capacity(64 << 10);
        if let Err(e) = std::io::stdin().read_to_end(&mut input) {
            tracing::error!("virtpod hook: reading stdin: {e}");
            return ExitCode::FAILURE;
        }
        let result = match self.stage {
            Stage::Precreate => stage::precreate(&input, &host)
                .and_then(|out| Ok(std::io::stdout().lock().write_all(&out)?)),
            Stage::CreateRuntime => stage::create_runtime(&input, &host, "createRuntime"),
            Stage::Prestart => stage::create_runtime(&input, &host, "prestart"),
            Stage::Poststart => stage::poststart(&input, &host, &self.log, events.as_deref()),
            Stage::Poststop => {
                stage::poststop(&input, &host);
                Ok(())
            }
        };
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!("virtpod hook refused the container: {e:#}");
                ExitCode::FAILURE
            }
        }
    }
}
