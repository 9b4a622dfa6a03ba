//! One place that sets up tracing for every subcommand.

use tracing_subscriber::EnvFilter;

/// Logs go to stderr (the container log) at `VIRTPOD_LOG` (a tracing filter, default `info`).
pub fn init() {
    let filter = EnvFilter::try_from_env("VIRTPOD_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .without_time()
        .try_init();
}
