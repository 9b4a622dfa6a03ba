//! Widening (and narrowing again) a running container's device filter on cgroup v2, where the
//! filter is the eBPF programs attached to its cgroups. Every program on the container's own
//! cgroups is swapped, in one step each, for "virtpod's allow blocks + that program"; programs
//! on the slices above are not ours to touch.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use super::program::{self, Rule};
use super::{bpf, scope};

/// The cgroups that are the container's own, in the host's cgroup2 tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Own {
    /// The container's cgroup (podman's `libpod-ID` or `libpod-ID.scope`) and, under crun with
    /// systemd, the `container` cgroup below it where crun puts the processes.
    pub dirs: Vec<PathBuf>,
    /// The systemd scope, when the container's cgroup is one.
    pub scope: Option<String>,
}

/// The container's own cgroups from `0::PATH` of /proc/PID/cgroup: the first component naming
/// the container's id, and `container` right below it. None when no component names it (the
/// process is not the container's).
pub fn own(mount: &Path, path: &str, id: &str) -> Option<Own> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let at = parts.iter().position(|p| p.contains(id))?;
    let dir = |n: usize| {
        parts[..=n]
            .iter()
            .fold(mount.to_path_buf(), |d, p| d.join(p))
    };
    let mut dirs = vec![dir(at)];
    let scope = parts[at].ends_with(".scope").then(|| parts[at].to_string());
    if parts.get(at + 1) == Some(&"container") {
        dirs.push(dir(at + 1));
    }
    Some(Own { dirs, scope })
}

/// What a change did on one cgroup, for the caller to say.
#[derive(Debug, Default)]
pub struct Changed {
    pub programs: usize,
}

/// Allows `add` and takes `remove` back on every device program of the container's own
/// cgroups. With a strict systemd scope, the unit's list changes too (added before the programs,
/// so systemd's recompile already has the device; withdrawn after them) and systemd's own
/// program is left to systemd.
pub fn change(own: &Own, add: &[Rule], remove: &[Rule]) -> Result<Changed> {
    let strict = own
        .scope
        .as_deref()
        .filter(|unit| scope::strict(unit).unwrap_or(false));
    let mut leave_systemds = strict.is_some() && add.is_empty();
    if let (Some(unit), false) = (strict, add.is_empty()) {
        match scope::allow(unit, add) {
            Ok(()) => leave_systemds = true,
            Err(e) => tracing::warn!(
                "{e:#}: the device is allowed in the kernel only, until a change to {unit} (podman update) makes systemd compile its filter again"
            ),
        }
    }
    let mut changed = Changed::default();
    for dir in &own.dirs {
        changed.programs += change_one(dir, add, remove, leave_systemds)
            .with_context(|| format!("changing the device filter of {}", dir.display()))?;
    }
    if let (Some(unit), false) = (strict, remove.is_empty()) {
        scope::withdraw(unit, remove)?;
    }
    Ok(changed)
}

/// systemd's device program, compiled from the unit's list.
const SYSTEMDS: &str = "sd_devices";

fn change_one(dir: &Path, add: &[Rule], remove: &[Rule], leave_systemds: bool) -> Result<usize> {
    let cgroup = File::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    // A runtime or systemd may swap a program between our query and our swap: the swap then
    // fails with ENOENT, and the query is made again.
    'again: for _ in 0..10 {
        let mut n = 0;
        for id in bpf::attached(&cgroup).map_err(bpf_error("listing the device programs"))? {
            let old = match bpf::by_id(id) {
                Ok(fd) => fd,
                Err(e) if e.raw_os_error() == Some(nix::libc::ENOENT) => continue 'again,
                Err(e) => return Err(bpf_error(&format!("opening device program {id}"))(e)),
            };
            let info =
                bpf::info(&old).map_err(bpf_error(&format!("reading device program {id}")))?;
            if leave_systemds && info.name == SYSTEMDS {
                continue;
            }
            if info.maps > 0 {
                bail!(
                    "device program {id} ({}) uses BPF maps; virtpod carries only self-contained filters into a new one",
                    display_name(&info.name)
                );
            }
            let (had, rest) = if info.name == program::NAME {
                program::split_grants(&info.insns)
            } else {
                (Vec::new(), &info.insns[..])
            };
            program::check(rest).map_err(|e| {
                anyhow!(
                    "device program {id} ({}) cannot be carried into a new one: {e}",
                    display_name(&info.name)
                )
            })?;
            let mut grants: BTreeMap<Rule, bool> = had.iter().copied().collect();
            for r in add {
                grants.insert(*r, true);
            }
            for r in remove {
                // A deny only where the program would allow the device by itself.
                if program::allows(rest, *r, program::ACC_READ | program::ACC_WRITE) == Some(false)
                {
                    grants.remove(r);
                } else {
                    grants.insert(*r, false);
                }
            }
            let rules: Vec<(Rule, bool)> = grants.into_iter().collect();
            // Nothing to change (for another's program: nothing to add to it).
            if rules == had {
                continue;
            }
            let new = bpf::load(&program::with_grants(&rules, rest), program::NAME)
                .map_err(bpf_error("loading the new device program"))?;
            match bpf::replace(&cgroup, &new, &old) {
                Ok(()) => n += 1,
                Err(e) if e.raw_os_error() == Some(nix::libc::ENOENT) => continue 'again,
                Err(e) => return Err(bpf_error(&format!("swapping device program {id}"))(e)),
            }
        }
        return Ok(n);
    }
    bail!("its device programs kept changing while virtpod swapped them; try again")
}

fn display_name(name: &str) -> &str {
    if name.is_empty() {
        "unnamed"
    } else {
        name
    }
}

fn bpf_error(what: &str) -> impl Fn(io::Error) -> anyhow::Error + '_ {
    move |e| {
        let hint = match e.raw_os_error() {
            Some(nix::libc::EPERM) | Some(nix::libc::EACCES) => {
                ": bpf(2) needs root on the host with CAP_SYS_ADMIN (not in a user namespace); an LSM (SELinux, AppArmor) may refuse it too"
            }
            Some(nix::libc::ENOSYS) => ": this kernel has no bpf(2) (CONFIG_BPF_SYSCALL)",
            _ => "",
        };
        anyhow!("{what}: {e}{hint}")
    }
}

/// Whether every device program on the container's own cgroups (and, where the scope is
/// strict, systemd's) lets the container open the device now: Some(true) yes, Some(false) a
/// program denies it, None when a program could not be read or followed.
pub fn in_force(own: &Own, rule: Rule) -> Option<bool> {
    let mut verdict = Some(true);
    for dir in &own.dirs {
        let cgroup = File::open(dir).ok()?;
        for id in bpf::attached(&cgroup).ok()? {
            let info = bpf::info(&bpf::by_id(id).ok()?).ok()?;
            match program::allows(&info.insns, rule, program::ACC_READ | program::ACC_WRITE) {
                Some(true) => {}
                Some(false) => return Some(false),
                None => verdict = None,
            }
        }
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cgroups_are_the_containers_and_cruns_subgroup_never_a_slice() {
        let id = "ab".repeat(32);
        let m = Path::new("/sys/fs/cgroup");
        let crun = own(
            m,
            &format!("/machine.slice/libpod-{id}.scope/container"),
            &id,
        )
        .unwrap();
        assert_eq!(
            crun.dirs,
            [
                m.join(format!("machine.slice/libpod-{id}.scope")),
                m.join(format!("machine.slice/libpod-{id}.scope/container"))
            ]
        );
        assert_eq!(crun.scope, Some(format!("libpod-{id}.scope")));
        let runc = own(m, &format!("/machine.slice/libpod-{id}.scope"), &id).unwrap();
        assert_eq!(runc.dirs.len(), 1);
        let cgroupfs = own(m, &format!("/libpod_parent/libpod-{id}"), &id).unwrap();
        assert_eq!(
            cgroupfs.dirs,
            [m.join(format!("libpod_parent/libpod-{id}"))]
        );
        assert_eq!(cgroupfs.scope, None);
        // A systemd in the container moves itself below; the container's cgroup is the same.
        let inner = own(
            m,
            &format!("/machine.slice/libpod-{id}.scope/init.scope"),
            &id,
        )
        .unwrap();
        assert_eq!(inner.dirs, runc.dirs);
        assert_eq!(own(m, "/user.slice/session-1.scope", &id), None);
    }

    /// Root on a host with a cgroup2 tree (this machine's hybrid /sys/fs/cgroup/unified, a v2
    /// host's /sys/fs/cgroup): the kernel itself enforces what the program says. Skipped
    /// elsewhere, except under CI=true, where it fails.
    #[test]
    fn a_grant_opens_the_device_in_the_kernel_and_its_removal_closes_it_again() {
        let Some(mount) =
            super::super::cgroup2_mount().filter(|_| nix::unistd::Uid::effective().is_root())
        else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true: this test needs root and a cgroup2 mount"
            );
            eprintln!("skipped: needs root and a cgroup2 mount");
            return;
        };
        let dir = mount.join(format!("virtpod-test-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        struct Gone(PathBuf);
        impl Drop for Gone {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir(&self.0);
            }
        }
        let _gone = Gone(dir.clone());
        let cgroup = File::open(&dir).unwrap();
        let null = program::tests::c(1, 3);
        let zero = program::tests::c(1, 5);
        let runtime = bpf::load(&program::tests::filter(&[null]), "runtime").unwrap();
        bpf::attach(&cgroup, &runtime).unwrap();
        let opens = |node: &str| {
            let script = format!("echo $$ > {}/cgroup.procs && exec 3<>{node}", dir.display());
            std::process::Command::new("sh")
                .args(["-c", &script])
                .stderr(std::process::Stdio::null())
                .status()
                .unwrap()
                .success()
        };
        let names = || -> Vec<String> {
            bpf::attached(&cgroup)
                .unwrap()
                .into_iter()
                .map(|id| bpf::info(&bpf::by_id(id).unwrap()).unwrap().name)
                .collect()
        };
        let own = Own {
            dirs: vec![dir.clone()],
            scope: None,
        };
        assert!(opens("/dev/null") && !opens("/dev/zero"));
        assert_eq!(in_force(&own, zero), Some(false));

        let t = std::time::Instant::now();
        assert_eq!(change(&own, &[zero], &[]).unwrap().programs, 1);
        eprintln!("grant: {:?}", t.elapsed());
        assert!(opens("/dev/zero") && opens("/dev/null"));
        assert_eq!(names(), ["virtpod_dev"], "one program, swapped in place");
        assert_eq!(in_force(&own, zero), Some(true));
        // Granted again: nothing changes.
        assert_eq!(change(&own, &[zero], &[]).unwrap().programs, 0);

        assert_eq!(change(&own, &[], &[zero]).unwrap().programs, 1);
        assert!(!opens("/dev/zero") && opens("/dev/null"));
        assert_eq!(in_force(&own, zero), Some(false));
        assert_eq!(names().len(), 1);

        // A device the runtime's own filter allows (as after a start whose hook put it in the
        // spec) is taken back by a deny in front, and given again.
        change(&own, &[], &[null]).unwrap();
        assert!(!opens("/dev/null"));
        change(&own, &[null], &[]).unwrap();
        assert!(opens("/dev/null"));
    }
}
