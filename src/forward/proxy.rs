//! The listeners: one thread per rule, one pair of copying threads per connection. A connection
//! whose guest cannot be found is closed with a line in the log that says why.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use anyhow::{Context, Result};
use tracing::{info, warn};

use super::lookup::{self, Dirs};
use super::rules::Rule;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Bind every rule's port (all at once, so a port in use fails the start), then serve forever.
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
            "forwarding the container's port {} to {}:{}",
            rule.listen,
            target(&rule),
            rule.port
        );
        bound.push((rule, listener));
    }
    let threads: Vec<_> = bound
        .into_iter()
        .map(|(rule, listener)| {
            let dirs = dirs.clone();
            std::thread::spawn(move || accept(&rule, &listener, &dirs))
        })
        .collect();
    for t in threads {
        t.join()
            .map_err(|_| anyhow::anyhow!("a listener thread panicked"))??;
    }
    Ok(())
}

fn target(rule: &Rule) -> String {
    match &rule.target {
        super::rules::Target::Guest(g) => format!("guest {g}"),
        super::rules::Target::Address(a) => a.to_string(),
    }
}

fn accept(rule: &Rule, listener: &TcpListener, dirs: &Dirs) -> Result<()> {
    loop {
        let (client, peer) = match listener.accept() {
            Ok(c) => c,
            // Out of descriptors and the like: keep serving once the pressure is gone.
            Err(e) => {
                warn!("{rule}: accept failed: {e}");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let rule = rule.clone();
        let dirs = dirs.clone();
        std::thread::spawn(move || serve(&rule, client, peer, &dirs));
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
    let up = std::thread::spawn(move || {
        let r = io::copy(&mut c_read, &mut u_write);
        let _ = u_write.shutdown(Shutdown::Write);
        r
    });
    let (mut u_read, mut c_write) = (upstream, client);
    let down = io::copy(&mut u_read, &mut c_write);
    let _ = c_write.shutdown(Shutdown::Write);
    let up = up
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("copy thread panicked")));
    down.and(up).map(|_| ())
}
