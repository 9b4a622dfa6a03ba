//! One CPU for a qemu driver daemon until libvirt first answers (`one_cpu_at_start` in the
//! catalog), then every CPU init may use again.
//!
//! Why: libvirt (9.0 measured) caches what each qemu binary can do under
//! /var/cache/libvirt/qemu/capabilities and throws the cache away when the host's CPUID data
//! differs from the cached copy. That data includes leaf 0x1f (and 0xb), whose EDX is the x2APIC
//! id of the CPU the reading thread ran on: a daemon that starts on another CPU than last time
//! probes every qemu again, 1.2–1.7 s per start here on 2 CPUs, nearly every start on a big
//! host. On one fixed CPU the data is the same at every start. qemu is unaffected: libvirt sets
//! each guest's affinity to every host CPU itself unless the guest's XML says otherwise.
//!
//! Only with /dev/kvm: without it libvirt keeps its probe whatever CPU it starts on (12 warm
//! starts of libvirtd alone, unpinned, no probe again), and the pin would only cost time,
//! ~11 ms a start here (`benches/startup.py`'s floor with and without `taskset -c 0`).

use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;

/// init's own CPUs.
pub fn own() -> Option<CpuSet> {
    sched_getaffinity(Pid::from_raw(0)).ok()
}

/// (one CPU, init's CPUs) for libvirt's qemu daemon to start on, or None: without /dev/kvm,
/// or with one CPU only.
pub fn for_start() -> Option<(CpuSet, CpuSet)> {
    if !std::path::Path::new("/dev/kvm").exists() {
        return None;
    }
    let all = own()?;
    Some((first_of(&all)?, all))
}

/// The first CPU of `set` alone; None when `set` has one CPU only (nothing to pin).
pub fn first_of(set: &CpuSet) -> Option<CpuSet> {
    let mut cpus = (0..CpuSet::count()).filter(|&c| set.is_set(c).unwrap_or(false));
    let first = cpus.next()?;
    cpus.next()?;
    let mut one = CpuSet::new();
    one.set(first).ok()?;
    Some(one)
}

/// The processes of `root`'s tree, `root` included (from /proc/PID/stat's parent pids).
fn tree(root: i32) -> Vec<i32> {
    let parents: Vec<(i32, i32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_str()?.parse::<i32>().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            // `pid (comm) state ppid …`: comm may hold spaces and parentheses.
            let ppid = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            Some((pid, ppid))
        })
        .collect();
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    found
}

/// Gives `all` back to every thread of `root`'s process tree that still runs on `pinned`
/// alone: the daemon's threads and what it started meanwhile (dnsmasq for an autostarted
/// network, re-parented to init). Returns how many threads were given back.
pub fn give_back(pinned: &CpuSet, all: &CpuSet, root: i32) -> usize {
    let mut given = 0;
    for pid in tree(root) {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for t in tasks.flatten() {
            let Some(tid) = t.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
                continue;
            };
            let tid = Pid::from_raw(tid);
            if sched_getaffinity(tid).is_ok_and(|now| now == *pinned)
                && sched_setaffinity(tid, all).is_ok()
            {
                given += 1;
            }
        }
    }
    given
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(cpus: &[usize]) -> CpuSet {
        let mut s = CpuSet::new();
        for &c in cpus {
            s.set(c).unwrap();
        }
        s
    }

    #[test]
    fn the_first_cpu_alone_and_nothing_to_pin_on_one_cpu() {
        assert_eq!(first_of(&set(&[2, 3, 7])), Some(set(&[2])));
        assert_eq!(first_of(&set(&[5])), None);
    }

    #[test]
    fn a_pinned_thread_gets_every_cpu_back() {
        let Some(all) = own() else { return };
        let Some(one) = first_of(&all) else {
            eprintln!("one CPU only: nothing to pin");
            return;
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            sched_setaffinity(Pid::from_raw(0), &one).unwrap();
            tx.send(nix::unistd::gettid()).unwrap();
            done_rx.recv().unwrap();
            own().unwrap()
        });
        let tid = rx.recv().unwrap();
        assert!(
            give_back(&one, &all, std::process::id() as i32) >= 1,
            "thread {tid} was not found"
        );
        done_tx.send(()).unwrap();
        assert_eq!(t.join().unwrap(), all);
    }
}
