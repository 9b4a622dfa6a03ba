//! Stale daemon sockets: after `podman kill` the socket files stay in the /run/libvirt volume
//! with nothing behind them. A socket is removed only when connecting to it is refused; one that
//! accepts (a live daemon, another container sharing the volume) is never touched, and neither
//! is anything below /run/libvirt (qemu's monitor sockets live in subdirectories).

use std::io::ErrorKind;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Removed(PathBuf),
    Live(PathBuf),
    /// Could not tell (permission denied, …): left alone.
    Kept(PathBuf, String),
}

/// The file names libvirt's daemons listen on: `libvirt-sock`, `libvirt-sock-ro`,
/// `libvirt-admin-sock`, `virtlogd-sock`, `virtqemud-admin-sock`, …
pub fn is_daemon_socket_name(name: &str) -> bool {
    name.ends_with("-sock") || name.ends_with("-sock-ro")
}

pub fn clean_stale(dir: &Path) -> std::io::Result<Vec<Verdict>> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    let mut paths: Vec<PathBuf> = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let is_socket = entry.file_type()?.is_socket();
        if is_socket && name.to_str().is_some_and(is_daemon_socket_name) {
            paths.push(entry.path());
        }
    }
    paths.sort();
    for path in paths {
        out.push(clean(path)?);
    }
    Ok(out)
}

/// One socket file: removed when connecting to it is refused, otherwise left as it is.
pub fn clean(path: PathBuf) -> std::io::Result<Verdict> {
    Ok(match UnixStream::connect(&path) {
        Ok(_) => Verdict::Live(path),
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
            std::fs::remove_file(&path)?;
            Verdict::Removed(path)
        }
        Err(e) => Verdict::Kept(path, e.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    #[test]
    fn removes_only_refusing_daemon_sockets() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // A socket whose listener is gone: connect() is refused.
        drop(UnixListener::bind(d.join("libvirt-sock")).unwrap());
        let _live = UnixListener::bind(d.join("virtlogd-sock")).unwrap();
        std::fs::create_dir(d.join("qemu")).unwrap();
        drop(UnixListener::bind(d.join("qemu/monitor-sock")).unwrap());
        drop(UnixListener::bind(d.join("unrelated.socket")).unwrap());
        std::fs::write(d.join("not-a-sock"), "").unwrap();

        let verdicts = clean_stale(d).unwrap();
        assert_eq!(
            verdicts,
            vec![
                Verdict::Removed(d.join("libvirt-sock")),
                Verdict::Live(d.join("virtlogd-sock"))
            ]
        );
        assert!(!d.join("libvirt-sock").exists());
        assert!(d.join("virtlogd-sock").exists());
        assert!(d.join("qemu/monitor-sock").exists());
        assert!(d.join("unrelated.socket").exists());
    }

    #[test]
    fn missing_directory_is_nothing_to_do() {
        assert!(clean_stale(Path::new("/nonexistent/virtpod"))
            .unwrap()
            .is_empty());
    }
}
