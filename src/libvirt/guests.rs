//! Guests across container stops, with libvirt-guests semantics: on stop, the running guests
//! are recorded and then shut down, managed-saved or destroyed; on the next start the recorded
//! ones are started again (a managed save resumes where it stopped).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tracing::{debug, error, info, warn};
use virt::connect::Connect;
use virt::domain::Domain;

pub use super::policy::{OnBoot, OnShutdown, Policy};

/// An ACPI power button press is lost when the guest is not listening yet (still booting, as a
/// guest started just before the stop is): press again at this interval until it goes off.
const ACPI_REPEAT: Duration = Duration::from_secs(3);
/// How often a guest shutting down is asked whether it is off: the stop waits for the guest
/// plus at most this.
const POLL: Duration = Duration::from_millis(20);

/// What happened to the guests at stop.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct StopReport {
    pub clean: Vec<String>,
    /// Guests that had to be destroyed because they did not shut down in time, or whose
    /// shutdown/save failed.
    pub forced: Vec<String>,
    /// Why the record of running guests could not be written, when it could not.
    pub record_error: Option<String>,
}

fn name(dom: &Domain) -> String {
    dom.get_name().unwrap_or_else(|_| "<unnamed>".into())
}

/// The guests to start at the next start, as recorded.
pub fn read_record(record: &Path) -> Result<Vec<String>> {
    let text = match std::fs::read_to_string(record) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", record.display())),
    };
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a JSON list of guest names", record.display()))
}

/// Written beside and renamed, so a stop or a crash at any moment leaves the old record or the
/// new one, never half of one.
pub fn write_record(record: &Path, names: &[String]) -> Result<()> {
    if let Some(dir) = record.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = record.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_string(names)?)
        .and_then(|_| std::fs::rename(&tmp, record))
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
        .with_context(|| format!("writing {}", record.display()))
}

/// The record a stop leaves: the guests still waiting to be started from the last record (a
/// stop during the boot step), then the persistent guests running now; each once.
pub fn merged_record(pending: &[String], running: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for n in pending.iter().chain(running) {
        if seen.insert(n.as_str()) {
            out.push(n.clone());
        }
    }
    out
}

/// Record the guests to bring back (those still pending from the last record and the persistent
/// ones running now), then apply the policy to every running guest. A record that cannot be
/// written (a full disk) is reported, never a reason to skip the shutdown.
pub fn stop_all(conn: &Connect, policy: &Policy, record: &Path) -> Result<StopReport> {
    let guests = conn
        .list_all_domains(virt::sys::VIR_CONNECT_LIST_DOMAINS_ACTIVE)
        .context("listing the running guests")?;
    let names: Vec<String> = guests.iter().map(name).collect();
    let running: Vec<String> = names
        .iter()
        .zip(&guests)
        .filter(|(_, d)| d.is_persistent().unwrap_or(false))
        .map(|(n, _)| n.clone())
        .collect();
    let mut report = StopReport::default();
    let pending = read_record(record).unwrap_or_else(|e| {
        warn!("{e:#}; recording only the guests running now");
        Vec::new()
    });
    let merged = merged_record(&pending, &running);
    if let Err(e) = write_record(record, &merged) {
        error!(guests = ?merged, "{e:#}: these guests will not start again by themselves; shutting them down all the same");
        report.record_error = Some(format!("{e:#}"));
    }
    if guests.is_empty() {
        info!("no guest is running");
        return Ok(report);
    }
    info!(guests = ?names, policy = ?policy.on_shutdown, "stopping guests");
    match policy.on_shutdown {
        OnShutdown::Destroy => {
            for dom in &guests {
                match dom.destroy() {
                    Ok(()) => report.clean.push(name(dom)),
                    Err(e) => {
                        warn!(guest = name(dom), error = %e, "destroy failed");
                        report.forced.push(name(dom));
                    }
                }
            }
        }
        OnShutdown::Suspend => {
            for dom in &guests {
                match dom.managed_save(0) {
                    Ok(_) => {
                        info!(
                            guest = name(dom),
                            "saved (managed save); it resumes on the next start"
                        );
                        report.clean.push(name(dom));
                    }
                    Err(e) => {
                        warn!(guest = name(dom), error = %e, "managed save failed, destroying");
                        let _ = dom.destroy();
                        report.forced.push(name(dom));
                    }
                }
            }
        }
        OnShutdown::Shutdown => shutdown_gracefully(&guests, policy, &mut report),
    }
    Ok(report)
}

struct InFlight<'a> {
    dom: &'a Domain,
    since: Instant,
    pressed: Instant,
}

/// ACPI shutdown, `parallel` guests at a time (0: all), pressing the button again every
/// ACPI_REPEAT; whatever still runs when the budget is spent is destroyed.
fn shutdown_gracefully(guests: &[Domain], policy: &Policy, report: &mut StopReport) {
    let start = Instant::now();
    let deadline = start + policy.shutdown_timeout;
    let width = if policy.parallel == 0 {
        guests.len()
    } else {
        policy.parallel
    };
    let mut queue: Vec<&Domain> = guests.iter().rev().collect();
    let mut in_flight: Vec<InFlight> = Vec::new();
    while !queue.is_empty() || !in_flight.is_empty() {
        while in_flight.len() < width && Instant::now() < deadline {
            let Some(dom) = queue.pop() else { break };
            match dom.shutdown() {
                Ok(_) => {
                    info!(guest = name(dom), "sent ACPI shutdown");
                    let now = Instant::now();
                    in_flight.push(InFlight {
                        dom,
                        since: now,
                        pressed: now,
                    });
                }
                Err(_) if !dom.is_active().unwrap_or(false) => {
                    info!(guest = name(dom), "already shut off");
                    report.clean.push(name(dom));
                }
                Err(e) => {
                    warn!(guest = name(dom), error = %e, "shutdown refused, destroying");
                    let _ = dom.destroy();
                    report.forced.push(name(dom));
                }
            }
        }
        std::thread::sleep(POLL);
        let now = Instant::now();
        in_flight.retain_mut(|g| {
            if !g.dom.is_active().unwrap_or(false) {
                info!(guest = name(g.dom), secs = g.since.elapsed().as_secs_f32(), "guest shut down");
                report.clean.push(name(g.dom));
                false
            } else if now >= deadline {
                warn!(guest = name(g.dom), timeout = ?policy.shutdown_timeout, "no shutdown in time (VIRTPOD_SHUTDOWN_TIMEOUT), destroying");
                let _ = g.dom.destroy();
                report.forced.push(name(g.dom));
                false
            } else {
                if now.duration_since(g.pressed) >= ACPI_REPEAT {
                    debug!(guest = name(g.dom), "pressing the power button again");
                    let _ = g.dom.shutdown();
                    g.pressed = now;
                }
                true
            }
        });
        if now >= deadline {
            // Budget spent before these got their turn (a small `parallel`): they go too.
            for dom in queue.drain(..).rev() {
                warn!(
                    guest = name(dom),
                    "no time left to shut it down, destroying"
                );
                let _ = dom.destroy();
                report.forced.push(name(dom));
            }
        }
    }
}

/// Start the guests recorded at the last stop. The record shrinks as each one starts and is
/// removed at the end, so this step may end at any moment (`stop()` says so between guests):
/// what it has not started is still recorded, and the stop merges it with what runs
/// (`stop_all`).
pub fn start_recorded(
    conn: &Connect,
    record: &Path,
    stop: impl Fn() -> bool,
) -> Result<Vec<String>> {
    let mut left = read_record(record)?;
    let mut started = Vec::new();
    while let Some(guest) = left.first().cloned() {
        if stop() {
            info!(guests = ?left, "stopping: these stay recorded for the next start");
            break;
        }
        let result = Domain::lookup_by_name(conn, &guest).and_then(|dom| {
            if dom.is_active()? {
                Ok(false)
            } else {
                dom.create().map(|_| true)
            }
        });
        match result {
            Ok(true) => {
                info!(guest, "started again (it was running at the last stop)");
                started.push(guest);
            }
            Ok(false) => {}
            Err(e) => {
                warn!(guest, error = %e, "could not start a guest that was running at the last stop")
            }
        }
        left.remove(0);
        if left.is_empty() {
            match std::fs::remove_file(record) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).with_context(|| format!("removing {}", record.display())),
            }
        } else {
            write_record(record, &left)?;
        }
    }
    Ok(started)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_stop_keeps_what_the_boot_step_has_not_started() {
        assert_eq!(
            merged_record(&names(&["b", "c"]), &names(&["a", "b"])),
            names(&["b", "c", "a"])
        );
        assert_eq!(merged_record(&[], &names(&["a"])), names(&["a"]));
    }

    #[test]
    fn record_round_trip_and_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let record = dir.path().join("sub/running-guests.json");
        assert_eq!(read_record(&record).unwrap(), Vec::<String>::new());
        write_record(&record, &names(&["g1", "g2"])).unwrap();
        assert_eq!(read_record(&record).unwrap(), names(&["g1", "g2"]));
        std::fs::write(&record, "not json").unwrap();
        let e = format!("{:#}", read_record(&record).unwrap_err());
        assert!(e.contains("running-guests.json"), "{e}");
    }
}
