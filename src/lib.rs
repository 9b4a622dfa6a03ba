//! virtpod: libvirt in a container.
//!
//! `init` is PID 1 inside the appliance image; `libvirt` holds what virtpod knows about libvirt
//! itself (its configuration files, its guests). The binary in `main.rs` is a thin clap layer.

pub mod hooks;
pub mod init;
pub mod libvirt;
pub mod logging;
