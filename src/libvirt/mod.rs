//! What virtpod knows about libvirt: its configuration files, its sockets and its guests.

pub mod conf;
#[cfg(feature = "libvirt")]
pub mod guests;
pub mod sockets;

/// The URI init and `virtpod health` use inside the container.
pub const URI: &str = "qemu:///system";
