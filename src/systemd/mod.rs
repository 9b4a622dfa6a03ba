//! The systemd variant of the appliance (systemd as PID 1, docs/modes.md): what virtpod does
//! there that systemd does not do by itself.
//!
//! [`env`] decides which of the container's variables the manager hands its services (data
//! only); [`manager`] talks to systemd over D-Bus; [`one_cpu`] keeps libvirtd's probe of qemu
//! valid across starts.

pub mod env;
pub mod manager;
pub mod one_cpu;
