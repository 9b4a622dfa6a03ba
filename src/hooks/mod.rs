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

/// podman's default hook directories, in increasing precedence.
pub const DEFAULT_DIRS: &[&str] = &[
    "/usr/share/containers/oci/hooks.d",
    "/etc/containers/oci/hooks.d",
];

/// The directories given, or podman's defaults when none are.
pub fn dirs_or_default(dirs: &[std::path::PathBuf]) -> Vec<std::path::PathBuf> {
    if dirs.is_empty() {
        DEFAULT_DIRS.iter().map(std::path::PathBuf::from).collect()
    } else {
        dirs.to_vec()
    }
}
