//! What the container needs before any daemon starts: libvirt settings for life in a container,
//! the directories libvirt expects, /dev/kvm usable by qemu, and no stale daemon sockets.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use anyhow::{bail, Context, Result};
use tracing::{info, warn};

use crate::libvirt::conf::{self, Setting};
use crate::libvirt::sockets::{self, Verdict};

use super::settings::{Auth, Settings, SocketAccess};

/// Directories libvirt, qemu and virtlogd expect to exist (a fresh volume may lack them; a
/// missing /var/log/libvirt/qemu makes virtlogd fail with "Unable to open file").
/// (The mount points of `WRITABLE` are made first.)
const DIRS: &[&str] = &[
    "/var/lib/libvirt/images",
    "/var/lib/libvirt/qemu/nvram",
    "/var/lib/libvirt/qemu/save",
    "/var/lib/libvirt/qemu/snapshot",
    "/var/log/libvirt/qemu",
    "/var/cache/libvirt/qemu",
];

/// Mount points the daemons write to: a read-only one is found here, with the fix, rather than
/// by each daemon failing on its own.
const WRITABLE: &[&str] = &["/run/libvirt", "/var/lib/libvirt", "/var/log/libvirt"];

pub fn directories() -> Result<()> {
    // The mounts first: an empty read-only one would otherwise fail below on its first
    // subdirectory, with the bare errno and not the fix.
    for dir in WRITABLE.iter().chain(DIRS) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {dir}"))?;
        if WRITABLE.contains(dir) {
            writable(Path::new(dir))?;
        }
    }
    Ok(())
}

fn writable(dir: &Path) -> Result<()> {
    let probe = dir.join(format!(".virtpod-probe-{}", std::process::id()));
    match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) if e.raw_os_error() == Some(nix::libc::EROFS) => bail!(
            "{} is read-only: libvirt's daemons write there (sockets, state, logs); mount it \
             read-write (for example `-v DIR:{}` without `:ro`)",
            dir.display(),
            dir.display()
        ),
        Err(e) => Err(e).with_context(|| format!("{} is not writable", dir.display())),
    }
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
/// virtqemud.conf, virtproxyd.conf, …). Access is the socket's owner and permissions, then
/// `auth`: nothing more by default (polkit does not run in the container), a password with SASL
/// (SCRAM-SHA-256, see sasl.rs), or the host's polkit (polkit.rs). The group is given by number
/// (`+GID`, libvirt's syntax), as the host sees it: a group *name* of the image is some
/// unrelated group on the host.
pub fn daemon_settings(access: &SocketAccess, auth: Auth) -> Vec<Setting> {
    let auth = format!("\"{}\"", auth.conf());
    let mut s = Vec::new();
    if let Some(gid) = access.gid {
        s.push(Setting::new("unix_sock_group", format!("\"+{gid}\"")));
    }
    s.extend([
        Setting::new("unix_sock_rw_perms", format!("\"{:04o}\"", access.rw_perms)),
        Setting::new("unix_sock_ro_perms", format!("\"{:04o}\"", access.ro_perms)),
        Setting::new("auth_unix_rw", auth.clone()),
        Setting::new("auth_unix_ro", auth),
        Setting::new("log_outputs", "\"3:stderr\""),
    ]);
    s
}

/// The same access for a socket someone else made: systemd's socket units in the systemd
/// variant, where libvirtd does not apply its own `unix_sock_*` settings.
pub fn socket_access(path: &Path, read_only: bool, access: &SocketAccess) -> Result<()> {
    let perms = if read_only {
        access.ro_perms
    } else {
        access.rw_perms
    };
    let gid = access.gid.map(nix::unistd::Gid::from_raw);
    nix::unistd::chown(path, None, gid)
        .with_context(|| format!("giving {} to gid {:?}", path.display(), access.gid))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(perms))
        .with_context(|| format!("setting {} to {perms:04o}", path.display()))?;
    info!(socket = %path.display(), access = access.describe(), "socket access");
    Ok(())
}

pub fn write_config(daemons: &[&str], settings: &Settings) -> Result<()> {
    let cgroups = cgroups_writable();
    apply("/etc/libvirt/qemu.conf", &qemu_settings(cgroups))?;
    if let Some(credentials) = &settings.sasl {
        let users = super::sasl::configure(credentials)?;
        info!(users, file = %credentials.display(), "SASL (SCRAM-SHA-256) on libvirt's sockets");
    } else {
        super::sasl::unconfigure()?;
    }
    let settings = daemon_settings(&settings.socket, settings.auth());
    for daemon in daemons {
        apply(&format!("/etc/libvirt/{daemon}.conf"), &settings)?;
    }
    Ok(())
}

fn apply(path: &str, settings: &[Setting]) -> Result<()> {
    let applied = conf::apply(Path::new(path), settings)?;
    for key in &applied.user_kept {
        info!(
            file = path,
            key, "keeping the setting made in the file itself"
        );
    }
    if applied.used_as_is {
        warn!(
            file = path,
            not_set = ?applied.missing,
            "this file is mounted from outside (a bind mount): used as it is, virtpod's settings not added; set the keys listed yourself where you need them"
        );
    }
    Ok(())
}

/// Capabilities libvirt needs to start qemu as its own user with fewer privileges, by number
/// and name: without them every guest (and even libvirt's probe of qemu) fails with "cannot apply
/// process capabilities -5" or "cannot change to '64055:64055' user" deep in libvirt's log.
const NEEDED_CAPS: &[(u32, &str, &str)] = &[
    (6, "SETGID", "to give qemu its group"),
    (7, "SETUID", "to run qemu as its own user"),
    (8, "SETPCAP", "to drop qemu's capabilities (libcap-ng)"),
];

/// The effective capability set of a /proc/PID/status text (`CapEff:` in hex).
pub fn effective_caps(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("CapEff:"))?;
    u64::from_str_radix(line["CapEff:".len()..].trim(), 16).ok()
}

/// Refuse to start libvirt without what it needs to start any guest, naming each missing
/// capability and the fix.
pub fn capabilities(status: &str) -> Result<()> {
    let Some(caps) = effective_caps(status) else {
        return Ok(());
    };
    let missing: Vec<_> = NEEDED_CAPS
        .iter()
        .filter(|(bit, _, _)| caps & (1 << bit) == 0)
        .collect();
    if !missing.is_empty() {
        let said: Vec<String> = missing
            .iter()
            .map(|(_, name, why)| format!("CAP_{name} ({why})"))
            .collect();
        let names: Vec<&str> = missing.iter().map(|(_, name, _)| *name).collect();
        bail!(
            "the container lacks {}: libvirt could start no guest (\"cannot apply process capabilities\"); \
             podman gives these by default, so add them back: --cap-add {} (or remove the --cap-drop, \
             or restore containers.conf's default_capabilities)",
            said.join(", "),
            names.join(",")
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
    fn missing_capabilities_are_named_with_the_fix() {
        // podman's defaults: CHOWN DAC_OVERRIDE FOWNER FSETID KILL NET_BIND_SERVICE SETFCAP SETGID
        // SETPCAP SETUID SYS_CHROOT.
        let defaults = "Name:\tx\nCapEff:\t00000000800405fb\n";
        assert!(capabilities(defaults).is_ok());
        let without_setpcap = "CapEff:\t00000000800404fb\n";
        let e = capabilities(without_setpcap).unwrap_err().to_string();
        assert!(
            e.contains("lacks CAP_SETPCAP (to drop qemu's capabilities"),
            "{e}"
        );
        assert!(e.contains("--cap-add SETPCAP"), "{e}");
        let none = "CapEff:\t0000000000000000\n";
        let e = capabilities(none).unwrap_err().to_string();
        assert!(e.contains("--cap-add SETGID,SETUID,SETPCAP"), "{e}");
        assert!(capabilities("no such line").is_ok());
    }

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
    fn socket_settings_follow_the_access() {
        let s = daemon_settings(
            &SocketAccess {
                gid: None,
                rw_perms: 0o700,
                ro_perms: 0o700,
            },
            Auth::None,
        );
        assert!(s.contains(&Setting::new("auth_unix_rw", "\"none\"")));
        assert!(!s.iter().any(|s| s.key == "unix_sock_group"));
        assert!(s.contains(&Setting::new("unix_sock_rw_perms", "\"0700\"")));
        assert!(s.contains(&Setting::new("unix_sock_ro_perms", "\"0700\"")));
        let s = daemon_settings(
            &SocketAccess {
                gid: Some(4242),
                rw_perms: 0o770,
                ro_perms: 0o777,
            },
            Auth::Sasl,
        );
        assert!(s.contains(&Setting::new("auth_unix_rw", "\"sasl\"")));
        assert!(s.contains(&Setting::new("auth_unix_ro", "\"sasl\"")));
        assert!(s.contains(&Setting::new("unix_sock_group", "\"+4242\"")));
        assert!(s.contains(&Setting::new("unix_sock_rw_perms", "\"0770\"")));
        assert!(s.contains(&Setting::new("unix_sock_ro_perms", "\"0777\"")));
    }
}
