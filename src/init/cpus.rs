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

use nix::libc;

/// init's own CPUs.
pub fn own() -> Option<libc::cpu_set_t> {
    // SAFETY: sched_getaffinity writes at most size_of::<cpu_set_t>() bytes into `set`.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        (libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) == 0)
            .then_some(set)
    }
}

fn cpus(set: &libc::cpu_set_t) -> impl Iterator<Item = usize> + '_ {
    // SAFETY: every index is below CPU_SETSIZE, the set's size.
    (0..libc::CPU_SETSIZE as usize).filter(move |&c| unsafe { libc::CPU_ISSET(c, set) })
}

/// The first CPU of `set` alone; None when `set` has one CPU only (nothing to pin).
pub fn first_of(set: &libc::cpu_set_t) -> Option<libc::cpu_set_t> {
    let mut it = cpus(set);
    let first = it.next()?;
    it.next()?;
    // SAFETY: an all-zero cpu_set_t is the empty set; `first` came from the set, so it is
    // below CPU_SETSIZE.
    unsafe {
        let mut one: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(first, &mut one);
        Some(one)
    }
}

fn equal(a: &libc::cpu_set_t, b: &libc::cpu_set_t) -> bool {
    cpus(a).eq(cpus(b))
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
pub fn give_back(pinned: &libc::cpu_set_t, all: &libc::cpu_set_t, root: i32) -> usize {
    let size = std::mem::size_of::<libc::cpu_set_t>();
    let mut given = 0;
    for pid in tree(root) {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for t in tasks.flatten() {
            let Some(tid) = t.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
                continue;
            };
            // SAFETY: both calls read or write one cpu_set_t of `size` bytes that we own.
            unsafe {
                let mut now: libc::cpu_set_t = std::mem::zeroed();
                if libc::sched_getaffinity(tid, size, &mut now) == 0
                    && equal(&now, pinned)
                    && libc::sched_setaffinity(tid, size, all) == 0
                {
                    given += 1;
                }
            }
        }
    }
    given
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(cpus: &[usize]) -> libc::cpu_set_t {
        let mut s: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        for &c in cpus {
            unsafe { libc::CPU_SET(c, &mut s) };
        }
        s
    }

    #[test]
    fn the_first_cpu_alone_and_nothing_to_pin_on_one_cpu() {
        let one = first_of(&set(&[2, 3, 7])).unwrap();
        assert!(equal(&one, &set(&[2])));
        assert!(first_of(&set(&[5])).is_none());
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
            unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &one) };
            tx.send(unsafe { libc::gettid() }).unwrap();
            done_rx.recv().unwrap();
            own().unwrap()
        });
        let tid = rx.recv().unwrap();
        assert!(
            give_back(&one, &all, std::process::id() as i32) >= 1,
            "thread {tid} was not found"
        );
        done_tx.send(()).unwrap();
        assert!(equal(&t.join().unwrap(), &all));
    }
}
