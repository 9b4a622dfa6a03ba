//! Starting one service process: its own process group (process-wrap), the given environment,
//! its output copied line by line to the container's stdout/stderr behind the service's name,
//! and, for s6-style readiness, a pipe on the fd the service writes its ready line to.
//!
//! The returned pid is all init keeps: the reaper owns waiting (see reaper.rs), so the
//! process-wrap child is never waited on.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::sync::mpsc::Sender;

use anyhow::{Context, Result};
use process_wrap::std::{ProcessGroup, StdCommandWrap};

use super::reaper::Event;

pub struct Spawn<'a> {
    pub service: &'a str,
    pub argv: &'a [String],
    pub env: &'a BTreeMap<String, String>,
    pub notify_fd: Option<i32>,
}

pub fn spawn(req: Spawn<'_>, events: &Sender<Event>) -> Result<i32> {
    let notify = match req.notify_fd {
        Some(_) => Some(nix::unistd::pipe().context("creating the readiness pipe")?),
        None => None,
    };
    let mut cmd = StdCommandWrap::with_new(&req.argv[0], |c| {
        c.args(&req.argv[1..])
            .env_clear()
            .envs(req.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
    });
    let notify_dup = match (req.notify_fd, &notify) {
        (Some(target), Some((_, write_end))) => Some((write_end.as_raw_fd(), target)),
        _ => None,
    };
    // SAFETY: only async-signal-safe calls (sigprocmask, signal, dup2) between fork and exec.
    unsafe {
        cmd.command_mut().pre_exec(move || {
            reset_signals();
            if let Some((source, target)) = notify_dup {
                if nix::libc::dup2(source, target) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let mut child = cmd
        .wrap(ProcessGroup::leader())
        .spawn()
        .with_context(|| format!("starting {} ({})", req.service, req.argv[0]))?;
    let pid = child.id() as i32;
    if let Some(out) = child.stdout().take() {
        copy_lines(req.service, out, std::io::stdout());
    }
    if let Some(err) = child.stderr().take() {
        copy_lines(req.service, err, std::io::stderr());
    }
    if let Some((read_end, write_end)) = notify {
        drop(write_end);
        watch_notify(req.service.to_string(), pid, read_end, events.clone());
    }
    Ok(pid)
}

/// init blocks the signals its reaper thread takes, and Rust ignores SIGPIPE; a child inherits
/// both across fork and exec, and a daemon with SIGTERM blocked never stops. Start every service
/// with an empty mask and default dispositions.
///
/// # Safety
/// Called between fork and exec: async-signal-safe calls only.
unsafe fn reset_signals() {
    use nix::libc;
    let mut empty: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut empty);
    libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    libc::signal(libc::SIGPIPE, libc::SIG_DFL);
}

fn copy_lines<R: Read + Send + 'static, W: Write + Send + 'static>(
    service: &str,
    from: R,
    mut to: W,
) {
    let prefix = format!("[{service}] ");
    let _ = std::thread::Builder::new()
        .name(format!("log-{service}"))
        .spawn(move || {
            for line in BufReader::new(from).split(b'\n').map_while(Result::ok) {
                let mut buf = Vec::with_capacity(prefix.len() + line.len() + 1);
                buf.extend_from_slice(prefix.as_bytes());
                buf.extend_from_slice(&line);
                buf.push(b'\n');
                let _ = to.write_all(&buf);
            }
        });
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
