//! Device nodes in a container's /dev, made, read and removed from the host: by `virtpod
//! device` through `/proc/PID/root` of a running container, by the createRuntime stage under
//! the root it is given. The container's root user owns that tree and may have planted
//! symlinks in it: a path walked the usual way would follow an absolute one on the host
//! (`/dev/bus -> /etc` would make `device add usb=…` create /etc/usb/… on the host). So below
//! the root (trusted: ours, or the kernel's magic link to the container's root) every component
//! is opened relative to the one before with O_NOFOLLOW, and the last is made, read or removed
//! with the *at() calls that never follow it: a symlink anywhere on the way is refused, named.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fstatat, makedev, mkdirat, mknodat, Mode, SFlag};
use nix::unistd::{fchownat, unlinkat, Gid, Uid, UnlinkatFlags};

use super::discover::Kind;

/// `dev/<rel>` under `root`, split into the directories on the way and the node's name.
fn split(rel: &str) -> Result<(Vec<&str>, &str)> {
    let mut parts: Vec<&str> = std::iter::once("dev").chain(rel.split('/')).collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || *p == "." || *p == "..")
    {
        bail!("{rel:?} is not a path under /dev");
    }
    let leaf = parts.pop().expect("dev and at least one name");
    Ok((parts, leaf))
}

fn open_dir(at: Option<&OwnedFd>, name: &Path) -> nix::Result<OwnedFd> {
    let fd = openat(
        at.map(|f| f.as_raw_fd()),
        name,
        OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY,
        Mode::empty(),
    )?;
    // SAFETY: openat returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The directory that holds the node, opened without following any symlink; made (0755) on the
/// way when `create`. None when a directory is missing and not to be made.
fn parent(root: &Path, rel: &str, create: bool) -> Result<Option<(OwnedFd, String)>> {
    let (dirs, leaf) = split(rel)?;
    // The root itself is followed: /proc/PID/root is a magic link.
    let fd = openat(
        None,
        root,
        OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | OFlag::O_RDONLY,
        Mode::empty(),
    )
    .with_context(|| format!("opening {}", root.display()))?;
    // SAFETY: openat returned a new descriptor that nothing else owns.
    let mut fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut walked = String::new();
    for d in dirs {
        walked.push('/');
        walked.push_str(d);
        let next = match open_dir(Some(&fd), Path::new(d)) {
            Err(Errno::ENOENT) if create => {
                mkdirat(Some(fd.as_raw_fd()), d, Mode::from_bits_truncate(0o755))
                    .or_else(|e| if e == Errno::EEXIST { Ok(()) } else { Err(e) })
                    .with_context(|| format!("making {walked} in the container"))?;
                open_dir(Some(&fd), Path::new(d))
            }
            Err(Errno::ENOENT) => return Ok(None),
            other => other,
        };
        fd = next.map_err(|e| match e {
            Errno::ELOOP | Errno::ENOTDIR => anyhow::anyhow!(
                "{walked} in the container is a symlink or not a directory; refused (nothing is made or removed through it)"
            ),
            e => anyhow::anyhow!("opening {walked} in the container: {e}"),
        })?;
    }
    Ok(Some((fd, leaf.to_string())))
}

/// The kind and numbers of the device node `/dev/<rel>` in the container, if there is one.
pub fn stat(root: &Path, rel: &str) -> Option<(Kind, u64, u64)> {
    let (dir, leaf) = parent(root, rel, false).ok()??;
    let st = fstatat(
        Some(dir.as_raw_fd()),
        leaf.as_str(),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .ok()?;
    let kind = match SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT {
        SFlag::S_IFCHR => Kind::Char,
        SFlag::S_IFBLK => Kind::Block,
        _ => return None,
    };
    Some((
        kind,
        nix::sys::stat::major(st.st_rdev),
        nix::sys::stat::minor(st.st_rdev),
    ))
}

pub enum Made {
    Created,
    /// Something is at that name already; left as it is.
    Existed,
}

/// Makes `/dev/<rel>` (root:gid, `mode`) in the container.
pub fn make(
    root: &Path,
    rel: &str,
    kind: Kind,
    major: u64,
    minor: u64,
    gid: u32,
    mode: u32,
) -> Result<Made> {
    let (dir, leaf) = parent(root, rel, true)?.expect("made on the way");
    let flag = match kind {
        Kind::Char => SFlag::S_IFCHR,
        Kind::Block => SFlag::S_IFBLK,
    };
    // The mode is set by mknodat itself, so the umask must not take bits off it.
    let old = nix::sys::stat::umask(Mode::empty());
    let made = mknodat(
        Some(dir.as_raw_fd()),
        leaf.as_str(),
        flag,
        Mode::from_bits_truncate(mode),
        makedev(major, minor),
    );
    nix::sys::stat::umask(old);
    match made {
        Err(Errno::EEXIST) => return Ok(Made::Existed),
        r => r.with_context(|| format!("mknod /dev/{rel} in the container"))?,
    }
    fchownat(
        Some(dir.as_raw_fd()),
        leaf.as_str(),
        Some(Uid::from_raw(0)),
        Some(Gid::from_raw(gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .with_context(|| format!("giving /dev/{rel} to gid {gid}"))?;
    Ok(Made::Created)
}

/// Removes the device node `/dev/<rel>` from the container: false when there is none. Anything
/// else at that name (a file, a directory, a symlink) is left and named.
pub fn remove(root: &Path, rel: &str) -> Result<bool> {
    let Some((dir, leaf)) = parent(root, rel, false)? else {
        return Ok(false);
    };
    match fstatat(
        Some(dir.as_raw_fd()),
        leaf.as_str(),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    ) {
        Err(Errno::ENOENT) => return Ok(false),
        Err(e) => return Err(e).with_context(|| format!("looking at /dev/{rel} in the container")),
        Ok(st) => {
            let fmt = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
            if fmt != SFlag::S_IFCHR && fmt != SFlag::S_IFBLK {
                bail!("/dev/{rel} in the container is not a device node; left as it is");
            }
        }
    }
    unlinkat(
        Some(dir.as_raw_fd()),
        leaf.as_str(),
        UnlinkatFlags::NoRemoveDir,
    )
    .with_context(|| format!("removing /dev/{rel} from the container"))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_symlink_on_the_way_is_refused_and_nothing_is_made_through_it() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        let outside = t.path().join("outside");
        std::fs::create_dir_all(root.join("dev")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("dev/bus")).unwrap();
        let e = make(&root, "bus/usb/001/002", Kind::Char, 189, 1, 0, 0o660)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("/dev/bus in the container is a symlink"), "{e}");
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
        assert!(remove(&root, "bus/usb/001/002").is_err());
        assert!(stat(&root, "bus/usb/001/002").is_none());
        assert!(split("../etc").is_err() && split("a//b").is_err());
    }

    #[test]
    fn a_container_root_is_reached_through_its_magic_link() {
        // /proc/PID/root is how `virtpod device` reaches a running container's tree.
        let null = stat(Path::new("/proc/self/root"), "null");
        assert!(
            matches!(null, Some((Kind::Char, 1, 3))),
            "/dev/null through /proc/self/root: {null:?}"
        );
    }

    #[test]
    fn a_file_is_not_removed_as_a_node() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("dev")).unwrap();
        std::fs::write(t.path().join("dev/ttyUSB0"), "x").unwrap();
        assert!(remove(t.path(), "ttyUSB0").is_err());
        assert!(t.path().join("dev/ttyUSB0").exists());
        assert!(!remove(t.path(), "ttyUSB1").unwrap());
    }
}
