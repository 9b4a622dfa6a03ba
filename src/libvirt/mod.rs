//! What virtpod knows about libvirt: its configuration files, its sockets, its guests and the
//! work done with its API (`guests`, `tasks`: the only code that links libvirt, run by the
//! `virtpod-libvirt` binary).

pub mod conf;
#[cfg(feature = "libvirt")]
pub mod guests;
#[cfg(feature = "libvirt")]
pub mod login;
pub mod policy;
pub mod sockets;
#[cfg(feature = "libvirt")]
pub mod tasks;

/// The URI init and `virtpod health` use inside the container.
pub const URI: &str = "qemu:///system";
