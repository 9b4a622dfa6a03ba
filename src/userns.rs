//! Whether a process runs in a user namespace other than the host's (rootless podman, a
//! container with `--userns`): there device nodes cannot be made, and its ids are not the
//! host's. The hook, init's polkit check and `virtpod device` all ask.

/// True when a uid_map is the initial user namespace's: every id mapped to itself.
pub fn is_initial_uid_map(uid_map: &str) -> bool {
    uid_map.split_whitespace().eq(["0", "0", "4294967295"])
}

/// Process `pid` (`"self"` for this one) runs in a user namespace other than the host's.
pub fn in_user_namespace(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/uid_map")).is_ok_and(|m| !is_initial_uid_map(&m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_identity_map_is_the_initial_user_namespace() {
        assert!(is_initial_uid_map("         0          0 4294967295\n"));
        // rootless podman's namespace: the user as root, then the subordinate range
        assert!(!is_initial_uid_map(
            "         0       1000          1\n         1     100000      65536\n"
        ));
        assert!(!is_initial_uid_map(""));
    }
}
