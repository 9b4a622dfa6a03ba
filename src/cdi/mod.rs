//! `virtpod cdi`: the device classes of `virtpod hook` as a Container Device Interface spec,
//! so that `podman run --device virtpod.io/device=kvm` works without a hook.
//!
//! One CDI device per class present on this host, named after the class, with every node the
//! hook would give for `<class>=true` and the same directory binds. A static spec cannot know
//! the image's groups: nodes keep the host's mode and gid (the hook maps them to the image's
//! group; `virtpod init` gives /dev/kvm to kvm either way). It is a snapshot: write it again
//! when devices come and go.

use serde_json::{json, Value};

use crate::hook::class::CLASSES;
use crate::hook::discover::{self, Found, Kind};
use crate::hook::edit::bind_options;
use crate::hook::request::{Request, Selection};
use crate::hook::HostPaths;

pub const DEFAULT_KIND: &str = "virtpod.io/device";
/// The newest CDI version podman 4.3 reads.
pub const CDI_VERSION: &str = "0.5.0";

/// What every class resolves to on this host (a class the host lacks comes back empty); an
/// unusable device root is the error.
pub fn discover(host: &HostPaths) -> Result<Vec<(&'static str, Found)>, String> {
    CLASSES
        .iter()
        .map(|class| {
            let req = Request {
                annotation: format!("{}=true", class.name),
                class,
                selection: Selection::All,
            };
            discover::resolve(&req, host)
                .map(|f| (class.name, f))
                .map_err(|r| r.reason)
        })
        .collect()
}

/// A class is on this host when it has a node or a directory to bind here.
pub fn is_present(f: &Found) -> bool {
    !f.nodes.is_empty() || !f.binds.is_empty()
}

/// The spec: one device per class that is on this host.
pub fn spec(kind: &str, found: &[(&str, Found)]) -> Value {
    let devices: Vec<Value> = found
        .iter()
        .filter(|(_, f)| is_present(f))
        .map(|(name, f)| device(name, f))
        .collect();
    json!({ "cdiVersion": CDI_VERSION, "kind": kind, "devices": devices })
}

fn device(name: &str, f: &Found) -> Value {
    let nodes: Vec<Value> = f
        .nodes
        .iter()
        .map(|n| {
            // Type and numbers given: the runtime makes the node, nothing is looked up at
            // /dev/<path> on the host (which a --dev-root may not have).
            json!({
                "path": n.container_path(),
                "type": match n.kind { Kind::Char => "c", Kind::Block => "b" },
                "major": n.major,
                "minor": n.minor,
                "fileMode": n.mode,
                "permissions": "rwm",
                "gid": n.gid,
            })
        })
        .collect();
    let mounts: Vec<Value> = f
        .binds
        .iter()
        .map(|b| {
            json!({
                "hostPath": b.host,
                "containerPath": b.dest,
                "options": bind_options(b.read_only),
            })
        })
        .collect();
    let mut edits = serde_json::Map::new();
    if !nodes.is_empty() {
        edits.insert("deviceNodes".into(), Value::Array(nodes));
    }
    if !mounts.is_empty() {
        edits.insert("mounts".into(), Value::Array(mounts));
    }
    json!({ "name": name, "containerEdits": edits })
}

/// A CDI kind is `vendor/class`: vendor a domain-like name, class a simple name.
pub fn check_kind(kind: &str) -> Result<(), String> {
    let ok_vendor = |v: &str| {
        !v.is_empty()
            && v.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c))
    };
    let ok_class = |c: &str| {
        !c.is_empty()
            && c.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && c.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
    };
    match kind.split_once('/') {
        Some((v, c)) if ok_vendor(v) && ok_class(c) => Ok(()),
        _ => Err(format!(
            "--kind {kind:?}: expected vendor/class such as {DEFAULT_KIND} (letters, digits, '.', '-', '_')"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hook::discover::{BindMount, Node};

    #[test]
    fn a_device_per_present_class_with_host_mode_and_gid() {
        let kvm = Found {
            nodes: vec![Node::test_kvm(0o660)],
            ..Found::default()
        };
        let udev = Found {
            binds: vec![BindMount {
                host: "/run/udev".into(),
                dest: "/run/udev".into(),
                read_only: true,
            }],
            ..Found::default()
        };
        let s = spec(
            DEFAULT_KIND,
            &[("kvm", kvm), ("audio", Found::default()), ("udev", udev)],
        );
        assert_eq!(s["cdiVersion"], "0.5.0");
        assert_eq!(s["kind"], "virtpod.io/device");
        let devices = s["devices"].as_array().unwrap();
        assert_eq!(devices.len(), 2, "{s}");
        assert_eq!(
            devices[0],
            json!({"name": "kvm", "containerEdits": {"deviceNodes": [{
                "path": "/dev/kvm", "type": "c", "major": 10, "minor": 232,
                "fileMode": 0o660, "permissions": "rwm", "gid": 0}]}})
        );
        assert_eq!(
            devices[1]["containerEdits"]["mounts"][0]["options"],
            json!(["rbind", "ro", "nosuid", "noexec", "nodev"])
        );
    }

    #[test]
    fn kinds_are_vendor_slash_class() {
        assert!(check_kind("virtpod.io/device").is_ok());
        assert!(check_kind("virtpod-test-1.io/device").is_ok());
        for bad in [
            "device",
            "virtpod.io/",
            "/device",
            "virtpod io/device",
            "a/b/c",
        ] {
            assert!(check_kind(bad).is_err(), "{bad}");
        }
    }
}
