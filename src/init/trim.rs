//! PID 1's start-up code out of its page tables once it is set up.
//!
//! Setting up runs most of the binary once (clap, the TOML catalog, the settings, the
//! preparation's bookkeeping), and the kernel maps file pages around each one touched: 4 MB of
//! the binary and 1.5 MB of libc stay resident in PID 1 for the container's whole life,
//! though the supervision loop uses a small part of them. Dropping the mappings of read-only
//! file pages gives them back to the page cache, where the kernel may reclaim them; what the
//! loop uses faults back in from the cache. Pages with private changes (relocated read-only
//! data, anything written) are never dropped: that would lose the changes.

use nix::libc;

/// One mapping of /proc/self/smaps that may be dropped: file-backed, not writable, with no
/// private (anonymous) pages.
#[derive(Debug, PartialEq, Eq)]
pub struct Droppable {
    pub start: usize,
    pub end: usize,
}

/// The droppable mappings in smaps' text.
pub fn droppable(smaps: &str) -> Vec<Droppable> {
    let mut out = Vec::new();
    let mut current: Option<(Droppable, bool)> = None;
    let finish = |c: Option<(Droppable, bool)>, out: &mut Vec<Droppable>| {
        if let Some((m, true)) = c {
            out.push(m);
        }
    };
    for line in smaps.lines() {
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or("");
        if let Some((a, b)) = first.split_once('-') {
            if let (Ok(start), Ok(end)) =
                (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
            {
                finish(current.take(), &mut out);
                let perms = words.next().unwrap_or("");
                let path = words.nth(3).unwrap_or("");
                let ok = path.starts_with('/') && !perms.contains('w');
                current = Some((Droppable { start, end }, ok));
                continue;
            }
        }
        if first == "Anonymous:" && words.next() != Some("0") {
            if let Some((_, ok)) = &mut current {
                *ok = false;
            }
        }
    }
    finish(current.take(), &mut out);
    out
}

/// Drops the droppable mappings' pages from this process; returns the bytes covered.
pub fn drop_clean_file_pages() -> usize {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return 0;
    };
    let mut bytes = 0;
    for m in droppable(&smaps) {
        // SAFETY: the range is a whole mapping of this process, read-only and backed by an
        // unchanged file: its contents come back from the file on the next access.
        if unsafe {
            libc::madvise(
                m.start as *mut libc::c_void,
                m.end - m.start,
                libc::MADV_DONTNEED,
            )
        } == 0
        {
            bytes += m.end - m.start;
        }
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
55d0c0000000-55d0c0100000 r--p 00000000 08:01 123 /usr/bin/virtpod
Rss:                 100 kB
Anonymous:             0 kB
55d0c0100000-55d0c0200000 r-xp 00100000 08:01 123 /usr/bin/virtpod
Anonymous:             0 kB
55d0c0200000-55d0c0210000 r--p 00200000 08:01 123 /usr/bin/virtpod
Anonymous:            64 kB
55d0c0210000-55d0c0220000 rw-p 00210000 08:01 123 /usr/bin/virtpod
Anonymous:            64 kB
55d0c1000000-55d0c1100000 rw-p 00000000 00:00 0 [heap]
Anonymous:           100 kB
7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0 [vdso]
Anonymous:             0 kB
";

    #[test]
    fn only_unchanged_read_only_file_pages_are_dropped() {
        assert_eq!(
            droppable(SMAPS),
            vec![
                Droppable {
                    start: 0x55d0c0000000,
                    end: 0x55d0c0100000
                },
                Droppable {
                    start: 0x55d0c0100000,
                    end: 0x55d0c0200000
                },
            ]
        );
    }

    #[test]
    fn this_process_keeps_running_after_its_pages_are_dropped() {
        assert!(drop_clean_file_pages() > 0);
        let v: Vec<String> = (0..100).map(|i| format!("{i}")).collect();
        assert_eq!(v.join("").len(), 190);
    }
}
