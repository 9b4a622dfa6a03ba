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
