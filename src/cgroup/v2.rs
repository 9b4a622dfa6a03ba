//! Widening (and narrowing again) a running container's device filter on cgroup v2, where the
//! filter is the eBPF programs attached to its cgroups. Every program on the container's own
//! cgroups is swapped, in one step each, for "virtpod's allow blocks + that program"; programs
//! on the slices above are not ours to touch.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
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
    /// The process's own cgroup (the last of `dirs`, or one below it), where the filter that
    /// decides for it is seen whole: its programs and those of every cgroup above.
    pub leaf: PathBuf,
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
    Some(Own {
        dirs,
        scope,
        leaf: dir(parts.len() - 1),
    })
}

/// What a change did, for the caller to say.
#[derive(Debug, Default)]
pub struct Changed {
    pub programs: usize,
}

/// A swap made: the cgroup, the program put there and the one it replaced, kept so that a
/// change that fails half way is undone whole.
struct Swap {
    cgroup: File,
    new: OwnedFd,
    old: OwnedFd,
}

fn undo(swaps: Vec<Swap>) {
    for s in swaps.into_iter().rev() {
        if let Err(e) = bpf::replace(&s.cgroup, &s.old, &s.new) {
            tracing::warn!("putting a device program back after a failed change: {e}");
        }
    }
}

/// Allows `add` and takes `remove` back on every device program of the container's own
/// cgroups. With a strict systemd scope, the unit's list changes too (added before the programs,
/// so systemd's recompile already has the device; withdrawn after them) and systemd's own
/// program is left to systemd. A failure on the way undoes what this call did.
pub fn change(own: &Own, add: &[Rule], remove: &[Rule]) -> Result<Changed> {
    let strict = own
        .scope
        .as_deref()
        .filter(|unit| match scope::strict(unit) {
            Ok(strict) => strict,
            Err(e) => {
                tracing::warn!("{e:#}: taken as a scope without systemd's own device list");
                false
            }
        });
    let mut leave_systemds = strict.is_some() && add.is_empty();
    let mut on_unit = Vec::new();
    if let (Some(unit), false) = (strict, add.is_empty()) {
        match scope::allow(unit, add) {
            Ok(added) => {
                leave_systemds = true;
                on_unit = added;
            }
            Err(e) => tracing::warn!(
                "{e:#}: the device is allowed in the kernel only, until a change to {unit} (podman update) makes systemd compile its filter again; `systemctl set-property --runtime {unit} DeviceAllow=\"/dev/char/MAJOR:MINOR rwm\"` keeps it"
            ),
        }
    }
    let mut swaps = Vec::new();
    for dir in &own.dirs {
        if let Err(e) = change_one(dir, add, remove, leave_systemds, &mut swaps) {
            undo(swaps);
            if let (Some(unit), false) = (strict, on_unit.is_empty()) {
                let _ = scope::withdraw(unit, &on_unit);
            }
            return Err(e.context(format!(
                "changing the device filter of {} (nothing was changed)",
                dir.display()
            )));
        }
    }
    if let (Some(unit), false) = (strict, remove.is_empty()) {
        scope::withdraw(unit, remove)?;
    }
    Ok(Changed {
        programs: swaps.len(),
    })
}

/// systemd's device program, compiled from the unit's list.
const SYSTEMDS: &str = "sd_devices";

fn change_one(
    dir: &Path,
    add: &[Rule],
    remove: &[Rule],
    leave_systemds: bool,
    swaps: &mut Vec<Swap>,
) -> Result<()> {
    let cgroup = File::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    // A runtime or systemd may swap a program between our query and our swap: the swap then
    // fails with ENOENT, and the query is made again (programs swapped already read as ours,
    // with nothing left to change).
    'again: for _ in 0..10 {
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
            let what = format!("device program {id} ({})", display_name(&info.name));
            if info.maps > 0 {
                bail!(
                    "{what} uses BPF maps (as libvirt's per-guest programs do): virtpod carries only self-contained filters into a new one, and this one was put on the container's cgroup by another tool; detach it, or re-create the container with the device (--annotation io.virtpod.device.CLASS=…)"
                );
            }
            let (had, rest) = if info.name == program::NAME {
                program::split_grants(&info.insns)
            } else {
                (Vec::new(), &info.insns[..])
            };
            program::check(rest).map_err(|e| {
                anyhow!("{what} cannot be carried into a new one: {e}; re-create the container with the device (--annotation io.virtpod.device.CLASS=…)")
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
                .map_err(bpf_error(&format!("loading the program made from {what}")))?;
            match bpf::replace(&cgroup, &new, &old) {
                Ok(()) => swaps.push(Swap {
                    cgroup: cgroup.try_clone()?,
                    new,
                    old,
                }),
                Err(e) if e.raw_os_error() == Some(nix::libc::ENOENT) => {
                    // Still listed, yet not replaceable: a bpf_link holds it.
                    if bpf::attached(&cgroup).is_ok_and(|ids| ids.contains(&id)) {
                        bail!("{what} is attached through a bpf_link (by a tool other than the runtimes), which virtpod cannot replace; detach it, or re-create the container with the device");
                    }
                    continue 'again;
                }
                Err(e) => return Err(bpf_error(&format!("swapping {what}"))(e)),
            }
        }
        return Ok(());
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

/// Whether every device program that decides for the container's process (its cgroups' and
/// those above, systemd's included) lets it open the device now: Some(true) yes, Some(false) a
/// program denies it, None when a program could not be read or followed.
pub fn in_force(own: &Own, rules: &[Rule]) -> Vec<Option<bool>> {
    let programs = || -> Option<Vec<Vec<program::Insn>>> {
        let cgroup = File::open(&own.leaf).ok()?;
        bpf::effective(&cgroup)
            .ok()?
            .into_iter()
            .map(|id| Some(bpf::info(&bpf::by_id(id).ok()?).ok()?.insns))
            .collect()
    };
    let Some(programs) = programs() else {
        return vec![None; rules.len()];
    };
    rules
        .iter()
        .map(|rule| {
            let mut verdict = Some(true);
            for insns in &programs {
                match program::allows(insns, *rule, program::ACC_READ | program::ACC_WRITE) {
                    Some(true) => {}
                    Some(false) => return Some(false),
                    None => verdict = None,
                }
            }
            verdict
        })
        .collect()
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
        assert_eq!(
            inner.leaf,
            m.join(format!("machine.slice/libpod-{id}.scope/init.scope"))
        );
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
            leaf: dir.clone(),
        };
        assert!(opens("/dev/null") && !opens("/dev/zero"));
        assert_eq!(in_force(&own, &[zero]), [Some(false)]);

        let t = std::time::Instant::now();
        assert_eq!(change(&own, &[zero], &[]).unwrap().programs, 1);
        eprintln!("grant: {:?}", t.elapsed());
        assert!(opens("/dev/zero") && opens("/dev/null"));
        assert_eq!(names(), ["virtpod_dev"], "one program, swapped in place");
        assert_eq!(in_force(&own, &[zero]), [Some(true)]);
        // Granted again: nothing changes.
        assert_eq!(change(&own, &[zero], &[]).unwrap().programs, 0);

        assert_eq!(change(&own, &[], &[zero]).unwrap().programs, 1);
        assert!(!opens("/dev/zero") && opens("/dev/null"));
        assert_eq!(in_force(&own, &[zero]), [Some(false)]);
        assert_eq!(names().len(), 1);

        // A device the runtime's own filter allows (as after a start whose hook put it in the
        // spec) is taken back by a deny in front, and given again.
        change(&own, &[], &[null]).unwrap();
        assert!(!opens("/dev/null"));
        change(&own, &[null], &[]).unwrap();
        assert!(opens("/dev/null"));
    }
}
