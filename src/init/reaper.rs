//! The one owner of wait(2). A PID 1 that reaps with `waitpid(-1)` steals the exit statuses a
//! supervisor waits for, and waiting on a service's process group can block on orphans left in
//! it. So nothing else in init ever waits: this thread takes every signal init handles with
//! sigwaitinfo, reaps every child on SIGCHLD (services, their finish actions, and orphans such as
//! daemonized qemu re-parented to us), and reports each exit as an event to the supervisor.

use std::sync::mpsc::Sender;

use nix::libc;

/// A process that ended: `code` when it exited, `signal` when a signal killed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    pub pid: i32,
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

impl Exit {
    pub fn clean(&self) -> bool {
        self.code == Some(0)
    }

    /// The exit code a shell (and tini, catatonit) would report: the code, or 128 + signal.
    pub fn status_code(&self) -> i32 {
        self.code.unwrap_or_else(|| 128 + self.signal.unwrap_or(0))
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.code, self.signal) {
            (Some(c), _) => write!(f, "exit code {c}"),
            (_, Some(s)) => write!(f, "signal {s} ({})", signal_name(s)),
            _ => write!(f, "unknown status"),
        }
    }
}

pub fn signal_name(sig: i32) -> String {
    nix::sys::signal::Signal::try_from(sig)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| format!("SIGRTMIN+{}", sig - libc::SIGRTMIN()))
}

#[derive(Debug)]
pub enum Event {
    Exited(Exit),
    /// SIGTERM, SIGINT, SIGRTMIN+3 (systemd's halt signal, what `podman stop` of a systemd
    /// image sends) or SIGURG: begin the stop sequence. SIGURG is for a container in the host's
    /// PID namespace, where `podman stop` signals every process in it: qemu ends on SIGTERM
    /// without shutting its guest down, but ignores SIGURG, as libvirt's daemons do.
    Stop(i32),
    /// A service wrote its readiness line on its notification fd.
    Notified {
        service: String,
        pid: i32,
    },
    /// A client connected to a socket init listens on for a service (activation.rs).
    Wanted {
        service: String,
    },
}

fn handled_signals() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset only write the set we own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in [
            libc::SIGCHLD,
            libc::SIGTERM,
            libc::SIGINT,
            libc::SIGHUP,
            libc::SIGRTMIN() + 3,
            libc::SIGURG,
        ] {
            libc::sigaddset(&mut set, sig);
        }
        set
    }
}

/// Block the handled signals in this thread, so every thread spawned after inherits the mask and
/// only the reaper thread receives them. Call first, before any other thread exists. Children
/// start with an empty mask (std's spawn resets it).
pub fn block_signals() -> std::io::Result<()> {
    let set = handled_signals();
    // SAFETY: set is initialised; a null old-set pointer is allowed.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::from_raw_os_error(rc))
    }
}

/// When init is not PID 1 (tests, `--init` wrappers), orphans must still come to us.
pub fn become_subreaper() -> std::io::Result<()> {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes one integer argument.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

pub fn spawn(tx: Sender<Event>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("reaper".into())
        .spawn(move || run(tx))
        .map(|_| ())
}

fn run(tx: Sender<Event>) {
    let set = handled_signals();
    loop {
        // SAFETY: set is initialised; info is written by the kernel.
        let sig = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            libc::sigwaitinfo(&set, &mut info)
        };
        if sig < 0 {
            continue; // EINTR
        }
        if sig == libc::SIGCHLD {
            // One SIGCHLD may stand for many exits: reap until nothing is left.
            while let Some(exit) = reap_one() {
                if tx.send(Event::Exited(exit)).is_err() {
                    return;
                }
            }
        } else if sig == libc::SIGHUP {
            tracing::info!("SIGHUP ignored (reload is not supported; restart the container)");
        } else if tx.send(Event::Stop(sig)).is_err() {
            return;
        }
    }
}

fn reap_one() -> Option<Exit> {
    let mut status = 0;
    // SAFETY: waitpid writes only status.
    let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
    if pid <= 0 {
        return None;
    }
    Some(if libc::WIFEXITED(status) {
        Exit {
            pid,
            code: Some(libc::WEXITSTATUS(status)),
            signal: None,
        }
    } else {
        Exit {
            pid,
            code: None,
            signal: Some(libc::WTERMSIG(status)),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_follow_tini() {
        assert_eq!(
            Exit {
                pid: 1,
                code: Some(3),
                signal: None
            }
            .status_code(),
            3
        );
        assert_eq!(
            Exit {
                pid: 1,
                code: None,
                signal: Some(9)
            }
            .status_code(),
            137
        );
        assert_eq!(signal_name(libc::SIGRTMIN() + 3), "SIGRTMIN+3");
        assert_eq!(signal_name(15), "SIGTERM");
    }
}
