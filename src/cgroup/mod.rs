//! A running container's device filter, widened for a device given at run time and narrowed
//! again when it is taken back: on cgroup v1 the devices controller's files (`v1`), on cgroup v2
//! the eBPF programs the runtime and systemd attached (`v2`, built on `program` and `bpf`, with
//! `scope` for systemd's own list). `device add/remove/watch` and the hook's late stages use it.

pub mod bpf;
pub mod program;
pub mod scope;
pub mod v1;
pub mod v2;

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

pub use program::{Rule, Type};

/// Where a container's device filter is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// The v1 devices cgroup directory.
    V1(PathBuf),
    /// The container's own cgroups in the v2 tree.
    V2(v2::Own),
}

/// The host's cgroup2 mount: /sys/fs/cgroup on a v2 host, /sys/fs/cgroup/unified on a hybrid one.
fn cgroup2_mount() -> Option<PathBuf> {
    ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
        .iter()
        .map(PathBuf::from)
        .find(|p| {
            nix::sys::statfs::statfs(p.as_path())
                .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
        })
}

/// The device filter of process `pid` of container `id` (its full id). An error when the
/// process is not in the container's cgroup (podman's pid is stale: the container stopped and
/// the number was used again).
pub fn of_process(pid: i32, id: &str) -> Result<Filter> {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .with_context(|| format!("reading the cgroups of process {pid}"))?;
    let stale = |path: &str| {
        anyhow::anyhow!(
            "process {pid}, named for container {}, is not in that container's cgroup ({path}): did it just stop? Check with `podman ps` and try again",
            &id[..id.len().min(12)]
        )
    };
    if let Some(dir) = v1::devices_dir(&text) {
        if !dir.to_string_lossy().contains(id) {
            return Err(stale(&dir.display().to_string()));
        }
        return Ok(Filter::V1(dir));
    }
    let Some(path) = text.lines().find_map(|l| l.strip_prefix("0::")) else {
        bail!("process {pid} is in no devices cgroup (v1) and no cgroup2 tree");
    };
    let Some(mount) = cgroup2_mount() else {
        bail!("this host has no cgroup2 mount at /sys/fs/cgroup or /sys/fs/cgroup/unified");
    };
    v2::own(&mount, path, id)
        .map(Filter::V2)
        .ok_or_else(|| stale(path))
}

impl Filter {
    pub fn allow(&self, rules: &[Rule]) -> Result<()> {
        match self {
            Filter::V1(dir) => v1::write(dir, "devices.allow", rules),
            Filter::V2(own) => v2::change(own, rules, &[]).map(|_| ()),
        }
    }

    pub fn deny(&self, rules: &[Rule]) -> Result<()> {
        match self {
            Filter::V1(dir) => v1::write(dir, "devices.deny", rules),
            Filter::V2(own) => v2::change(own, &[], rules).map(|_| ()),
        }
    }

    /// Whether the container may open each device now (v2 only: Some(false) when a program
    /// denies it, e.g. after `podman update` rebuilt the runtime's filter); None on v1, whose
    /// rules nothing but the container's end takes back, or when it cannot be told. The
    /// programs are read once for all the rules.
    pub fn in_force(&self, rules: &[Rule]) -> Vec<Option<bool>> {
        match self {
            Filter::V1(_) => vec![None; rules.len()],
            Filter::V2(own) => v2::in_force(own, rules),
        }
    }

    /// The cgroup directory that holds the container's processes, to see it is still there.
    pub fn dir(&self) -> &Path {
        match self {
            Filter::V1(dir) => dir,
            Filter::V2(own) => own.dirs.last().expect("own() gives one directory at least"),
        }
    }
}
