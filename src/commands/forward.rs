use std::process::ExitCode;

use virtpod::forward::{self, lookup, proxy, rules};

/// Forward the container's TCP ports to guests (VIRTPOD_FORWARD=PORT:GUEST:GUESTPORT,…); init
/// runs it when the setting is given.
#[derive(clap::Args)]
pub struct Forward {
    /// Rules, instead of the VIRTPOD_FORWARD setting.
    rules: Option<String>,
}

impl Forward {
    pub fn exec(self) -> ExitCode {
        let value = self
            .rules
            .or_else(|| std::env::var(forward::SETTING).ok())
            .unwrap_or_default();
        let parsed = match rules::parse(&value) {
            // The systemd variant's unit runs whenever the variable is set, even empty: that is
            // no forward, not a failure.
            Ok(r) if r.is_empty() => {
                eprintln!(
                    "virtpod forward: nothing to forward ({} is empty; e.g. 8080:web:80)",
                    forward::SETTING
                );
                return ExitCode::SUCCESS;
            }
            Ok(r) => r,
            Err(e) => {
                eprintln!("virtpod forward: {}={value:?}: {e}", forward::SETTING);
                return ExitCode::FAILURE;
            }
        };
        match proxy::run(parsed, lookup::Dirs::default()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => super::fail("forward", e),
        }
    }
}
