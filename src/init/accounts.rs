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

/// What `merge` did: the text, the names added, and the host's entries it would not copy (each
/// said as a short reason with the start of the line).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Merged {
    pub text: String,
    pub added: Vec<String>,
    pub skipped: Vec<String>,
}

/// Whether useradd/groupadd would accept the entry (its fields split at ':'), and why not: a
/// name of at most 32 of [a-z0-9_-] (a leading letter or _, a trailing $ for machine accounts),
/// ids that are numbers below 4294967295, a comment without control characters and short. What
/// else the host's file holds is not copied: `podman exec` reads the container's passwd with a
/// line limit, and one 100,000-character name made every exec fail.
fn acceptable(f: &[String], file: File) -> Result<(), &'static str> {
    let name = f[0].as_str();
    let body = name.strip_suffix('$').unwrap_or(name);
    let mut chars = body.chars();
    let first_ok = matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_');
    if name.len() > 32
        || !first_ok
        || !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
    {
        return Err("not a name useradd accepts");
    }
    let id = |s: &str| s.parse::<u32>().ok().filter(|id| *id != u32::MAX);
    if id(&f[2]).is_none() || (file == File::Passwd && id(&f[3]).is_none()) {
        return Err("not an id useradd accepts");
    }
    if file == File::Passwd && (f[4].len() > 256 || f[4].chars().any(char::is_control)) {
        return Err("a comment too long or with control characters");
    }
    Ok(())
}

/// `container`'s text with the entries of `host` whose id the container lacks appended, and the
/// names added. A host name that the container uses for another id is added as `host-NAME`
/// (skipped if that is taken too). Comments, NIS lines (`+`, `-`) and malformed lines are
/// passed over; entries useradd would refuse are skipped and named.
pub fn merge(container: &str, host: &str, file: File) -> Merged {
    let entries = |text: &str| -> Vec<Vec<String>> {
        text.lines()
            .filter(|l| !l.is_empty() && !l.starts_with(['#', '+', '-']))
            .map(|l| l.split(':').map(str::to_string).collect::<Vec<_>>())
            .filter(|f| f.len() == fields(file) && !f[0].is_empty() && f[2].parse::<u32>().is_ok())
            .collect()
    };
    let mine = entries(container);
    let mut skipped = Vec::new();
    let host_entries: Vec<Vec<String>> = entries(host)
        .into_iter()
        .filter(|f| match acceptable(f, file) {
            Ok(()) => true,
            Err(why) => {
                let start: String = f[0].chars().take(24).collect();
                skipped.push(format!(
                    "{start:?}{}: {why}",
                    if f[0].chars().count() > 24 { "…" } else { "" }
                ));
                false
            }
        })
        .collect();
    let mut ids: BTreeSet<String> = mine.iter().map(|f| f[2].clone()).collect();
    let mut names: BTreeSet<String> = mine.iter().map(|f| f[0].clone()).collect();
    let mut text = container.to_string();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    let mut added = Vec::new();
    for f in host_entries {
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
    Merged {
        text,
        added,
        skipped,
    }
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
        // Capped like any file virtpod reads: a host file is other people's input.
        let Ok(host_text) =
            crate::files::read_config(Path::new(host), 16 * crate::files::CONFIG_LIMIT)
        else {
            missing.push(host);
            continue;
        };
        let container = std::fs::read_to_string(mine).with_context(|| format!("reading {mine}"))?;
        let Merged {
            text,
            added,
            skipped,
        } = merge(&container, &host_text, file);
        for s in &skipped {
            warn!(file = host, "the host's entry {s}: not copied into {mine}");
        }
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
        let Merged { text, added, .. } = merge(IMAGE_PASSWD, HOST_PASSWD_TEXT, File::Passwd);
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
        let once = merge(IMAGE_PASSWD, HOST_PASSWD_TEXT, File::Passwd).text;
        let twice = merge(&once, HOST_PASSWD_TEXT, File::Passwd);
        assert_eq!(twice.text, once);
        assert!(twice.added.is_empty());
    }

    #[test]
    fn host_groups_come_without_members() {
        let image = "root:x:0:\nkvm:x:104:libvirt-qemu\nlibvirt:x:103:";
        let host = "root:x:0:\nkvm:x:994:\nalice:x:1000:\nlibvirt:x:995:alice,bob\n";
        let Merged { text, added, .. } = merge(image, host, File::Group);
        assert_eq!(added, ["host-kvm", "alice", "host-libvirt"]);
        assert_eq!(
            text,
            "root:x:0:\nkvm:x:104:libvirt-qemu\nlibvirt:x:103:\nhost-kvm:*:994:\nalice:*:1000:\nhost-libvirt:*:995:\n"
        );
    }

    #[test]
    fn a_name_taken_twice_is_skipped() {
        let image = "alice:x:5:\nhost-alice:x:6:\n";
        assert!(merge(image, "alice:x:1000:\n", File::Group)
            .added
            .is_empty());
    }

    #[test]
    fn entries_useradd_would_refuse_are_skipped_and_named() {
        let long = "a".repeat(100_000);
        let host = format!(
            "{long}:x:2000:2000::/home/x:/bin/sh\n\
             Bob:x:2001:2001::/:/bin/sh\n\
             carol:x:4294967295:1::/:/bin/sh\n\
             dave:x:2003:2003:{}:/:/bin/sh\n\
             eve:x:2004:2004:Eve\u{1b}[2J:/:/bin/sh\n\
             machine$:x:2005:2005::/:/bin/false\n\
             fred:x:2006:2006:Fred:/:/bin/sh\n",
            "c".repeat(300)
        );
        let m = merge(IMAGE_PASSWD, &host, File::Passwd);
        assert_eq!(m.added, ["machine$", "fred"]);
        assert_eq!(m.skipped.len(), 5, "{:?}", m.skipped);
        assert!(
            m.skipped[0].starts_with("\"aaaaaaaaaaaaaaaaaaaaaaaa\"…: not a name"),
            "{:?}",
            m.skipped
        );
        assert!(m.text.lines().all(|l| l.len() < 400));
    }
}
