//! Verdicts from facts: pure, so each is unit-tested against the cases a user meets.

use std::io;
use std::path::{Path, PathBuf};

use super::facts::{ConfUlimits, DeviceNode, Hooks, Hotplug, Limits, Podman};
use super::Finding;

/// What podman 4 gives a rootful container for nofile and nproc unless containers.conf's
/// default_ulimits says otherwise.
pub const PODMAN_DEFAULT_LIMIT: u64 = 1_048_576;

pub fn podman(p: &Result<Podman, String>) -> Finding {
    match p {
        Ok(p) => Finding::ok("podman", format!("podman {}", p.version)),
        // The fix follows the cause: only a podman that cannot be run is "install podman".
        Err(e) if e.starts_with(super::facts::NO_PODMAN) => Finding::fail(
            "podman",
            e.clone(),
            "install podman (`apt-get install podman`) and make sure `podman info` runs",
        ),
        Err(e) if e.contains(".conf") => Finding::fail(
            "podman",
            e.clone(),
            "podman cannot read its configuration: fix the file it names above (CONTAINERS_CONF, containers.conf, containers.conf.d/, storage.conf), then `podman info` runs",
        ),
        Err(e) => Finding::fail(
            "podman",
            e.clone(),
            "`podman info` must run: fix what it says above",
        ),
    }
}

/// `hybrid`: cgroup v2 mounted beside v1 (/sys/fs/cgroup/unified), which podman reports as v1.
pub fn runtime(p: &Podman, hybrid: bool, systemd: bool) -> Finding {
    if p.runtime == "crun" && p.cgroups == "v1" && hybrid {
        return Finding::fail(
            "runtime",
            "podman uses crun on hybrid cgroups, where crun refuses every container (\"cgroups in hybrid mode not supported\")",
            "install runc and set runtime = \"runc\" under [engine] in containers.conf",
        );
    }
    if p.cgroup_manager == "systemd" && !systemd {
        return Finding::fail(
            "runtime",
            "podman's cgroup manager is systemd, but systemd does not run this host",
            "set cgroup_manager = \"cgroupfs\" and events_logger = \"file\" under [engine] in containers.conf",
        );
    }
    Finding::ok(
        "runtime",
        format!(
            "{}, cgroups {}{}, {}",
            p.runtime,
            p.cgroups,
            if hybrid { " (hybrid)" } else { "" },
            p.cgroup_manager
        ),
    )
}

/// The largest value a `name=soft:hard` (or `name=value`) ulimit asks for.
fn asked(ulimits: &[String], name: &str) -> Option<u64> {
    ulimits.iter().find_map(|u| {
        let values = u.strip_prefix(name)?.strip_prefix('=')?;
        values
            .split(':')
            .map(|v| v.trim().parse::<u64>().ok())
            .try_fold(0u64, |m, v| v.map(|v| m.max(v)))
    })
}

/// Whether rootful containers can get the limits podman will ask for.
pub fn ulimits(l: &Limits, conf: &ConfUlimits, rootless: bool) -> Finding {
    if rootless {
        return Finding::ok(
            "ulimits",
            "rootless podman gives containers your own limits",
        );
    }
    if l.may_raise {
        return Finding::ok(
            "ulimits",
            "root may raise limits here (CAP_SYS_RESOURCE), so podman's defaults apply",
        );
    }
    let (set, from) = match &conf.set {
        Some((u, f)) => (u.as_slice(), Some(f.as_path())),
        None => (&[][..], None),
    };
    let mut problems = Vec::new();
    for (name, rtype, hard) in [("nofile", 7, l.nofile_hard), ("nproc", 6, l.nproc_hard)] {
        match (asked(set, name), from) {
            (Some(v), Some(f)) if v > hard => problems.push(format!(
                "{name} {v} (default_ulimits in {}) is above the hard limit {hard} (rlimit type {rtype})",
                f.display()
            )),
            (None, _) if PODMAN_DEFAULT_LIMIT > hard => problems.push(format!(
                "podman's default {name} {PODMAN_DEFAULT_LIMIT} is above the hard limit {hard} (rlimit type {rtype})"
            )),
            _ => {}
        }
    }
    if problems.is_empty() {
        let detail = match from {
            Some(f) => format!(
                "default_ulimits {:?} from {} fit the hard limits (nofile {}, nproc {})",
                set,
                f.display(),
                l.nofile_hard,
                l.nproc_hard
            ),
            None => "podman's defaults fit the hard limits".to_string(),
        };
        return Finding::ok("ulimits", detail);
    }
    // The file that set them, else the one podman reads alone, else the administrator's.
    let file = from
        .or(conf.override_file.as_deref())
        .unwrap_or(Path::new("/etc/containers/containers.conf"))
        .display()
        .to_string();
    Finding::fail(
        "ulimits",
        format!(
            "every rootful `podman run` fails with \"error setting rlimits … operation not permitted\" \
             (root here lacks CAP_SYS_RESOURCE): {}",
            problems.join("; ")
        ),
        format!(
            "under [containers] in {file}: \
             default_ulimits = [\"nofile={n}:{n}\", \"nproc={p}:{p}\"] (values at most nofile {}, nproc {})",
            l.nofile_hard,
            l.nproc_hard,
            n = l.nofile_hard.min(4096),
            p = l.nproc_hard.min(4096),
        ),
    )
}

pub fn kvm(node: &io::Result<DeviceNode>) -> Finding {
    match node {
        Ok(n) if n.char_device && (n.major, n.minor) == (10, 232) => Finding::ok(
            "kvm",
            format!(
                "/dev/kvm {:04o} {}:{}; inside, the appliance gives it to qemu's group",
                n.mode, n.uid, n.gid
            ),
        ),
        Ok(n) => Finding::fail(
            "kvm",
            format!(
                "/dev/kvm is not the KVM device (expected character device 10:232, found {}{}:{})",
                if n.char_device { "c " } else { "not a character device, " },
                n.major,
                n.minor
            ),
            "remove it and load the kvm module (`modprobe kvm_intel` or `kvm_amd`), which recreates it",
        ),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Finding::fail(
            "kvm",
            "/dev/kvm does not exist: the appliance's io.virtpod.device.kvm=true cannot be given, \
             so `./appliance-up` and compose.yaml's container refuse to start",
            "enable virtualization in the firmware (or nested virtualization on a VM host) and \
             load kvm_intel or kvm_amd; or run guests under TCG only (many times slower): \
             VIRTPOD_KVM=false ./appliance-up",
        ),
        Err(e) => Finding::fail("kvm", format!("cannot read /dev/kvm: {e}"), "run as root"),
    }
}

pub fn hooks(h: &Hooks) -> Finding {
    let dirs = h
        .dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    if let Some(e) = &h.error {
        return Finding::fail(
            "hooks",
            format!("podman refuses to create any container while a hook file is invalid: {e}"),
            format!(
                "fix or remove that file; `virtpod hooks check {}` lists every problem",
                dirs.replace(", ", " ")
            ),
        );
    }
    let at = |stage: &str| {
        h.ours
            .iter()
            .find(|o| o.stages.iter().any(|s| s == stage))
            .map(|o| format!("{stage} ({})", o.file.display()))
    };
    let precreate_sysctl = h
        .ours
        .iter()
        .any(|o| o.sysctl && o.stages.iter().any(|s| s == "precreate"));
    match (at("precreate"), at("poststop")) {
        (Some(pre), _) if !precreate_sysctl => Finding::warn(
            "hooks",
            format!(
                "the virtpod hook at {pre} predates io.virtpod.sysctl.net: it does not run for it, \
                 so libvirt's default NAT network cannot start in the appliance (docs/networking.md)"
            ),
            "re-install the hook definitions from the image: ./appliance-up does, or `virtpod install`",
        ),
        (Some(pre), post) => Finding::ok(
            "hooks",
            match post {
                Some(post) => format!("virtpod hook at {pre} and {post}"),
                None => format!("virtpod hook at {pre}"),
            },
        ),
        (None, _) => Finding::warn(
            "hooks",
            format!("no virtpod hook at precreate in {dirs}: io.virtpod.device.* annotations do nothing"),
            "`sudo virtpod install` writes its definitions into /usr/local/share/virtpod/oci-hooks.d \
             and names that directory in /etc/containers/containers.conf.d/50-virtpod-hooks.conf; \
             with CONTAINERS_CONF set podman reads no drop-in: add the directory to hooks_dir there",
        ),
    }
}

/// `precreate` files in the hooks directories buildah and CRI-O share with podman: each one
/// fails every rootful `podman build` with a RUN step, and CRI-O's start.
pub fn shared_hooks_dirs(found: &[(PathBuf, bool)]) -> Finding {
    if found.is_empty() {
        return Finding::ok(
            "shared hooks directories",
            "no precreate hook where buildah and CRI-O read (podman build works)",
        );
    }
    let names = |ours: bool| {
        found
            .iter()
            .filter(|(_, o)| *o == ours)
            .map(|(p, _)| p.display().to_string())
            .collect::<Vec<_>>()
    };
    let (mine, others) = (names(true), names(false));
    let mut fixes = Vec::new();
    if !mine.is_empty() {
        fixes.push(format!(
            "{}: an older virtpod install's; `sudo virtpod install` (or ./appliance-up) moves it \
             to virtpod's own directory, `sudo virtpod uninstall` removes it",
            mine.join(", ")
        ));
    }
    if !others.is_empty() {
        fixes.push(format!(
            "{}: another project's; move it to a directory of its own and add that directory to \
             hooks_dir in a containers.conf.d drop-in (only podman reads hooks_dir; docs/hook.md)",
            others.join(", ")
        ));
    }
    let all: Vec<String> = found.iter().map(|(p, _)| p.display().to_string()).collect();
    Finding::fail(
        "shared hooks directories",
        format!(
            "{} use{} podman's own stage precreate where buildah and CRI-O read too: every rootful \
             `podman build` with a RUN step fails (\"unknown stage \\\"precreate\\\"\"), and so \
             does CRI-O's start",
            all.join(", "),
            if all.len() == 1 { "s" } else { "" }
        ),
        fixes.join("; "),
    )
}

/// Every device added at run time to a running container is allowed by its filter now.
pub fn run_time_devices(found: &Result<Vec<String>, String>) -> Finding {
    match found {
        Err(e) => Finding::warn(
            "run-time devices",
            format!("could not list the running containers: {e}"),
            "run doctor as root, whose containers `virtpod device add` serves",
        ),
        Ok(lines) if lines.is_empty() => Finding::ok(
            "run-time devices",
            "every device added with `virtpod device add` to a running container is allowed by its device filter",
        ),
        Ok(lines) => Finding::warn(
            "run-time devices",
            format!("not in force: {}", lines.join("; ")),
            "give each again with the `virtpod device add` named above (a restart gives it too)",
        ),
    }
}

/// Every running container that asks for USB hotplug has its watcher.
pub fn hotplug(h: &Result<Vec<Hotplug>, String>) -> Finding {
    match h {
        Err(e) => Finding::warn(
            "hotplug",
            format!("could not list the running containers: {e}"),
            "run doctor as the user whose containers these are",
        ),
        Ok(all) if all.is_empty() => Finding::ok(
            "hotplug",
            "no running container asks for USB hotplug (io.virtpod.device.usb=hotplug)",
        ),
        Ok(all) => {
            let missing: Vec<&str> = all
                .iter()
                .filter(|c| !c.watched)
                .map(|c| c.name.as_str())
                .collect();
            if missing.is_empty() {
                Finding::ok(
                    "hotplug",
                    format!(
                        "a USB hotplug watcher runs for each of {} container(s)",
                        all.len()
                    ),
                )
            } else {
                Finding::fail(
                    "hotplug",
                    format!(
                        "no `virtpod device watch` runs for {}: USB devices plugged in now do not reach it",
                        missing.join(", ")
                    ),
                    "is hooks.d/virtpod-usb-hotplug.json installed (`virtpod install`)? Restart the container, or run `virtpod device watch NAME`",
                )
            }
        }
    }
}

pub fn socket(path: &Path, connected: &io::Result<()>) -> Finding {
    let p = path.display();
    match connected {
        Ok(()) => Finding::ok(
            "socket",
            format!("{p} accepts connections: virsh -c 'qemu+unix:///system?socket={p}'"),
        ),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Finding::fail(
            "socket",
            format!("no socket at {p}: the appliance is not running, or puts its sockets elsewhere"),
            "start it with ./appliance-up (or `podman-compose -p virtpod up -d`); \
             for another directory: virtpod doctor --socket DIR/libvirt-sock",
        ),
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => Finding::fail(
            "socket",
            format!("{p} is not a socket: {e}"),
            "name the appliance's socket file: virtpod doctor --socket /run/virtpod/libvirt-sock (or DIR/libvirt-sock of your socket directory)",
        ),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => Finding::fail(
            "socket",
            format!("{p} exists but nothing listens: it was left by an appliance that no longer runs"),
            "start the appliance again (./appliance-up); virtpod init removes stale sockets as it starts",
        ),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Finding::fail(
            "socket",
            format!("not allowed to connect to {p}"),
            "run as root, or as a user the socket's owner and mode let in",
        ),
        Err(e) => Finding::fail(
            "socket",
            format!("cannot connect to {p}: {e}"),
            "check that the appliance runs: podman ps",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::facts::OurHook;
    use super::super::Level;
    use super::*;

    fn podman_with(runtime: &str, cgroups: &str, manager: &str) -> Podman {
        Podman {
            version: "4.3.1".into(),
            runtime: runtime.into(),
            cgroups: cgroups.into(),
            cgroup_manager: manager.into(),
        }
    }

    #[test]
    fn crun_on_hybrid_cgroups_and_systemd_manager_without_systemd_fail() {
        let f = runtime(&podman_with("crun", "v1", "cgroupfs"), true, false);
        assert_eq!(f.level, Level::Fail);
        assert!(f.fix.unwrap().contains("runtime = \"runc\""));
        assert_eq!(
            runtime(&podman_with("crun", "v2", "cgroupfs"), false, false).level,
            Level::Ok
        );
        let f = runtime(&podman_with("runc", "v1", "systemd"), true, false);
        assert!(f.fix.unwrap().contains("cgroup_manager = \"cgroupfs\""));
        assert_eq!(
            runtime(&podman_with("runc", "v1", "systemd"), true, true).level,
            Level::Ok
        );
    }

    const HERE: Limits = Limits {
        nofile_hard: 20000,
        nproc_hard: 96364,
        may_raise: false,
    };

    fn conf(ulimits: &[&str]) -> ConfUlimits {
        ConfUlimits {
            files: vec!["/t/containers.conf".into()],
            override_file: None,
            set: Some((
                ulimits.iter().map(|s| s.to_string()).collect(),
                "/t/containers.conf".into(),
            )),
        }
    }

    #[test]
    fn ulimits_above_the_hard_limit_fail_with_values_that_fit() {
        let f = ulimits(&HERE, &ConfUlimits::default(), false);
        assert_eq!(f.level, Level::Fail);
        assert!(
            f.detail.contains(
                "podman's default nofile 1048576 is above the hard limit 20000 (rlimit type 7)"
            ),
            "{}",
            f.detail
        );
        assert!(
            f.detail
                .contains("nproc 1048576 is above the hard limit 96364 (rlimit type 6)"),
            "{}",
            f.detail
        );
        assert!(f
            .fix
            .unwrap()
            .contains("default_ulimits = [\"nofile=4096:4096\", \"nproc=4096:4096\"]"));
        // Only nofile lowered: nproc still fails.
        let f = ulimits(&HERE, &conf(&["nofile=4096:4096"]), false);
        assert!(
            f.detail.contains("nproc") && !f.detail.contains("nofile"),
            "{}",
            f.detail
        );
        let f = ulimits(&HERE, &conf(&["nofile=30000:30000", "nproc=4096"]), false);
        assert!(
            f.detail
                .contains("nofile 30000 (default_ulimits in /t/containers.conf)"),
            "{}",
            f.detail
        );
        assert_eq!(
            ulimits(
                &HERE,
                &conf(&["nofile=4096:4096", "nproc=4096:4096"]),
                false
            )
            .level,
            Level::Ok
        );
    }

    #[test]
    fn ulimits_do_not_matter_to_rootless_or_to_a_root_that_may_raise() {
        assert_eq!(
            ulimits(&HERE, &ConfUlimits::default(), true).level,
            Level::Ok
        );
        let free = Limits {
            may_raise: true,
            ..HERE
        };
        assert_eq!(
            ulimits(&free, &ConfUlimits::default(), false).level,
            Level::Ok
        );
    }

    #[test]
    fn kvm_missing_or_wrong_fails() {
        let node = DeviceNode {
            char_device: true,
            major: 10,
            minor: 232,
            mode: 0o600,
            uid: 0,
            gid: 0,
        };
        assert_eq!(kvm(&Ok(node)).level, Level::Ok);
        let wrong = DeviceNode {
            minor: 3,
            major: 1,
            ..node
        };
        assert!(kvm(&Ok(wrong))
            .detail
            .contains("expected character device 10:232"));
        let gone = kvm(&Err(io::Error::from(io::ErrorKind::NotFound)));
        assert_eq!(gone.level, Level::Fail);
        assert!(gone.detail.contains("does not exist"));
    }

    #[test]
    fn hooks_invalid_fail_missing_warn_installed_ok() {
        let mut h = Hooks {
            dirs: vec!["/d".into()],
            error: Some("/d/x.json: bad".into()),
            ours: vec![],
        };
        let f = hooks(&h);
        assert_eq!(f.level, Level::Fail);
        assert!(f.detail.contains("/d/x.json: bad"));
        h.error = None;
        assert_eq!(hooks(&h).level, Level::Warn);
        h.ours = vec![OurHook {
            file: "/d/virtpod-devices.json".into(),
            stages: vec!["precreate".into()],
            sysctl: true,
        }];
        assert_eq!(hooks(&h).level, Level::Ok);
        // An older definition: devices only, so the NAT network's sysctl never reaches the hook.
        h.ours[0].sysctl = false;
        let old = hooks(&h);
        assert_eq!(old.level, Level::Warn);
        assert!(
            old.detail.contains("predates io.virtpod.sysctl.net"),
            "{}",
            old.detail
        );
    }

    #[test]
    fn socket_missing_stale_or_forbidden_says_which() {
        let p = Path::new("/run/virtpod/libvirt-sock");
        assert_eq!(socket(p, &Ok(())).level, Level::Ok);
        let stale = socket(p, &Err(io::Error::from(io::ErrorKind::ConnectionRefused)));
        assert!(stale.detail.contains("nothing listens"));
        let gone = socket(p, &Err(io::Error::from(io::ErrorKind::NotFound)));
        assert!(gone
            .detail
            .contains("no socket at /run/virtpod/libvirt-sock"));
        let denied = socket(p, &Err(io::Error::from(io::ErrorKind::PermissionDenied)));
        assert!(denied.detail.contains("not allowed"));
    }

    #[test]
    fn a_hotplug_container_without_its_watcher_is_named() {
        let c = |name: &str, watched| Hotplug {
            name: name.into(),
            watched,
        };
        assert_eq!(hotplug(&Ok(vec![])).level, super::super::Level::Ok);
        assert_eq!(
            hotplug(&Ok(vec![c("a", true)])).level,
            super::super::Level::Ok
        );
        let f = hotplug(&Ok(vec![c("a", true), c("b", false)]));
        assert_eq!(f.level, super::super::Level::Fail);
        assert!(f.detail.contains("for b:"), "{}", f.detail);
        assert!(f.fix.unwrap().contains("virtpod device watch NAME"));
    }

    #[test]
    fn precreate_in_a_shared_directory_fails_with_the_fix_for_whose_it_is() {
        assert_eq!(shared_hooks_dirs(&[]).level, Level::Ok);
        let f = shared_hooks_dirs(&[
            (
                PathBuf::from("/usr/share/containers/oci/hooks.d/virtpod-devices.json"),
                true,
            ),
            (
                PathBuf::from("/usr/share/containers/oci/hooks.d/qm-device.json"),
                false,
            ),
        ]);
        assert_eq!(f.level, Level::Fail);
        assert!(f.detail.contains("podman build"), "{}", f.detail);
        let fix = f.fix.unwrap();
        assert!(
            fix.contains("virtpod-devices.json: an older virtpod install's"),
            "{fix}"
        );
        assert!(fix.contains("qm-device.json: another project's"), "{fix}");
    }
}
