//! `virtpod forward`: TCP ports of the container forwarded to guests, so the host reaches a
//! service in a guest on libvirt's NAT network (`VIRTPOD_FORWARD=8080:web:80`; publish the
//! container's port 8080 with podman, and the host's 8080 reaches port 80 of the guest `web`).
//!
//! [`rules`] parses the setting (pure), [`lookup`] finds a guest's address from libvirt's own
//! files (the running domain's MAC addresses, dnsmasq's leases), [`proxy`] listens and copies.
//! A guest is looked up again at every connection, so a new lease is followed without a restart.

pub mod lookup;
pub mod proxy;
pub mod rules;

/// The setting, as init and `virtpod forward` read it.
pub const SETTING: &str = "VIRTPOD_FORWARD";

/// The TCP ports something listens on, from /proc/net/tcp and /proc/net/tcp6's text (state 0A
/// is LISTEN; the local address is HEX_IP:HEX_PORT).
pub fn listening_ports(proc_net_tcp: &str) -> std::collections::BTreeSet<u16> {
    proc_net_tcp
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (local, state) = (f.get(1)?, f.get(3)?);
            (*state == "0A").then_some(())?;
            u16::from_str_radix(local.rsplit_once(':')?.1, 16).ok()
        })
        .collect()
}

/// The rules' ports nothing listens on now: the forward is down for those.
pub fn silent_ports(setting: &str, listening: &std::collections::BTreeSet<u16>) -> Vec<u16> {
    rules::parse(setting)
        .unwrap_or_default()
        .iter()
        .map(|r| r.listen)
        .filter(|p| !listening.contains(p))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_rules_port_that_does_not_listen_is_named() {
        let tcp = "  sl  local_address rem_address   st\n\
             0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1\n\
             1: 0100007F:1F91 0100007F:9C40 01 00000000:00000000 00:00000000 00000000 0 0 2\n";
        let ports = super::listening_ports(tcp);
        assert_eq!(ports.into_iter().collect::<Vec<_>>(), [8080]);
        let listening = super::listening_ports(tcp);
        assert_eq!(
            super::silent_ports("8080:web:80,8081:db:5432", &listening),
            [8081]
        );
    }
}
