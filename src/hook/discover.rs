//! Requests → device nodes that exist on this host. Every path is checked here: only character
//! or block devices, reached without leaving the device root, ever come out.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::class::{Bind, Class, Name, Nodes};
use super::request::{is_usb_id, Request, Selection};
use super::HostPaths;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Char,
    Block,
}

impl Kind {
    pub fn letter(self) -> &'static str {
        match self {
            Kind::Char => "c",
            Kind::Block => "b",
        }
    }

    /// The rule that lets a device filter open a node of this kind and these numbers (Linux
    /// majors and minors fit 32 bits).
    pub fn rule(self, major: u64, minor: u64) -> crate::cgroup::Rule {
        crate::cgroup::Rule {
            kind: match self {
                Kind::Char => crate::cgroup::Type::Char,
                Kind::Block => crate::cgroup::Type::Block,
            },
            major: major as u32,
            minor: minor as u32,
        }
    }
}

/// A device node on the host, as the container will see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub class: &'static str,
    /// Path relative to the device root ("kvm", "net/tun"); in the container it is `/dev/<rel>`.
    pub rel: String,
    /// The node on the host (after resolving a symlink that stays inside the device root).
    pub host: PathBuf,
    pub kind: Kind,
    pub major: u64,
    pub minor: u64,
    /// Permission bits on the host.
    pub mode: u32,
    pub gid: u32,
    /// The group of this role in an image (kvm, audio, …).
    pub group: Option<&'static str>,
}

impl Node {
    pub fn container_path(&self) -> String {
        format!("/dev/{}", self.rel)
    }

    /// The rule that lets a device filter open this node.
    pub fn rule(&self) -> crate::cgroup::Rule {
        self.kind.rule(self.major, self.minor)
    }

    /// /dev/kvm as on a host without udev rules (root:root), for the tests of later stages.
    #[cfg(test)]
    pub fn test_kvm(mode: u32) -> Node {
        Node {
            class: "kvm",
            rel: "kvm".into(),
            host: "/dev/kvm".into(),
            kind: Kind::Char,
            major: 10,
            minor: 232,
            mode,
            gid: 0,
            group: Some("kvm"),
        }
    }
}

/// A host directory bound into the container at the same path under /dev or /run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    pub host: PathBuf,
    pub dest: String,
    pub read_only: bool,
}

#[derive(Debug, Default)]
pub struct Found {
    pub nodes: Vec<Node>,
    pub binds: Vec<BindMount>,
    /// Things skipped, said once each (a class absent on this host, a symlink out of /dev …).
    pub warnings: Vec<String>,
}

/// What is wrong with an explicitly selected device; the hook refuses the container.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{annotation}: {reason}")]
pub struct Refused {
    pub annotation: String,
    pub reason: String,
}

pub fn resolve(req: &Request, host: &HostPaths) -> Result<Found, Refused> {
    let mut found = Found::default();
    let refuse = |reason: String| Refused {
        annotation: req.annotation.clone(),
        reason,
    };
    // Resolved once: every node must resolve to a path under it.
    let root = fs::canonicalize(&host.dev)
        .map_err(|e| refuse(format!("device root {}: {e}", host.dev.display())))?;
    match &req.selection {
        Selection::All => {
            for entry in req.class.nodes {
                for rel in candidates(&host.dev, entry) {
                    match node(&host.dev, &root, &rel, req.class, entry) {
                        Ok(n) => found.nodes.push(n),
                        Err(why) => found.warnings.push(format!(
                            "{}: skipped {}: {why}",
                            req.annotation,
                            host.dev.join(&rel).display()
                        )),
                    }
                }
            }
            if found.nodes.is_empty() && !req.class.nodes.is_empty() {
                found.warnings.push(format!(
                    "{}: no {} device on this host ({}); nothing given",
                    req.annotation,
                    req.class.name,
                    host.dev.display()
                ));
            }
        }
        Selection::Names(names) => {
            // Names are distinct, but two can mean one node (controlC0, snd/controlC0): each
            // node is looked at once, and sysfs is listed once for all the usb ids.
            let mut seen = HashSet::new();
            let mut usb: Option<HashMap<String, Vec<String>>> = None;
            for name in names {
                let rels = if req.class.name == "usb" && is_usb_id(name) {
                    let by_id = usb.get_or_insert_with(|| usb_devices(&host.sys));
                    usb_by_id(by_id, &host.sys, name).map_err(refuse)?
                } else {
                    vec![req.class.rel_for(name).ok_or_else(|| {
                        refuse(format!(
                            "{name:?} is not a {} device (e.g. {})",
                            req.class.name,
                            req.class.example()
                        ))
                    })?]
                };
                for rel in rels {
                    if !seen.insert(rel.clone()) {
                        continue;
                    }
                    let entry = req.class.entry_for(&rel).expect("checked above");
                    let n = node(&host.dev, &root, &rel, req.class, entry).map_err(|why| {
                        refuse(format!("{}: {why}", host.dev.join(&rel).display()))
                    })?;
                    found.nodes.push(n);
                }
            }
        }
    }
    for bind in req.class.binds {
        let (path, dest, read_only) = match bind {
            Bind::Udev => (host.udev.clone(), "/run/udev".to_string(), true),
            Bind::Dev(d) => (host.dev.join(d), format!("/dev/{d}"), false),
        };
        if path.is_dir() {
            found.binds.push(BindMount {
                host: path,
                dest,
                read_only,
            });
        } else {
            found.warnings.push(format!(
                "{}: {} is not a directory on this host, so {dest} is not bound{}",
                req.annotation,
                path.display(),
                if *bind == Bind::Udev {
                    " (is udevd running?); libvirt will not see USB vendor ids"
                } else {
                    ""
                }
            ));
        }
    }
    Ok(found)
}

/// Names under the device root an entry covers, sorted; symlinks inside a tree are left out
/// (they are aliases, like /dev/snd/by-path/*, of nodes the walk finds anyway).
fn candidates(dev: &Path, entry: &Nodes) -> Vec<String> {
    let dir = dev.join(entry.dir);
    let join = |name: &str| {
        if entry.dir.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", entry.dir)
        }
    };
    let mut out = Vec::new();
    match entry.name {
        Name::Exact(e) => {
            if fs::symlink_metadata(dir.join(e)).is_ok() {
                out.push(join(e));
            }
        }
        Name::Prefix(p) => {
            for name in list(&dir) {
                if name.starts_with(p) && name.len() > p.len() {
                    out.push(join(&name));
                }
            }
        }
        Name::Tree => walk(&dir, entry.dir, &mut out, 0),
    }
    out.sort();
    out
}

fn list(dir: &Path) -> Vec<String> {
    match fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn walk(dir: &Path, rel: &str, out: &mut Vec<String>, depth: usize) {
    if depth > 8 {
        return;
    }
    for name in list(dir) {
        let path = dir.join(&name);
        let child = format!("{rel}/{name}");
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => walk(&path, &child, out, depth + 1),
            Ok(m) if m.file_type().is_symlink() => {}
            Ok(_) => out.push(child),
            Err(_) => {}
        }
    }
}

/// The device node at `rel`, or why it may not be given. Resolves the whole path, so neither
/// the node nor a directory above it may be a symlink out of the device root.
fn node(
    dev: &Path,
    root: &Path,
    rel: &str,
    class: &'static Class,
    entry: &Nodes,
) -> Result<Node, String> {
    let path = dev.join(rel);
    let real = match fs::canonicalize(&path) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(match fs::read_link(&path) {
                Ok(t) => format!("is a dangling symlink to {}", t.display()),
                Err(_) => "does not exist on this host".into(),
            })
        }
        Err(e) => return Err(e.to_string()),
    };
    if !real.starts_with(root) {
        return Err(format!(
            "resolves to {}, outside {}; refused",
            real.display(),
            dev.display()
        ));
    }
    let meta = fs::metadata(&real).map_err(|e| e.to_string())?;
    let ft = meta.file_type();
    let kind = if ft.is_char_device() {
        Kind::Char
    } else if ft.is_block_device() {
        Kind::Block
    } else {
        let what = if ft.is_dir() {
            "a directory"
        } else if ft.is_file() {
            "a regular file"
        } else {
            "not a device"
        };
        return Err(format!(
            "is {what}, not a character or block device; refused"
        ));
    };
    let rdev = meta.rdev();
    Ok(Node {
        class: class.name,
        rel: rel.to_string(),
        host: real,
        kind,
        major: nix::sys::stat::major(rdev),
        minor: nix::sys::stat::minor(rdev),
        mode: meta.mode() & 0o7777,
        gid: meta.gid(),
        group: entry.group,
    })
}

/// Every USB device in sysfs, by "vendor:product" (lowercase hex) → its /dev/bus/usb/BBB/DDD
/// names, sorted.
fn usb_devices(sys: &Path) -> HashMap<String, Vec<String>> {
    let devices = sys.join("bus/usb/devices");
    let read = |d: &Path, f: &str| fs::read_to_string(d.join(f)).map(|s| s.trim().to_string());
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for name in list(&devices) {
        let d = devices.join(&name);
        let (Ok(v), Ok(p), Ok(bus), Ok(dev)) = (
            read(&d, "idVendor"),
            read(&d, "idProduct"),
            read(&d, "busnum"),
            read(&d, "devnum"),
        ) else {
            continue;
        };
        let (Ok(bus), Ok(dev)) = (bus.parse::<u32>(), dev.parse::<u32>()) else {
            continue;
        };
        out.entry(format!("{v}:{p}").to_ascii_lowercase())
            .or_default()
            .push(format!("bus/usb/{bus:03}/{dev:03}"));
    }
    for rels in out.values_mut() {
        rels.sort();
    }
    out
}

/// The nodes of the USB devices with this vendor:product, or why there are none.
fn usb_by_id(
    by_id: &HashMap<String, Vec<String>>,
    sys: &Path,
    id: &str,
) -> Result<Vec<String>, String> {
    match by_id.get(&id.to_ascii_lowercase()) {
        Some(rels) => Ok(rels.clone()),
        None => Err(format!(
            "no USB device {id} on this host (see lsusb, or {})",
            sys.join("bus/usb/devices").display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hook::request::parse;
    use std::collections::BTreeMap;

    fn host(dir: &Path) -> HostPaths {
        HostPaths {
            dev: dir.join("dev"),
            sys: dir.join("sys"),
            udev: dir.join("udev"),
            state: dir.join("state"),
            added: dir.join("added"),
            ..HostPaths::default()
        }
    }

    fn req(k: &str, v: &str) -> Request {
        let a = BTreeMap::from([(k.to_string(), v.to_string())]);
        parse(&a).unwrap().remove(0)
    }

    #[test]
    fn refuses_files_symlinks_out_and_missing_nodes() {
        let t = tempfile::tempdir().unwrap();
        let h = host(t.path());
        fs::create_dir_all(&h.dev).unwrap();
        fs::write(h.dev.join("ttyUSB8"), "").unwrap();
        fs::write(t.path().join("outside"), "").unwrap();
        std::os::unix::fs::symlink(t.path().join("outside"), h.dev.join("ttyUSB9")).unwrap();
        std::os::unix::fs::symlink("/dev/null", h.dev.join("ttyUSB7")).unwrap();
        let e = resolve(&req("io.virtpod.device.ttyUSB", "ttyUSB8"), &h)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("is a regular file, not a character or block device; refused"),
            "{e}"
        );
        let e = resolve(&req("io.virtpod.device.ttyUSB", "ttyUSB9"), &h)
            .unwrap_err()
            .to_string();
        assert!(e.contains("outside"), "{e}");
        let e = resolve(&req("io.virtpod.device.ttyUSB", "ttyUSB7"), &h)
            .unwrap_err()
            .to_string();
        assert!(e.contains("resolves to /dev/null, outside"), "{e}");
        let e = resolve(&req("io.virtpod.device.ttyUSB", "ttyUSB3"), &h)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("io.virtpod.device.ttyUSB=ttyUSB3: ") && e.contains("does not exist"),
            "{e}"
        );
        // The whole class: nothing given, every skip said.
        let f = resolve(&req("io.virtpod.device.ttyUSB", "true"), &h).unwrap();
        assert!(f.nodes.is_empty());
        assert_eq!(f.warnings.len(), 4, "{:?}", f.warnings);
    }

    #[test]
    fn a_directory_symlinked_out_of_the_root_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let h = host(t.path());
        fs::create_dir_all(&h.dev).unwrap();
        std::os::unix::fs::symlink("/dev", h.dev.join("snd")).unwrap();
        let e = resolve(&req("io.virtpod.device.audio", "null"), &h)
            .unwrap_err()
            .to_string();
        assert!(e.contains("outside"), "{e}");
    }

    #[test]
    fn a_class_absent_from_the_host_is_a_warning() {
        let t = tempfile::tempdir().unwrap();
        let h = host(t.path());
        fs::create_dir_all(&h.dev).unwrap();
        let f = resolve(&req("io.virtpod.device.audio", "true"), &h).unwrap();
        assert!(f.nodes.is_empty());
        assert!(
            f.warnings[0].contains("no audio device on this host"),
            "{:?}",
            f.warnings
        );
        let f = resolve(&req("io.virtpod.device.udev", "true"), &h).unwrap();
        assert!(
            f.warnings[0].contains("is udevd running?"),
            "{:?}",
            f.warnings
        );
    }

    #[test]
    fn usb_vendor_product_through_sysfs() {
        let t = tempfile::tempdir().unwrap();
        let h = host(t.path());
        let d = h.sys.join("bus/usb/devices/1-1");
        fs::create_dir_all(&d).unwrap();
        for (f, v) in [
            ("idVendor", "1d6b\n"),
            ("idProduct", "0002\n"),
            ("busnum", "1\n"),
            ("devnum", "4\n"),
        ] {
            fs::write(d.join(f), v).unwrap();
        }
        let by_id = usb_devices(&h.sys);
        assert_eq!(
            usb_by_id(&by_id, &h.sys, "1D6B:0002").unwrap(),
            vec!["bus/usb/001/004"]
        );
        assert!(usb_by_id(&by_id, &h.sys, "1234:5678")
            .unwrap_err()
            .contains("no USB device 1234:5678"));
    }
}
