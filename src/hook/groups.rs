//! The image's groups, read from /etc/group under the container's root.
//!
//! The image is untrusted input read by root on the host: whoever built it chose what etc/ and
//! etc/group are. So the read is bounded. A symlink in either component is refused, never
//! followed (it could point at a host file, or loop); only a regular file is opened, so a FIFO
//! cannot make the hook wait for a writer and a device node is never opened (opening one can
//! have effects: a watchdog arms, a tape rewinds); at most [`LIMIT`] bytes are read. Every
//! refusal names the path and the reason, and the caller keeps the host's gid.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{fstatat, Mode, SFlag};

/// Real group files are a few KiB; a MiB is room for any real one and bounds what an image
/// can make the hook read and hold.
pub const LIMIT: u64 = 1 << 20;

/// name → gid from the image at `root`, or why it was not read. `root` itself comes from the
/// runtime (podman's storage, possibly under a symlinked /var/lib) and is followed; what lies
/// below it is the image's and is not.
pub fn read(root: &Path) -> Result<HashMap<String, u32>, String> {
    let etc_path = root.join("etc");
    let path = etc_path.join("group");
    let root_fd = open_at(None, root, OFlag::O_DIRECTORY)
        .map_err(|e| format!("{}: {}", root.display(), e.desc()))?;
    let root_fd = root_fd.as_raw_fd();
    let etc =
        open_at(Some(root_fd), "etc", OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW).map_err(|e| {
            let why = why_not_dir(root_fd, "etc", e);
            format!("{}: {why}; not read", etc_path.display())
        })?;
    let text = read_regular(etc.as_raw_fd(), "group", LIMIT)
        .map_err(|why| format!("{}: {why}; not read", path.display()))?;
    Ok(parse(&String::from_utf8_lossy(&text)))
}

fn open_at<P: ?Sized + nix::NixPath>(
    dir: Option<RawFd>,
    path: &P,
    flags: OFlag,
) -> Result<OwnedFd, Errno> {
    let fd = openat(
        dir,
        path,
        flags | OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK | OFlag::O_NOCTTY,
        Mode::empty(),
    )?;
    // SAFETY: openat just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Why `name` in `dir` could not be opened as a directory, in words: O_DIRECTORY|O_NOFOLLOW
/// answers ENOTDIR (or ELOOP) alike for a symlink and for a file; lstat tells them apart.
fn why_not_dir(dir: RawFd, name: &str, e: Errno) -> String {
    if !matches!(e, Errno::ENOTDIR | Errno::ELOOP) {
        return e.desc().into();
    }
    match fstatat(Some(dir), name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) if kind(st.st_mode) == "a symlink" => "is a symlink, not followed".into(),
        Ok(st) => format!("is {}, not a directory", kind(st.st_mode)),
        Err(_) => e.desc().into(),
    }
}

fn kind(mode: u32) -> &'static str {
    match SFlag::from_bits_truncate(mode & SFlag::S_IFMT.bits()) {
        SFlag::S_IFREG => "a regular file",
        SFlag::S_IFLNK => "a symlink",
        SFlag::S_IFIFO => "a FIFO",
        SFlag::S_IFCHR => "a character device",
        SFlag::S_IFBLK => "a block device",
        SFlag::S_IFSOCK => "a socket",
        SFlag::S_IFDIR => "a directory",
        _ => "not a regular file",
    }
}

/// The contents of `name` in `dir` when it is a regular file of at most `limit` bytes; else
/// why not. Neither a symlink nor any other kind of file is ever opened.
fn read_regular(dir: RawFd, name: &str, limit: u64) -> Result<Vec<u8>, String> {
    let seen = fstatat(Some(dir), name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
        .map_err(|e| e.desc().to_string())?;
    let what = kind(seen.st_mode);
    if what != "a regular file" {
        return Err(format!("is {what}, not a regular file"));
    }
    // Checked again on the open file: the stat above keeps us from opening a device or a FIFO,
    // this keeps a file swapped in between from being read as the one we checked. (Swapping
    // takes write access to the container's storage, root's under rootful podman; even then
    // O_NONBLOCK|O_NOCTTY keep a FIFO or a tty from holding the hook.)
    let file =
        File::from(open_at(Some(dir), name, OFlag::O_NOFOLLOW).map_err(|e| e.desc().to_string())?);
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() || meta.dev() != seen.st_dev as u64 || meta.ino() != seen.st_ino as u64 {
        return Err("changed while it was being opened".into());
    }
    if meta.len() > limit {
        return Err(format!(
            "is {} bytes, more than the {limit} read",
            meta.len()
        ));
    }
    let mut out = Vec::with_capacity(meta.len() as usize);
    // The size can grow after the fstat; take() keeps the bound regardless.
    file.take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| e.to_string())?;
    if out.len() as u64 > limit {
        return Err(format!("grew past {limit} bytes while it was read"));
    }
    Ok(out)
}

/// Lines `name:password:gid:members`. The first line of a name counts, as for getgrnam(3);
/// comments and malformed lines are skipped.
pub fn parse(text: &str) -> HashMap<String, u32> {
    let mut groups = HashMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let mut f = line.split(':');
        let (Some(name), Some(gid)) = (f.next(), f.nth(1)) else {
            continue;
        };
        if let Ok(gid) = gid.parse() {
            groups.entry(name.to_string()).or_insert(gid);
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;
    use std::time::Instant;

    fn image() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir(t.path().join("etc")).unwrap();
        t
    }

    /// The refusal for this image, checked to name etc/group or etc and to come back at once.
    fn refusal(root: &Path) -> String {
        let t0 = Instant::now();
        let e = read(root).unwrap_err();
        assert!(t0.elapsed().as_millis() < 1000, "took {:?}", t0.elapsed());
        assert!(e.contains(&root.join("etc").display().to_string()), "{e}");
        assert!(e.ends_with("; not read"), "{e}");
        e
    }

    #[test]
    fn parses_group_lines() {
        let g = parse("root:x:0:\nkvm:x:104:libvirt-qemu\n# c\nbad line\ntty:x:5:\nkvm:x:7:\n");
        assert_eq!(g.get("kvm"), Some(&104));
        assert_eq!(g.get("tty"), Some(&5));
        assert_eq!(g.len(), 3);
    }

    #[test]
    fn reads_a_plain_group_file() {
        let t = image();
        fs::write(t.path().join("etc/group"), "kvm:x:104:\n").unwrap();
        assert_eq!(read(t.path()).unwrap().get("kvm"), Some(&104));
    }

    #[test]
    fn a_root_reached_through_a_symlink_is_the_runtime_s_and_followed() {
        let t = image();
        fs::write(t.path().join("etc/group"), "kvm:x:104:\n").unwrap();
        let link = tempfile::tempdir().unwrap();
        symlink(t.path(), link.path().join("root")).unwrap();
        assert_eq!(
            read(&link.path().join("root")).unwrap().get("kvm"),
            Some(&104)
        );
    }

    #[test]
    fn refuses_a_symlinked_group_file() {
        let t = image();
        symlink("/etc/group", t.path().join("etc/group")).unwrap();
        let e = refusal(t.path());
        assert!(
            e.contains("etc/group: is a symlink, not a regular file"),
            "{e}"
        );
    }

    #[test]
    fn refuses_a_symlinked_etc_and_chains_out_of_the_root() {
        let t = tempfile::tempdir().unwrap();
        symlink("/etc", t.path().join("etc")).unwrap();
        assert!(refusal(t.path()).contains("etc: is a symlink, not followed"));

        // etc → a → b → /etc: the first link is already refused.
        let t = tempfile::tempdir().unwrap();
        symlink("a", t.path().join("etc")).unwrap();
        symlink("b", t.path().join("a")).unwrap();
        symlink("/etc", t.path().join("b")).unwrap();
        assert!(refusal(t.path()).contains("is a symlink"));

        // etc/group → ../../../../etc/group, and a loop.
        let t = image();
        symlink("../../../../../../etc/group", t.path().join("etc/group")).unwrap();
        assert!(refusal(t.path()).contains("is a symlink"));
        let t = image();
        symlink("group", t.path().join("etc/group")).unwrap();
        assert!(refusal(t.path()).contains("is a symlink"));
    }

    #[test]
    fn a_fifo_is_refused_without_waiting_for_a_writer() {
        let t = image();
        nix::unistd::mkfifo(&t.path().join("etc/group"), Mode::from_bits_truncate(0o644)).unwrap();
        assert!(refusal(t.path()).contains("etc/group: is a FIFO, not a regular file"));
        // etc itself a FIFO: O_DIRECTORY refuses it before any open.
        let t = tempfile::tempdir().unwrap();
        nix::unistd::mkfifo(&t.path().join("etc"), Mode::from_bits_truncate(0o644)).unwrap();
        assert!(refusal(t.path()).contains("etc: is a FIFO, not a directory"));
    }

    #[test]
    fn a_device_node_is_refused_unopened() {
        let t = image();
        let group = t.path().join("etc/group");
        // mknod needs CAP_MKNOD; without it a socket stands for "not a regular file".
        let dev = nix::sys::stat::makedev(1, 5);
        match nix::sys::stat::mknod(&group, SFlag::S_IFCHR, Mode::from_bits_truncate(0o644), dev) {
            Ok(()) => {
                assert!(refusal(t.path()).contains("is a character device"));
                fs::remove_file(&group).unwrap();
                let blk = SFlag::S_IFBLK;
                nix::sys::stat::mknod(&group, blk, Mode::from_bits_truncate(0o644), dev).unwrap();
                assert!(refusal(t.path()).contains("is a block device"));
            }
            Err(e) => eprintln!("mknod: {e}; device case not checked"),
        }
        let t = image();
        let _l = std::os::unix::net::UnixListener::bind(t.path().join("etc/group")).unwrap();
        assert!(refusal(t.path()).contains("is a socket"));
        let t = image();
        fs::create_dir(t.path().join("etc/group")).unwrap();
        assert!(refusal(t.path()).contains("is a directory"));
    }

    #[test]
    fn a_huge_group_file_is_refused_unread() {
        let t = image();
        let f = File::create(t.path().join("etc/group")).unwrap();
        // Sparse: an 8 GiB file costs nothing to make (any file system takes one), and would
        // take seconds to read and all the memory to hold.
        f.set_len(8 << 30).unwrap();
        let e = refusal(t.path());
        assert!(
            e.contains("is 8589934592 bytes, more than the 1048576 read"),
            "{e}"
        );
        // At the limit exactly, it is read.
        f.set_len(LIMIT).unwrap();
        assert!(read(t.path()).unwrap().is_empty());
    }

    #[test]
    fn missing_files_are_named() {
        let t = image();
        assert!(refusal(t.path()).contains("etc/group: No such file or directory"));
        let t = tempfile::tempdir().unwrap();
        assert!(refusal(t.path()).contains("etc: No such file or directory"));
    }
}
