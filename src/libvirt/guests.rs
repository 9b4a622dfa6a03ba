//! Guests across container stops, with libvirt-guests semantics: on stop, the running guests
//! are recorded and then shut down, managed-saved or destroyed; on the next start the recorded
//! ones are started again (a managed save resumes where it stopped).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tracing::{info, warn};
use virt::connect::Connect;
use virt::domain::Domain;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnShutdown {
    Shutdown,
    Suspend,
    Destroy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnBoot {
    Start,
    Ignore,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub on_shutdown: OnShutdown,
    pub on_boot: OnBoot,
    pub shutdown_timeout: Duration,
    /// How many guests shut down at once (`0` or `1`: one after another).
    pub parallel: usize,
}

impl Policy {
    /// From `VIRTPOD_ON_SHUTDOWN`, `VIRTPOD_SHUTDOWN_TIMEOUT`, `VIRTPOD_PARALLEL_SHUTDOWN`,
    /// `VIRTPOD_ON_BOOT`; a bad value is an error that names the variable.
    pub fn from_env(env: &BTreeMap<String, String>) -> Result<Policy> {
        let get = |k: &str| env.get(k).map(String::as_str).filter(|v| !v.is_empty());
        let on_shutdown = match get("VIRTPOD_ON_SHUTDOWN").unwrap_or("shutdown") {
            "shutdown" => OnShutdown::Shutdown,
            "suspend" => OnShutdown::Suspend,
            "destroy" => OnShutdown::Destroy,
            v => bail!("VIRTPOD_ON_SHUTDOWN={v:?}: expected shutdown, suspend or destroy"),
        };
        let on_boot = match get("VIRTPOD_ON_BOOT").unwrap_or("start") {
            "start" => OnBoot::Start,
            "ignore" => OnBoot::Ignore,
            v => bail!("VIRTPOD_ON_BOOT={v:?}: expected start or ignore"),
        };
        let number = |k: &str, default: u64| -> Result<u64> {
            get(k).map_or(Ok(default), |v| {
                v.parse()
                    .with_context(|| format!("{k}={v:?}: expected a whole number"))
            })
        };
        Ok(Policy {
            on_shutdown,
            on_boot,
            shutdown_timeout: Duration::from_secs(number("VIRTPOD_SHUTDOWN_TIMEOUT", 120)?),
            parallel: number("VIRTPOD_PARALLEL_SHUTDOWN", 0)? as usize,
        })
    }
}

/// What happened to the guests at stop.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct StopReport {
    pub clean: Vec<String>,
    /// Guests that had to be destroyed because they did not shut down in time, or whose
    /// shutdown/save failed.
    pub forced: Vec<String>,
}

fn running_guests(conn: &Connect) -> Result<Vec<Domain>> {
    conn.list_all_domains(virt::sys::VIR_CONNECT_LIST_DOMAINS_ACTIVE)
        .context("listing the running guests")
}

fn name(dom: &Domain) -> String {
    dom.get_name().unwrap_or_else(|_| "<unnamed>".into())
}

/// Record the running guests in `record` (so the next start can bring them back), then apply
/// the policy to each.
pub fn stop_all(conn: &Connect, policy: &Policy, record: &Path) -> Result<StopReport> {
    let guests = running_guests(conn)?;
    let names: Vec<String> = guests.iter().map(name).collect();
    let persistent: Vec<&String> = names
        .iter()
        .zip(&guests)
        .filter(|(_, d)| d.is_persistent().unwrap_or(false))
        .map(|(n, _)| n)
        .collect();
    if let Some(dir) = record.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(record, serde_json::to_string(&persistent)?)
        .with_context(|| format!("recording the running guests in {}", record.display()))?;
    if guests.is_empty() {
        return Ok(StopReport::default());
    }
    info!(guests = ?names, policy = ?policy.on_shutdown, "stopping guests");
    let mut report = StopReport::default();
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

/// ACPI shutdown, `parallel` guests at a time, each given `shutdown_timeout` before destroy.
fn shutdown_gracefully(guests: &[Domain], policy: &Policy, report: &mut StopReport) {
    let width = policy.parallel.max(1);
    let mut queue: Vec<&Domain> = guests.iter().rev().collect();
    let mut in_flight: Vec<(&Domain, Instant)> = Vec::new();
    while !queue.is_empty() || !in_flight.is_empty() {
        while in_flight.len() < width {
            let Some(dom) = queue.pop() else { break };
            match dom.shutdown() {
                Ok(_) => {
                    info!(guest = name(dom), "sent ACPI shutdown");
                    in_flight.push((dom, Instant::now()));
                }
                Err(e) if !dom.is_active().unwrap_or(false) => {
                    info!(guest = name(dom), error = %e, "already shut off");
                    report.clean.push(name(dom));
                }
                Err(e) => {
                    warn!(guest = name(dom), error = %e, "shutdown refused, destroying");
                    let _ = dom.destroy();
                    report.forced.push(name(dom));
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
        in_flight.retain(|(dom, since)| {
            if !dom.is_active().unwrap_or(false) {
                info!(guest = name(dom), secs = since.elapsed().as_secs_f32(), "guest shut down");
                report.clean.push(name(dom));
                false
            } else if since.elapsed() >= policy.shutdown_timeout {
                warn!(guest = name(dom), timeout = ?policy.shutdown_timeout, "no shutdown in time, destroying");
                let _ = dom.destroy();
                report.forced.push(name(dom));
                false
            } else {
                true
            }
        });
    }
}

/// Start the guests recorded at the last stop; the record is consumed.
pub fn start_recorded(conn: &Connect, record: &Path) -> Result<Vec<String>> {
    let text = match std::fs::read_to_string(record) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", record.display())),
    };
    let names: Vec<String> = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a JSON list of guest names", record.display()))?;
    let mut started = Vec::new();
    for guest in names {
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
    }
    std::fs::remove_file(record).with_context(|| format!("removing {}", record.display()))?;
    Ok(started)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_match_libvirt_guests() {
        let p = Policy::from_env(&env(&[])).unwrap();
        assert_eq!(p.on_shutdown, OnShutdown::Shutdown);
        assert_eq!(p.on_boot, OnBoot::Start);
        assert_eq!(p.shutdown_timeout, Duration::from_secs(120));
        assert_eq!(p.parallel, 0);
    }

    #[test]
    fn values_and_errors() {
        let p = Policy::from_env(&env(&[
            ("VIRTPOD_ON_SHUTDOWN", "suspend"),
            ("VIRTPOD_SHUTDOWN_TIMEOUT", "30"),
            ("VIRTPOD_PARALLEL_SHUTDOWN", "4"),
            ("VIRTPOD_ON_BOOT", "ignore"),
        ]))
        .unwrap();
        assert_eq!(
            (p.on_shutdown, p.on_boot, p.parallel),
            (OnShutdown::Suspend, OnBoot::Ignore, 4)
        );
        let e = Policy::from_env(&env(&[("VIRTPOD_ON_SHUTDOWN", "halt")])).unwrap_err();
        assert!(e.to_string().contains("VIRTPOD_ON_SHUTDOWN"));
        let e = Policy::from_env(&env(&[("VIRTPOD_SHUTDOWN_TIMEOUT", "2m")])).unwrap_err();
        assert!(e.to_string().contains("VIRTPOD_SHUTDOWN_TIMEOUT"));
    }
}
