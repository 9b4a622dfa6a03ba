use std::process::ExitCode;

/// Exit 0 when every service init runs is ready and libvirt answers; say why not otherwise.
#[derive(clap::Args)]
pub struct Health {}

impl Health {
    pub fn exec(self) -> ExitCode {
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
