//! The hook's logging: every decision to stderr and to a log file, each line with the container.
//!
//! podman runs precreate hooks with stderr on /dev/null (it only reports "exit status 1"), so a
//! refused annotation would reach nobody. When our stderr is /dev/null, warnings and errors go to
//! the stderr of the process that ran us (podman's, i.e. the user's terminal) instead.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::sync::Mutex;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

pub const DEFAULT_FILE: &str = "/var/log/virtpod-hook.log";

fn is_dev_null(m: &std::fs::Metadata) -> bool {
    m.file_type().is_char_device()
        && nix::sys::stat::major(m.rdev()) == 1
        && nix::sys::stat::minor(m.rdev()) == 3
}

/// Where a user sees what we say: our stderr, or our parent's when ours is discarded.
fn user_stderr() -> (Box<dyn Write + Send>, bool) {
    // fstat of fd 2 itself: reopening /proc/self/fd/2 fails for a socket (journald), which
    // would wrongly send our output to the parent.
    let ours = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map(File::from)
        .and_then(|f| f.metadata());
    if !ours.is_ok_and(|m| is_dev_null(&m)) {
        return (Box::new(std::io::stderr()), false);
    }
    let parent = format!("/proc/{}/fd/2", std::os::unix::process::parent_id());
    match OpenOptions::new().append(true).open(parent) {
        Ok(f) if !f.metadata().is_ok_and(|m| is_dev_null(&m)) => (Box::new(f), true),
        _ => (Box::new(std::io::stderr()), false),
    }
}

/// Sets up logging for one hook call. A log file that cannot be opened (rootless, read-only
/// /var/log) is said once on stderr and otherwise ignored: logging never fails a container.
pub fn init(level: LevelFilter, file: &Path) {
    let (stderr, borrowed) = user_stderr();
    // Only what needs the user's attention goes to a terminal that is not ours.
    let stderr_level = if borrowed {
        level.min(LevelFilter::WARN)
    } else {
        level
    };
    let stderr_layer = tracing_subscriber::fmt::layer()
        .with_writer(BoxMakeWriter::new(Mutex::new(stderr)))
        .with_ansi(false)
        .with_target(false)
        .without_time()
        .with_filter(stderr_level);
    let opened = OpenOptions::new().create(true).append(true).open(file);
    let file_layer = opened.as_ref().ok().map(|f| {
        tracing_subscriber::fmt::layer()
            .with_writer(Mutex::new(f.try_clone().expect("dup of an open file")))
            .with_ansi(false)
            .with_target(false)
            .with_filter(level)
    });
    let _ = tracing_subscriber::registry()
        .with(stderr_layer)
        .with(file_layer)
        .try_init();
    if let Err(e) = opened {
        tracing::debug!("not logging to {}: {e}", file.display());
    }
}
