//! The oci-hooks(5) configuration format, read the way podman reads it: `schema` parses both
//! schemas, `validate` applies the load-time rules, `when` decides whether a hook applies,
//! `dirs` reads directories with masking, `podman` models what podman itself adds to a container
//! before matching, `explain` answers which hooks run, and `check` reports on files for people.

pub mod check;
pub mod dirs;
pub mod explain;
pub mod podman;
pub mod schema;
pub mod validate;
pub mod when;

/// podman's default hook directories, in increasing precedence (podman 4; podman 5 reads only
/// the first unless containers.conf's hooks_dir says otherwise: [`default_dirs_for`]).
pub const DEFAULT_DIRS: &[&str] = &[
    "/usr/share/containers/oci/hooks.d",
    "/etc/containers/oci/hooks.d",
];

/// The directories a podman of `version` ("4.3.1", "5.4.2") reads without configuration.
/// containers/common's default is /usr/share/…/hooks.d alone; podman 4 also read
/// /etc/…/hooks.d implicitly, podman 5 no longer does (seen in tests/e2e/quadlet.rs: a hook
/// installed only in /etc never ran under podman 5.4.2).
pub fn default_dirs_for(version: &str) -> Vec<std::path::PathBuf> {
    let major: u32 = version
        .split('.')
        .next()
        .and_then(|m| m.trim().parse().ok())
        .unwrap_or(4);
    let n = if major >= 5 { 1 } else { DEFAULT_DIRS.len() };
    DEFAULT_DIRS[..n]
        .iter()
        .map(std::path::PathBuf::from)
        .collect()
}

/// The directories given, or podman's defaults when none are.
pub fn dirs_or_default(dirs: &[std::path::PathBuf]) -> Vec<std::path::PathBuf> {
    if dirs.is_empty() {
        DEFAULT_DIRS.iter().map(std::path::PathBuf::from).collect()
    } else {
        dirs.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn podman_5_reads_only_the_usr_share_directory_by_default() {
        assert_eq!(default_dirs_for("4.3.1").len(), 2);
        assert_eq!(
            default_dirs_for("5.4.2"),
            [std::path::PathBuf::from(
                "/usr/share/containers/oci/hooks.d"
            )]
        );
        // An unreadable version is taken as podman 4: both directories are looked at.
        assert_eq!(default_dirs_for("dev").len(), 2);
    }
}
