//! Names for the host's users in the container. libvirtd names every client of its socket by
//! the uid and gid the kernel reports for it, and refuses the connection when the container's
//! /etc/passwd or /etc/group has no entry for them: `Failed to find user record for uid '1000'`.
//! Rootful, those ids are the host's, so a host user let in by `VIRTPOD_SOCKET_GID` or polkit
//! needs a name in the container, which the image's files do not have (docs/troubleshooting.md
//! item 13). The front doors bind the host's files read-only under /run/host/etc; at every start
//! the entries whose id the image lacks are added to the container's files. They are names
//! only: no password, no home, no shell, so nobody logs into the container with them.
//!
//! `merge` is pure; `add_host_accounts` is the I/O edge.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, Result};
use tracing::{info, warn};

/// Where the front doors bind the host's files (read-only), as toolbox and distrobox do.
pub const HOST_PASSWD: &str = "/run/host/etc/passwd";
pub const HOST_GROUP: &str = "/run/host/etc/group";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum File {
    Passwd,
    Group,
}

/// `container`'s text with the entries of `host` whose id the container lacks appended, and the
/// names added. A host name that the container uses for another id is added as `host-NAME`
/// (skipped if that is taken too). Comments, NIS lines (`+`, `-`) and malformed lines are
/// skipped.
pub fn merge(container: &str, host: &str, file: File) -> (String, Vec<String>) {
    let entries = |text: &str| -> Vec<Vec<String>> {
        text.lines()
            .filter(|l| !l.is_empty() && !l.starts_with(['#', '+', '-']))
            .map(|l| l.split(':').map(str::to_string).collect::<Vec<_>>())
            .filter(|f| f.len() == fields(file) && !f[0].is_empty() && f[2].parse::<u32>().is_ok())
            .collect()
    };
    let mine = entries(container);
    let mut ids: BTreeSet<String> = mine.iter().map(|f| f[2].clone()).collect();
    let mut names: BTreeSet<String> = mine.iter().map(|f| f[0].clone()).collect();
    let mut text = container.to_string();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    let mut added = Vec::new();
    for f in entries(host) {
        if ids.contains(&f[2]) {
            continue;
        }
        let name = if names.contains(&f[0]) {
            format!("host-{}", f[0])
        } else {
            f[0].clone()
        };
        if names.contains(&name) {
            continue;
        }
        let line = match file {
            File::Passwd => format!(
                "{name}:*:{}:{}:{}:/nonexistent:/usr/sbin/nologin",
                f[2], f[3], f[4]
            ),
            File::Group => format!("{name}:*:{}:", f[2]),
        };
        text.push_str(&line);
        text.push('\n');
        ids.insert(f[2].clone());
        names.insert(name.clone());
        added.push(name);
    }
    (text, added)
}

fn fields(file: File) -> usize {
    match file {
        File::Passwd => 7,
        File::Group => 4,
    }
}

/// Adds the host's accounts from /run/host/etc to /etc/passwd and /etc/group. Without the
/// host's files, `needed` (the socket is open to host users other than root) makes it a warning
/// that names the binds: those users would be refused with libvirt's bare "Failed to find user
/// record".
pub fn add_host_accounts(needed: bool) -> Result<()> {
    let mut missing = Vec::new();
    for (host, mine, file) in [
        (HOST_PASSWD, "/etc/passwd", File::Passwd),
        (HOST_GROUP, "/etc/group", File::Group),
    ] {
        let Ok(host_text) = std::fs::read_to_string(host) else {
            missing.push(host);
            continue;
        };
        let container = std::fs::read_to_string(mine).with_context(|| format!("reading {mine}"))?;
        let (text, added) = merge(&container, &host_text, file);
        if added.is_empty() {
            continue;
        }
        replace(Path::new(mine), &text)?;
        info!(
            file = mine,
            from = host,
            count = added.len(),
            "added the host's accounts that the image lacks, so libvirt can name its clients"
        );
    }
    if !missing.is_empty() && needed {
        let binds: Vec<String> = missing
            .iter()
            .map(|m| format!("-v {}:{m}:ro", m.trim_start_matches("/run/host")))
            .collect();
        warn!(
            "the socket is open to host users, but the host's accounts are not all in the container ({} missing): a user whose uid or gid the image lacks gets \"Failed to find user record\" (or \"group record\") from libvirt; bind them: {}",
            missing.join(", "),
            binds.join(" ")
        );
    }
    Ok(())
}

/// Writes `text` to `path` by rename, so a start killed midway never leaves half a passwd.
fn replace(path: &Path, text: &str) -> Result<()> {
    let mode = std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o644);
    let tmp = path.with_extension("virtpod-new");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting {} to {mode:04o}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| {
        let _ = std::fs::remove_file(&tmp);
        format!(
            "replacing {} (is it mounted from outside? then add the host's accounts to it yourself)",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const IMAGE_PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
        libvirt-qemu:x:64055:104:Libvirt Qemu,,,:/var/lib/libvirt:/usr/sbin/nologin\n\
        nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
    const HOST_PASSWD_TEXT: &str = "root:x:0:0:root:/root:/bin/bash\n\
        # a comment\n\
        alice:x:1000:1000:Alice,,,:/home/alice:/bin/bash\n\
        libvirt-qemu:x:64056:994::/var/lib/libvirt:/usr/sbin/nologin\n\
        +nis\n\
        broken:x:notanumber:1::/:/bin/sh\n\
        nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";

    #[test]
    fn host_users_the_image_lacks_are_added_as_names_only() {
        let (text, added) = merge(IMAGE_PASSWD, HOST_PASSWD_TEXT, File::Passwd);
        assert_eq!(added, ["alice", "host-libvirt-qemu"]);
        assert!(
            text.starts_with(IMAGE_PASSWD),
            "the image's entries stay first and unchanged"
        );
        assert!(text.contains("\nalice:*:1000:1000:Alice,,,:/nonexistent:/usr/sbin/nologin\n"));
        assert!(text.contains("\nhost-libvirt-qemu:*:64056:994::/nonexistent:/usr/sbin/nologin\n"));
        assert!(!text.contains("broken") && !text.contains("+nis"));
    }

    #[test]
    fn a_second_start_adds_nothing() {
        let (once, _) = merge(IMAGE_PASSWD, HOST_PASSWD_TEXT, File::Passwd);
        let (twice, added) = merge(&once, HOST_PASSWD_TEXT, File::Passwd);
        assert_eq!(twice, once);
        assert!(added.is_empty());
    }

    #[test]
    fn host_groups_come_without_members() {
        let image = "root:x:0:\nkvm:x:104:libvirt-qemu\nlibvirt:x:103:";
        let host = "root:x:0:\nkvm:x:994:\nalice:x:1000:\nlibvirt:x:995:alice,bob\n";
        let (text, added) = merge(image, host, File::Group);
        assert_eq!(added, ["host-kvm", "alice", "host-libvirt"]);
        assert_eq!(
            text,
            "root:x:0:\nkvm:x:104:libvirt-qemu\nlibvirt:x:103:\nhost-kvm:*:994:\nalice:*:1000:\nhost-libvirt:*:995:\n"
        );
    }

    #[test]
    fn a_name_taken_twice_is_skipped() {
        let image = "alice:x:5:\nhost-alice:x:6:\n";
        let (_, added) = merge(image, "alice:x:1000:\n", File::Group);
        assert!(added.is_empty());
    }
}
