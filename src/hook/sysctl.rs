//! `io.virtpod.sysctl.net=rw`: a writable /proc/sys/net for a container with a network namespace
//! of its own, the rest of /proc/sys staying read-only (LXC's `proc:mixed`).
//!
//! libvirt's NAT network writes sysctls of the namespace it runs in (ip_forward, and
//! disable_ipv6 on its bridge); podman makes all of /proc/sys read-only, so `virsh net-start
//! default` fails with "cannot write to /proc/sys/net/ipv6/conf/virbr0/disable_ipv6: Read-only
//! file system". /proc/sys/net shows the reader's own network namespace, so making it writable
//! changes nothing outside the container, as long as that namespace is not the host's: a
//! container on the host's network is refused.

use serde_json::Value;

pub const NET: &str = "io.virtpod.sysctl.net";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SysctlError {
    #[error("{NET}={0:?}: expected rw (a writable /proc/sys/net) or ro (podman's default)")]
    BadValue(String),
    #[error("{NET}=rw: the container shares the host's network namespace (--network host or a namespace path that is the host's), so its /proc/sys/net is the host's and stays read-only; drop the annotation, or give the container a network of its own")]
    HostNetwork,
}

/// Whether the config asks for a writable /proc/sys/net. `ro`, `false` or no annotation: no.
pub fn wants_writable_net(config: &Value) -> Result<bool, SysctlError> {
    match config["annotations"][NET].as_str().map(str::trim) {
        None | Some("") | Some("ro") | Some("false") => Ok(false),
        Some("rw") | Some("true") => Ok(true),
        Some(other) => Err(SysctlError::BadValue(crate::hook::log::clip(other).into())),
    }
}

/// The network namespace the config gives the container: None when it has none of its own
/// (`--network host`), else its path ("" for a new one the runtime creates).
fn network_namespace(config: &Value) -> Option<&str> {
    config["linux"]["namespaces"]
        .as_array()?
        .iter()
        .find(|n| n["type"] == "network")
        .map(|n| n["path"].as_str().unwrap_or(""))
}

/// Rewrite `linux.readonlyPaths` so that /proc/sys/net is writable: "/proc/sys" becomes one
/// entry per top-level directory of /proc/sys (`entries`, as the host lists them) except net.
/// `is_host_netns` says whether a namespace path is the host's. Returns what was done, for the
/// log; a config whose /proc/sys is not read-only (privileged, unmask) is left as it is.
pub fn make_net_writable(
    config: &mut Value,
    entries: &[String],
    is_host_netns: impl Fn(&str) -> bool,
) -> Result<String, SysctlError> {
    match network_namespace(config) {
        None => return Err(SysctlError::HostNetwork),
        Some(path) if !path.is_empty() && is_host_netns(path) => {
            return Err(SysctlError::HostNetwork)
        }
        Some(_) => {}
    }
    let Some(paths) = config["linux"]["readonlyPaths"].as_array_mut() else {
        return Ok("/proc/sys is not read-only in this config; nothing to change".into());
    };
    let Some(at) = paths.iter().position(|p| p == "/proc/sys") else {
        return Ok("/proc/sys is not read-only in this config; nothing to change".into());
    };
    let mut others: Vec<&String> = entries.iter().filter(|e| e.as_str() != "net").collect();
    others.sort();
    paths.splice(
        at..=at,
        others
            .iter()
            .map(|e| Value::String(format!("/proc/sys/{e}"))),
    );
    Ok(format!(
        "/proc/sys/net writable in the container's own network namespace; /proc/sys/{{{}}} stay read-only",
        others
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(",")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(ns: Value) -> Value {
        json!({
            "annotations": {NET: "rw"},
            "linux": {
                "namespaces": ns,
                "readonlyPaths": ["/proc/asound", "/proc/sys", "/proc/sysrq-trigger"],
            }
        })
    }

    fn entries() -> Vec<String> {
        ["vm", "net", "kernel", "fs"].map(String::from).to_vec()
    }

    #[test]
    fn values() {
        let with = |v: &str| json!({"annotations": {NET: v}});
        assert_eq!(wants_writable_net(&with("rw")), Ok(true));
        assert_eq!(wants_writable_net(&with("ro")), Ok(false));
        assert_eq!(wants_writable_net(&json!({})), Ok(false));
        assert_eq!(
            wants_writable_net(&with("yes please")),
            Err(SysctlError::BadValue("yes please".into()))
        );
    }

    #[test]
    fn own_namespace_gets_net_writable_and_the_rest_read_only() {
        let mut c =
            config(json!([{"type": "network", "path": "/run/netns/netns-1"}, {"type": "pid"}]));
        let said = make_net_writable(&mut c, &entries(), |_| false).unwrap();
        assert_eq!(
            c["linux"]["readonlyPaths"],
            json!([
                "/proc/asound",
                "/proc/sys/fs",
                "/proc/sys/kernel",
                "/proc/sys/vm",
                "/proc/sysrq-trigger"
            ])
        );
        assert!(said.contains("/proc/sys/net writable"), "{said}");
        // A new namespace the runtime makes (no path) is the container's own too.
        let mut c = config(json!([{"type": "network"}]));
        make_net_writable(&mut c, &entries(), |_| true).unwrap();
        assert!(!c["linux"]["readonlyPaths"]
            .as_array()
            .unwrap()
            .contains(&json!("/proc/sys")));
    }

    #[test]
    fn the_hosts_network_is_refused_and_left_read_only() {
        let mut c = config(json!([{"type": "pid"}]));
        assert_eq!(
            make_net_writable(&mut c, &entries(), |_| false),
            Err(SysctlError::HostNetwork)
        );
        let mut c = config(json!([{"type": "network", "path": "/proc/1/ns/net"}]));
        assert_eq!(
            make_net_writable(&mut c, &entries(), |p| p == "/proc/1/ns/net"),
            Err(SysctlError::HostNetwork)
        );
        assert!(c["linux"]["readonlyPaths"]
            .as_array()
            .unwrap()
            .contains(&json!("/proc/sys")));
    }

    #[test]
    fn a_config_without_read_only_proc_sys_is_left_alone() {
        let mut c = json!({"linux": {"namespaces": [{"type": "network"}], "readonlyPaths": []}});
        let before = c.clone();
        let said = make_net_writable(&mut c, &entries(), |_| false).unwrap();
        assert_eq!(c, before);
        assert!(said.contains("nothing to change"));
    }
}
