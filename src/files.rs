//! Reading a small configuration file that someone else controls (containers.conf, a hook
//! definition): only a regular file is read, whatever a symlink pointed at, and only up to a
//! size, so a FIFO cannot block the reader and `-> /dev/zero` cannot fill its memory.

use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// More than any containers.conf or hook definition needs.
pub const CONFIG_LIMIT: u64 = 1024 * 1024;

/// The text of `path`, refused (InvalidData) unless it is a regular file of at most `limit`
/// bytes. Opened non-blocking: opening a FIFO for reading would otherwise wait for a writer.
pub fn read_config(path: &Path, limit: u64) -> io::Result<String> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is not a regular file", path.display()),
        ));
    }
    if meta.len() > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is larger than {limit} bytes", path.display()),
        ));
    }
    let mut text = String::new();
    file.take(limit + 1).read_to_string(&mut text)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_small_regular_files_are_read() {
        let t = tempfile::tempdir().unwrap();
        let ok = t.path().join("ok.conf");
        std::fs::write(&ok, "[engine]\n").unwrap();
        assert_eq!(read_config(&ok, 100).unwrap(), "[engine]\n");
        assert!(read_config(&ok, 3).is_err(), "over the limit");
        let zero = t.path().join("zero.conf");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        assert!(read_config(&zero, CONFIG_LIMIT).is_err());
        let fifo = t.path().join("fifo.conf");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert!(
            read_config(&fifo, CONFIG_LIMIT).is_err(),
            "a FIFO never blocks"
        );
        assert!(read_config(t.path(), CONFIG_LIMIT).is_err(), "a directory");
    }
}
