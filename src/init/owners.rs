//! State volumes moved between images. The files of /var/lib/libvirt, /etc/libvirt and
//! /var/log/libvirt belong to the image's accounts (qemu's user and group, kvm, libvirt), whose
//! numbers differ between distributions and even between releases of one (groups are allocated
//! at package install). The accounts of the image that last started on the volumes are
//! recorded in them; a start with other numbers re-owns exactly the files those accounts owned.
//! libvirtd gives its own directories back to its user at each start, and relabels the disks it
//! manages when a guest starts, but nothing else: a disk whose owner the user manages
//! (`relabel='no'`, `dynamic_ownership = 0`, NFS) would stay the old account's, and the guest
//! would fail to start ("Could not open …: Permission denied").
//!
//! Decisions are pure (parse passwd/group/qemu.conf, the identity, the remap, each file's new
//! owner); `fix` is the I/O edge: it walks the trees, chowns, and writes the record. It never
//! fails the start: every problem is logged with the file and the fix.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use tracing::{debug, info, warn};

/// The image's accounts that own the volumes' files, as last recorded (docs/init.md).
pub const RECORD: &str = "/var/lib/libvirt/virtpod/owners";
/// A re-owning under way: the new identity and every change, written before the first chown,
/// so a start interrupted midway finishes it at the next start (see `fix`).
pub const MOVING: &str = "/var/lib/libvirt/virtpod/owners.moving";
/// The state volumes.
pub const TREES: &[&str] = &["/var/lib/libvirt", "/etc/libvirt", "/var/log/libvirt"];
const QEMU_CONF: &str = "/etc/libvirt/qemu.conf";
/// The user qemu runs as when qemu.conf names none: Debian's, then Fedora's and Alpine's.
const QEMU_USERS: &[&str] = &["libvirt-qemu", "qemu"];
/// Entries looked at in all the trees together before the walk gives up: the state trees hold
/// hundreds of files, a storage pool under /var/lib/libvirt/images perhaps thousands.
const MAX_ENTRIES: usize = 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    User,
    Group,
}

/// The roles recorded, in the order they decide a shared old number: a file's group is qemu's
/// group before it is libvirt's or kvm's (Alpine's qemu user has kvm as its primary group).
const ROLES: &[(Kind, &str)] = &[
    (Kind::User, "qemu"),
    (Kind::Group, "qemu"),
    (Kind::Group, "libvirt"),
    (Kind::Group, "kvm"),
];

/// One account of one role: `user qemu libvirt-qemu 64055` in the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub kind: Kind,
    pub role: String,
    pub name: String,
    pub id: u32,
}

/// The accounts that own state, one per role at most.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity(pub Vec<Account>);

impl Identity {
    pub fn get(&self, kind: Kind, role: &str) -> Option<&Account> {
        self.0.iter().find(|a| a.kind == kind && a.role == role)
    }

    fn push(&mut self, kind: Kind, role: &str, name: &str, id: u32) {
        self.0.push(Account {
            kind,
            role: role.to_string(),
            name: name.to_string(),
            id,
        });
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct User {
    name: String,
    uid: u32,
    gid: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Group {
    name: String,
    gid: u32,
}

/// /etc/passwd: `name:password:uid:gid:…`; lines that are not that are skipped.
fn parse_passwd(text: &str) -> Vec<User> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(User {
                name: f.first()?.to_string(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
            })
        })
        .collect()
}

/// /etc/group: `name:password:gid:members`.
fn parse_group(text: &str) -> Vec<Group> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(Group {
                name: f.first()?.to_string(),
                gid: f.get(2)?.parse().ok()?,
            })
        })
        .collect()
}

/// The value of an uncommented `key = "value"` line of a libvirt conf file (the last one; a
/// comment after the value is not part of it).
fn conf_value(text: &str, key: &str) -> Option<String> {
    text.lines()
        .filter_map(|l| l.trim().split_once('='))
        .filter(|(k, _)| k.trim() == key)
        .filter_map(|(_, v)| {
            let v = v.trim();
            let value = match v.strip_prefix('"') {
                Some(quoted) => quoted.split('"').next()?,
                None => v.split('#').next()?.trim(),
            };
            Some(value.to_string())
        })
        .next_back()
}

/// An account as libvirt reads qemu.conf's `user`/`group`: `+N` is the number N, otherwise a
/// name, otherwise a number. Gives (name, id); a number with no name keeps the spec as name.
fn resolve(spec: &str, table: &[(String, u32)]) -> Option<(String, u32)> {
    let by_id = |id: u32| {
        table
            .iter()
            .find(|(_, i)| *i == id)
            .cloned()
            .unwrap_or((spec.to_string(), id))
    };
    if let Some(n) = spec.strip_prefix('+') {
        return n.parse().ok().map(by_id);
    }
    table
        .iter()
        .find(|(name, _)| name == spec)
        .cloned()
        .or_else(|| spec.parse().ok().map(by_id))
}

/// The image's identity from its /etc/passwd, /etc/group and qemu.conf: qemu's user (qemu.conf's
/// `user`, else the first of libvirt-qemu, qemu), its group (qemu.conf's `group`, else the group
/// of the user's name, else its primary group), and the groups libvirt and kvm. Also gives the
/// warnings worth a line in the log.
pub fn image_identity(passwd: &str, group: &str, qemu_conf: &str) -> (Identity, Vec<String>) {
    let passwd = parse_passwd(passwd);
    let users: Vec<(String, u32)> = passwd.iter().map(|u| (u.name.clone(), u.uid)).collect();
    let groups: Vec<(String, u32)> = parse_group(group)
        .into_iter()
        .map(|g| (g.name, g.gid))
        .collect();
    let mut notes = Vec::new();
    let mut id = Identity::default();

    let conf_user = conf_value(qemu_conf, "user").and_then(|spec| {
        let found = resolve(&spec, &users);
        if found.is_none() {
            notes.push(format!(
                "{QEMU_CONF}: user = \"{spec}\" is no account of this image's /etc/passwd; \
                 taking the image's own qemu user"
            ));
        }
        found
    });
    let user = conf_user.or_else(|| {
        QEMU_USERS
            .iter()
            .find_map(|n| users.iter().find(|(name, _)| name == n).cloned())
    });
    if let Some((name, uid)) = &user {
        id.push(Kind::User, "qemu", name, *uid);
    }

    let conf_group = conf_value(qemu_conf, "group").and_then(|spec| {
        let found = resolve(&spec, &groups);
        if found.is_none() {
            notes.push(format!(
                "{QEMU_CONF}: group = \"{spec}\" is no group of this image's /etc/group; \
                 taking the qemu user's own group"
            ));
        }
        found
    });
    let qemu_group = conf_group.or_else(|| {
        let (name, _) = user.as_ref()?;
        let named = groups.iter().find(|(g, _)| g == name).cloned();
        named.or_else(|| {
            let primary = passwd.iter().find(|u| &u.name == name)?;
            resolve(&format!("+{}", primary.gid), &groups)
        })
    });
    if let Some((name, gid)) = &qemu_group {
        id.push(Kind::Group, "qemu", name, *gid);
    }

    for role in ["libvirt", "kvm"] {
        if let Some((name, gid)) = groups.iter().find(|(g, _)| g == role) {
            id.push(Kind::Group, role, name, *gid);
        }
    }
    if user.is_none() {
        notes.push(format!(
            "this image has no qemu user (none of {} in /etc/passwd, no `user =` in {QEMU_CONF})",
            QEMU_USERS.join(", ")
        ));
    }
    (id, notes)
}

/// The record: a comment, then one `user|group ROLE NAME ID` line per account.
pub fn record_text(id: &Identity) -> String {
    let mut text = String::from(
        "# virtpod: the accounts that own the files of the state volumes, as the image that last\n\
         # started on them has them. A start with other numbers re-owns the files (docs/init.md).\n",
    );
    for a in &id.0 {
        let kind = match a.kind {
            Kind::User => "user",
            Kind::Group => "group",
        };
        text.push_str(&format!("{kind} {} {} {}\n", a.role, a.name, a.id));
    }
    text
}

/// Reads a record. Lines it does not know (a later virtpod's, the journal's `chown` lines) are
/// skipped: the roles it knows are enough to compute a remap.
pub fn parse_record(text: &str) -> Identity {
    let mut id = Identity::default();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let kind = match f.first() {
            Some(&"user") => Kind::User,
            Some(&"group") => Kind::Group,
            _ => continue,
        };
        let (Some(role), Some(name), Some(Ok(num)), 4) =
            (f.get(1), f.get(2), f.get(3).map(|n| n.parse()), f.len())
        else {
            continue;
        };
        if id.get(kind, role).is_none() {
            id.push(kind, role, name, num);
        }
    }
    id
}

/// Old number → new number, for users and groups, and the accounts that moved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Remap {
    pub uids: BTreeMap<u32, u32>,
    pub gids: BTreeMap<u32, u32>,
    /// (before, after) of each account that moved, in role order.
    pub moved: Vec<(Account, Account)>,
}

impl Remap {
    pub fn is_empty(&self) -> bool {
        self.uids.is_empty() && self.gids.is_empty()
    }
}

/// The remap from the recorded identity to the image's, role by role. An old number shared by
/// two roles follows the first in `ROLES`. Root (0) is never moved, to nor from: a qemu.conf
/// `user = "root"` must not hand root's files to anyone.
pub fn remap(old: &Identity, new: &Identity) -> Remap {
    let mut r = Remap::default();
    let mut decided: BTreeSet<(Kind, u32)> = BTreeSet::new();
    for (kind, role) in ROLES {
        let (Some(before), Some(after)) = (old.get(*kind, role), new.get(*kind, role)) else {
            continue;
        };
        if !decided.insert((*kind, before.id)) {
            continue;
        }
        if before.id == after.id || before.id == 0 || after.id == 0 {
            continue;
        }
        let map = match kind {
            Kind::User => &mut r.uids,
            Kind::Group => &mut r.gids,
        };
        map.insert(before.id, after.id);
        r.moved.push((before.clone(), after.clone()));
    }
    r
}

/// A file's new owner and group, when the remap changes either.
pub fn decide(r: &Remap, uid: u32, gid: u32) -> Option<(u32, u32)> {
    let new = (
        r.uids.get(&uid).copied().unwrap_or(uid),
        r.gids.get(&gid).copied().unwrap_or(gid),
    );
    (new != (uid, gid)).then_some(new)
}

/// What moved, for the log: `libvirt-qemu 64055:64055, kvm 104; now qemu 107:107, kvm 36`.
pub fn summary(old: &Identity, new: &Identity, r: &Remap) -> String {
    let qemu = |id: &Identity| {
        let user = id.get(Kind::User, "qemu")?;
        let group = id
            .get(Kind::Group, "qemu")
            .map_or("?".to_string(), |g| g.id.to_string());
        Some(format!("{} {}:{group}", user.name, user.id))
    };
    let qemu_moved = r.moved.iter().any(|(b, _)| b.role == "qemu");
    let mut before = Vec::new();
    let mut after = Vec::new();
    if qemu_moved {
        before.extend(qemu(old));
        after.extend(qemu(new));
    }
    for (b, a) in r.moved.iter().filter(|(b, _)| b.role != "qemu") {
        before.push(format!("{} {}", b.name, b.id));
        after.push(format!("{} {}", a.name, a.id));
    }
    format!("{}; now {}", before.join(", "), after.join(", "))
}

/// One file to re-own: the owner and group it gets (absolute numbers, so doing it twice is
/// harmless).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub path: PathBuf,
    pub uid: u32,
    pub gid: u32,
}

/// The journal: the identity being moved to (record lines), then `chown UID GID PATH` lines.
/// A path holding a newline cannot be written this way: the caller leaves it out.
pub fn journal_text(target: &Identity, changes: &[Change]) -> Vec<u8> {
    let mut out = record_text(target).into_bytes();
    for c in changes {
        out.extend_from_slice(format!("chown {} {} ", c.uid, c.gid).as_bytes());
        out.extend_from_slice(c.path.as_os_str().as_bytes());
        out.push(b'\n');
    }
    out
}

/// The `chown` lines of a journal (its identity is `parse_record`'s).
pub fn parse_changes(bytes: &[u8]) -> Vec<Change> {
    bytes
        .split(|b| *b == b'\n')
        .filter_map(|line| {
            let rest = line.strip_prefix(b"chown ")?;
            let mut f = rest.splitn(3, |b| *b == b' ');
            let num = |f: Option<&[u8]>| std::str::from_utf8(f?).ok()?.parse().ok();
            let uid = num(f.next())?;
            let gid = num(f.next())?;
            let path = f.next().filter(|p| !p.is_empty())?;
            Some(Change {
                path: PathBuf::from(OsStr::from_bytes(path)),
                uid,
                gid,
            })
        })
        .collect()
}

// ---- the I/O edge ----

/// At every start, before the daemons: finish a re-owning an earlier start left unfinished,
/// then compare the image's accounts with the record and re-own what moved. Never fails: a
/// problem is logged with the file and the fix, and the start goes on (a guest that then
/// cannot start says why in libvirt's own log).
pub fn fix() {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let (image, notes) =
        image_identity(&read("/etc/passwd"), &read("/etc/group"), &read(QEMU_CONF));
    for note in notes {
        warn!("{note}");
    }
    let trees: Vec<&Path> = TREES.iter().map(Path::new).collect();
    let mounts = mount_points(&read("/proc/self/mountinfo"));
    if let Err(e) = settle(
        &image,
        Path::new(RECORD),
        Path::new(MOVING),
        &trees,
        &mounts,
    ) {
        warn!("{e:#}; files of the state volumes were not re-owned, the start goes on");
    }
}

/// `fix` with its paths given; `mounts` are the mount points the walk leaves alone.
pub fn settle(
    image: &Identity,
    record: &Path,
    moving: &Path,
    trees: &[&Path],
    mounts: &BTreeSet<PathBuf>,
) -> Result<()> {
    if moving.exists() && !finish_journal(moving, record)? {
        return Ok(());
    }
    let old = match std::fs::read_to_string(record) {
        Ok(text) => parse_record(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            write_atomic(record, record_text(image).as_bytes())?;
            info!(record = %record.display(), "recorded this image's accounts (first start on these volumes)");
            return Ok(());
        }
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read {}", record.display()));
        }
    };
    let r = remap(&old, image);
    if r.is_empty() {
        debug!("state volumes: owners as recorded");
        if old != *image {
            write_atomic(record, record_text(image).as_bytes())?;
        }
        return Ok(());
    }
    let changes = plan(trees, &r, mounts);
    write_atomic(moving, &journal_text(image, &changes))?;
    let failed = apply(&changes);
    let what = summary(&old, image, &r);
    let done = changes.len() - failed;
    info!("state volumes came from an image where {what}: {done} files re-owned");
    if failed > 0 {
        warn!(
            "{failed} files could not be re-owned (above); the next start tries them again ({})",
            moving.display()
        );
        return Ok(());
    }
    write_atomic(record, record_text(image).as_bytes())?;
    remove(moving)
}

/// Applies a journal left by an interrupted start. True when it is done (the record now holds
/// its identity), false when some file still failed (the journal stays for the next start).
fn finish_journal(moving: &Path, record: &Path) -> Result<bool> {
    let bytes =
        std::fs::read(moving).with_context(|| format!("cannot read {}", moving.display()))?;
    let target = parse_record(&String::from_utf8_lossy(&bytes));
    let changes = parse_changes(&bytes);
    let failed = apply(&changes);
    if failed > 0 {
        warn!(
            "{failed} of {} files of an earlier re-owning still could not be re-owned (above); \
             the next start tries them again ({})",
            changes.len(),
            moving.display()
        );
        return Ok(false);
    }
    info!(
        files = changes.len(),
        "finished re-owning the state volumes' files that an earlier start left unfinished"
    );
    write_atomic(record, record_text(&target).as_bytes())?;
    remove(moving)?;
    Ok(true)
}

/// The mount points of /proc/self/mountinfo: its fifth field, where the kernel writes a space,
/// tab, newline or backslash as an octal escape (`\040`).
pub fn mount_points(mountinfo: &str) -> BTreeSet<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|f| PathBuf::from(OsStr::from_bytes(&unescape(f))))
        .collect()
}

fn unescape(field: &str) -> Vec<u8> {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = field
            .get(i + 1..i + 4)
            .filter(|_| b[i] == b'\\')
            .and_then(|digits| u8::from_str_radix(digits, 8).ok());
        match octal {
            Some(byte) => {
                out.push(byte);
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    out
}

/// Every entry of the trees whose owner or group the remap changes. Never follows a symlink
/// (lstat; a link is re-owned itself), never enters a mount point inside a tree (a host
/// directory or file mounted there is the host's, even on the same filesystem) nor another
/// filesystem. Contents are never read.
pub fn plan(trees: &[&Path], r: &Remap, mounts: &BTreeSet<PathBuf>) -> Vec<Change> {
    let mut walk = Walk {
        remap: r,
        mounts,
        budget: MAX_ENTRIES,
        out: Vec::new(),
    };
    for root in trees {
        let Ok(meta) = std::fs::symlink_metadata(root) else {
            continue;
        };
        walk.consider(root, &meta);
        if meta.is_dir() && !walk.tree(root, meta.dev()) {
            warn!(
                "stopped after {MAX_ENTRIES} files in the state volumes: files further on keep \
                 their old owners; re-own them with `find {} -xdev -uid OLD -exec chown -h NEW {{}} +`",
                root.display()
            );
            break;
        }
    }
    walk.out
}

struct Walk<'a> {
    remap: &'a Remap,
    mounts: &'a BTreeSet<PathBuf>,
    /// Entries left to look at (MAX_ENTRIES for all the trees).
    budget: usize,
    out: Vec<Change>,
}

impl Walk<'_> {
    /// False when the budget ran out.
    fn tree(&mut self, root: &Path, dev: u64) -> bool {
        let mut dirs = vec![root.to_path_buf()];
        while let Some(dir) = dirs.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) => {
                    warn!(dir = %dir.display(), "cannot list it ({e}): its files keep their owners");
                    continue;
                }
            };
            for entry in entries.flatten() {
                if self.budget == 0 {
                    return false;
                }
                self.budget -= 1;
                let path = entry.path();
                if self.mounts.contains(&path) {
                    debug!(path = %path.display(), "mounted from elsewhere: left alone");
                    continue;
                }
                let Ok(meta) = std::fs::symlink_metadata(&path) else {
                    continue;
                };
                self.consider(&path, &meta);
                if meta.is_dir() && meta.dev() == dev {
                    dirs.push(path);
                }
            }
        }
        true
    }

    fn consider(&mut self, path: &Path, meta: &std::fs::Metadata) {
        let Some((uid, gid)) = decide(self.remap, meta.uid(), meta.gid()) else {
            return;
        };
        if path.as_os_str().as_bytes().contains(&b'\n') {
            warn!(
                path = ?path,
                "a newline in the name: not re-owned; run `chown -h {uid}:{gid}` on it yourself"
            );
            return;
        }
        self.out.push(Change {
            path: path.to_path_buf(),
            uid,
            gid,
        });
    }
}

/// lchown each file; gives how many failed (each one logged with its fix). A file gone since is
/// not a failure: nothing is left to re-own.
fn apply(changes: &[Change]) -> usize {
    let mut failed = 0;
    for c in changes {
        match std::os::unix::fs::lchown(&c.path, Some(c.uid), Some(c.gid)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                failed += 1;
                warn!(
                    "cannot re-own {} to {}:{} ({e}): qemu may be refused it; fix it with \
                     `podman exec CONTAINER chown -h {}:{} '{}'` (rootless: the numbers must be \
                     mapped in the container's user namespace)",
                    c.path.display(),
                    c.uid,
                    c.gid,
                    c.uid,
                    c.gid,
                    c.path.display()
                );
            }
        }
    }
    failed
}

/// Written beside, synced and renamed: a crash leaves the old file or the new one.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::create_dir_all(dir)
        .and_then(|_| {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()
        })
        .and_then(|_| std::fs::rename(&tmp, path))
        .with_context(|| {
            format!(
                "cannot write {} (is {} full?)",
                path.display(),
                dir.display()
            )
        })
}

fn remove(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove {}", path.display()))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBIAN_PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
        libvirt-qemu:x:64055:104:Libvirt Qemu,,,:/var/lib/libvirt:/usr/sbin/nologin\n";
    const DEBIAN_GROUP: &str =
        "root:x:0:\nlibvirt:x:103:\nkvm:x:104:\nlibvirt-qemu:x:64055:libvirt-qemu\n";
    const DEBIAN_CONF: &str = "#user = \"libvirt-qemu\"\n#group = \"libvirt-qemu\"\n";
    const FEDORA_PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
        qemu:x:107:107:qemu user:/:/sbin/nologin\n";
    const FEDORA_GROUP: &str = "root:x:0:\nkvm:x:36:qemu\nqemu:x:107:\nlibvirt:x:986:\n";

    fn debian() -> Identity {
        image_identity(DEBIAN_PASSWD, DEBIAN_GROUP, DEBIAN_CONF).0
    }

    fn fedora() -> Identity {
        image_identity(FEDORA_PASSWD, FEDORA_GROUP, "").0
    }

    #[test]
    fn debian_identity_is_qemus_user_and_named_group() {
        let (id, notes) = image_identity(DEBIAN_PASSWD, DEBIAN_GROUP, DEBIAN_CONF);
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(
            record_text(&id).lines().skip(2).collect::<Vec<_>>(),
            [
                "user qemu libvirt-qemu 64055",
                "group qemu libvirt-qemu 64055",
                "group libvirt libvirt 103",
                "group kvm kvm 104",
            ]
        );
        assert_eq!(parse_record(&record_text(&id)), id);
    }

    #[test]
    fn qemu_conf_user_and_group_win_by_name_or_number() {
        let conf = "user = \"+0\"\n  group = \"kvm\" # qemu's group\n";
        let id = image_identity(DEBIAN_PASSWD, DEBIAN_GROUP, conf).0;
        assert_eq!(id.get(Kind::User, "qemu").unwrap().name, "root");
        assert_eq!(id.get(Kind::Group, "qemu").unwrap().id, 104);
        let (id, notes) = image_identity(FEDORA_PASSWD, FEDORA_GROUP, "user = \"nobody\"\n");
        assert_eq!(id.get(Kind::User, "qemu").unwrap().id, 107);
        assert!(notes[0].contains("user = \"nobody\""), "{notes:?}");
    }

    #[test]
    fn without_a_group_of_its_name_qemu_gets_its_primary_group() {
        let passwd = "qemu:x:36:34:qemu:/:/sbin/nologin\n";
        let id = image_identity(passwd, "kvm:x:34:qemu\n", "").0;
        let group = id.get(Kind::Group, "qemu").unwrap();
        assert_eq!((group.name.as_str(), group.id), ("kvm", 34));
    }

    #[test]
    fn debian_to_fedora_moves_qemu_kvm_and_libvirt() {
        let r = remap(&debian(), &fedora());
        assert_eq!(r.uids, BTreeMap::from([(64055, 107)]));
        assert_eq!(
            r.gids,
            BTreeMap::from([(64055, 107), (103, 986), (104, 36)])
        );
        assert_eq!(decide(&r, 64055, 64055), Some((107, 107)));
        assert_eq!(
            summary(&debian(), &fedora(), &r),
            "libvirt-qemu 64055:64055, libvirt 103, kvm 104; now qemu 107:107, libvirt 986, kvm 36"
        );
    }

    #[test]
    fn bookworm_to_trixie_with_only_a_group_moved() {
        let trixie = image_identity(
            DEBIAN_PASSWD,
            &DEBIAN_GROUP.replace("kvm:x:104:", "kvm:x:993:"),
            "",
        )
        .0;
        let r = remap(&debian(), &trixie);
        assert!(r.uids.is_empty());
        assert_eq!(r.gids, BTreeMap::from([(104, 993)]));
        assert_eq!(decide(&r, 64055, 104), Some((64055, 993)));
        assert_eq!(decide(&r, 64055, 64055), None);
        assert_eq!(summary(&debian(), &trixie, &r), "kvm 104; now kvm 993");
    }

    #[test]
    fn unchanged_identity_gives_an_empty_remap() {
        assert!(remap(&debian(), &debian()).is_empty());
        assert!(remap(&Identity::default(), &debian()).is_empty());
    }

    #[test]
    fn unknown_record_lines_are_skipped() {
        let text = "# comment\nuser qemu libvirt-qemu 64055\nswtpm tss 59 59\n\
                    group kvm kvm notanumber\ngroup kvm kvm 104 extra\ngroup libvirt libvirt 103\n\
                    chown 107 107 /var/lib/libvirt/qemu\n\n";
        let id = parse_record(text);
        assert_eq!(id.0.len(), 2, "{id:?}");
        assert_eq!(id.get(Kind::Group, "libvirt").unwrap().id, 103);
        assert!(id.get(Kind::Group, "kvm").is_none());
    }

    #[test]
    fn a_file_owned_by_neither_role_is_untouched() {
        let r = remap(&debian(), &fedora());
        assert_eq!(decide(&r, 0, 0), None);
        assert_eq!(decide(&r, 1000, 1000), None);
        assert_eq!(
            decide(&r, 0, 104),
            Some((0, 36)),
            "root's file in group kvm"
        );
    }

    #[test]
    fn root_is_never_moved() {
        let old = image_identity(DEBIAN_PASSWD, DEBIAN_GROUP, "user = \"root\"\n").0;
        let r = remap(&old, &debian());
        assert!(r.uids.is_empty(), "{r:?}");
        assert_eq!(decide(&r, 0, 0), None);
    }

    #[test]
    fn a_shared_old_number_follows_the_first_role() {
        // Alpine: qemu 36 in group kvm 34 (no qemu group here); Fedora: kvm is 36, qemu 107.
        let alpine = image_identity("qemu:x:36:34::/:/sbin/nologin\n", "kvm:x:34:\n", "").0;
        let r = remap(&alpine, &fedora());
        assert_eq!(r.gids, BTreeMap::from([(34, 107)]), "qemu's group first");
        assert_eq!(r.uids, BTreeMap::from([(36, 107)]));
        let alpine = image_identity(
            "qemu:x:36:34::/:/sbin/nologin\n",
            "kvm:x:34:\nqemu:x:36:\n",
            "",
        )
        .0;
        // A new number that is another's old one: why changes are journaled, not redone.
        let r = remap(&alpine, &fedora());
        assert_eq!(r.gids, BTreeMap::from([(36, 107), (34, 36)]));
        assert_eq!(decide(&r, 36, 34), Some((107, 36)));
    }

    #[test]
    fn journal_round_trips_with_odd_paths() {
        let changes = vec![
            Change {
                path: "/var/lib/libvirt/qemu".into(),
                uid: 107,
                gid: 107,
            },
            Change {
                path: PathBuf::from(OsStr::from_bytes(b"/var/lib/libvirt/images/a b\xff.qcow2")),
                uid: 107,
                gid: 36,
            },
        ];
        let text = journal_text(&fedora(), &changes);
        assert_eq!(parse_changes(&text), changes);
        assert_eq!(parse_record(&String::from_utf8_lossy(&text)), fedora());
    }

    #[test]
    fn plan_finds_files_by_owner_without_following_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let me = (
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        );
        std::fs::create_dir_all(dir.path().join("qemu/channel")).unwrap();
        std::fs::write(dir.path().join("qemu/channel/f"), "x").unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("not-ours"), "x").unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();
        let r = Remap {
            uids: BTreeMap::from([(me.0, 4242)]),
            gids: BTreeMap::new(),
            moved: Vec::new(),
        };
        let mounted = dir.path().join("mounted");
        std::fs::create_dir(&mounted).unwrap();
        std::fs::write(mounted.join("host-file"), "x").unwrap();
        let mounts = BTreeSet::from([mounted]);
        let mut paths: Vec<PathBuf> = plan(&[dir.path()], &r, &mounts)
            .into_iter()
            .inspect(|c| assert_eq!((c.uid, c.gid), (4242, me.1)))
            .map(|c| c.path)
            .collect();
        paths.sort();
        let mut want = vec![dir.path().to_path_buf()];
        for p in ["link", "qemu", "qemu/channel", "qemu/channel/f"] {
            want.push(dir.path().join(p));
        }
        assert_eq!(
            paths, want,
            "the link itself, nothing behind it nor in the mount"
        );
    }

    #[test]
    fn settle_records_first_then_does_nothing_when_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let record = dir.path().join("owners");
        let moving = dir.path().join("owners.moving");
        settle(&debian(), &record, &moving, &[dir.path()], &BTreeSet::new()).unwrap();
        assert_eq!(
            parse_record(&std::fs::read_to_string(&record).unwrap()),
            debian()
        );
        settle(&debian(), &record, &moving, &[dir.path()], &BTreeSet::new()).unwrap();
        assert!(!moving.exists());
    }

    #[test]
    fn an_interrupted_reowning_is_finished_from_its_journal() {
        let dir = tempfile::tempdir().unwrap();
        let record = dir.path().join("owners");
        let moving = dir.path().join("owners.moving");
        let file = dir.path().join("disk.qcow2");
        std::fs::write(&file, "x").unwrap();
        std::fs::write(&record, record_text(&debian())).unwrap();
        // Owners as they are (what a non-root test may chown to), and a file gone since.
        let me = (
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        );
        let changes = [file.clone(), dir.path().join("gone")].map(|path| Change {
            path,
            uid: me.0,
            gid: me.1,
        });
        std::fs::write(&moving, journal_text(&fedora(), &changes)).unwrap();
        settle(&fedora(), &record, &moving, &[dir.path()], &BTreeSet::new()).unwrap();
        assert!(!moving.exists(), "the journal is done");
        assert_eq!(
            parse_record(&std::fs::read_to_string(&record).unwrap()),
            fedora()
        );
    }

    #[test]
    fn mount_points_are_read_with_their_escapes() {
        let info = "22 27 0:21 / /proc rw,relatime - proc proc rw\n\
                    301 290 8:1 /srv/my\\040images /var/lib/libvirt/images rw - ext4 /dev/sda1 rw\n";
        let mounts = mount_points(info);
        assert!(
            mounts.contains(Path::new("/var/lib/libvirt/images")),
            "{mounts:?}"
        );
        assert!(mounts.contains(Path::new("/proc")));
        assert_eq!(unescape("/a\\040b\\134c\\x"), b"/a b\\c\\x");
    }
}
