//! The libvirt work of init (waiting for libvirt to answer, starting the guests of the last
//! run, stopping the guests), done by the `virtpod-libvirt` binary in processes init starts.
//! Each one is a child like any service, so the reaper stays the only waiter, and a helper that
//! hangs or crashes costs a helper, never PID 1. Their exit codes are the protocol. Only the
//! helper links libvirt: PID 1 and the host-side commands never map its ~50 libraries.

use std::path::{Path, PathBuf};

/// The helper binary's name, built beside `virtpod` (`[[bin]]` in Cargo.toml).
pub const BINARY: &str = "virtpod-libvirt";
/// Where the images install it.
pub const INSTALLED: &str = "/usr/libexec/virtpod/virtpod-libvirt";

/// `stop-guests`: every guest stopped as the policy says and the record written.
pub const GUESTS_CLEAN: i32 = 0;
/// `stop-guests`: some guest had to be destroyed, or the record could not be written.
pub const GUESTS_FORCED: i32 = 1;
/// `stop-guests`: libvirt did not answer within the budget; nothing was done to the guests.
pub const LIBVIRT_UNREACHABLE: i32 = 3;

/// The helper beside this binary (a cargo build, or an install that put both in one
/// directory), else the images' place for it.
pub fn locate(exe: &Path) -> PathBuf {
    let sibling = exe.with_file_name(BINARY);
    if sibling.is_file() {
        sibling
    } else {
        PathBuf::from(INSTALLED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_helper_beside_the_binary_wins_over_the_installed_one() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("virtpod");
        assert_eq!(locate(&exe), PathBuf::from(INSTALLED));
        std::fs::write(dir.path().join(BINARY), "").unwrap();
        assert_eq!(locate(&exe), dir.path().join(BINARY));
    }
}
