//! What the container gets: device nodes with the image's group (rootful), or bind mounts of
//! the host's nodes the invoking user may open (user namespace). Pure, given what was found.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::discover::{BindMount, Found, Node};

/// One device node for the container, with its final owner group and mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub node: Node,
    pub gid: u32,
    pub mode: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The runtime creates nodes (linux.devices) and allows them in the device cgroup.
    Nodes,
    /// A user namespace: nodes cannot be created, host nodes are bind-mounted.
    Binds,
}

#[derive(Debug, Default)]
pub struct Plan {
    pub grants: Vec<Grant>,
    pub binds: Vec<BindMount>,
    /// Said to the user (stderr and log) at warning level.
    pub warnings: Vec<String>,
    /// Every decision, logged at info level.
    pub decisions: Vec<String>,
}

/// `groups` is the image's /etc/group (or why it could not be read); `may_open` says whether
/// the invoking user may open a host node read-write.
pub fn plan(
    found: Vec<Found>,
    mode: Mode,
    groups: &Result<HashMap<String, u32>, String>,
    may_open: impl Fn(&Path) -> bool,
) -> Plan {
    let mut p = Plan::default();
    if let (Mode::Nodes, Err(e)) = (mode, groups) {
        let roles = found
            .iter()
            .flat_map(|f| &f.nodes)
            .any(|n| n.group.is_some());
        if roles {
            p.warnings.push(format!(
                "cannot read the image's groups ({e}); nodes keep the host's gid"
            ));
        }
    }
    // A node two classes cover (or one found twice) is decided once, and said once.
    let mut seen = HashSet::new();
    for f in found {
        p.warnings.extend(f.warnings);
        for node in f.nodes {
            if !seen.insert(node.rel.clone()) {
                continue;
            }
            let path = node.container_path();
            match mode {
                Mode::Binds => {
                    if !may_open(&node.host) {
                        // No owner in the message: inside rootless podman's user namespace
                        // the host's owner shows as an unmapped id, which would mislead.
                        p.warnings.push(format!(
                            "{}: {} (mode {:04o}) cannot be opened by this user, so it is not given; \
                             give the user access on the host (see `ls -l {}`: its group, or an ACL)",
                            node.class, node.host.display(), node.mode, node.host.display()
                        ));
                        continue;
                    }
                    p.decisions.push(format!(
                        "{}: bind-mount {} (user namespace: the host's owner and mode stay)",
                        node.class,
                        node.host.display()
                    ));
                    p.grants.push(Grant {
                        gid: node.gid,
                        mode: node.mode,
                        node,
                    });
                }
                Mode::Nodes => {
                    let (gid, mode, why) = match (node.group, groups) {
                        (None, _) => (node.gid, node.mode, "no group role, host's gid".to_string()),
                        (Some(g), Ok(map)) => match map.get(g) {
                            // The point of the group is that it can open the node: where the
                            // host gives its group less than its owner (no udev rule), the
                            // image's group gets the owner's access.
                            Some(gid) => (
                                *gid,
                                node.mode | (node.mode & 0o600) >> 3,
                                format!("group {g} of the image"),
                            ),
                            None => {
                                p.warnings.push(format!(
                                    "{}: the image has no group {g}; {path} keeps the host's gid {}",
                                    node.class, node.gid
                                ));
                                (
                                    node.gid,
                                    node.mode,
                                    format!("no group {g} in the image, host's gid"),
                                )
                            }
                        },
                        (Some(g), Err(e)) => {
                            p.warnings.push(format!(
                                "{}: cannot read the image's groups ({e}); {path} keeps the host's gid {} instead of group {g}",
                                node.class, node.gid
                            ));
                            (
                                node.gid,
                                node.mode,
                                "image groups unreadable, host's gid".to_string(),
                            )
                        }
                    };
                    p.decisions.push(format!(
                        "{}: {path} {} {}:{} mode {mode:04o} gid {gid} ({why})",
                        node.class,
                        node.kind.letter(),
                        node.major,
                        node.minor
                    ));
                    p.grants.push(Grant { node, gid, mode });
                }
            }
        }
        for b in f.binds {
            if !p.binds.contains(&b) {
                p.decisions.push(format!(
                    "bind {} at {}{}",
                    b.host.display(),
                    b.dest,
                    if b.read_only { " read-only" } else { "" }
                ));
                p.binds.push(b);
            }
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kvm(mode: u32) -> Found {
        Found {
            nodes: vec![Node::test_kvm(mode)],
            ..Found::default()
        }
    }

    #[test]
    fn rootful_takes_the_image_group_and_gives_it_access() {
        let groups = Ok(HashMap::from([("kvm".to_string(), 104)]));
        let p = plan(vec![kvm(0o600)], Mode::Nodes, &groups, |_| true);
        assert_eq!((p.grants[0].gid, p.grants[0].mode), (104, 0o660));
        let p = plan(vec![kvm(0o666)], Mode::Nodes, &groups, |_| true);
        assert_eq!(p.grants[0].mode, 0o666);
    }

    #[test]
    fn a_missing_group_keeps_the_host_gid_and_says_so() {
        let p = plan(vec![kvm(0o660)], Mode::Nodes, &Ok(HashMap::new()), |_| true);
        assert_eq!((p.grants[0].gid, p.grants[0].mode), (0, 0o660));
        assert!(
            p.warnings[0].contains("the image has no group kvm"),
            "{:?}",
            p.warnings
        );
    }

    #[test]
    fn user_namespace_gives_only_what_the_user_may_open() {
        let p = plan(vec![kvm(0o600)], Mode::Binds, &Ok(HashMap::new()), |_| {
            false
        });
        assert!(p.grants.is_empty());
        assert!(
            p.warnings[0].contains("cannot be opened by this user"),
            "{:?}",
            p.warnings
        );
        let p = plan(
            vec![kvm(0o600), kvm(0o600)],
            Mode::Binds,
            &Ok(HashMap::new()),
            |_| true,
        );
        assert_eq!(p.grants.len(), 1);
    }
}
