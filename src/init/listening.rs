//! Is a daemon listening on its socket yet? Read from /proc/net/unix rather than by connecting:
//! a connection that closes without a word makes libvirtd log "End of file while reading data:
//! Input/output error" at every start, and a stale socket file left by an earlier run is not
//! listed as listening, so it never looks ready.

use std::path::Path;

/// `__SO_ACCEPTCON` in /proc/net/unix's Flags column: a socket that listen() was called on.
const ACCEPTCON: u32 = 0x0001_0000;

/// Whether /proc/net/unix's text lists a listening socket bound at `path`.
pub fn in_table(table: &str, path: &Path) -> bool {
    let Some(path) = path.to_str() else {
        return false;
    };
    table.lines().skip(1).any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // Num RefCount Protocol Flags Type St Inode Path
        fields.len() >= 8
            && fields[7] == path
            && u32::from_str_radix(fields[3], 16).is_ok_and(|f| f & ACCEPTCON != 0)
    })
}

/// `in_table` on this network namespace's table (the container's).
pub fn listening(path: &Path) -> bool {
    std::fs::read_to_string("/proc/net/unix").is_ok_and(|t| in_table(&t, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "Num       RefCount Protocol Flags    Type St Inode Path
0000000000000000: 00000002 00000000 00010000 0001 01 31611 /run/libvirt/libvirt-sock
0000000000000000: 00000002 00000000 00000000 0001 03 31612 /run/libvirt/virtlogd-sock
0000000000000000: 00000003 00000000 00000000 0001 03 31700
";

    #[test]
    fn only_a_listening_socket_at_the_path_counts() {
        assert!(in_table(TABLE, Path::new("/run/libvirt/libvirt-sock")));
        // Bound and connected, not listening (a client's end).
        assert!(!in_table(TABLE, Path::new("/run/libvirt/virtlogd-sock")));
        assert!(!in_table(TABLE, Path::new("/run/libvirt/libvirt-sock-ro")));
        assert!(!in_table("", Path::new("/run/libvirt/libvirt-sock")));
    }

    #[test]
    fn this_processs_own_listener_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        assert!(!listening(&path));
        let _l = std::os::unix::net::UnixListener::bind(&path).unwrap();
        assert!(listening(&path));
    }
}
