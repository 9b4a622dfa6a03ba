//! A guest's IPv4 address from libvirt's own files: the running domain's status XML
//! (`/run/libvirt/qemu/NAME.xml`, its interfaces' MAC addresses) and the leases libvirt's dnsmasq
//! keeps per network (`/var/lib/libvirt/dnsmasq/BRIDGE.status`). No libvirt connection: the
//! forwarder runs beside the daemons, and both files are what `virsh net-dhcp-leases` reads too.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use super::rules::Target;

pub const STATUS_DIR: &str = "/run/libvirt/qemu";
pub const LEASES_DIR: &str = "/var/lib/libvirt/dnsmasq";

/// Where to look; tests point them at directories of their own.
#[derive(Debug, Clone)]
pub struct Dirs {
    pub status: PathBuf,
    pub leases: PathBuf,
}

impl Default for Dirs {
    fn default() -> Self {
        Dirs {
            status: STATUS_DIR.into(),
            leases: LEASES_DIR.into(),
        }
    }
}

/// The MAC addresses of a domain XML's `<mac address='…'/>` elements, lower case.
pub fn macs(xml: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = xml;
    while let Some(at) = rest.find("<mac ") {
        rest = &rest[at + 5..];
        let end = rest.find('>').unwrap_or(rest.len());
        let element = &rest[..end];
        if let Some(a) = element.find("address=") {
            let value = &element[a + 8..];
            if let Some(quote) = value.chars().next().filter(|c| *c == '\'' || *c == '"') {
                if let Some(close) = value[1..].find(quote) {
                    found.push(value[1..1 + close].to_ascii_lowercase());
                }
            }
        }
    }
    found
}

#[derive(Deserialize)]
struct Lease {
    #[serde(rename = "ip-address")]
    ip: String,
    #[serde(rename = "mac-address", default)]
    mac: String,
    #[serde(rename = "expiry-time", default)]
    expiry: u64,
}

/// The newest IPv4 lease of any of `macs` in one dnsmasq status file (a JSON array).
pub fn leased(status_json: &str, macs: &[String]) -> Option<(Ipv4Addr, u64)> {
    let leases: Vec<Lease> = serde_json::from_str(status_json).ok()?;
    leases
        .into_iter()
        .filter(|l| macs.contains(&l.mac.to_ascii_lowercase()))
        .filter_map(|l| Some((l.ip.parse::<Ipv4Addr>().ok()?, l.expiry)))
        .max_by_key(|(_, expiry)| *expiry)
}

/// The address a connection for `target` goes to, now.
pub fn resolve(target: &Target, dirs: &Dirs) -> Result<Ipv4Addr> {
    let name = match target {
        Target::Address(a) => return Ok(*a),
        Target::Guest(name) => name,
    };
    let status = dirs.status.join(format!("{name}.xml"));
    let xml = std::fs::read_to_string(&status).with_context(|| {
        format!(
            "guest {name:?} is not running (no {}; `virsh start {name}`)",
            status.display()
        )
    })?;
    let macs = macs(&xml);
    if macs.is_empty() {
        bail!(
            "guest {name:?} has no network interface (no <mac> in {})",
            status.display()
        );
    }
    let mut best: Option<(Ipv4Addr, u64)> = None;
    for entry in std::fs::read_dir(&dirs.leases)
        .with_context(|| format!("reading libvirt's leases in {}", dirs.leases.display()))?
    {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("status") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        if let Some(found) = leased(&text, &macs) {
            if best.is_none_or(|(_, e)| found.1 > e) {
                best = Some(found);
            }
        }
    }
    match best {
        Some((address, _)) => Ok(address),
        None => bail!(
            "guest {name:?} ({}) has no DHCP lease on a libvirt network yet (`virsh net-dhcp-leases default`); is it on a network with DHCP, and has it asked for an address?",
            macs.join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn under(root: &Path) -> Dirs {
        Dirs {
            status: root.join("status"),
            leases: root.join("leases"),
        }
    }

    const XML: &str = r#"<domstatus><domain><name>web</name><devices>
        <interface type='network'><mac address='52:54:00:7F:62:7A'/><source network='default'/></interface>
        <interface type="network"><mac address="52:54:00:00:00:02"/></interface>
        </devices></domain></domstatus>"#;

    #[test]
    fn macs_of_a_status_xml() {
        assert_eq!(macs(XML), vec!["52:54:00:7f:62:7a", "52:54:00:00:00:02"]);
        assert!(macs("<domain/>").is_empty());
    }

    #[test]
    fn the_newest_lease_of_the_guests_macs() {
        let json = r#"[
          {"ip-address": "192.168.122.15", "mac-address": "52:54:00:7f:62:7a", "expiry-time": 100},
          {"ip-address": "192.168.122.16", "mac-address": "52:54:00:7f:62:7a", "expiry-time": 200},
          {"ip-address": "fd00::5", "mac-address": "52:54:00:7f:62:7a", "expiry-time": 300},
          {"ip-address": "192.168.122.99", "mac-address": "52:54:00:99:99:99", "expiry-time": 900}
        ]"#;
        let macs = macs(XML);
        assert_eq!(
            leased(json, &macs),
            Some((Ipv4Addr::new(192, 168, 122, 16), 200))
        );
        assert_eq!(leased("not json", &macs), None);
        assert_eq!(leased("[]", &macs), None);
    }

    #[test]
    fn resolve_says_what_is_missing() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = under(tmp.path());
        std::fs::create_dir_all(&dirs.status).unwrap();
        std::fs::create_dir_all(&dirs.leases).unwrap();
        let web = Target::Guest("web".into());
        let e = format!("{:#}", resolve(&web, &dirs).unwrap_err());
        assert!(e.contains("guest \"web\" is not running"), "{e}");
        std::fs::write(dirs.status.join("web.xml"), XML).unwrap();
        let e = format!("{:#}", resolve(&web, &dirs).unwrap_err());
        assert!(e.contains("has no DHCP lease"), "{e}");
        std::fs::write(
            dirs.leases.join("virbr0.status"),
            r#"[{"ip-address": "192.168.122.15", "mac-address": "52:54:00:00:00:02", "expiry-time": 1}]"#,
        )
        .unwrap();
        assert_eq!(
            resolve(&web, &dirs).unwrap(),
            Ipv4Addr::new(192, 168, 122, 15)
        );
        let fixed = Target::Address(Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(resolve(&fixed, &dirs).unwrap(), Ipv4Addr::new(10, 0, 0, 1));
    }
}
