//! sd_notify(3) without libsystemd, both ways. Sending: one datagram to `$NOTIFY_SOCKET`
//! (podman `--sdnotify=container`, quadlet `Notify=true`); a leading `@` is the abstract
//! namespace. Receiving: each `notify = true` service gets a socket of its own, as systemd
//! gives a `Type=notify` unit, and its `READY=1` is its readiness (s6's notification-fd idea).

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::Path;
use std::sync::mpsc::Sender;
use std::time::Duration;

use anyhow::{Context, Result};

use super::reaper::Event;

/// Where the services' notify sockets are made, one per service, named after it.
pub const DIR: &str = "/run/virtpod/notify";

pub fn notify(socket: &str, message: &str) -> Result<()> {
    let sock = UnixDatagram::unbound().context("creating a datagram socket")?;
    let addr = match socket.strip_prefix('@') {
        Some(name) => SocketAddr::from_abstract_name(name.as_bytes()),
        None => SocketAddr::from_pathname(socket),
    }
    .with_context(|| format!("NOTIFY_SOCKET={socket:?} is not a usable socket address"))?;
    sock.send_to_addr(message.as_bytes(), &addr)
        .with_context(|| format!("sending {message:?} to NOTIFY_SOCKET={socket}"))?;
    Ok(())
}

/// A fresh socket at `path` for one start of a service (the file of an earlier start, or of
/// the last run, is replaced).
pub fn listen(path: &Path) -> Result<UnixDatagram> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing {}", path.display())),
    }
    UnixDatagram::bind(path).with_context(|| format!("binding {}", path.display()))
}

/// Whether a datagram says `READY=1` (one of its newline-separated assignments).
pub fn says_ready(datagram: &[u8]) -> bool {
    datagram
        .split(|b| *b == b'\n')
        .any(|line| line == b"READY=1")
}

/// Reports `Event::Notified` when `READY=1` arrives, then ends; it also ends when nothing says
/// so within `limit` (the start timeout: init kills and restarts the service by then).
pub fn watch(
    socket: UnixDatagram,
    service: String,
    pid: i32,
    limit: Duration,
    events: Sender<Event>,
) {
    let _ = std::thread::Builder::new()
        .name(format!("notify-{service}"))
        .spawn(move || {
            let _ = socket.set_read_timeout(Some(limit.max(Duration::from_millis(1))));
            let mut buf = [0u8; 4096];
            while let Ok(n) = socket.recv(&mut buf) {
                if says_ready(&buf[..n]) {
                    let _ = events.send(Event::Notified { service, pid });
                    return;
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_is_one_assignment_among_others() {
        assert!(says_ready(b"READY=1"));
        assert!(says_ready(b"STATUS=up\nREADY=1\n"));
        assert!(!says_ready(b"READY=0"));
        assert!(!says_ready(b"STATUS=READY=1"));
    }

    #[test]
    fn a_services_ready_reaches_init_through_its_own_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n/libvirtd");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "stale").unwrap();
        let socket = listen(&path).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        watch(socket, "libvirtd".into(), 42, Duration::from_secs(5), tx);
        notify(path.to_str().unwrap(), "STATUS=starting").unwrap();
        notify(path.to_str().unwrap(), "READY=1\nSTATUS=ok").unwrap();
        match rx.recv_timeout(Duration::from_secs(5)).unwrap() {
            Event::Notified { service, pid } => {
                assert_eq!((service.as_str(), pid), ("libvirtd", 42))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn delivers_to_a_listening_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let listener = UnixDatagram::bind(&path).unwrap();
        notify(path.to_str().unwrap(), "READY=1").unwrap();
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
    }

    #[test]
    fn missing_socket_is_an_error_naming_it() {
        let e = notify("/nonexistent/notify.sock", "READY=1").unwrap_err();
        assert!(format!("{e:#}").contains("/nonexistent/notify.sock"));
    }
}
