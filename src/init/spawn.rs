//! Starting one child of init: a service, a finish action or a libvirt helper. Its own process
//! group, the given environment, stdin from /dev/null, its output copied line by line to the
//! container's stdout/stderr behind its name (and kept as a short tail for `virtpod health`),
//! and, for s6-style readiness, a pipe on the fd it writes its ready line to.
//!
//! fork and exec are done here, not by std::process (nor process-wrap, built on it): when exec
//! fails, std waits for the child itself, racing the reaper's waitpid(-1), and panics when the
//! reaper wins ("wait() should either return Ok or panic"). Here nothing but the reaper ever
//! waits; a failed exec comes back through a close-on-exec pipe as an error, and the child's
//! exit reaches the reaper like any other.

use std::collections::{BTreeMap, VecDeque};
use std::ffi::CString;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};

use nix::fcntl::OFlag;
use nix::libc;

use super::activation;
use super::reaper::Event;

/// The last lines a child printed, newest last: the cause `virtpod health` shows.
pub type Tail = Arc<Mutex<VecDeque<String>>>;
const TAIL_LINES: usize = 5;

pub struct Spawn<'a> {
    /// The name its output lines carry.
    pub name: &'a str,
    pub argv: &'a [String],
    pub env: &'a BTreeMap<String, String>,
    pub notify_fd: Option<i32>,
    pub tail: Option<Tail>,
    /// The CPUs it may run on, when not init's own.
    pub affinity: Option<nix::sched::CpuSet>,
    /// Sockets handed over as fds 3, 4, … with `LISTEN_PID` (activation.rs); `LISTEN_FDS` and
    /// `LISTEN_FDNAMES` come with `env`.
    pub listen: &'a [OwnedFd],
}

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("cannot execute {program}: {errno}")]
    Exec { program: String, errno: nix::Error },
    #[error("{program}: {what} contains a NUL byte")]
    Nul { program: String, what: &'static str },
    #[error("starting {program}: {call}: {errno}")]
    Sys {
        program: String,
        call: &'static str,
        errno: nix::Error,
    },
}

fn cstrings<'a>(
    items: impl Iterator<Item = String> + 'a,
    program: &str,
    what: &'static str,
) -> Result<Vec<CString>, SpawnError> {
    items
        .map(|s| {
            CString::new(s).map_err(|_| SpawnError::Nul {
                program: program.to_string(),
                what,
            })
        })
        .collect()
}

/// Starts the child and returns its pid; its exit arrives as `Event::Exited` from the reaper.
pub fn spawn(req: Spawn<'_>, events: &Sender<Event>) -> Result<i32, SpawnError> {
    spawn_with_output(req, events).map(|(pid, _)| pid)
}

/// The threads relaying a child's stdout and stderr. The reaper can report a child's exit
/// before they have relayed its last lines: whoever reports that exit, and what it said,
/// drains them first.
pub struct Output(Vec<std::thread::JoinHandle<()>>);

impl Output {
    /// Waits until the child's output reached end of file, i.e. every line was relayed.
    pub fn drain(self) {
        for relay in self.0 {
            let _ = relay.join();
        }
    }
}

/// [`spawn`], with the relay of the child's output to [`Output::drain`].
pub fn spawn_with_output(
    req: Spawn<'_>,
    events: &Sender<Event>,
) -> Result<(i32, Output), SpawnError> {
    let program = req.argv[0].clone();
    let sys = |call: &'static str| {
        let program = program.clone();
        move |errno| SpawnError::Sys {
            program,
            call,
            errno,
        }
    };
    // The catalog allows neither (catalog.rs): the child has room for MAX sockets, and a
    // notification fd could be one of 3, 4, ….
    let refused = if req.listen.len() > activation::MAX {
        Some(nix::Error::E2BIG)
    } else if !req.listen.is_empty() && req.notify_fd.is_some() {
        Some(nix::Error::EINVAL)
    } else {
        None
    };
    if let Some(errno) = refused {
        return Err(sys("handing over sockets")(errno));
    }
    // Everything the child needs is allocated before fork: after it, only async-signal-safe
    // calls are allowed in a multi-threaded parent's child.
    let argv = cstrings(req.argv.iter().cloned(), &program, "an argument")?;
    let envp = cstrings(
        req.env.iter().map(|(k, v)| format!("{k}={v}")),
        &program,
        "the environment",
    )?;
    let devnull = nix::fcntl::open(
        "/dev/null",
        OFlag::O_RDWR | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(sys("open /dev/null"))?;
    let (out_r, out_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(sys("pipe"))?;
    let (err_r, err_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(sys("pipe"))?;
    let (exec_r, exec_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(sys("pipe"))?;
    let notify = match req.notify_fd {
        Some(_) => Some(nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(sys("pipe"))?),
        None => None,
    };
    let plan = ChildFds {
        stdin: devnull,
        stdout: out_w.as_raw_fd(),
        stderr: err_w.as_raw_fd(),
        notify: req
            .notify_fd
            .zip(notify.as_ref().map(|(_, w)| w.as_raw_fd())),
        exec_error: exec_w.as_raw_fd(),
        affinity: req.affinity,
        listen: req.listen.iter().map(AsRawFd::as_raw_fd).collect(),
    };
    // SAFETY: the child branch calls only async-signal-safe functions (child_exec) and never
    // returns.
    let pid = match unsafe { nix::unistd::fork() }.map_err(sys("fork"))? {
        nix::unistd::ForkResult::Child => unsafe { child_exec(&plan, &argv, &envp) },
        nix::unistd::ForkResult::Parent { child } => child.as_raw(),
    };
    let _ = nix::unistd::close(devnull);
    drop((out_w, err_w, exec_w));
    // The write end closes on a successful exec (EOF, nothing read) or carries exec's errno.
    let mut errno = [0u8; 4];
    let mut exec_r = std::fs::File::from(exec_r);
    if let Ok(4) = read_full(&mut exec_r, &mut errno) {
        return Err(SpawnError::Exec {
            program,
            errno: nix::Error::from_raw(i32::from_ne_bytes(errno)),
        });
    }
    let relays = [
        copy_lines(req.name, out_r, std::io::stdout(), req.tail.clone()),
        copy_lines(req.name, err_r, std::io::stderr(), req.tail),
    ];
    if let Some((read_end, write_end)) = notify {
        drop(write_end);
        watch_notify(req.name.to_string(), pid, read_end, events.clone());
    }
    Ok((pid, Output(relays.into_iter().flatten().collect())))
}

fn read_full(from: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match from.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

struct ChildFds {
    stdin: i32,
    stdout: i32,
    stderr: i32,
    /// (the fd number the service expects, our pipe's write end)
    notify: Option<(i32, i32)>,
    exec_error: i32,
    affinity: Option<nix::sched::CpuSet>,
    /// Listening sockets, to go to fds 3, 4, … in this order.
    listen: Vec<i32>,
}

/// In the forked child: own process group, default signals, the fds in place, its CPUs, exec. On any
/// failure, errno goes to the parent through the exec-error pipe and the child exits 127.
///
/// init blocks the signals its reaper thread takes and Rust ignores SIGPIPE; a child would
/// inherit both across exec, and a daemon with SIGTERM blocked never stops.
///
/// # Safety
/// Only between fork and exec: async-signal-safe calls only, no allocation.
unsafe fn child_exec(fds: &ChildFds, argv: &[CString], envp: &[CString]) -> ! {
    let fail = |exec_error: i32| -> ! {
        let errno = *libc::__errno_location();
        let bytes = errno.to_ne_bytes();
        libc::write(exec_error, bytes.as_ptr().cast(), bytes.len());
        libc::_exit(127)
    };
    let mut exec_error = fds.exec_error;
    if libc::setpgid(0, 0) < 0 {
        fail(exec_error);
    }
    let mut empty: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut empty);
    libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    for (from, to) in [(fds.stdin, 0), (fds.stdout, 1), (fds.stderr, 2)] {
        if libc::dup2(from, to) < 0 {
            fail(exec_error);
        }
    }
    if let Some((target, source)) = fds.notify {
        // dup2 onto itself keeps close-on-exec set: clear it instead.
        let rc = if source == target {
            libc::fcntl(source, libc::F_SETFD, 0)
        } else {
            libc::dup2(source, target)
        };
        if rc < 0 {
            fail(exec_error);
        }
    }
    // LISTEN_PID=<this pid>, on the stack: the child is the only one that knows its pid.
    let mut listen_pid = [0u8; 32];
    if !fds.listen.is_empty() {
        // Everything still needed moves above the target fds 3, 4, … first, so that no dup2
        // closes another socket or the exec-error pipe on its way.
        let above = activation::FIRST_FD + fds.listen.len() as i32;
        exec_error = libc::fcntl(exec_error, libc::F_DUPFD_CLOEXEC, above);
        if exec_error < 0 {
            fail(fds.exec_error);
        }
        let mut moved = [0i32; activation::MAX];
        for (i, fd) in fds.listen.iter().enumerate() {
            moved[i] = libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, above);
            if moved[i] < 0 {
                fail(exec_error);
            }
        }
        // dup2 leaves close-on-exec off on the new fd: these are the ones that cross exec.
        for (i, fd) in moved[..fds.listen.len()].iter().enumerate() {
            if libc::dup2(*fd, activation::FIRST_FD + i as i32) < 0 {
                fail(exec_error);
            }
        }
        write_listen_pid(&mut listen_pid, libc::getpid() as u32);
    }
    if let Some(set) = &fds.affinity {
        // One system call, no allocation: nix's wrapper is as safe here as libc's.
        if nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), set).is_err() {
            fail(exec_error);
        }
    }
    // Pointer arrays built on the stack: no allocation after fork.
    const MAX: usize = 512;
    let mut argp: [*const libc::c_char; MAX] = [std::ptr::null(); MAX];
    let mut envpp: [*const libc::c_char; MAX] = [std::ptr::null(); MAX];
    if argv.len() >= MAX || envp.len() + 1 >= MAX {
        *libc::__errno_location() = libc::E2BIG;
        fail(exec_error);
    }
    for (i, a) in argv.iter().enumerate() {
        argp[i] = a.as_ptr();
    }
    for (i, e) in envp.iter().enumerate() {
        envpp[i] = e.as_ptr();
    }
    if !fds.listen.is_empty() {
        envpp[envp.len()] = listen_pid.as_ptr().cast();
    }
    // execvpe: a bare command name is looked up in PATH, as a shell (and s6) would.
    libc::execvpe(argp[0], argp.as_ptr(), envpp.as_ptr());
    fail(exec_error)
}

/// `LISTEN_PID=<pid>` and a NUL into `buf`, without allocating (between fork and exec).
fn write_listen_pid(buf: &mut [u8; 32], pid: u32) {
    const NAME: &[u8] = b"LISTEN_PID=";
    buf[..NAME.len()].copy_from_slice(NAME);
    let mut digits = [0u8; 10];
    let (mut n, mut left) = (0, pid);
    loop {
        digits[n] = b'0' + (left % 10) as u8;
        n += 1;
        left /= 10;
        if left == 0 {
            break;
        }
    }
    for i in 0..n {
        buf[NAME.len() + i] = digits[n - 1 - i];
    }
    buf[NAME.len() + n] = 0;
}

fn copy_lines<W: Write + Send + 'static>(
    name: &str,
    from: OwnedFd,
    mut to: W,
    tail: Option<Tail>,
) -> Option<std::thread::JoinHandle<()>> {
    let prefix = format!("[{name}] ");
    std::thread::Builder::new()
        .name(format!("log-{name}"))
        .spawn(move || {
            let from = std::fs::File::from(from);
            for line in BufReader::new(from).split(b'\n').map_while(Result::ok) {
                let mut buf = Vec::with_capacity(prefix.len() + line.len() + 1);
                buf.extend_from_slice(prefix.as_bytes());
                buf.extend_from_slice(&line);
                buf.push(b'\n');
                let _ = to.write_all(&buf);
                if let Some(tail) = &tail {
                    let mut t = tail.lock().unwrap_or_else(|e| e.into_inner());
                    if t.len() == TAIL_LINES {
                        t.pop_front();
                    }
                    t.push_back(String::from_utf8_lossy(&line).chars().take(300).collect());
                }
            }
        })
        .ok()
}

/// s6 readiness: the service is ready when a full line arrives on its notification fd.
fn watch_notify(service: String, pid: i32, read_end: OwnedFd, events: Sender<Event>) {
    let _ = std::thread::Builder::new()
        .name(format!("ready-{service}"))
        .spawn(move || {
            let mut reader = BufReader::new(std::fs::File::from(read_end));
            let mut line = Vec::new();
            if reader.read_until(b'\n', &mut line).is_ok() && line.ends_with(b"\n") {
                let _ = events.send(Event::Notified { service, pid });
            }
        });
}

#[cfg(test)]
mod tests {
    #[test]
    fn listen_pid_is_written_with_its_nul() {
        let mut buf = [0xffu8; 32];
        super::write_listen_pid(&mut buf, 4_294_967_295);
        assert_eq!(&buf[..22], b"LISTEN_PID=4294967295\0");
        super::write_listen_pid(&mut buf, 7);
        assert_eq!(&buf[..13], b"LISTEN_PID=7\0");
    }
}
