//! Socket activation for services whose catalog entry has `listen`, as systemd's `.socket` units
//! do for libvirt's virtlogd and virtlockd on a host: init binds their unix sockets, starts the
//! service when the first client connects, and hands the sockets over as fds 3, 4, … with
//! `LISTEN_FDS`, `LISTEN_PID` and `LISTEN_FDNAMES` (sd_listen_fds(3), which libvirt's daemons
//! read). init keeps its own copies: a service that dies is started again on the same sockets,
//! and a client that connects meanwhile waits in the backlog instead of being refused.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::sync::mpsc::Sender;

use anyhow::{bail, Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{self, AddressFamily, Backlog, SockFlag, SockType, UnixAddr};
use nix::sys::stat::{fchmodat, FchmodatFlags, Mode};

use super::catalog::Listen;
use super::reaper::Event;
use crate::libvirt::sockets::{self, Verdict};

/// The fd a service gets its first socket on (SD_LISTEN_FDS_START).
pub const FIRST_FD: i32 = 3;
/// The most sockets one service may be given (the child places them without allocating):
/// the catalog refuses more.
pub use super::catalog::MAX_LISTEN as MAX;

/// The sockets of one service, bound and listening, in catalog order.
pub fn bind_all(listen: &[Listen]) -> Result<Vec<OwnedFd>> {
    listen.iter().map(|l| bind(&l.path)).collect()
}

/// `LISTEN_FDS` and `LISTEN_FDNAMES` for the service's environment; `LISTEN_PID` is written by
/// the child itself (spawn.rs), the only one that knows its pid before exec.
pub fn env(listen: &[Listen]) -> [(String, String); 2] {
    let names: Vec<&str> = listen.iter().map(|l| l.name.as_str()).collect();
    [
        ("LISTEN_FDS".into(), listen.len().to_string()),
        ("LISTEN_FDNAMES".into(), names.join(":")),
    ]
}

fn bind(path: &Path) -> Result<OwnedFd> {
    remove_stale(path)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let sys = |what: &str| format!("{what} {}", path.display());
    let fd = socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .with_context(|| sys("creating a socket for"))?;
    let addr = UnixAddr::new(path).with_context(|| sys("socket address"))?;
    socket::bind(fd.as_raw_fd(), &addr).with_context(|| sys("binding"))?;
    // Owner only, as libvirt's socket units have it (SocketMode=0600); before listen(), so no
    // client ever connects through a wider mode.
    fchmodat(
        None,
        path,
        Mode::from_bits_truncate(0o600),
        FchmodatFlags::FollowSymlink,
    )
    .with_context(|| sys("setting mode 0600 on"))?;
    socket::listen(&fd, Backlog::MAXCONN).with_context(|| sys("listening on"))?;
    Ok(fd)
}

/// A socket file at the path is an earlier run's, unless something still accepts on it.
fn remove_stale(path: &Path) -> Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("looking at {}", path.display())),
    };
    if !meta.file_type().is_socket() {
        bail!(
            "{} is not a socket: remove it, init listens there",
            path.display()
        );
    }
    match sockets::clean(path.to_path_buf())
        .with_context(|| format!("removing the stale {}", path.display()))?
    {
        Verdict::Removed(_) => Ok(()),
        Verdict::Live(_) => bail!(
            "{} accepts connections: another daemon listens there (a second appliance on the \
             same /run/libvirt?); stop it or give this container its own /run/libvirt",
            path.display()
        ),
        Verdict::Kept(_, why) => bail!(
            "{}: cannot tell whether it is an earlier run's ({why}); remove it",
            path.display()
        ),
    }
}

/// Reports `Event::Wanted` once a client connects to any of `sockets`, then ends. The service
/// accepts that client itself: the watcher only looks.
pub fn watch(sockets: &[OwnedFd], service: String, events: Sender<Event>) -> Result<()> {
    let copies = sockets
        .iter()
        .map(OwnedFd::try_clone)
        .collect::<std::io::Result<Vec<_>>>()
        .with_context(|| format!("duplicating {service}'s sockets"))?;
    let thread = format!("listen-{service}");
    let what = format!("starting the watcher of {service}'s sockets");
    std::thread::Builder::new()
        .name(thread)
        .spawn(move || {
            let mut fds: Vec<PollFd> = copies
                .iter()
                .map(|f| PollFd::new(f.as_fd(), PollFlags::POLLIN))
                .collect();
            // Any other outcome (an error on init's own socket) starts the service too: it
            // then reports the trouble itself, and is supervised as usual.
            while let Ok(0) | Err(nix::errno::Errno::EINTR) = poll(&mut fds, PollTimeout::NONE) {}
            let _ = events.send(Event::Wanted { service });
        })
        .context(what)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::net::UnixStream;
    use std::time::Duration;

    fn listen(dir: &Path, name: &str) -> Listen {
        Listen {
            name: format!("{name}.socket"),
            path: dir.join(format!("{name}-sock")),
        }
    }

    #[test]
    fn a_connection_wants_the_service_and_waits_in_the_backlog() {
        let dir = tempfile::tempdir().unwrap();
        let socks = [listen(dir.path(), "a"), listen(dir.path(), "b")];
        let fds = bind_all(&socks).unwrap();
        let mode = std::fs::metadata(&socks[1].path)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let (tx, rx) = std::sync::mpsc::channel();
        watch(&fds, "svc".into(), tx).unwrap();
        assert!(rx.recv_timeout(Duration::from_millis(100)).is_err());
        // Nobody has accepted yet, and the client is connected all the same.
        let _client = UnixStream::connect(&socks[1].path).unwrap();
        match rx.recv_timeout(Duration::from_secs(5)) {
            Ok(Event::Wanted { service }) => assert_eq!(service, "svc"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            env(&socks),
            [
                ("LISTEN_FDS".to_string(), "2".to_string()),
                (
                    "LISTEN_FDNAMES".to_string(),
                    "a.socket:b.socket".to_string()
                )
            ]
        );
    }

    #[test]
    fn a_stale_socket_is_replaced_a_live_one_or_a_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let stale = listen(dir.path(), "stale");
        drop(std::os::unix::net::UnixListener::bind(&stale.path).unwrap());
        let _fd = bind_all(std::slice::from_ref(&stale)).unwrap();
        UnixStream::connect(&stale.path).unwrap();

        let e = bind_all(std::slice::from_ref(&stale)).unwrap_err();
        assert!(format!("{e:#}").contains("accepts connections"), "{e:#}");
        let file = listen(dir.path(), "file");
        std::fs::write(&file.path, "").unwrap();
        let e = bind_all(&[file]).unwrap_err();
        assert!(format!("{e:#}").contains("is not a socket"), "{e:#}");
    }
}
