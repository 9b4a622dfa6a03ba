//! The container `virtpod device` acts on, as podman sees it (`podman container inspect`).

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    /// As the user named it.
    pub name: String,
    /// The full id: records are kept under it.
    pub id: String,
    /// The container's first process on the host; 0 when it is not running.
    pub pid: i32,
    pub annotations: BTreeMap<String, String>,
    /// The nodes `--device` gave it at creation, as paths under /dev ("ttyUSB0").
    pub devices: BTreeSet<String>,
}

impl Container {
    /// Where its record of run-time additions is kept: under `io.virtpod.record` when it has
    /// that annotation (kept across re-creation), else under its id (hook::added).
    pub fn record_key(&self) -> Result<String> {
        crate::hook::added::key(
            &self.id,
            self.annotations
                .get(crate::hook::added::BY_NAME)
                .map(String::as_str),
        )
    }

    pub fn running_pid(&self) -> Result<i32> {
        if self.pid <= 0 {
            bail!(
                "{} is not running: start it first (`podman start {}`); devices are given to a running container",
                self.name,
                self.name
            );
        }
        Ok(self.pid)
    }
}

/// `podman container inspect NAME`.
pub fn inspect(name: &str) -> Result<Container> {
    let out = Command::new("podman")
        .args(["container", "inspect", "--format", "json", "--", name])
        .output()
        .context("running podman (is it installed?)")?;
    if !out.status.success() {
        bail!(
            "podman container inspect {name}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    from_inspect(name, &out.stdout)
}

/// The container in `podman container inspect` output.
pub fn from_inspect(name: &str, json: &[u8]) -> Result<Container> {
    let v: Value = serde_json::from_slice(json).context("podman's inspect output is not JSON")?;
    let c = v.get(0).unwrap_or(&v);
    let id = c["Id"].as_str().unwrap_or_default().to_string();
    if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("podman gave no container id for {name}");
    }
    let pid = c["State"]["Pid"].as_i64().unwrap_or(0) as i32;
    let annotations = c["Config"]["Annotations"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    // The command that created it says which devices were `--device`s. HostConfig.Devices lists
    // those and also every node the precreate hook put in the spec at creation (annotations,
    // and a record by name given to a container made anew): used only when podman has no
    // command line (a container made through the API).
    let created: Vec<&str> = c["Config"]["CreateCommand"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let devices = if created.is_empty() {
        c["HostConfig"]["Devices"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|d| d["PathInContainer"].as_str()?.strip_prefix("/dev/"))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    } else {
        device_options(&created)
    };
    Ok(Container {
        name: name.to_string(),
        id,
        pid,
        annotations,
        devices,
    })
}

/// The container paths under /dev of the `--device HOST[:CONTAINER[:PERMS]]` options of a
/// podman command line (`--device X` and `--device=X`).
fn device_options(args: &[&str]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let value = match a.strip_prefix("--device=") {
            Some(v) => Some(v),
            None if *a == "--device" => it.next().copied(),
            None => None,
        };
        let Some(value) = value else { continue };
        let mut parts = value.split(':');
        let host = parts.next().unwrap_or_default();
        let inside = parts.next().filter(|p| p.starts_with('/')).unwrap_or(host);
        if let Some(rel) = inside.strip_prefix("/dev/") {
            out.insert(rel.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_podman_says() {
        let id = "ab".repeat(32);
        let json = format!(
            r#"[{{"Id":"{id}","State":{{"Pid":4242,"Running":true}},"Config":{{"Annotations":{{"io.virtpod.device.kvm":"true","n":"1"}}}},"HostConfig":{{"Devices":[{{"PathOnHost":"/dev/ttyUSB0","PathInContainer":"/dev/ttyUSB0","CgroupPermissions":"rwm"}}]}}}}]"#
        );
        let c = from_inspect("vp", json.as_bytes()).unwrap();
        assert_eq!((c.id.as_str(), c.pid), (id.as_str(), 4242));
        assert_eq!(c.annotations["io.virtpod.device.kvm"], "true");
        assert!(c.devices.contains("ttyUSB0"));
        let stopped = json.replace("4242", "0");
        let e = from_inspect("vp", stopped.as_bytes())
            .unwrap()
            .running_pid()
            .unwrap_err()
            .to_string();
        assert!(e.contains("podman start vp"), "{e}");
        assert!(from_inspect("vp", b"[{}]").is_err());
    }

    #[test]
    fn the_devices_of_the_command_line_are_the_ones_given_by_device() {
        let id = "ab".repeat(32);
        // The hook put /dev/fuse in the spec (a record by name); the command gave ttyUSB0.
        let json = format!(
            r#"[{{"Id":"{id}","State":{{"Pid":1}},"Config":{{"CreateCommand":["podman","run","--device","/dev/ttyUSB0","--device=/dev/ttyACM1:/dev/modem:rw","--name","x","img"]}},"HostConfig":{{"Devices":[{{"PathInContainer":"/dev/fuse"}},{{"PathInContainer":"/dev/ttyUSB0"}}]}}}}]"#
        );
        let c = from_inspect("vp", json.as_bytes()).unwrap();
        assert_eq!(
            c.devices,
            ["modem", "ttyUSB0"].map(String::from).into_iter().collect()
        );
    }
}
