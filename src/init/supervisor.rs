//! The supervision state machine: starts services in dependency order once their dependencies
//! are ready, watches readiness, restarts the dead with backoff, announces readiness when libvirt
//! answers, and on a stop signal runs the stop sequence (guests, then services in reverse order).
//!
//! Everything arrives as an `Event` on one channel: exits from the reaper thread, stop signals,
//! readiness lines, libvirt's answer. The loop sleeps on that channel; its timeout serves only
//! the timers (backoff, start timeouts, socket readiness probes), never reaping.

use std::collections::BTreeMap;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tracing::{debug, error, info, warn};

use super::backoff::next_restart;
use super::catalog::{Ready, ServiceDef};
use super::notify;
use super::reaper::{signal_name, Event, Exit};
use super::spawn::{spawn, Spawn};
use super::state::{self, Published, ServiceState};
use crate::libvirt::guests::{self, OnBoot, Policy};

const SOCKET_PROBE: Duration = Duration::from_millis(50);
const KILL_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq)]
enum Phase {
    /// Not started yet: waiting for dependencies.
    Waiting,
    Starting {
        pid: i32,
        since: Instant,
    },
    Ready {
        pid: i32,
    },
    /// Killed for missing its start timeout; its exit counts as a failure.
    Killing {
        pid: i32,
    },
    Backoff {
        until: Instant,
    },
    Failed,
    Stopping {
        pid: i32,
    },
    Down,
}

impl Phase {
    fn pid(&self) -> Option<i32> {
        match self {
            Phase::Starting { pid, .. }
            | Phase::Ready { pid }
            | Phase::Killing { pid }
            | Phase::Stopping { pid } => Some(*pid),
            _ => None,
        }
    }

    fn word(&self) -> &'static str {
        match self {
            Phase::Waiting => "waiting",
            Phase::Starting { .. } => "starting",
            Phase::Ready { .. } => "ready",
            Phase::Killing { .. } => "killing",
            Phase::Backoff { .. } => "backoff",
            Phase::Failed => "failed",
            Phase::Stopping { .. } => "stopping",
            Phase::Down => "down",
        }
    }
}

struct Service {
    name: String,
    def: ServiceDef,
    phase: Phase,
    restarts: Vec<Instant>,
}

pub struct Config {
    pub env: BTreeMap<String, String>,
    pub notify_socket: Option<String>,
    pub policy: Policy,
    pub guest_record: PathBuf,
    pub state_path: PathBuf,
}

pub struct Supervisor {
    services: Vec<Service>,
    cfg: Config,
    tx: Sender<Event>,
    rx: Receiver<Event>,
    finishers: BTreeMap<i32, String>,
    started_at: Instant,
    libvirt_check: Option<Arc<AtomicBool>>,
    libvirt_ready: bool,
    stopping: bool,
    published: Option<Published>,
}

impl Supervisor {
    /// `order` is the start order from the catalog; `defs` their definitions.
    pub fn new(
        order: Vec<(String, ServiceDef)>,
        cfg: Config,
        tx: Sender<Event>,
        rx: Receiver<Event>,
    ) -> Self {
        let services = order
            .into_iter()
            .map(|(name, def)| Service {
                name,
                def,
                phase: Phase::Waiting,
                restarts: Vec::new(),
            })
            .collect();
        Supervisor {
            services,
            cfg,
            tx,
            rx,
            finishers: BTreeMap::new(),
            started_at: Instant::now(),
            libvirt_check: None,
            libvirt_ready: false,
            stopping: false,
            published: None,
        }
    }

    /// Supervise until a stop signal, then stop everything; returns init's exit code.
    pub fn run(mut self) -> i32 {
        let sig = self.supervise();
        info!(signal = signal_name(sig), "stopping");
        self.stop()
    }

    fn supervise(&mut self) -> i32 {
        loop {
            // A service that becomes ready lets its dependents start in the same turn.
            loop {
                let now = Instant::now();
                self.start_due(now);
                if !self.probe_starting(now) {
                    break;
                }
            }
            self.check_libvirt_when_all_ready();
            self.publish();
            let event = match self.next_wake(Instant::now()) {
                Some(wait) => match self.rx.recv_timeout(wait) {
                    Ok(e) => e,
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => return nix::libc::SIGTERM,
                },
                None => match self.rx.recv() {
                    Ok(e) => e,
                    Err(_) => return nix::libc::SIGTERM,
                },
            };
            match event {
                Event::Exited(exit) => self.on_exit(exit),
                Event::Stop(sig) => return sig,
                Event::Notified { service, pid } => self.mark_ready(&service, pid),
                Event::LibvirtReady => self.on_libvirt_ready(),
            }
        }
    }

    fn index(&self, name: &str) -> Option<usize> {
        self.services.iter().position(|s| s.name == name)
    }

    fn deps_ready(&self, svc: &Service) -> bool {
        svc.def.after.iter().all(|dep| match self.index(dep) {
            None => true, // not selected: nothing to wait for
            Some(i) => matches!(self.services[i].phase, Phase::Ready { .. }),
        })
    }

    fn start_due(&mut self, now: Instant) {
        for i in 0..self.services.len() {
            let due = match &self.services[i].phase {
                Phase::Waiting => self.deps_ready(&self.services[i]),
                Phase::Backoff { until } => *until <= now,
                _ => false,
            };
            if due {
                self.start(i);
            }
        }
    }

    fn start(&mut self, i: usize) {
        let svc = &self.services[i];
        for dir in &svc.def.runtime_dirs {
            if let Err(e) = std::fs::create_dir_all(dir) {
                warn!(service = svc.name, dir = %dir.display(), error = %e, "cannot create runtime directory");
            }
        }
        let notify_fd = match svc.def.ready {
            Some(Ready::NotifyFd(fd)) => Some(fd),
            _ => None,
        };
        let result = spawn(
            Spawn {
                service: &svc.name,
                argv: &svc.def.command,
                env: &self.cfg.env,
                notify_fd,
            },
            &self.tx,
        );
        let name = svc.name.clone();
        match result {
            Ok(pid) => {
                info!(service = name, pid, "started");
                let svc = &mut self.services[i];
                svc.phase = if svc.def.ready.is_none() {
                    Phase::Ready { pid }
                } else {
                    Phase::Starting {
                        pid,
                        since: Instant::now(),
                    }
                };
            }
            Err(e) => {
                error!(service = name, "{e:#}");
                self.schedule_restart(i);
            }
        }
    }

    /// Socket readiness: the service is ready once its socket accepts a connection. Returns
    /// whether any service became ready.
    fn probe_starting(&mut self, now: Instant) -> bool {
        let mut any = false;
        for i in 0..self.services.len() {
            let svc = &self.services[i];
            let Phase::Starting { pid, since } = svc.phase else {
                continue;
            };
            if let Some(Ready::Socket(path)) = &svc.def.ready {
                if UnixStream::connect(path).is_ok() {
                    self.mark_ready(&svc.name.clone(), pid);
                    any = true;
                    continue;
                }
            }
            if now.duration_since(since) >= svc.def.start_timeout {
                error!(
                    service = svc.name,
                    timeout = ?svc.def.start_timeout,
                    "not ready in time (start_timeout in its catalog file); killing it to retry"
                );
                let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
                self.services[i].phase = Phase::Killing { pid };
            }
        }
        any
    }

    fn mark_ready(&mut self, name: &str, pid: i32) {
        let Some(i) = self.index(name) else { return };
        if let Phase::Starting { pid: p, since } = self.services[i].phase {
            if p == pid {
                info!(
                    service = name,
                    pid,
                    secs = since.elapsed().as_secs_f32(),
                    "ready"
                );
                self.services[i].phase = Phase::Ready { pid };
            }
        }
    }

    fn schedule_restart(&mut self, i: usize) {
        let svc = &mut self.services[i];
        let now = Instant::now();
        match next_restart(&svc.def.restart, &mut svc.restarts, now) {
            Some(delay) => {
                info!(service = svc.name, delay = ?delay, "restarting after backoff");
                svc.phase = Phase::Backoff { until: now + delay };
            }
            None => {
                error!(
                    service = svc.name,
                    burst = svc.def.restart.burst,
                    window = ?svc.def.restart.burst_window,
                    "failed too often; giving up on it (`virtpod health` reports it; restart the container to retry)"
                );
                svc.phase = Phase::Failed;
            }
        }
    }

    fn on_exit(&mut self, exit: Exit) {
        if let Some(service) = self.finishers.remove(&exit.pid) {
            debug!(service, %exit, "finish action ended");
            return;
        }
        let Some(i) = self
            .services
            .iter()
            .position(|s| s.phase.pid() == Some(exit.pid))
        else {
            debug!(pid = exit.pid, %exit, "reaped an orphan");
            return;
        };
        if let Phase::Stopping { .. } = self.services[i].phase {
            self.services[i].phase = Phase::Down;
            return;
        }
        warn!(service = self.services[i].name, pid = exit.pid, %exit, "exited unexpectedly");
        self.run_finish(i, &exit);
        self.schedule_restart(i);
    }

    /// s6 `finish`: run with the exit code and signal number of the ended service.
    fn run_finish(&mut self, i: usize, exit: &Exit) {
        let svc = &self.services[i];
        let Some(finish) = &svc.def.finish else {
            return;
        };
        let mut argv = finish.clone();
        argv.push(exit.code.map_or("256".into(), |c| c.to_string()));
        argv.push(exit.signal.unwrap_or(0).to_string());
        let name = format!("{}-finish", svc.name);
        match spawn(
            Spawn {
                service: &name,
                argv: &argv,
                env: &self.cfg.env,
                notify_fd: None,
            },
            &self.tx,
        ) {
            Ok(pid) => {
                self.finishers.insert(pid, name);
            }
            Err(e) => warn!("{e:#}"),
        }
    }

    /// Readiness of the whole appliance is libvirt answering a real call, checked off the main
    /// loop so a slow daemon never delays reaping or restarts.
    fn check_libvirt_when_all_ready(&mut self) {
        if self.libvirt_check.is_some()
            || !self
                .services
                .iter()
                .all(|s| matches!(s.phase, Phase::Ready { .. }))
        {
            return;
        }
        let cancel = Arc::new(AtomicBool::new(false));
        self.libvirt_check = Some(cancel.clone());
        let tx = self.tx.clone();
        let _ = std::thread::Builder::new()
            .name("libvirt-ready".into())
            .spawn(move || {
                let mut last_error = String::new();
                while !cancel.load(Ordering::Relaxed) {
                    match virt::connect::Connect::open(Some(crate::libvirt::URI)).and_then(
                        |mut c| {
                            let v = c.get_lib_version();
                            let _ = c.close();
                            v
                        },
                    ) {
                        Ok(_) => {
                            let _ = tx.send(Event::LibvirtReady);
                            return;
                        }
                        Err(e) => {
                            let msg = e.to_string();
                            if msg != last_error {
                                debug!(error = msg, "libvirt does not answer yet");
                                last_error = msg;
                            }
                        }
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            });
    }

    fn on_libvirt_ready(&mut self) {
        self.libvirt_ready = true;
        info!(
            secs = self.started_at.elapsed().as_secs_f32(),
            "libvirt answers: ready"
        );
        self.publish();
        if let Some(sock) = &self.cfg.notify_socket {
            match notify::notify(sock, "READY=1\nSTATUS=libvirt is ready") {
                Ok(()) => debug!("sent READY=1"),
                Err(e) => warn!("{e:#}"),
            }
        }
        if self.cfg.policy.on_boot == OnBoot::Start {
            let record = self.cfg.guest_record.clone();
            let _ = std::thread::Builder::new()
                .name("guests-boot".into())
                .spawn(move || {
                    let result = virt::connect::Connect::open(Some(crate::libvirt::URI))
                        .map_err(anyhow::Error::from)
                        .and_then(|conn| guests::start_recorded(&conn, &record));
                    if let Err(e) = result {
                        warn!("starting the guests of the last run: {e:#}");
                    }
                });
        }
    }

    fn next_wake(&self, now: Instant) -> Option<Duration> {
        self.services
            .iter()
            .filter_map(|s| match s.phase {
                Phase::Backoff { until } => Some(until.saturating_duration_since(now)),
                Phase::Starting { .. } if matches!(s.def.ready, Some(Ready::Socket(_))) => {
                    Some(SOCKET_PROBE)
                }
                Phase::Starting { since, .. } => {
                    Some((since + s.def.start_timeout).saturating_duration_since(now))
                }
                _ => None,
            })
            .min()
    }

    fn publish(&mut self) {
        let state = Published {
            services: self
                .services
                .iter()
                .map(|s| {
                    (
                        s.name.clone(),
                        ServiceState {
                            state: s.phase.word().into(),
                            pid: s.phase.pid(),
                        },
                    )
                })
                .collect(),
            libvirt_ready: self.libvirt_ready,
            stopping: self.stopping,
        };
        if self.published.as_ref() != Some(&state) {
            if let Err(e) = state::write(&self.cfg.state_path, &state) {
                warn!("{e:#}");
            }
            self.published = Some(state);
        }
    }

    /// The stop sequence: guests first (libvirt-guests semantics), then services in reverse
    /// start order (TERM, grace, KILL). Returns the exit code.
    fn stop(mut self) -> i32 {
        self.stopping = true;
        if let Some(cancel) = &self.libvirt_check {
            cancel.store(true, Ordering::Relaxed);
        }
        self.publish();
        if let Some(sock) = &self.cfg.notify_socket {
            let _ = notify::notify(sock, "STOPPING=1");
        }
        let mut code = self.stop_guests();
        for i in (0..self.services.len()).rev() {
            if let Some(exit) = self.stop_service(i) {
                if !exit.clean() && code == 0 {
                    code = exit.status_code();
                }
            }
        }
        self.publish();
        info!(code, "stopped");
        code
    }

    fn stop_guests(&mut self) -> i32 {
        if !self.libvirt_ready {
            info!("libvirt never became ready: no guests to stop");
            return 0;
        }
        let conn = match virt::connect::Connect::open(Some(crate::libvirt::URI)) {
            Ok(c) => c,
            Err(e) => {
                error!(error = %e, "libvirt does not answer: guests cannot be shut down cleanly");
                return 1;
            }
        };
        match guests::stop_all(&conn, &self.cfg.policy, &self.cfg.guest_record) {
            Ok(report) if report.forced.is_empty() => 0,
            Ok(report) => {
                warn!(guests = ?report.forced, "guests that did not stop cleanly");
                1
            }
            Err(e) => {
                error!("stopping guests: {e:#}");
                1
            }
        }
    }

    /// TERM to the service's process group, its stop_timeout, then KILL; the exit if seen.
    fn stop_service(&mut self, i: usize) -> Option<Exit> {
        let Some(pid) = self.services[i].phase.pid() else {
            self.services[i].phase = Phase::Down;
            return None;
        };
        let name = self.services[i].name.clone();
        let grace = self.services[i].def.stop_timeout;
        self.services[i].phase = Phase::Stopping { pid };
        self.publish();
        info!(service = name, pid, "stopping");
        let _ = killpg(Pid::from_raw(pid), Signal::SIGTERM);
        if let Some(exit) = self.wait_for(pid, grace) {
            info!(service = name, %exit, "stopped");
            return Some(exit);
        }
        warn!(service = name, grace = ?grace, "did not stop in time; SIGKILL");
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        let exit = self.wait_for(pid, KILL_WAIT);
        self.services[i].phase = Phase::Down;
        exit
    }

    fn wait_for(&mut self, pid: i32, limit: Duration) -> Option<Exit> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(Event::Exited(exit)) if exit.pid == pid => {
                    self.on_exit(exit);
                    return Some(exit);
                }
                Ok(Event::Exited(exit)) => self.on_exit(exit),
                Ok(Event::Stop(sig)) => info!(signal = signal_name(sig), "already stopping"),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }
}
