//! Host kernel modules a container asks for: `io.virtpod.module.NAME=true`. A container cannot
//! load a module itself (no CAP_SYS_MODULE, and it must not have it); libvirt inside needs some
//! that a host may not have loaded (vhost_net for fast guest networking, the NAT modules of its
//! default network, nbd for `qemu-nbd`). The precreate hook loads each with the host's
//! `modprobe` before the runtime creates the container, logs it, and never unloads it (other
//! containers or the host may use it by then). Only names on a fixed list that matters to
//! libvirt are loaded: a container's annotations must not choose arbitrary kernel code. The
//! list is `ALLOWED`; a host's administrator extends it with the hook's `--allow-module NAME`.
//! (iSulad's syscontainer-hooks loads any name in `KERNEL_MODULES`.)
//!
//! `requests` and `check` are pure; `load` runs modprobe.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde_json::Value;

pub const PREFIX: &str = "io.virtpod.module.";

/// An annotation's key or value as messages show it: at most 80 characters, escaped.
fn shown(text: &str) -> String {
    let cut: String = text.chars().take(80).collect();
    let quoted = format!("{cut:?}");
    quoted[1..quoted.len() - 1].to_string()
}

/// What libvirt in the appliance may need from the host's kernel, by role.
pub const ALLOWED: &[&str] = &[
    // KVM and its vendor parts: /dev/kvm.
    "kvm",
    "kvm_intel",
    "kvm_amd",
    // Guest networking: /dev/net/tun, /dev/vhost-net, macvtap, the bridge of a NAT network.
    "tun",
    "vhost_net",
    "macvtap",
    "bridge",
    "br_netfilter",
    "veth",
    // vsock to guests: /dev/vhost-vsock.
    "vhost_vsock",
    // Device assignment: /dev/vfio.
    "vfio_pci",
    // qemu-nbd's /dev/nbd*.
    "nbd",
    // The firewall of libvirt's NAT networks (nftables, or iptables).
    "nf_tables",
    "nft_chain_nat",
    "nft_masq",
    "nft_ct",
    "nft_reject_inet",
    "nf_nat",
    "nf_conntrack",
    "ip_tables",
    "ip6_tables",
    "iptable_nat",
    "iptable_filter",
    "iptable_mangle",
    "ip6table_nat",
    "ip6table_filter",
    "ip6table_mangle",
    "xt_MASQUERADE",
    "xt_CHECKSUM",
    "xt_conntrack",
    "xt_comment",
    "xt_addrtype",
    "xt_tcpudp",
    "xt_mark",
    // The block I/O scheduler guests' disks may ask for.
    "bfq",
];

/// A module name as the kernel spells it: `-` and `_` are the same, so `_`.
fn canonical(name: &str) -> String {
    name.replace('-', "_")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The annotation, for messages.
    pub annotation: String,
    /// The module, `_` for `-`.
    pub module: String,
}

/// The modules the config's annotations ask for (`=true`; `=false` asks for nothing). Any
/// other value, or a name that is not a module name, is refused with the annotation named.
pub fn requests(config: &Value) -> Result<Vec<Request>> {
    let Some(annotations) = config["annotations"].as_object() else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (key, value) in annotations {
        let Some(name) = key.strip_prefix(PREFIX) else {
            continue;
        };
        let shown = shown(key);
        let value = value.as_str().unwrap_or_default().trim();
        match value {
            "false" | "" => continue,
            "true" => {}
            other => bail!(
                "{shown}={:?}: expected true (load the module on the host) or false",
                self::shown(other)
            ),
        }
        if name.is_empty()
            || name.len() > 56
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            bail!("{shown}: not a kernel module name (letters, digits, _ and -)");
        }
        out.push(Request {
            annotation: key.clone(),
            module: canonical(name),
        });
    }
    Ok(out)
}

/// Every request on the list (`ALLOWED` plus `extra`), or the first that is not, refused.
pub fn check(requests: &[Request], extra: &[String]) -> Result<()> {
    for r in requests {
        let allowed =
            ALLOWED.contains(&r.module.as_str()) || extra.iter().any(|e| canonical(e) == r.module);
        if !allowed {
            bail!(
                "{}: {} is not a module virtpod loads for a container (those libvirt needs: {}); load it on the host yourself (modprobe {}, or a file in /etc/modules-load.d), or let the hook load it with --allow-module {} in its definition",
                r.annotation,
                r.module,
                ALLOWED.join(", "),
                r.module,
                r.module
            );
        }
    }
    Ok(())
}

/// What loading did, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loaded {
    Already,
    Now,
}

/// Loads each module with the host's modprobe unless /sys/module has it already. A failure
/// stops at that module, with modprobe's words: the container would start without what it
/// asked for.
pub fn load(
    requests: &[Request],
    sys_module: &Path,
    modprobe: Option<&Path>,
) -> Result<Vec<(String, Loaded)>> {
    let mut done = Vec::new();
    for r in requests {
        if sys_module.join(&r.module).exists() {
            done.push((r.module.clone(), Loaded::Already));
            continue;
        }
        if !nix::unistd::geteuid().is_root() {
            bail!("{}: loading {} needs root on the host, and this container's hook runs as a user (rootless podman); load it yourself (sudo modprobe {}, or a file in /etc/modules-load.d)", r.annotation, r.module, r.module);
        }
        let modprobe = modprobe.unwrap_or_else(|| {
            ["/usr/sbin/modprobe", "/sbin/modprobe"]
                .into_iter()
                .map(Path::new)
                .find(|p| p.exists())
                .unwrap_or(Path::new("modprobe"))
        });
        let out = Command::new(modprobe)
            .args(["--", &r.module])
            .output()
            .with_context(|| {
                format!(
                    "{}: running {} (kmod) to load {}",
                    r.annotation,
                    modprobe.display(),
                    r.module
                )
            })?;
        if !out.status.success() {
            bail!(
                "{}: modprobe {} failed: {}; does this host's kernel have it (modinfo {})?",
                r.annotation,
                r.module,
                String::from_utf8_lossy(&out.stderr).trim(),
                r.module
            );
        }
        done.push((r.module.clone(), Loaded::Now));
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn annotations_name_modules_true_or_false() {
        let config = json!({"annotations": {
            "io.virtpod.module.vhost-net": "true",
            "io.virtpod.module.nbd": "false",
            "io.virtpod.device.kvm": "true",
        }});
        assert_eq!(
            requests(&config).unwrap(),
            [Request {
                annotation: "io.virtpod.module.vhost-net".into(),
                module: "vhost_net".into()
            }]
        );
        let e = requests(&json!({"annotations": {"io.virtpod.module.nbd": "yes"}})).unwrap_err();
        assert!(e.to_string().contains("expected true"), "{e}");
        for bad in ["../../evil", "a b", "", "x".repeat(80).as_str()] {
            let key = format!("{PREFIX}{bad}");
            let e = requests(&json!({"annotations": {key: "true"}})).unwrap_err();
            assert!(e.to_string().contains("not a kernel module name"), "{e}");
        }
        assert!(requests(&json!({})).unwrap().is_empty());
    }

    #[test]
    fn only_modules_libvirt_needs_are_loaded_unless_the_host_allows_more() {
        let r = |m: &str| Request {
            annotation: format!("{PREFIX}{m}"),
            module: canonical(m),
        };
        check(&[r("vhost_net"), r("nbd"), r("nft_chain_nat")], &[]).unwrap();
        let e = check(&[r("dummy")], &[]).unwrap_err().to_string();
        assert!(
            e.contains("io.virtpod.module.dummy: dummy is not a module virtpod loads")
                && e.contains("--allow-module dummy"),
            "{e}"
        );
        check(&[r("dummy")], &["dummy".into()]).unwrap();
    }

    #[test]
    fn a_module_the_host_has_is_not_loaded_again() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("tun")).unwrap();
        let r = Request {
            annotation: format!("{PREFIX}tun"),
            module: "tun".into(),
        };
        assert_eq!(
            load(&[r], dir.path(), Some(Path::new("/bin/false"))).unwrap(),
            [("tun".to_string(), Loaded::Already)]
        );
    }
}
