//! What `virtpod device add` (crate::device) gave a container, kept on the host so that the precreate hook gives
//! it again at every start of that container. One JSON file per container, root's only: the
//! record decides which host devices a container gets, so it must never come from inside one.
//!
//! A record is kept under the container's id, which a re-created container does not share; or,
//! when the container asks with `io.virtpod.record=NAME` (compose.yaml and the quadlet units
//! do, with the container's name), under that name: then a container created anew with the same
//! annotation (`./appliance-up` re-run, an upgrade) gets what was added to the one before. The
//! annotation comes from whoever creates the container on the host, never from inside it.
//!
//! The record holds requests in the annotations' vocabulary (class and selection), not nodes:
//! a USB device selected by vendor:product may have another bus address after a replug, and
//! the hook resolves it again like any annotation.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::hook::request::{self, Request, Selection};

/// Where the records live on the host. Not /run: a container outlives a reboot of its host.
pub const DEFAULT_DIR: &str = "/var/lib/virtpod/devices";

/// One class's run-time additions: every device of the class, or these names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Added {
    All(bool),
    Names(Vec<String>),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    /// Class name → what was added.
    pub devices: BTreeMap<String, Added>,
    /// The nodes the additions gave (path under /dev → its numbers): what `remove` takes back
    /// from the container's device filter whatever the container did to its nodes since and
    /// whether or not the host still has the device. Records of older versions have none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub granted: BTreeMap<String, Granted>,
}

/// A node given at run time, as the device filter knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Granted {
    pub class: String,
    /// `c` or `b`.
    pub kind: String,
    pub major: u64,
    pub minor: u64,
}

impl Record {
    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }

    /// The record as annotations (`io.virtpod.device.<class>` → value), for request::parse.
    pub fn annotations(&self) -> Vec<(String, String)> {
        // `false` (only a hand edit writes it) asks for nothing, as in an annotation.
        self.devices
            .iter()
            .map(|(class, added)| {
                let value = match added {
                    Added::All(all) => all.to_string(),
                    Added::Names(n) => n.join(","),
                };
                (format!("{}{class}", request::PREFIXES[0]), value)
            })
            .collect()
    }

    /// The requests the record stands for; an error names the record (a class this version no
    /// longer knows, a hand-edited value).
    pub fn requests(&self) -> Result<Vec<Request>, request::RequestError> {
        let a = self.annotations();
        request::parse(a.iter().map(|(k, v)| (k, v)))
    }

    /// Adds `req` (merged with what the class has already).
    pub fn add(&mut self, req: &Request) {
        let class = req.class.name.to_string();
        let merged = match (self.devices.remove(&class), &req.selection) {
            (Some(Added::All(_)), _) | (_, Selection::All) => Added::All(true),
            (Some(Added::Names(mut have)), Selection::Names(new)) => {
                for n in new {
                    if !have.contains(n) {
                        have.push(n.clone());
                    }
                }
                Added::Names(have)
            }
            (None, Selection::Names(new)) => Added::Names(new.clone()),
        };
        self.devices.insert(class, merged);
    }

    /// Notes a node an addition gave, for `remove`.
    pub fn granted(&mut self, class: &str, rel: &str, kind: &str, major: u64, minor: u64) {
        self.granted.insert(
            rel.to_string(),
            Granted {
                class: class.to_string(),
                kind: kind.to_string(),
                major,
                minor,
            },
        );
    }

    /// The nodes noted for `req`: the class's, or those of its names.
    pub fn granted_for(&self, req: &Request) -> Vec<(&String, &Granted)> {
        let names: Option<Vec<String>> = match &req.selection {
            Selection::All => None,
            Selection::Names(n) => Some(n.iter().filter_map(|n| req.class.rel_for(n)).collect()),
        };
        self.granted
            .iter()
            .filter(|(rel, g)| {
                g.class == req.class.name && names.as_ref().is_none_or(|n| n.contains(rel))
            })
            .collect()
    }

    /// Takes `req` out: the whole class for `All`, else the names. Returns whether the record
    /// had any of it.
    pub fn remove(&mut self, req: &Request) -> bool {
        let class = req.class.name;
        let names: Option<Vec<String>> = match &req.selection {
            Selection::All => None,
            Selection::Names(n) => Some(n.iter().filter_map(|n| req.class.rel_for(n)).collect()),
        };
        let whole = names.is_none() || matches!(self.devices.get(class), Some(Added::All(_)));
        self.granted.retain(|rel, g| {
            g.class != class || !(whole || names.as_ref().is_some_and(|n| n.contains(rel)))
        });
        match (self.devices.get_mut(class), &req.selection) {
            (None, _) => false,
            (Some(_), Selection::All) | (Some(Added::All(_)), _) => {
                self.devices.remove(class);
                true
            }
            (Some(Added::Names(have)), Selection::Names(gone)) => {
                let before = have.len();
                have.retain(|n| !gone.contains(n));
                let changed = have.len() != before;
                if have.is_empty() {
                    self.devices.remove(class);
                }
                changed
            }
        }
    }
}

/// The annotation that keeps a container's record under a name rather than its id.
pub const BY_NAME: &str = "io.virtpod.record";

/// A container id as a file name: podman's 64 hex digits, nothing else.
fn is_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A record name as podman allows container names: a letter or digit, then letters, digits,
/// `_`, `.` and `-`; at most 128.
fn is_name(name: &str) -> bool {
    name.len() <= 128
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// The key a container's record is kept under: `name=NAME` when its annotations ask for one
/// (`BY_NAME`), else its id.
pub fn key(id: &str, by_name: Option<&str>) -> Result<String> {
    match by_name.map(str::trim) {
        None | Some("") => Ok(id.to_string()),
        Some(name) if is_name(name) => Ok(format!("name={name}")),
        Some(name) => anyhow::bail!(
            "{BY_NAME}={:?}: not a record name; use a container name's characters (a letter or digit, then letters, digits, _ . -; at most 128)",
            crate::hook::log::clip(name)
        ),
    }
}

pub fn path(dir: &Path, key: &str) -> Result<PathBuf> {
    let named = key.strip_prefix("name=").is_some_and(is_name);
    anyhow::ensure!(
        named || is_id(key),
        "{key:?} is not a container id (64 hex digits) or a record name; nothing is recorded under it"
    );
    Ok(dir.join(format!("{key}.json")))
}

/// The record under `id` (a container id, or a `key` by name); an empty one when there is none.
pub fn read(dir: &Path, id: &str) -> Result<Record> {
    let path = path(dir, id)?;
    match fs::read(&path) {
        Ok(bytes) => {
            let r: Record = serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "{} is not a record of `virtpod device add`; remove it and add the devices again",
                    path.display()
                )
            })?;
            anyhow::ensure!(
                r.id == id,
                "{} belongs to {}, not {id}",
                path.display(),
                r.id
            );
            Ok(r)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Record {
            id: id.to_string(),
            ..Record::default()
        }),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Writes the record (root-only, by rename), or removes the file when nothing is left.
pub fn write(dir: &Path, record: &Record) -> Result<()> {
    let path = path(dir, &record.id)?;
    if record.is_empty() {
        return match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("removing {}", path.display()))
            }
            _ => Ok(()),
        };
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .with_context(|| format!("making {} root's only", dir.display()))?;
    let tmp = path.with_extension("json.new");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(serde_json::to_string_pretty(record)?.as_bytes())?;
    f.sync_all()?;
    fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn req(class: &str, value: &str) -> Request {
        let k = format!("io.virtpod.device.{class}");
        let v = value.to_string();
        request::parse([(&k, &v)]).unwrap().remove(0)
    }

    #[test]
    fn adds_merge_by_class_and_removes_take_names_out() {
        let mut r = Record {
            id: ID.into(),
            ..Record::default()
        };
        r.add(&req("ttyUSB", "ttyUSB7"));
        r.add(&req("ttyUSB", "ttyUSB3,ttyUSB7"));
        r.add(&req("audio", "true"));
        assert_eq!(
            r.annotations(),
            [
                ("io.virtpod.device.audio".to_string(), "true".to_string()),
                ("io.virtpod.device.ttyUSB".into(), "ttyUSB7,ttyUSB3".into())
            ]
        );
        assert_eq!(r.requests().unwrap().len(), 2);
        assert!(r.remove(&req("ttyUSB", "ttyUSB7")));
        assert!(!r.remove(&req("ttyUSB", "ttyUSB7")), "already gone");
        assert!(r.remove(&req("ttyUSB", "ttyUSB3")));
        assert!(r.remove(&req("audio", "true")));
        assert!(r.is_empty());
    }

    #[test]
    fn records_round_trip_and_vanish_when_empty() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = read(dir.path(), ID).unwrap();
        assert!(r.is_empty());
        r.add(&req("ttyACM", "ttyACM0"));
        write(dir.path(), &r).unwrap();
        let file = dir.path().join(format!("{ID}.json"));
        assert_eq!(
            fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(read(dir.path(), ID).unwrap(), r);
        r.remove(&req("ttyACM", "true"));
        write(dir.path(), &r).unwrap();
        assert!(!file.exists());
    }

    #[test]
    fn a_record_by_name_outlives_the_container_id() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(key(ID, None).unwrap(), ID);
        assert_eq!(key(ID, Some("")).unwrap(), ID);
        let k = key(ID, Some("virtpod")).unwrap();
        assert_eq!(k, "name=virtpod");
        let mut r = read(dir.path(), &k).unwrap();
        r.add(&req("ttyACM", "ttyACM0"));
        write(dir.path(), &r).unwrap();
        assert!(dir.path().join("name=virtpod.json").exists());
        let other = "f".repeat(64);
        assert_eq!(
            read(dir.path(), &key(&other, Some("virtpod")).unwrap()).unwrap(),
            r
        );
        assert!(read(dir.path(), &other).unwrap().is_empty());
        for bad in ["../x", "-x", "a/b", "", &"n".repeat(129)] {
            if bad.is_empty() {
                continue;
            }
            let e = key(ID, Some(bad)).unwrap_err().to_string();
            assert!(
                e.contains("io.virtpod.record=") && e.contains("not a record name"),
                "{e}"
            );
        }
        assert!(read(dir.path(), "name=../etc").is_err());
    }

    #[test]
    fn only_container_ids_name_records() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["../etc/passwd", "abc", "", &"g".repeat(64)] {
            assert!(read(dir.path(), bad).is_err(), "{bad:?}");
        }
        fs::write(dir.path().join(format!("{ID}.json")), "not json").unwrap();
        let e = read(dir.path(), ID).unwrap_err().to_string();
        assert!(e.contains("add the devices again"), "{e}");
    }
}
