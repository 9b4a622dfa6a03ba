//! The listeners: one thread per rule, one pair of copying threads per connection, at most
//! [`MAX_CONNECTIONS`] connections per port. A connection whose guest cannot be found is closed
//! with a line in the log that says why.
//!
//! Anyone who reaches a published port can open connections, so nothing they do may end a
//! listener quietly: a connection over the limit, or one whose threads cannot be made (the
//! container's pids limit), is closed with a line and the port goes on; a listener that cannot go
//! on ends the process, with its reason, so that init starts it again.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tracing::{info, warn};

use super::lookup::{self, Dirs};
use super::rules::Rule;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Open connections per port: two threads each, well below podman's default pids limit (2048)
/// with every port of a few rules full.
pub const MAX_CONNECTIONS: usize = 256;
/// A copying thread needs little: a 128 KiB stack (the default is 2 MiB of address space).
const STACK: usize = 128 * 1024;

/// Bind every rule's port (all at once, so a port in use fails the start), then serve until a
/// listener cannot go on: its error is returned, and the process ends with it.
pub fn run(rules: Vec<Rule>, dirs: Dirs) -> Result<()> {
    let mut bound = Vec::new();
    for rule in rules {
        let listener = TcpListener::bind(("0.0.0.0", rule.listen)).with_context(|| {
            format!(
                "{rule}: cannot listen on the container's port {}; is another service using it?",
                rule.listen
            )
        })?;
        info!(
            "forwarding the container's port {} to {}:{} (at most {MAX_CONNECTIONS} connections at once)",
            rule.listen,
            target(&rule),
            rule.port
        );
        bound.push((rule, listener));
    }
    // The first listener to end ends the process: joining them in turn would wait on a live one
    // while another port is dead.
    let (tx, rx) = std::sync::mpsc::channel();
    for (rule, listener) in bound {
        let dirs = dirs.clone();
        let tx = tx.clone();
        std::thread::spawn(move || {
            let name = rule.to_string();
            let ended = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                accept(&rule, &listener, &dirs)
            }))
            .unwrap_or_else(|_| Err(anyhow::anyhow!("{name}: the listener panicked")));
            let _ = tx.send(ended);
        });
    }
    drop(tx);
    match rx.recv() {
        Ok(ended) => ended.and(Err(anyhow::anyhow!("a listener ended"))),
        Err(_) => Ok(()),
    }
}

fn target(rule: &Rule) -> String {
    match &rule.target {
        super::rules::Target::Guest(g) => format!("guest {g}"),
        super::rules::Target::Address(a) => a.to_string(),
    }
}

/// accept(2) errors that pass: a client gone before we took it, or the process out of
/// descriptors or memory for a moment.
fn transient(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            nix::libc::ECONNABORTED
                | nix::libc::EMFILE
                | nix::libc::ENFILE
                | nix::libc::ENOBUFS
                | nix::libc::ENOMEM
                | nix::libc::EPROTO
                | nix::libc::EPERM
                | nix::libc::EINTR
                | nix::libc::EAGAIN
        )
    )
}

/// Says a line at most once a second for a flood, with how many it stands for.
struct Throttled {
    last: Option<Instant>,
    quiet: usize,
}

impl Throttled {
    fn say(&mut self, line: impl FnOnce() -> String) {
        if self
            .last
            .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            self.quiet += 1;
            return;
        }
        let more = std::mem::take(&mut self.quiet);
        if more > 0 {
            warn!("{} (and {more} more like it)", line());
        } else {
            warn!("{}", line());
        }
        self.last = Some(Instant::now());
    }
}

fn accept(rule: &Rule, listener: &TcpListener, dirs: &Dirs) -> Result<()> {
    let open = Arc::new(AtomicUsize::new(0));
    let mut refused = Throttled {
        last: None,
        quiet: 0,
    };
    loop {
        let (client, peer) = match listener.accept() {
            Ok(c) => c,
            Err(e) if transient(&e) => {
                refused.say(|| format!("{rule}: accept failed: {e}; the port goes on"));
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            Err(e) => {
                return Err(e).with_context(|| format!("{rule}: the listener cannot go on"));
            }
        };
        if open.load(Ordering::Acquire) >= MAX_CONNECTIONS {
            refused.say(|| {
                format!("{rule}: connection from {peer} closed: {MAX_CONNECTIONS} connections are open on this port already")
            });
            continue;
        }
        open.fetch_add(1, Ordering::AcqRel);
        let (rule2, dirs, count) = (rule.clone(), dirs.clone(), open.clone());
        let spawned = std::thread::Builder::new()
            .stack_size(STACK)
            .spawn(move || {
                serve(&rule2, client, peer, &dirs);
                count.fetch_sub(1, Ordering::AcqRel);
            });
        if let Err(e) = spawned {
            // The thread (and with it the connection) was never made.
            open.fetch_sub(1, Ordering::AcqRel);
            refused.say(|| format!("{rule}: connection from {peer} closed: no thread for it ({e}); the port goes on"));
        }
    }
}

fn serve(rule: &Rule, client: TcpStream, peer: SocketAddr, dirs: &Dirs) {
    let address = match lookup::resolve(&rule.target, dirs) {
        Ok(a) => a,
        Err(e) => {
            warn!("{rule}: connection from {peer} closed: {e:#}");
            return;
        }
    };
    let to = SocketAddr::from((address, rule.port));
    let upstream = match TcpStream::connect_timeout(&to, CONNECT_TIMEOUT) {
        Ok(s) => s,
        Err(e) => {
            warn!("{rule}: connection from {peer} closed: cannot connect to {to}: {e}");
            return;
        }
    };
    if let Err(e) = pipe(client, upstream) {
        warn!("{rule}: connection from {peer} to {to}: {e}");
    }
}

/// Copy both ways until each side has said all it has; a half-close is passed on.
fn pipe(client: TcpStream, upstream: TcpStream) -> io::Result<()> {
    let (mut c_read, mut u_write) = (client.try_clone()?, upstream.try_clone()?);
    let up = std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(move || {
            let r = io::copy(&mut c_read, &mut u_write);
            let _ = u_write.shutdown(Shutdown::Write);
            r
        })?;
    let (mut u_read, mut c_write) = (upstream, client);
    let down = io::copy(&mut u_read, &mut c_write);
    let _ = c_write.shutdown(Shutdown::Write);
    let up = up
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("copy thread panicked")));
    down.and(up).map(|_| ())
}
