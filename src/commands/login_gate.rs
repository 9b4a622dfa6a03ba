use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use virtpod::logins::gate::{self, Attempt, Stage};

/// Throttle the web console's password logins (run by PAM's pam_exec, with PAM_USER and
/// PAM_RHOST, from /etc/pam.d/virtpod-cockpit-auth in the appliance image). `check` fails
/// while the user is locked out from that address; `failed` and `passed` record the outcome.
/// Each writes its line to the container's log.
#[derive(clap::Args)]
pub struct LoginGate {
    #[arg(value_enum)]
    stage: Stage,
    /// The ledger of failed logins.
    #[arg(long, default_value = gate::PATH)]
    state: std::path::PathBuf,
    /// Where the lines go (init's stderr, the container's log).
    #[arg(long, default_value = gate::LOG)]
    log: std::path::PathBuf,
}

impl LoginGate {
    pub fn exec(self) -> ExitCode {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let attempt = Attempt::from_env();
        let log = std::fs::OpenOptions::new().append(true).open(&self.log);
        let say = |level: tracing::Level, line: &str| {
            let text = format!("{level:>5} {line}\n");
            match &log {
                Ok(f) => {
                    let _ = std::io::Write::write_all(&mut &*f, text.as_bytes());
                }
                Err(_) => eprint!("{text}"),
            }
        };
        match gate::run(&self.state, self.stage, &attempt, now) {
            Ok((outcome, note)) => {
                if let Some(note) = note {
                    say(tracing::Level::WARN, &format!("virtpod login-gate: {note}"));
                }
                if let Some((level, line)) = outcome.line {
                    say(level, &line);
                }
                super::exit_ok(outcome.allow)
            }
            // The password is still checked: a gate that cannot keep its record must not lock
            // everyone out.
            Err(e) => {
                say(
                    tracing::Level::ERROR,
                    &format!(
                        "virtpod login-gate {:?}: {e:#}; logins are not throttled",
                        self.stage
                    ),
                );
                ExitCode::SUCCESS
            }
        }
    }
}
