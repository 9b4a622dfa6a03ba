//! What `virtpod-libvirt` does for init and `virtpod health`, over libvirt's API: wait until
//! libvirt answers, start the guests of the last run, stop the guests, say libvirt's version.
//! The exit codes are init's protocol (`crate::init::helpers`).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use tracing::{debug, error, info, warn};
use virt::connect::Connect;

use super::guests::{self, Policy};
use super::login::{self, Login};
use crate::init::helpers::{GUESTS_CLEAN, GUESTS_FORCED, LIBVIRT_UNREACHABLE};

const RETRY: Duration = Duration::from_millis(50);

fn connect(login: Option<&Login>) -> Result<Connect, virt::error::Error> {
    login::open(super::URI, login)
}

/// Says goodbye: virt's Connect does not close itself when dropped, and a connection that just
/// ends makes libvirtd log "End of file while reading data: Input/output error".
fn close(conn: &mut Connect) {
    if let Err(e) = conn.close() {
        debug!("closing the libvirt connection: {e}");
    }
}

/// Connects, retrying until `deadline` (None: for ever).
fn connect_by(login: Option<&Login>, deadline: Option<Instant>) -> Option<Connect> {
    let mut last = String::new();
    loop {
        match connect(login) {
            Ok(c) => return Some(c),
            Err(e) => {
                let msg = e.to_string();
                if msg != last {
                    debug!(error = msg, "libvirt does not answer yet");
                    last = msg;
                }
            }
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return None;
        }
        std::thread::sleep(RETRY);
    }
}

/// `ready`: returns once libvirt answers a real call (its version).
pub fn wait_ready(login: Option<&Login>) -> i32 {
    loop {
        if let Some(mut conn) = connect_by(login, None) {
            let answered = conn.get_lib_version().is_ok();
            close(&mut conn);
            if answered {
                return 0;
            }
        }
        std::thread::sleep(RETRY);
    }
}

static TERMINATE: AtomicBool = AtomicBool::new(false);

extern "C" fn on_term(_: nix::libc::c_int) {
    TERMINATE.store(true, Ordering::SeqCst);
}

/// `boot-guests`: start the guests recorded at the last stop. SIGTERM (init stopping) lets the
/// guest being started finish starting, then ends the step; the record keeps the others.
pub fn boot_guests(record: &Path, login: Option<&Login>) -> i32 {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let action = SigAction::new(
        SigHandler::Handler(on_term),
        SaFlags::empty(),
        SigSet::empty(),
    );
    // SAFETY: the handler only stores to an atomic.
    let _ = unsafe { sigaction(Signal::SIGTERM, &action) };
    let Some(mut conn) = connect_by(login, Some(Instant::now() + Duration::from_secs(60))) else {
        error!("libvirt did not answer: the guests of the last run were not started (they stay recorded)");
        return 1;
    };
    let started = guests::start_recorded(&conn, record, || TERMINATE.load(Ordering::SeqCst));
    close(&mut conn);
    match started {
        Ok(started) => {
            if !started.is_empty() {
                info!(guests = ?started, "guests of the last run started");
            }
            0
        }
        Err(e) => {
            warn!("starting the guests of the last run: {e:#}");
            1
        }
    }
}

/// `stop-guests`: within `policy.shutdown_timeout` from now, reach libvirt (init is bringing
/// back any daemon that is down) and stop every guest as the policy says.
pub fn stop_guests(record: &Path, policy: &Policy, login: Option<&Login>) -> i32 {
    let start = Instant::now();
    let Some(mut conn) = connect_by(login, Some(start + policy.shutdown_timeout)) else {
        error!(
            budget = ?policy.shutdown_timeout,
            "libvirt did not answer in time: the guests could not be shut down cleanly (their record is kept)"
        );
        return LIBVIRT_UNREACHABLE;
    };
    let left = Policy {
        shutdown_timeout: policy.shutdown_timeout.saturating_sub(start.elapsed()),
        ..policy.clone()
    };
    let stopped = guests::stop_all(&conn, &left, record);
    close(&mut conn);
    match stopped {
        Ok(report) => {
            let mut code = GUESTS_CLEAN;
            if !report.forced.is_empty() {
                warn!(guests = ?report.forced, "guests that did not stop cleanly");
                code = GUESTS_FORCED;
            }
            if report.record_error.is_some() {
                code = GUESTS_FORCED;
            }
            code
        }
        Err(e) => {
            error!("stopping guests: {e:#}");
            GUESTS_FORCED
        }
    }
}

/// `version`: libvirt's version as `X.Y.Z`, from a real call.
pub fn version(login: Option<&Login>) -> Result<String> {
    let mut conn = connect(login)
        .map_err(|e| anyhow::anyhow!("libvirt does not answer on {}: {e}", super::URI))?;
    let version = conn.get_lib_version();
    close(&mut conn);
    let version = version?;
    Ok(format!(
        "{}.{}.{}",
        version / 1_000_000,
        version / 1000 % 1000,
        version % 1000
    ))
}
