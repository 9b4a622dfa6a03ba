//! The supervision state machine: starts services in dependency order once their dependencies
//! are ready, watches readiness, restarts the dead with backoff (never giving up), announces
//! readiness when libvirt answers, and on a stop signal runs the stop sequence: guests first
//! (bringing libvirt back if it is down), then services in reverse order.
//!
//! Everything arrives as an `Event` on one channel: exits from the reaper thread, stop signals,
//! readiness lines. The loop sleeps on that channel; its timeout serves only the timers
//! (backoff, start timeouts, socket readiness probes), never reaping. libvirt itself is spoken
//! only by helper processes (helpers.rs), which are children like the services.

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tracing::{debug, error, info, warn};

use super::backoff;
use super::catalog::{Ready, ServiceDef};
use super::helpers;
use super::notify;
use super::reaper::{signal_name, Event, Exit};
use super::spawn::{spawn, Spawn, Tail};
use super::state::{self, Published, ServiceState};
use crate::libvirt::policy::{OnBoot, Policy};

/// Socket readiness is polled only while a service starts (the fallback for a daemon that does
/// not say READY=1, as libvirt 9.0's virtlogd and virtlockd do not).
const SOCKET_PROBE: Duration = Duration::from_millis(10);
const KILL_WAIT: Duration = Duration::from_secs(5);
/// A libvirt daemon with no qemu left exits within milliseconds of SIGTERM, unless it hangs in
/// its own shutdown: libvirt 10.3 and later (trixie's 11.3 measured, about one stop in eight)
/// can deadlock there, the nodedev driver joining its udev thread while holding the lock that
/// thread needs to end. With no guest running, killing it loses nothing.
const LIBVIRT_IDLE_GRACE: Duration = Duration::from_secs(5);
/// How long the boot step may take to finish the guest it is starting when a stop comes.
const BOOT_STEP_GRACE: Duration = Duration::from_secs(30);
/// A readiness helper that died (it only ends by itself once libvirt answers) is started again
/// after this.
const HELPER_RETRY: Duration = Duration::from_secs(1);
/// After this long without an event, the code the last burst of work ran leaves PID 1's page
/// tables (trim.rs): a quiet appliance keeps only what it needs to wait.
const TRIM_QUIET: Duration = Duration::from_secs(2);
/// A service with no readiness of its own is ready once started; one that dies sooner than
/// this after its start counts as a failed start all the same, so a crash loop backs off (s6's
/// one-second rule).
const MIN_UP: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, PartialEq)]
enum Phase {
    /// Not started yet: waiting for dependencies.
    Waiting,
    /// init holds its sockets (`listen`) and starts it at the first client; as good as ready
    /// for its dependents, whose connections wait in the backlog.
    Listening,
    Starting {
        pid: i32,
        since: Instant,
    },
    Ready {
        pid: i32,
    },
    /// Killed for missing its start timeout; its exit counts as a failed start.
    Killing {
        pid: i32,
    },
    Backoff {
        until: Instant,
    },
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
            Phase::Listening => "listening",
            Phase::Starting { .. } => "starting",
            Phase::Ready { .. } => "ready",
            Phase::Killing { .. } => "killing",
            Phase::Backoff { .. } => "backoff",
            Phase::Stopping { .. } => "stopping",
            Phase::Down => "down",
        }
    }
}

struct Service {
    name: String,
    def: ServiceDef,
    phase: Phase,
    /// Consecutive starts that ended before the service was ready.
    failed_starts: u32,
    restarts: u32,
    /// Why it is not running, for `virtpod health`.
    why: Option<String>,
    tail: Tail,
    /// The sockets init listens on for it (`listen`), once bound; kept across its restarts.
    sockets: Vec<OwnedFd>,
    /// When its current process started.
    started: Instant,
}

impl Service {
    /// Ready, or listening on its behalf: what its dependents and libvirt's readiness wait for.
    fn serving(&self) -> bool {
        matches!(self.phase, Phase::Ready { .. } | Phase::Listening)
    }

    /// No readiness of its own (`ready`, `notify`): ready as soon as it runs.
    fn ready_once_started(&self) -> bool {
        self.def.ready.is_none() && !self.def.notify
    }
}

/// The helper processes init runs (helpers.rs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Helper {
    Ready,
    BootGuests,
    StopGuests,
}

impl Helper {
    fn arg(self) -> &'static str {
        match self {
            Helper::Ready => "ready",
            Helper::BootGuests => "boot-guests",
            Helper::StopGuests => "stop-guests",
        }
    }
}

pub struct Config {
    pub env: BTreeMap<String, String>,
    pub notify_socket: Option<String>,
    pub policy: Policy,
    pub guest_record: PathBuf,
    pub state_path: PathBuf,
    /// The libvirt helper (`virtpod-libvirt`, helpers.rs).
    pub helper: PathBuf,
}

pub struct Supervisor {
    services: Vec<Service>,
    cfg: Config,
    tx: Sender<Event>,
    rx: Receiver<Event>,
    finishers: BTreeMap<i32, String>,
    helpers: BTreeMap<i32, Helper>,
    /// When the readiness helper may be started (again).
    ready_helper_at: Option<Instant>,
    started_at: Instant,
    libvirt_ready: bool,
    stopping: bool,
    /// The stop-guests helper's exit, once it has ended.
    guests_stopped: Option<Exit>,
    published: Option<Published>,
    /// (one CPU, init's CPUs) for `one_cpu_at_start` services: with /dev/kvm and more than one
    /// CPU (cpus.rs).
    cpus: Option<(nix::sched::CpuSet, nix::sched::CpuSet)>,
    /// The last event, while there has been work since the last trim.
    untrimmed_since: Option<Instant>,
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
                failed_starts: 0,
                restarts: 0,
                why: None,
                tail: Tail::default(),
                sockets: Vec::new(),
                started: Instant::now(),
            })
            .collect();
        Supervisor {
            services,
            cfg,
            tx,
            rx,
            finishers: BTreeMap::new(),
            helpers: BTreeMap::new(),
            ready_helper_at: Some(Instant::now()),
            started_at: Instant::now(),
            libvirt_ready: false,
            stopping: false,
            guests_stopped: None,
            published: None,
            cpus: super::cpus::for_start(),
            untrimmed_since: Some(Instant::now()),
        }
    }

    /// Supervise until a stop signal, then stop everything; returns init's exit code.
    pub fn run(mut self) -> i32 {
        let sig = loop {
            if let Some(sig) = self.step() {
                break sig;
            }
        };
        info!(signal = signal_name(sig), "stopping");
        self.stop()
    }

    /// One turn: start what is due, publish, wait for one event or timer and handle it.
    /// Returns a stop signal when one arrives.
    fn step(&mut self) -> Option<i32> {
        // A service that becomes ready lets its dependents start in the same turn.
        loop {
            let now = Instant::now();
            self.start_due(now);
            if !self.probe_starting(now) {
                break;
            }
        }
        self.start_ready_helper();
        self.publish();
        // Last before waiting, so that little runs between the trim and the wait.
        self.trim_when_quiet();
        let event = match self.next_wake(Instant::now()) {
            Some(wait) => match self.rx.recv_timeout(wait) {
                Ok(e) => e,
                Err(RecvTimeoutError::Timeout) => return None,
                Err(RecvTimeoutError::Disconnected) => return Some(nix::libc::SIGTERM),
            },
            None => match self.rx.recv() {
                Ok(e) => e,
                Err(_) => return Some(nix::libc::SIGTERM),
            },
        };
        self.untrimmed_since = Some(Instant::now());
        match event {
            Event::Exited(exit) => self.on_exit(exit),
            Event::Stop(sig) if self.stopping => {
                info!(signal = signal_name(sig), "already stopping")
            }
            Event::Stop(sig) => return Some(sig),
            Event::Notified { service, pid } => self.mark_ready(&service, pid),
            Event::Wanted { service } => self.on_wanted(&service),
        }
        None
    }

    /// A client connected to a socket init holds for a service that has not run yet.
    fn on_wanted(&mut self, name: &str) {
        let Some(i) = self.index(name) else { return };
        if self.services[i].phase == Phase::Listening {
            info!(service = name, "a client connected: starting it");
            self.start(i);
        }
    }

    fn index(&self, name: &str) -> Option<usize> {
        self.services.iter().position(|s| s.name == name)
    }

    fn deps_ready(&self, svc: &Service) -> bool {
        svc.def.after.iter().all(|dep| match self.index(dep) {
            None => true, // not selected: nothing to wait for
            Some(i) => self.services[i].serving(),
        })
    }

    fn start_due(&mut self, now: Instant) {
        for i in 0..self.services.len() {
            let due = match &self.services[i].phase {
                Phase::Waiting => self.deps_ready(&self.services[i]),
                Phase::Backoff { until } => *until <= now && self.deps_ready(&self.services[i]),
                _ => false,
            };
            if !due {
                continue;
            }
            let svc = &self.services[i];
            // Once its sockets are bound, a service that died comes back on them at once.
            if !svc.def.listen.is_empty() && svc.sockets.is_empty() {
                self.listen(i);
            } else {
                self.start(i);
            }
        }
    }

    /// Binds the service's sockets and waits for its first client (activation.rs).
    fn listen(&mut self, i: usize) {
        let svc = &mut self.services[i];
        let bound = super::activation::bind_all(&svc.def.listen).and_then(|sockets| {
            super::activation::watch(&sockets, svc.name.clone(), self.tx.clone())?;
            Ok(sockets)
        });
        match bound {
            Ok(sockets) => {
                let paths: Vec<String> = svc
                    .def
                    .listen
                    .iter()
                    .map(|l| l.path.display().to_string())
                    .collect();
                info!(
                    service = svc.name,
                    sockets = paths.join(" "),
                    "listening; it starts at its first client"
                );
                svc.sockets = sockets;
                svc.phase = Phase::Listening;
                svc.why = None;
            }
            Err(e) => {
                error!(service = svc.name, "{e:#}");
                svc.why = Some(format!("{e:#}"));
                self.failed(i, true);
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
        let mut env = None;
        let mut notify_socket = None;
        if svc.def.notify {
            let path = std::path::Path::new(notify::DIR).join(&svc.name);
            match notify::listen(&path) {
                Ok(socket) => {
                    let mut with = self.cfg.env.clone();
                    with.insert("NOTIFY_SOCKET".into(), path.display().to_string());
                    env = Some(with);
                    notify_socket = Some(socket);
                }
                Err(e) => warn!(service = svc.name, "{e:#}: readiness by its socket only"),
            }
        }
        if !svc.sockets.is_empty() {
            let with = env.get_or_insert_with(|| self.cfg.env.clone());
            with.extend(super::activation::env(&svc.def.listen));
        }
        let affinity = match self.cpus {
            Some((one, _)) if svc.def.one_cpu_at_start && !self.libvirt_ready => Some(one),
            _ => None,
        };
        let result = spawn(
            Spawn {
                name: &svc.name,
                argv: &svc.def.command,
                env: env.as_ref().unwrap_or(&self.cfg.env),
                notify_fd,
                tail: Some(svc.tail.clone()),
                affinity,
                listen: &svc.sockets,
            },
            &self.tx,
        );
        let svc = &mut self.services[i];
        match result {
            Ok(pid) => {
                info!(service = svc.name, pid, "started");
                if let Some(socket) = notify_socket {
                    let limit = svc.def.start_timeout;
                    notify::watch(socket, svc.name.clone(), pid, limit, self.tx.clone());
                }
                svc.started = Instant::now();
                // A service on init's sockets is ready at once: they already listen.
                svc.phase = if svc.ready_once_started() {
                    Phase::Ready { pid }
                } else {
                    Phase::Starting {
                        pid,
                        since: Instant::now(),
                    }
                };
            }
            Err(e) => {
                error!(service = svc.name, "{e}");
                svc.why = Some(e.to_string());
                self.failed(i, true);
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
                if super::listening::listening(path) {
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
                let why = format!(
                    "not ready within {:?} (start_timeout)",
                    svc.def.start_timeout
                );
                let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
                self.services[i].why = Some(why);
                self.services[i].phase = Phase::Killing { pid };
            }
        }
        any
    }

    fn mark_ready(&mut self, name: &str, pid: i32) {
        let Some(i) = self.index(name) else { return };
        let svc = &mut self.services[i];
        if let Phase::Starting { pid: p, since } = svc.phase {
            if p == pid {
                info!(
                    service = name,
                    pid,
                    secs = since.elapsed().as_secs_f32(),
                    "ready"
                );
                svc.phase = Phase::Ready { pid };
                svc.failed_starts = 0;
                svc.why = None;
            }
        }
    }

    /// The service is not running: start it again after its backoff. While stopping, a daemon
    /// the guests' shutdown needs comes back after the initial delay only.
    fn failed(&mut self, i: usize, before_ready: bool) {
        let stopping = self.stopping;
        let svc = &mut self.services[i];
        if before_ready {
            svc.failed_starts = svc.failed_starts.saturating_add(1);
        }
        let delay = if stopping {
            svc.def.restart.initial_delay
        } else {
            backoff::delay(&svc.def.restart, svc.failed_starts.max(1))
        };
        svc.restarts += 1;
        info!(service = svc.name, delay = ?delay, restarts = svc.restarts, "restarting after backoff");
        svc.phase = Phase::Backoff {
            until: Instant::now() + delay,
        };
    }

    fn on_exit(&mut self, exit: Exit) {
        if let Some(service) = self.finishers.remove(&exit.pid) {
            debug!(service, %exit, "finish action ended");
            return;
        }
        if let Some(helper) = self.helpers.remove(&exit.pid) {
            self.on_helper_exit(helper, exit);
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
        let before_ready = match self.services[i].phase {
            Phase::Stopping { .. } => {
                self.services[i].phase = Phase::Down;
                return;
            }
            Phase::Starting { .. } | Phase::Killing { .. } => true,
            Phase::Ready { .. } if self.services[i].ready_once_started() => {
                let short = self.services[i].started.elapsed() < MIN_UP;
                if !short {
                    self.services[i].failed_starts = 0;
                }
                short
            }
            _ => false,
        };
        warn!(service = self.services[i].name, pid = exit.pid, %exit, "exited unexpectedly");
        if !matches!(self.services[i].phase, Phase::Killing { .. }) {
            self.services[i].why = Some(format!("{exit}"));
        }
        self.run_finish(i, &exit);
        self.failed(i, before_ready);
    }

    fn on_helper_exit(&mut self, helper: Helper, exit: Exit) {
        debug!(helper = helper.arg(), %exit, "helper ended");
        match helper {
            Helper::Ready if exit.clean() && !self.stopping => self.on_libvirt_ready(),
            Helper::Ready if !self.stopping => {
                warn!(%exit, "the readiness check ended without an answer; checking again");
                self.ready_helper_at = Some(Instant::now() + HELPER_RETRY);
            }
            Helper::StopGuests => self.guests_stopped = Some(exit),
            _ => {}
        }
    }

    fn spawn_helper(&mut self, helper: Helper) -> Option<i32> {
        let mut argv = vec![
            self.cfg.helper.display().to_string(),
            helper.arg().to_string(),
        ];
        if helper != Helper::Ready {
            argv.push("--record".to_string());
            argv.push(self.cfg.guest_record.display().to_string());
        }
        let pid = self.spawn_child(&format!("virtpod-{}", helper.arg()), &argv)?;
        self.helpers.insert(pid, helper);
        Some(pid)
    }

    /// A child that is not a service (a helper, a finish action): no readiness, no tail.
    fn spawn_child(&self, name: &str, argv: &[String]) -> Option<i32> {
        let child = Spawn {
            name,
            argv,
            env: &self.cfg.env,
            notify_fd: None,
            tail: None,
            affinity: None,
            listen: &[],
        };
        spawn(child, &self.tx).map_err(|e| error!("{e}")).ok()
    }

    fn helper_pid(&self, helper: Helper) -> Option<i32> {
        self.helpers
            .iter()
            .find(|(_, h)| **h == helper)
            .map(|(p, _)| *p)
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
        if let Some(pid) = self.spawn_child(&name, &argv) {
            self.finishers.insert(pid, name);
        }
    }

    /// Readiness of the whole appliance is libvirt answering a real call: once every service
    /// is ready, a helper process asks until it does (so a slow daemon never delays reaping).
    fn start_ready_helper(&mut self) {
        let due = self.ready_helper_at.is_some_and(|at| at <= Instant::now());
        if !due || !self.helper_may_start() {
            return;
        }
        self.ready_helper_at = None;
        if self.spawn_helper(Helper::Ready).is_none() {
            self.ready_helper_at = Some(Instant::now() + HELPER_RETRY);
        }
    }

    fn helper_may_start(&self) -> bool {
        !self.stopping && self.services.iter().all(Service::serving)
    }

    fn on_libvirt_ready(&mut self) {
        self.libvirt_ready = true;
        info!(
            secs = self.started_at.elapsed().as_secs_f32(),
            "libvirt answers: ready"
        );
        if let Some((one, all)) = &self.cpus {
            if self.services.iter().any(|s| s.def.one_cpu_at_start) {
                let threads = super::cpus::give_back(one, all, std::process::id() as i32);
                debug!(threads, "every CPU given back after libvirt's start on one");
            }
        }
        self.publish();
        if let Some(sock) = &self.cfg.notify_socket {
            match notify::notify(sock, "READY=1\nSTATUS=libvirt is ready") {
                Ok(()) => debug!("sent READY=1"),
                Err(e) => warn!("{e:#}"),
            }
        }
        if self.cfg.policy.on_boot == OnBoot::Start {
            self.spawn_helper(Helper::BootGuests);
        }
    }

    fn next_wake(&self, now: Instant) -> Option<Duration> {
        let services = self.services.iter().filter_map(|s| match s.phase {
            Phase::Backoff { until } => Some(until.saturating_duration_since(now)),
            Phase::Starting { .. } if matches!(s.def.ready, Some(Ready::Socket(_))) => {
                Some(SOCKET_PROBE)
            }
            Phase::Starting { since, .. } => {
                Some((since + s.def.start_timeout).saturating_duration_since(now))
            }
            _ => None,
        });
        // Only a helper that may start is a timer: before every service serves, a past
        // `ready_helper_at` would wake the loop at once, over and over.
        let helper = self
            .ready_helper_at
            .filter(|_| self.helper_may_start())
            .map(|at| at.saturating_duration_since(now));
        let trim = self
            .untrimmed_since
            .map(|at| (at + TRIM_QUIET).saturating_duration_since(now));
        services.chain(helper).chain(trim).min()
    }

    fn trim_when_quiet(&mut self) {
        if self
            .untrimmed_since
            .is_some_and(|at| at.elapsed() >= TRIM_QUIET)
        {
            let bytes = super::trim::drop_clean_file_pages();
            debug!(bytes, "quiet: dropped the pages of the last work");
            self.untrimmed_since = None;
        }
    }

    fn publish(&mut self) {
        let state = Published {
            services: self
                .services
                .iter()
                .map(|s| {
                    let ready = s.serving();
                    let last_output = if ready {
                        Vec::new()
                    } else {
                        let tail = s.tail.lock().unwrap_or_else(|e| e.into_inner());
                        tail.iter().cloned().collect()
                    };
                    (
                        s.name.clone(),
                        ServiceState {
                            state: s.phase.word().into(),
                            pid: s.phase.pid(),
                            restarts: s.restarts,
                            why: if ready { None } else { s.why.clone() },
                            last_output,
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

    /// Whether a guest may be running: libvirt answered in this run (anyone may have started
    /// one), or a qemu process exists.
    fn guests_possible(&self) -> bool {
        self.libvirt_ready || qemu_running()
    }

    /// The stop sequence: guests first (libvirt-guests semantics), then services in reverse
    /// start order (TERM, grace, KILL). Returns the exit code.
    fn stop(mut self) -> i32 {
        self.stopping = true;
        self.publish();
        if let Some(sock) = &self.cfg.notify_socket {
            let _ = notify::notify(sock, "STOPPING=1");
        }
        if let Some(pid) = self.helper_pid(Helper::Ready) {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            self.wait_helper(pid, KILL_WAIT);
        }
        // The boot step finishes the guest it is starting, then ends; what it has not started
        // stays in the record, which the guests' stop merges with what runs.
        if let Some(pid) = self.helper_pid(Helper::BootGuests) {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGTERM);
            if !self.wait_helper(pid, BOOT_STEP_GRACE) {
                let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
                self.wait_helper(pid, KILL_WAIT);
            }
        }
        let mut code = 0;
        if self.guests_possible() {
            code = self.stop_guests();
        } else {
            info!("libvirt never answered in this run and no qemu runs: no guest to stop (the record of the last run is kept)");
        }
        for i in (0..self.services.len()).rev() {
            if let Some(exit) = self.stop_service(i) {
                if code == 0 && !stopped_cleanly(&exit) {
                    code = exit.status_code();
                }
            }
        }
        self.publish();
        info!(code, "stopped");
        code
    }

    /// Runs the stop-guests helper while supervising as usual, so a daemon that is down or in
    /// backoff comes back (after its initial delay only) for the guests' shutdown.
    fn stop_guests(&mut self) -> i32 {
        let now = Instant::now();
        for svc in &mut self.services {
            if let Phase::Backoff { until } = &mut svc.phase {
                *until = (*until).min(now);
            }
        }
        if self.spawn_helper(Helper::StopGuests).is_none() {
            return helpers::GUESTS_FORCED;
        }
        while self.guests_stopped.is_none() {
            self.step();
        }
        let exit = self.guests_stopped.take().unwrap_or(Exit {
            pid: 0,
            code: Some(helpers::GUESTS_FORCED),
            signal: None,
        });
        match exit.code {
            Some(helpers::GUESTS_CLEAN) => 0,
            Some(helpers::LIBVIRT_UNREACHABLE) => {
                error!("libvirt did not come back: guests were not shut down cleanly");
                1
            }
            _ => 1,
        }
    }

    /// Waits for a helper's exit while handling other events; whether it ended in time.
    fn wait_helper(&mut self, pid: i32, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while self.helpers.contains_key(&pid) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            match self.rx.recv_timeout(left) {
                Ok(Event::Exited(exit)) => self.on_exit(exit),
                Ok(Event::Notified { service, pid }) => self.mark_ready(&service, pid),
                Ok(Event::Wanted { service }) => self.on_wanted(&service),
                Ok(Event::Stop(sig)) => info!(signal = signal_name(sig), "already stopping"),
                Err(_) => return !self.helpers.contains_key(&pid),
            }
        }
        true
    }

    /// TERM to the service's process group, its stop_timeout, then KILL; the exit if seen, and
    /// None for a libvirt daemon that hung with no guest left (LIBVIRT_IDLE_GRACE): its kill is
    /// not a failed stop.
    fn stop_service(&mut self, i: usize) -> Option<Exit> {
        let Some(pid) = self.services[i].phase.pid() else {
            self.services[i].phase = Phase::Down;
            return None;
        };
        let name = self.services[i].name.clone();
        let (grace, idle_daemon) = stop_grace(&self.services[i].def, qemu_running());
        self.services[i].phase = Phase::Stopping { pid };
        self.publish();
        info!(service = name, pid, "stopping");
        let _ = killpg(Pid::from_raw(pid), Signal::SIGTERM);
        if let Some(exit) = self.wait_for(pid, grace) {
            info!(service = name, %exit, "stopped");
            return Some(exit);
        }
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        let exit = self.wait_for(pid, KILL_WAIT);
        self.services[i].phase = Phase::Down;
        if idle_daemon {
            warn!(
                service = name,
                grace = ?grace,
                "hung in its own shutdown with no guest left (a known deadlock of libvirt 10.3 and later); killed, nothing lost"
            );
            return None;
        }
        warn!(service = name, grace = ?grace, "did not stop in time; SIGKILL");
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

/// At stop, a service that exits 0 or dies of the SIGTERM init sent it stopped as asked (a
/// daemon still starting has no handler yet and dies of the signal: not a failure).
fn stopped_cleanly(exit: &Exit) -> bool {
    exit.clean() || exit.signal == Some(nix::libc::SIGTERM)
}

/// The grace between SIGTERM and SIGKILL, and whether a kill after it is forgiven: a libvirt
/// daemon with no qemu left gets LIBVIRT_IDLE_GRACE, and its kill loses nothing.
fn stop_grace(def: &ServiceDef, qemu_running: bool) -> (Duration, bool) {
    if def.libvirt_daemon && !qemu_running {
        (def.stop_timeout.min(LIBVIRT_IDLE_GRACE), true)
    } else {
        (def.stop_timeout, false)
    }
}

/// Whether any qemu process runs in this container (daemonized qemu is re-parented to init).
fn qemu_running() -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|e| {
        e.file_name()
            .to_str()
            .is_some_and(|n| n.parse::<u32>().is_ok())
            && std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.starts_with("qemu"))
    })
}

#[cfg(test)]
mod tests {
    use super::super::catalog::Catalog;
    use super::*;

    fn supervisor(services: &[(&str, &str)]) -> Supervisor {
        let (tx, rx) = std::sync::mpsc::channel();
        let order = services
            .iter()
            .map(|(name, text)| (name.to_string(), Catalog::parse(text).unwrap()))
            .collect();
        let cfg = Config {
            env: BTreeMap::new(),
            notify_socket: None,
            policy: Policy {
                on_shutdown: crate::libvirt::policy::OnShutdown::Shutdown,
                on_boot: OnBoot::Ignore,
                shutdown_timeout: Duration::from_secs(1),
                parallel: 0,
            },
            guest_record: PathBuf::from("/nonexistent/record"),
            state_path: PathBuf::from("/nonexistent/state.json"),
            helper: PathBuf::from("/nonexistent/virtpod-libvirt"),
        };
        let mut sup = Supervisor::new(order, cfg, tx, rx);
        sup.untrimmed_since = None;
        sup
    }

    #[test]
    fn a_service_in_backoff_is_waited_for_not_spun_on() {
        // The readiness helper is due from the start, but may run only once every service
        // serves: until then its time must not wake the loop (it did, at once, over and over).
        let mut sup = supervisor(&[("a", "command = [\"a\"]")]);
        let later = Instant::now() + Duration::from_secs(5);
        sup.services[0].phase = Phase::Backoff { until: later };
        let wake = sup.next_wake(Instant::now()).unwrap();
        assert!(wake > Duration::from_secs(4), "{wake:?}");
        sup.services[0].phase = Phase::Ready { pid: 1 };
        assert_eq!(sup.next_wake(Instant::now()), Some(Duration::ZERO));
    }

    #[test]
    fn a_service_ready_once_started_that_dies_within_a_second_backs_off() {
        let mut sup = supervisor(&[("a", "command = [\"a\"]")]);
        let died = |code| Exit {
            pid: 4242,
            code: Some(code),
            signal: None,
        };
        for n in 1..=3 {
            sup.services[0].phase = Phase::Ready { pid: 4242 };
            sup.services[0].started = Instant::now();
            sup.on_exit(died(1));
            assert_eq!(sup.services[0].failed_starts, n);
        }
        let Phase::Backoff { until } = sup.services[0].phase else {
            panic!("{:?}", sup.services[0].phase)
        };
        assert!(
            until > Instant::now() + Duration::from_millis(1500),
            "the delay doubles"
        );
        sup.services[0].phase = Phase::Ready { pid: 4242 };
        sup.services[0].started = Instant::now() - MIN_UP;
        sup.on_exit(died(0));
        assert_eq!(sup.services[0].failed_starts, 0, "it ran: a fresh start");
    }

    #[test]
    fn a_listening_service_lets_its_dependents_start() {
        let mut sup = supervisor(&[
            (
                "logd",
                "command = [\"logd\"]\nlisten = [{ name = \"l.socket\", path = \"/l\" }]",
            ),
            ("daemon", "command = [\"d\"]\nafter = [\"logd\"]"),
        ]);
        assert!(!sup.deps_ready(&sup.services[1]));
        sup.services[0].phase = Phase::Listening;
        assert!(sup.deps_ready(&sup.services[1]));
        sup.services[1].phase = Phase::Ready { pid: 2 };
        assert!(sup.helper_may_start());
    }

    #[test]
    fn an_idle_libvirt_daemon_gets_a_short_grace_and_is_forgiven_its_kill() {
        let def = |text: &str| super::super::catalog::Catalog::parse(text).unwrap();
        let daemon = def("command = [\"libvirtd\"]\nlibvirt_daemon = true");
        assert_eq!(stop_grace(&daemon, false), (LIBVIRT_IDLE_GRACE, true));
        // With qemu still running, the kill may lose a guest's state: the full grace, no pardon.
        assert_eq!(stop_grace(&daemon, true), (Duration::from_secs(15), false));
        let logd = def("command = [\"virtlogd\"]");
        assert_eq!(stop_grace(&logd, false), (Duration::from_secs(15), false));
        let quick = def("command = [\"libvirtd\"]\nlibvirt_daemon = true\nstop_timeout = 2");
        assert_eq!(stop_grace(&quick, false), (Duration::from_secs(2), true));
    }

    #[test]
    fn sigterm_at_stop_is_clean_sigkill_is_not() {
        let exit = |code, signal| Exit {
            pid: 1,
            code,
            signal,
        };
        assert!(stopped_cleanly(&exit(Some(0), None)));
        assert!(stopped_cleanly(&exit(None, Some(nix::libc::SIGTERM))));
        assert!(!stopped_cleanly(&exit(None, Some(nix::libc::SIGKILL))));
        assert!(!stopped_cleanly(&exit(Some(1), None)));
    }
}
