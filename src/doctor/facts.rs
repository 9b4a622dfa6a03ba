//! What the host says, gathered at the edge: each function asks one thing and returns plain
//! data (or the error as text) for the checks.

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::hooks::dirs::{HookSet, Outcome};
use crate::hooks::validate::PODMAN_EXTENSION_STAGES;
use crate::install::containers_conf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Podman {
    pub version: String,
    pub runtime: String,
    /// "v1" or "v2" (podman calls hybrid v1).
    pub cgroups: String,
    pub cgroup_manager: String,
}

/// `podman info` as the user's podman sees its configuration (CONTAINERS_CONF included).
/// How `podman()`'s error starts when there is no podman to run.
pub const NO_PODMAN: &str = "cannot run podman";

pub fn podman() -> Result<Podman, String> {
    let out = Command::new("podman")
        .args([
            "info",
            "--format",
            "{{.Version.Version}}\t{{.Host.OCIRuntime.Name}}\t{{.Host.CgroupsVersion}}\t{{.Host.CgroupManager}}",
        ])
        .output()
        .map_err(|e| format!("{NO_PODMAN}: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!("`podman info` failed: {}", err.trim()));
    }
    parse_info(&String::from_utf8_lossy(&out.stdout))
}

pub fn parse_info(text: &str) -> Result<Podman, String> {
    let f: Vec<&str> = text.trim().split('\t').collect();
    match f[..] {
        [version, runtime, cgroups, manager] => Ok(Podman {
            version: version.into(),
            runtime: runtime.into(),
            cgroups: cgroups.into(),
            cgroup_manager: manager.into(),
        }),
        _ => Err(format!("unexpected `podman info` output: {text:?}")),
    }
}

/// cgroup v2 mounted beside v1: podman says "v1", crun refuses.
pub fn cgroup_hybrid() -> bool {
    Path::new("/sys/fs/cgroup/unified").is_dir()
}

/// systemd runs the host (podman's systemd cgroup manager and healthcheck timers need it).
pub fn systemd_is_pid1() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// The limits podman's containers start from: podman inherits ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub nofile_hard: u64,
    pub nproc_hard: u64,
    /// Without CAP_SYS_RESOURCE no process may raise a hard limit, runc included.
    pub may_raise: bool,
}

pub fn limits() -> Limits {
    use nix::sys::resource::{getrlimit, Resource};
    let hard = |r| getrlimit(r).map(|(_, h)| h).unwrap_or(u64::MAX);
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    Limits {
        nofile_hard: hard(Resource::RLIMIT_NOFILE),
        nproc_hard: hard(Resource::RLIMIT_NPROC),
        may_raise: has_cap_sys_resource(&status),
    }
}

/// CAP_SYS_RESOURCE (bit 24) in the effective set of a /proc/<pid>/status text.
pub fn has_cap_sys_resource(status: &str) -> bool {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << 24) != 0)
}

/// `default_ulimits` as podman resolves containers.conf: CONTAINERS_CONF alone when set;
/// otherwise /usr/share, then /etc, then /etc/…/containers.conf.d, then the user's files
/// (rootless), a later file overriding an earlier one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfUlimits {
    /// The files read, in order.
    pub files: Vec<PathBuf>,
    /// CONTAINERS_CONF, when it names the only file podman reads.
    pub override_file: Option<PathBuf>,
    /// The effective `default_ulimits` and the file that set it.
    pub set: Option<(Vec<String>, PathBuf)>,
}

/// The containers.conf files podman reads, in order, and CONTAINERS_CONF when it names the
/// only one.
pub fn containers_conf_files() -> (Vec<PathBuf>, Option<PathBuf>) {
    let override_file = std::env::var_os("CONTAINERS_CONF")
        .filter(|f| !f.is_empty())
        .map(PathBuf::from);
    match &override_file {
        Some(f) => (vec![f.clone()], override_file),
        None => (conf_files(), None),
    }
}

pub fn containers_conf_ulimits() -> ConfUlimits {
    let (files, override_file) = containers_conf_files();
    let mut c = ConfUlimits {
        override_file,
        ..Default::default()
    };
    for f in &files {
        let Ok(text) = crate::files::read_config(f, crate::files::CONFIG_LIMIT) else {
            continue;
        };
        c.files.push(f.clone());
        if let Some(u) = default_ulimits(&text) {
            c.set = Some((u, f.clone()));
        }
    }
    c
}

/// The `hooks_dir` podman's containers.conf files set, with the file that set it; None when
/// none does (podman then reads its built-in directories).
pub fn containers_conf_hooks_dirs() -> Option<(Vec<PathBuf>, PathBuf)> {
    let (files, _) = containers_conf_files();
    let found = containers_conf::effective(&files, |f| {
        crate::files::read_config(f, crate::files::CONFIG_LIMIT).ok()
    });
    let set_by = found.set_by?;
    Some((found.dirs.iter().map(PathBuf::from).collect(), set_by))
}

/// Files in the hooks directories buildah and CRI-O share with podman that name the
/// `precreate` stage (podman's alone), and whether each runs `virtpod hook`.
pub fn precreate_in_shared_dirs() -> Vec<(PathBuf, bool)> {
    let dirs: Vec<PathBuf> = crate::install::hook_files::SHARED_DIRS
        .iter()
        .map(PathBuf::from)
        .collect();
    let set = HookSet::load(&dirs, PODMAN_EXTENSION_STAGES);
    set.files
        .iter()
        .filter_map(|f| match &f.outcome {
            Outcome::Valid(h) if h.stages.iter().flatten().any(|s| s == "precreate") => {
                Some((f.path(), h.hook.runs_virtpod_hook()))
            }
            _ => None,
        })
        .collect()
}

/// `[containers] default_ulimits` of one containers.conf text, when it sets them.
pub fn default_ulimits(text: &str) -> Option<Vec<String>> {
    containers_conf::string_list(text, "containers", "default_ulimits")
}

/// The files podman reads when CONTAINERS_CONF is not set.
fn conf_files() -> Vec<PathBuf> {
    let mut files = vec![
        PathBuf::from("/usr/share/containers/containers.conf"),
        PathBuf::from("/etc/containers/containers.conf"),
    ];
    files.extend(containers_conf::conf_d(
        Path::new(containers_conf::DROP_IN_DIR),
        Path::to_path_buf,
    ));
    if !nix::unistd::geteuid().is_root() {
        let config = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
        if let Some(c) = config {
            files.push(c.join("containers/containers.conf"));
            files.extend(containers_conf::conf_d(
                &c.join("containers/containers.conf.d"),
                Path::to_path_buf,
            ));
        }
    }
    files
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceNode {
    pub char_device: bool,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

pub fn kvm() -> io::Result<DeviceNode> {
    let m = std::fs::metadata("/dev/kvm")?;
    Ok(DeviceNode {
        char_device: m.file_type().is_char_device(),
        major: nix::sys::stat::major(m.rdev()),
        minor: nix::sys::stat::minor(m.rdev()),
        mode: m.mode() & 0o7777,
        uid: m.uid(),
        gid: m.gid(),
    })
}

/// One effective hook that runs `virtpod hook`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OurHook {
    pub file: PathBuf,
    pub stages: Vec<String>,
    /// Whether it runs for `io.virtpod.sysctl.net=rw` (the NAT network's writable /proc/sys/net):
    /// definitions written before that annotation existed match device annotations only.
    pub sysctl: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hooks {
    pub dirs: Vec<PathBuf>,
    /// What makes podman refuse every container, when something does.
    pub error: Option<String>,
    pub ours: Vec<OurHook>,
}

pub fn hooks(dirs: &[PathBuf]) -> Hooks {
    let dirs = crate::hooks::dirs_or_default(dirs);
    let set = HookSet::load(&dirs, PODMAN_EXTENSION_STAGES);
    let ours = set
        .ordered()
        .into_iter()
        .filter_map(|f| match &f.outcome {
            Outcome::Valid(h) if h.hook.runs_virtpod_hook() => Some(OurHook {
                file: f.path(),
                stages: h.stages.clone().unwrap_or_default(),
                sysctl: runs_for_sysctl(&h.when),
            }),
            _ => None,
        })
        .collect();
    Hooks {
        error: set.first_error(),
        dirs,
        ours,
    }
}

fn runs_for_sysctl(when: &crate::hooks::schema::When) -> bool {
    let container = crate::hooks::when::Container {
        annotations: [(crate::hook::sysctl::NET.to_string(), "rw".to_string())].into(),
        command: Some("/usr/bin/virtpod".into()),
        has_bind_mounts: true,
    };
    crate::hooks::when::matches(when, &container).unwrap_or(false)
}

/// A running container that asks for USB hotplug, and whether a watcher serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hotplug {
    pub name: String,
    pub watched: bool,
}

/// The running containers with `io.virtpod.device.usb=hotplug` (podman's view), each with
/// whether a `virtpod device watch` process names it (by id, as poststart starts it, or by
/// name, as a user does). Err: podman could not be asked.
pub fn hotplug() -> Result<Vec<Hotplug>, String> {
    let run = |args: &[&str]| -> Result<Vec<u8>, String> {
        let out = std::process::Command::new("podman")
            .args(args)
            .output()
            .map_err(|e| format!("podman: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(out.stdout)
    };
    let ids = String::from_utf8_lossy(&run(&["ps", "-q", "--no-trunc"])?).into_owned();
    let ids: Vec<&str> = ids.split_whitespace().collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    // One at a time: a container that stops between the two calls is simply not running.
    let inspected: Vec<serde_json::Value> = ids
        .iter()
        .filter_map(|id| run(&["container", "inspect", "--format", "json", id]).ok())
        .filter_map(|out| serde_json::from_slice::<serde_json::Value>(&out).ok())
        .filter_map(|v| v.get(0).cloned())
        .collect();
    let watchers = watchers();
    Ok(inspected
        .iter()
        .filter(|c| {
            crate::hook::request::PREFIXES.iter().any(|p| {
                c["Config"]["Annotations"][format!("{p}usb")].as_str()
                    == Some(crate::hook::request::HOTPLUG)
            })
        })
        .map(|c| {
            let id = c["Id"].as_str().unwrap_or_default();
            let name = c["Name"].as_str().unwrap_or(id).trim_start_matches('/');
            Hotplug {
                name: name.to_string(),
                watched: watchers
                    .iter()
                    .any(|w| w.iter().any(|a| a == id || a == name)),
            }
        })
        .collect())
}

/// What `virtpod device list` says of the running containers with devices added at run time:
/// its "not in force" entries (a grant the container's filter denies now, after `podman update`
/// rebuilt it on cgroup v2), each with the container's name. Err: podman could not be asked.
pub fn run_time_devices(host: &crate::hook::HostPaths) -> Result<Vec<String>, String> {
    let out = std::process::Command::new("podman")
        .args(["ps", "--no-trunc", "--format", "{{.ID}} {{.Names}}"])
        .output()
        .map_err(|e| format!("podman: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    let mut lines = Vec::new();
    for (_, name) in String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(' '))
    {
        // A container that stopped meanwhile is simply not running.
        let Ok(c) = crate::device::container::inspect(name) else {
            continue;
        };
        // Its record is under its id, or under io.virtpod.record's name.
        let recorded = c.record_key().is_ok_and(|key| {
            crate::hook::added::read(&host.added, &key).is_ok_and(|r| !r.is_empty())
        });
        if !recorded {
            continue;
        }
        for e in crate::device::entries(host, &c).unwrap_or_default() {
            if !e.denied.is_empty() {
                lines.push(format!(
                    "{}: {}: {}",
                    c.name,
                    e.request.annotation,
                    e.denied_now(&c.name)
                ));
            }
        }
    }
    Ok(lines)
}

/// The arguments of every `virtpod device watch` process.
fn watchers() -> Vec<Vec<String>> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| {
            c.split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect::<Vec<_>>()
        })
        .filter(|a| a.windows(2).any(|w| w[0] == "device" && w[1] == "watch"))
        .collect()
}

/// Connecting to the socket: whether something listens there. A path that is there but is no
/// socket (a directory, a file) is InvalidInput, saying what it is: the kernel's "connection
/// refused" would read as an appliance that stopped.
pub fn connect(socket: &Path) -> io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    if let Ok(m) = std::fs::metadata(socket) {
        if !m.file_type().is_socket() {
            let what = if m.is_dir() {
                "a directory"
            } else if m.is_file() {
                "a regular file"
            } else {
                "not a socket"
            };
            return Err(io::Error::new(io::ErrorKind::InvalidInput, what));
        }
    }
    std::os::unix::net::UnixStream::connect(socket).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_hook_runs_for_the_sysctl_annotation_and_an_older_one_does_not() {
        let shipped: serde_json::Value =
            serde_json::from_str(include_str!("../../hooks.d/virtpod-devices.json")).unwrap();
        let when: crate::hooks::schema::When =
            serde_json::from_value(shipped["when"].clone()).unwrap();
        assert!(runs_for_sysctl(&when));
        let older: crate::hooks::schema::When = serde_json::from_str(
            r#"{"annotations": {"^(io\\.virtpod|org\\.containers\\.qm)\\.device\\.": ".*"}}"#,
        )
        .unwrap();
        assert!(!runs_for_sysctl(&older));
    }

    #[test]
    fn cap_sys_resource_is_bit_24_of_the_effective_set() {
        assert!(!has_cap_sys_resource(
            "CapPrm:\t000001fffeffffff\nCapEff:\t000001fffeffffff\n"
        ));
        assert!(has_cap_sys_resource("CapEff:\t000001ffffffffff\n"));
        assert!(!has_cap_sys_resource("no caps here"));
    }

    #[test]
    fn default_ulimits_of_a_containers_conf() {
        let conf = "[containers]\ndefault_ulimits = [\"nofile=4096:4096\"]\n[engine]\nruntime = \"runc\"\n";
        assert_eq!(default_ulimits(conf), Some(vec!["nofile=4096:4096".into()]));
        assert_eq!(default_ulimits("[engine]\nruntime = \"runc\"\n"), None);
        assert_eq!(default_ulimits("not toml ["), None);
    }

    #[test]
    fn podman_info_fields() {
        let p = parse_info("4.3.1\trunc\tv1\tcgroupfs\n").unwrap();
        assert_eq!((p.runtime.as_str(), p.cgroups.as_str()), ("runc", "v1"));
        assert!(parse_info("4.3.1\n").is_err());
    }
}
