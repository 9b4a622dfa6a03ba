use std::path::PathBuf;
use std::process::ExitCode;

use virtpod::init::{helpers, run::GUEST_RECORD, settings::Settings};

/// libvirt work `virtpod init` runs as its own child processes (not for direct use).
#[derive(clap::Args)]
pub struct InitHelper {
    task: Task,
    /// The record of the guests to start again.
    #[arg(long, default_value = GUEST_RECORD)]
    record: PathBuf,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Task {
    /// Exit 0 once libvirt answers a real call.
    Ready,
    /// Start the guests recorded at the last stop.
    BootGuests,
    /// Record and stop the running guests as VIRTPOD_ON_SHUTDOWN etc. say.
    StopGuests,
}

impl InitHelper {
    pub fn exec(self) -> ExitCode {
        let code = match self.task {
            Task::Ready => helpers::wait_ready(),
            Task::BootGuests => helpers::boot_guests(&self.record),
            Task::StopGuests => {
                // init validated the settings before starting anything; the same rule here.
                let env = std::env::vars().collect();
                match Settings::from_env(&env) {
                    Ok(s) => helpers::stop_guests(&self.record, &s.policy),
                    Err(e) => {
                        tracing::error!("{e}");
                        helpers::GUESTS_FORCED
                    }
                }
            }
        };
        ExitCode::from(code.clamp(0, 255) as u8)
    }
}
