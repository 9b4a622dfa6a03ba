//! `VIRTPOD_AUTH=polkit`: the host's polkit decides who may use libvirt's sockets, as on a host
//! with libvirt installed (a desktop user gets polkit's password prompt or a rule of the host's;
//! `60-libvirt.rules` lets the `libvirt` group in). libvirtd asks polkit over the system bus
//! about the client's process by its id, so the container needs what a private one lacks
//! (docs/troubleshooting.md item 6, docs/modes.md):
//! - the host's PID namespace (`--pid=host`): polkit looks the client up in the host's /proc;
//! - the host's system bus (`-v /run/dbus/system_bus_socket:/run/dbus/system_bus_socket`);
//! - a rootful container: rootless, libvirt would see host users through the user namespace,
//!   as the overflow uid.
//!
//! The host needs libvirt's polkit actions (docs/modes.md says how to copy them from the
//! image). `check` decides from `Facts`; `facts` reads them.

use anyhow::{bail, Result};

pub const SYSTEM_BUS: &str = "/run/dbus/system_bus_socket";

/// What polkit needs, as found in the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// PID 1 of this PID namespace shares our mount namespace: the namespace is the
    /// container's own (virtpod init, systemd or `--init` is PID 1).
    pub own_pid_namespace: bool,
    /// The container runs in a user namespace (rootless).
    pub user_namespace: bool,
    /// Connecting to the system bus: `Err` with why not.
    pub bus: Result<(), String>,
}

pub fn check(facts: &Facts) -> Result<()> {
    if facts.user_namespace {
        bail!(
            "VIRTPOD_AUTH=polkit needs a rootful container: rootless, libvirt sees every host \
             user as the overflow uid, so polkit could not tell them apart; use the socket's \
             owner (the default) or VIRTPOD_SASL_CREDENTIALS"
        );
    }
    if facts.own_pid_namespace {
        bail!(
            "VIRTPOD_AUTH=polkit needs the host's PID namespace: libvirt asks the host's polkit \
             about each client by its process id, which is 0 in a private one; run the \
             container with --pid=host (the systemd variant cannot: its systemd must be PID 1)"
        );
    }
    if let Err(why) = &facts.bus {
        bail!(
            "VIRTPOD_AUTH=polkit asks the host's polkit over the host's system bus, but \
             {SYSTEM_BUS}: {why}; bind it: -v {SYSTEM_BUS}:{SYSTEM_BUS} (and is dbus running \
             on the host?)"
        );
    }
    Ok(())
}

/// PID 1 of this PID namespace is in this container (shares our mount namespace): virtpod init,
/// systemd, or `--init`'s catatonit. Not so with `--pid=host`.
pub fn own_pid_namespace() -> bool {
    let ns = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/mnt")).ok();
    // The host's PID 1 may not even be readable (ptrace rules): then it is not ours.
    std::process::id() == 1 || ns("1").is_some_and(|m| Some(m) == ns("self"))
}

pub fn facts() -> Facts {
    let own_pid_namespace = own_pid_namespace();
    let user_namespace = crate::userns::in_user_namespace("self");
    let bus = std::os::unix::net::UnixStream::connect(SYSTEM_BUS)
        .map(drop)
        .map_err(|e| e.to_string());
    Facts {
        own_pid_namespace,
        user_namespace,
        bus,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(own: bool, userns: bool, bus: Result<(), &str>) -> Facts {
        Facts {
            own_pid_namespace: own,
            user_namespace: userns,
            bus: bus.map_err(str::to_string),
        }
    }

    #[test]
    fn host_pid_and_bus_in_a_rootful_container_are_enough() {
        assert!(check(&facts(false, false, Ok(()))).is_ok());
    }

    #[test]
    fn each_missing_piece_is_named_with_its_fix() {
        let e = check(&facts(true, false, Ok(()))).unwrap_err().to_string();
        assert!(e.contains("--pid=host"), "{e}");
        let e = check(&facts(false, false, Err("No such file or directory")))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("No such file or directory")
                && e.contains("-v /run/dbus/system_bus_socket:/run/dbus/system_bus_socket"),
            "{e}"
        );
        let e = check(&facts(false, true, Ok(()))).unwrap_err().to_string();
        assert!(e.contains("rootful"), "{e}");
    }
}
