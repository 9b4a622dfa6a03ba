//! The plan written into an OCI config. The config stays a JSON value so that every field we do
//! not touch (including ones newer than our oci-spec types) comes back exactly as it came in;
//! the entries we add are oci-spec types.

use oci_spec::runtime::{
    LinuxDevice, LinuxDeviceBuilder, LinuxDeviceCgroup, LinuxDeviceType, Mount, MountBuilder,
};
use serde_json::{json, Value};
use std::collections::HashSet;

use super::discover::{BindMount, Kind};
use super::plan::{Grant, Mode, Plan};

/// Does the config give the container its own user namespace (rootless, or --userns)?
pub fn has_user_namespace(config: &Value) -> bool {
    config["linux"]["namespaces"]
        .as_array()
        .is_some_and(|ns| ns.iter().any(|n| n["type"] == "user"))
}

/// The config's string annotations, borrowed: they can be megabytes.
pub fn annotations(config: &Value) -> impl Iterator<Item = (&String, &String)> {
    config["annotations"]
        .as_object()
        .into_iter()
        .flat_map(|o| o.iter())
        .filter_map(|(k, v)| match v {
            Value::String(s) => Some((k, s)),
            _ => None,
        })
}

/// Device paths the config already has (the user's own --device wins over ours). A set: the
/// config can hold any number of them, and each of ours is looked up.
pub fn existing_devices(config: &Value) -> HashSet<String> {
    config["linux"]["devices"]
        .as_array()
        .map(|d| {
            d.iter()
                .filter_map(|d| d["path"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn existing_mounts(config: &Value) -> HashSet<String> {
    config["mounts"]
        .as_array()
        .map(|d| {
            d.iter()
                .filter_map(|d| d["destination"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

pub fn device(g: &Grant) -> LinuxDevice {
    LinuxDeviceBuilder::default()
        .path(g.node.container_path())
        .typ(match g.node.kind {
            Kind::Char => LinuxDeviceType::C,
            Kind::Block => LinuxDeviceType::B,
        })
        .major(g.node.major as i64)
        .minor(g.node.minor as i64)
        .file_mode(g.mode)
        .uid(0u32)
        .gid(g.gid)
        .build()
        .expect("every field is set")
}

fn bind(source: &std::path::Path, dest: &str, options: &[&str]) -> Mount {
    MountBuilder::default()
        .destination(dest)
        .typ("bind")
        .source(source)
        .options(options.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()
        .expect("every field is set")
}

/// Mount options of a directory bind (udev's database read-only, hugepages read-write).
pub fn bind_options(read_only: bool) -> &'static [&'static str] {
    if read_only {
        &["rbind", "ro", "nosuid", "noexec", "nodev"]
    } else {
        &["rbind", "rw", "nosuid", "nodev"]
    }
}

fn mount_for(b: &BindMount) -> Mount {
    bind(&b.host, &b.dest, bind_options(b.read_only))
}

fn push(config: &mut Value, pointer: &[&str], item: Value) {
    let mut v = &mut *config;
    for key in pointer {
        if !v.is_object() {
            *v = json!({});
        }
        v = v
            .as_object_mut()
            .expect("just made an object")
            .entry(*key)
            .or_insert(Value::Null);
    }
    if !v.is_array() {
        *v = json!([]);
    }
    v.as_array_mut().expect("just made an array").push(item);
}

/// Write the plan into `config`. Returns what was skipped because the config already had it.
pub fn apply(config: &mut Value, plan: &Plan, mode: Mode) -> Vec<String> {
    let mut skipped = Vec::new();
    let devices = existing_devices(config);
    let mounts = existing_mounts(config);
    for g in &plan.grants {
        let path = g.node.container_path();
        if devices.contains(&path) || mounts.contains(&path) {
            skipped.push(format!(
                "{path}: already in the config (--device or a mount); left as it is"
            ));
            continue;
        }
        match mode {
            Mode::Nodes => {
                let d = device(g);
                let rule = LinuxDeviceCgroup::from(&d);
                push(
                    config,
                    &["linux", "devices"],
                    serde_json::to_value(&d).expect("serializable"),
                );
                push(
                    config,
                    &["linux", "resources", "devices"],
                    serde_json::to_value(&rule).expect("serializable"),
                );
            }
            Mode::Binds => {
                let m = bind(&g.node.host, &path, &["bind", "nosuid", "noexec"]);
                push(
                    config,
                    &["mounts"],
                    serde_json::to_value(&m).expect("serializable"),
                );
            }
        }
    }
    for b in &plan.binds {
        if mounts.contains(&b.dest) {
            skipped.push(format!(
                "{}: already mounted in the config; left as it is",
                b.dest
            ));
            continue;
        }
        push(
            config,
            &["mounts"],
            serde_json::to_value(mount_for(b)).expect("serializable"),
        );
    }
    skipped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hook::discover::Node;

    fn grant() -> Plan {
        Plan {
            grants: vec![Grant {
                node: Node::test_kvm(0o600),
                gid: 104,
                mode: 0o660,
            }],
            binds: vec![BindMount {
                host: "/run/udev".into(),
                dest: "/run/udev".into(),
                read_only: true,
            }],
            ..Plan::default()
        }
    }

    #[test]
    fn rootful_adds_a_node_and_its_allow_rule() {
        let mut c = json!({"ociVersion": "1.0.2", "linux": {"resources": {"devices": [{"allow": false, "access": "rwm"}]}}, "x-unknown": 1});
        apply(&mut c, &grant(), Mode::Nodes);
        assert_eq!(
            c["linux"]["devices"][0],
            json!({"path": "/dev/kvm", "type": "c", "major": 10, "minor": 232, "fileMode": 0o660, "uid": 0, "gid": 104})
        );
        assert_eq!(
            c["linux"]["resources"]["devices"][1],
            json!({"allow": true, "type": "c", "major": 10, "minor": 232, "access": "rwm"})
        );
        assert_eq!(
            c["mounts"][0]["options"],
            json!(["rbind", "ro", "nosuid", "noexec", "nodev"])
        );
        assert_eq!(c["x-unknown"], 1);
    }

    #[test]
    fn user_namespace_binds_the_host_node() {
        let mut c = json!({"linux": {"namespaces": [{"type": "user"}]}});
        assert!(has_user_namespace(&c));
        apply(&mut c, &grant(), Mode::Binds);
        assert!(c["linux"].get("devices").is_none());
        assert_eq!(c["mounts"][0]["source"], "/dev/kvm");
        assert_eq!(c["mounts"][0]["destination"], "/dev/kvm");
    }

    #[test]
    fn a_device_the_user_gave_is_left_alone() {
        let mut c = json!({"linux": {"devices": [{"path": "/dev/kvm", "type": "c", "major": 10, "minor": 232}]}});
        let skipped = apply(&mut c, &grant(), Mode::Nodes);
        assert_eq!(c["linux"]["devices"].as_array().unwrap().len(), 1);
        assert_eq!(skipped.len(), 1);
    }
}
