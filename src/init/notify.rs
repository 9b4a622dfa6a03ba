//! sd_notify(3) without libsystemd: one datagram to `$NOTIFY_SOCKET` (podman
//! `--sdnotify=container`, quadlet `Notify=true`). A leading `@` is the abstract namespace.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

use anyhow::{Context, Result};

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

#[cfg(test)]
mod tests {
    use super::*;

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
