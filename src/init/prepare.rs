//! What the container needs before any daemon starts: libvirt settings for life in a container,
//! the directories libvirt expects, /dev/kvm usable by qemu, and no stale daemon sockets.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use anyhow::{bail, Context, Result};
use tracing::{info, warn};

use crate::libvirt::conf::{self, Setting};
use crate::libvirt::sockets::{self, Verdict};

/// Directories libvirt, qemu and virtlogd expect to exist (a fresh volume may lack them; a
/// missing /var/log/libvirt/qemu makes virtlogd fail with "Unable to open file").
const DIRS: &[&str] = &[
    "/run/libvirt",
    "/var/lib/libvirt/images",
    "/var/lib/libvirt/qemu/nvram",
    "/var/lib/libvirt/qemu/save",
    "/var/lib/libvirt/qemu/snapshot",
    "/var/log/libvirt/qemu",
    "/var/cache/libvirt/qemu",
];

pub fn directories() -> Result<()> {
    for dir in DIRS {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {dir}"))?;
    }
    Ok(())
}

/// Settings for qemu.conf. `namespaces = []`: a private /dev per guest needs mount rights a
/// container lacks. `remember_owner = 0`: remembering owners needs trusted.* xattrs, refused in
/// a container ("Unable to set XATTR trusted.libvirt.security.dac"). `cgroup_controllers = [ ]`
/// where the container cannot create cgroups.
pub fn qemu_settings(cgroups_writable: bool) -> Vec<Setting> {
    let mut s = vec![
        Setting::new("namespaces", "[ ]"),
        Setting::new("remember_owner", "0"),
    ];
    if !cgroups_writable {
        s.push(Setting::new("cgroup_controllers", "[ ]"));
    }
    s
}

/// Settings for the conf file of each daemon that serves a client socket (libvirtd.conf,
/// virtqemud.conf, virtproxyd.conf, …), from `VIRTPOD_SOCKET_GROUP` (default `libvirt`) and
/// `VIRTPOD_SOCKET_PERMS` (default `0770`). Access is the socket's permissions: polkit does not
/// run in the container.
pub fn daemon_settings(env: &BTreeMap<String, String>, groups: &str) -> Result<Vec<Setting>> {
    let group = env
        .get("VIRTPOD_SOCKET_GROUP")
        .map(String::as_str)
        .unwrap_or("libvirt");
    let perms = env
        .get("VIRTPOD_SOCKET_PERMS")
        .map(String::as_str)
        .unwrap_or("0770");
    if !groups.lines().any(|l| l.split(':').next() == Some(group)) {
        bail!("VIRTPOD_SOCKET_GROUP={group:?}: no such group in the image's /etc/group");
    }
    let octal = (3..=4).contains(&perms.len()) && perms.chars().all(|c| ('0'..='7').contains(&c));
    if !octal {
        bail!("VIRTPOD_SOCKET_PERMS={perms:?}: expected octal permissions such as 0770 or 0777");
    }
    Ok(vec![
        Setting::new("unix_sock_group", format!("\"{group}\"")),
        Setting::new("unix_sock_rw_perms", format!("\"{perms}\"")),
        Setting::new("unix_sock_ro_perms", "\"0777\""),
        Setting::new("auth_unix_rw", "\"none\""),
        Setting::new("auth_unix_ro", "\"none\""),
        Setting::new("log_outputs", "\"3:stderr\""),
    ])
}

pub fn write_config(daemons: &[&str], env: &BTreeMap<String, String>) -> Result<()> {
    let cgroups = cgroups_writable();
    apply("/etc/libvirt/qemu.conf", &qemu_settings(cgroups))?;
    let groups = std::fs::read_to_string("/etc/group").context("reading /etc/group")?;
    let settings = daemon_settings(env, &groups)?;
    for daemon in daemons {
        apply(&format!("/etc/libvirt/{daemon}.conf"), &settings)?;
    }
    Ok(())
}

fn apply(path: &str, settings: &[Setting]) -> Result<()> {
    for key in conf::apply(Path::new(path), settings)? {
        info!(
            file = path,
            key, "keeping the setting made in the file itself"
        );
    }
    Ok(())
}

/// Whether this container may create cgroups (rootful `--privileged`, or a delegated cgroup v2
/// tree). Probed by creating and removing one.
fn cgroups_writable() -> bool {
    let base = Path::new("/sys/fs/cgroup");
    let parent = if base.join("cgroup.controllers").exists() {
        base.to_path_buf()
    } else {
        base.join("memory")
    };
    let probe = parent.join(format!("virtpod-probe-{}", std::process::id()));
    let ok = std::fs::create_dir(&probe).is_ok();
    if ok {
        let _ = std::fs::remove_dir(&probe);
    }
    info!(writable = ok, "cgroups probe");
    ok
}

/// qemu runs as an unprivileged user and opens /dev/kvm through the `kvm` group. `podman run
/// --device /dev/kvm` copies the host's owner and mode, often root:root 0600; give the node to the
/// image's kvm group. (The virtpod OCI hook creates it right in the first place.)
pub fn kvm_device(groups: &str) {
    let dev = Path::new("/dev/kvm");
    let Ok(meta) = std::fs::metadata(dev) else {
        info!("no /dev/kvm in this container: guests can only use type='qemu' (TCG)");
        return;
    };
    let Some(gid) = groups
        .lines()
        .find(|l| l.split(':').next() == Some("kvm"))
        .and_then(|l| l.split(':').nth(2))
        .and_then(|g| g.parse::<u32>().ok())
    else {
        warn!("the image has no kvm group; /dev/kvm left as it is");
        return;
    };
    if meta.gid() == gid && meta.mode() & 0o060 == 0o060 {
        return;
    }
    let result = nix::unistd::chown(dev, None, Some(nix::unistd::Gid::from_raw(gid)))
        .map_err(std::io::Error::from)
        .and_then(|_| std::fs::set_permissions(dev, std::fs::Permissions::from_mode(0o660)));
    match result {
        Ok(()) => info!(
            gid,
            "gave /dev/kvm to group kvm, mode 0660, so qemu can open it"
        ),
        Err(e) => warn!(error = %e, "cannot give /dev/kvm to group kvm; qemu may fail to open it"),
    }
}

pub fn stale_sockets() -> Result<()> {
    for verdict in
        sockets::clean_stale(Path::new("/run/libvirt")).context("cleaning /run/libvirt")?
    {
        match verdict {
            Verdict::Removed(p) => {
                info!(socket = %p.display(), "removed a stale socket (connection refused)")
            }
            Verdict::Live(p) => {
                warn!(socket = %p.display(), "socket accepts connections: another daemon is using this /run/libvirt")
            }
            Verdict::Kept(p, why) => warn!(socket = %p.display(), why, "left a socket alone"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_controllers_only_when_unusable() {
        assert!(qemu_settings(false)
            .iter()
            .any(|s| s.key == "cgroup_controllers"));
        assert!(!qemu_settings(true)
            .iter()
            .any(|s| s.key == "cgroup_controllers"));
    }

    #[test]
    fn socket_settings_validate_their_inputs() {
        let groups = "root:x:0:\nlibvirt:x:103:\n";
        let env = |k: &str, v: &str| BTreeMap::from([(k.to_string(), v.to_string())]);
        let s = daemon_settings(&BTreeMap::new(), groups).unwrap();
        assert!(s.contains(&Setting::new("unix_sock_group", "\"libvirt\"")));
        let s = daemon_settings(&env("VIRTPOD_SOCKET_PERMS", "0777"), groups).unwrap();
        assert!(s.contains(&Setting::new("unix_sock_rw_perms", "\"0777\"")));
        let e = daemon_settings(&env("VIRTPOD_SOCKET_GROUP", "wheel"), groups).unwrap_err();
        assert!(e.to_string().contains("VIRTPOD_SOCKET_GROUP"));
        assert!(daemon_settings(&env("VIRTPOD_SOCKET_PERMS", "rw"), groups).is_err());
    }
}
