//! The device classes a container may ask for, as data.

/// Which names in a directory (relative to the device root) belong to a class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Name {
    Exact(&'static str),
    Prefix(&'static str),
    /// Every node in the directory and, recursively, below it.
    Tree,
}

#[derive(Debug, Clone, Copy)]
pub struct Nodes {
    /// Directory under the device root ("" for the root itself).
    pub dir: &'static str,
    pub name: Name,
    /// The group that owns nodes of this kind in an image (looked up by name in its /etc/group).
    pub group: Option<&'static str>,
}

/// A directory bound into the container as it is on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bind {
    /// udev's database (/run/udev), read-only.
    Udev,
    /// A directory under the device root, read-write (e.g. hugepages).
    Dev(&'static str),
}

#[derive(Debug)]
pub struct Class {
    pub name: &'static str,
    pub nodes: &'static [Nodes],
    pub binds: &'static [Bind],
}

const fn n(dir: &'static str, name: Name, group: Option<&'static str>) -> Nodes {
    Nodes { dir, name, group }
}

use Name::{Exact, Prefix, Tree};

const KVM: Option<&str> = Some("kvm");
const TTYS: [Nodes; 8] = [
    n("", Exact("tty0"), Some("tty")),
    n("", Exact("tty1"), Some("tty")),
    n("", Exact("tty2"), Some("tty")),
    n("", Exact("tty3"), Some("tty")),
    n("", Exact("tty4"), Some("tty")),
    n("", Exact("tty5"), Some("tty")),
    n("", Exact("tty6"), Some("tty")),
    n("", Exact("tty7"), Some("tty")),
];

/// Every class, in the order they are documented.
pub static CLASSES: &[Class] = &[
    Class {
        name: "kvm",
        nodes: &[n("", Exact("kvm"), KVM)],
        binds: &[],
    },
    Class {
        name: "vhost-net",
        nodes: &[n("", Exact("vhost-net"), KVM)],
        binds: &[],
    },
    Class {
        name: "vhost-vsock",
        nodes: &[n("", Exact("vhost-vsock"), KVM)],
        binds: &[],
    },
    Class {
        name: "tun",
        nodes: &[n("net", Exact("tun"), None)],
        binds: &[],
    },
    Class {
        name: "usb",
        nodes: &[n("bus/usb", Tree, None)],
        binds: &[Bind::Udev],
    },
    Class {
        name: "udev",
        nodes: &[],
        binds: &[Bind::Udev],
    },
    Class {
        name: "ttys",
        nodes: &TTYS,
        binds: &[],
    },
    Class {
        name: "ttyUSB",
        nodes: &[n("", Prefix("ttyUSB"), Some("dialout"))],
        binds: &[],
    },
    Class {
        name: "ttyACM",
        nodes: &[n("", Prefix("ttyACM"), Some("dialout"))],
        binds: &[],
    },
    Class {
        name: "audio",
        nodes: &[n("snd", Tree, Some("audio"))],
        binds: &[],
    },
    Class {
        name: "video",
        nodes: &[
            n("", Prefix("video"), Some("video")),
            n("", Prefix("media"), Some("video")),
        ],
        binds: &[],
    },
    Class {
        name: "input",
        nodes: &[n("input", Tree, Some("input"))],
        binds: &[],
    },
    Class {
        name: "dvb",
        nodes: &[n("dvb", Tree, Some("video"))],
        binds: &[],
    },
    Class {
        name: "radio",
        nodes: &[n("", Prefix("radio"), Some("video"))],
        binds: &[],
    },
    Class {
        name: "dri",
        nodes: &[
            n("dri", Prefix("card"), Some("video")),
            n("dri", Prefix("renderD"), Some("render")),
        ],
        binds: &[],
    },
    Class {
        name: "vfio",
        nodes: &[n("vfio", Tree, None)],
        binds: &[],
    },
    Class {
        name: "hugepages",
        nodes: &[],
        binds: &[Bind::Dev("hugepages")],
    },
    Class {
        name: "fuse",
        nodes: &[n("", Exact("fuse"), None)],
        binds: &[],
    },
];

pub fn find(name: &str) -> Option<&'static Class> {
    CLASSES.iter().find(|c| c.name == name)
}

pub fn names() -> String {
    CLASSES
        .iter()
        .map(|c| c.name)
        .collect::<Vec<_>>()
        .join(", ")
}

impl Nodes {
    /// Does `rel` (a path relative to the device root, '/'-separated) belong here?
    pub fn matches(&self, rel: &str) -> bool {
        let (dir, file) = match rel.rsplit_once('/') {
            Some((d, f)) => (d, f),
            None => ("", rel),
        };
        match self.name {
            Exact(e) => dir == self.dir && file == e,
            Prefix(p) => dir == self.dir && file.starts_with(p) && file.len() > p.len(),
            Tree => {
                !self.dir.is_empty()
                    && rel.starts_with(self.dir)
                    && rel[self.dir.len()..].starts_with('/')
            }
        }
    }
}

impl Class {
    /// The entry of this class a path belongs to, if any.
    pub fn entry_for(&self, rel: &str) -> Option<&'static Nodes> {
        self.nodes.iter().find(|n| n.matches(rel))
    }

    /// The path under the device root a selected name means, if it belongs to the class:
    /// "ttyUSB0" as is, "controlC0" as "snd/controlC0", "001/002" as "bus/usb/001/002".
    pub fn rel_for(&'static self, name: &str) -> Option<String> {
        std::iter::once(name.to_string())
            .chain(
                self.nodes
                    .iter()
                    .filter(|n| !n.dir.is_empty())
                    .map(|n| format!("{}/{name}", n.dir)),
            )
            .find(|rel| self.entry_for(rel).is_some())
    }

    /// Whether a selected name belongs to the class: `rel_for(name).is_some()`, without an
    /// allocation per name (`scratch` is reused), for lists of any length.
    pub fn selects(&self, name: &str, scratch: &mut String) -> bool {
        self.entry_for(name).is_some()
            || self.nodes.iter().filter(|n| !n.dir.is_empty()).any(|n| {
                scratch.clear();
                scratch.push_str(n.dir);
                scratch.push('/');
                scratch.push_str(name);
                self.entry_for(scratch).is_some()
            })
    }

    /// Example names for error messages ("ttyUSB0", "snd/…").
    pub fn example(&self) -> String {
        match self.nodes.first() {
            None => "no device nodes (use true or false)".into(),
            Some(n) => {
                let name = match n.name {
                    Exact(e) => e.to_string(),
                    Prefix(p) => format!("{p}0"),
                    Tree => "…".into(),
                };
                if n.dir.is_empty() {
                    name
                } else {
                    format!("{}/{name}", n.dir)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_belong_to_their_class_only() {
        let tty_usb = find("ttyUSB").unwrap();
        assert!(tty_usb.entry_for("ttyUSB0").is_some());
        assert!(tty_usb.entry_for("ttyUSB").is_none());
        assert!(tty_usb.entry_for("tty0").is_none());
        let usb = find("usb").unwrap();
        assert!(usb.entry_for("bus/usb/001/002").is_some());
        assert!(usb.entry_for("bus/usbx/001").is_none());
        let dri = find("dri").unwrap();
        assert_eq!(
            dri.entry_for("dri/renderD128").unwrap().group,
            Some("render")
        );
        assert_eq!(dri.entry_for("dri/card0").unwrap().group, Some("video"));
        assert!(find("ttys").unwrap().entry_for("tty8").is_none());
        let mut scratch = String::new();
        for class in CLASSES {
            for name in [
                "kvm",
                "ttyUSB0",
                "controlC0",
                "snd/controlC0",
                "001/002",
                "card0",
                "x",
            ] {
                assert_eq!(
                    class.selects(name, &mut scratch),
                    class.rel_for(name).is_some(),
                    "{} {name}",
                    class.name
                );
            }
        }
    }
}
