//! `virtpod hook`: the host-side OCI hook that gives a container the devices its annotations
//! ask for.
//!
//! The pieces, from data to I/O: [`class`] is the catalog of device classes, [`request`] turns
//! annotations into requests, [`discover`] finds the matching nodes on the host (and refuses
//! anything that is not a device under /dev), [`groups`] reads the image's /etc/group (bounded,
//! no link followed), [`plan`] decides what the container gets, [`edit`] writes that into the
//! OCI config, and [`stage`] runs one hook stage end to end. [`sysctl`] makes /proc/sys/net
//! writable for a container with a network of its own (`io.virtpod.sysctl.net=rw`); kernel
//! modules asked for (`io.virtpod.module.NAME`) are [`crate::modules`]'. [`log`] escapes what it
//! writes. Our hook definitions are installed by `crate::install::hook_files`.

pub mod added;
pub mod class;
pub mod discover;
pub mod edit;
pub mod groups;
pub mod log;
pub mod nodes;
pub mod plan;
pub mod request;
pub mod stage;
pub mod sysctl;

/// Where the hook looks for things on the host. Tests point these at temporary directories.
#[derive(Debug, Clone)]
pub struct HostPaths {
    /// The host's device directory; its nodes appear under /dev in the container.
    pub dev: std::path::PathBuf,
    /// sysfs, to resolve USB vendor:product selections.
    pub sys: std::path::PathBuf,
    /// udev's database, bound read-only for `usb` and `udev` so libvirt sees ID_VENDOR_ID.
    pub udev: std::path::PathBuf,
    /// Where the hook records what it gave each container, for poststop.
    pub state: std::path::PathBuf,
    /// Where `virtpod device add` records what it added to each container; the precreate hook
    /// gives it again at every start (hook::added).
    pub added: std::path::PathBuf,
    /// Kernel modules a container may ask for beyond `modules::ALLOWED` (the hook's
    /// `--allow-module`, the host administrator's choice).
    pub allow_modules: Vec<String>,
    /// The program that loads them; None: the host's modprobe.
    pub modprobe: Option<std::path::PathBuf>,
}

impl Default for HostPaths {
    fn default() -> Self {
        HostPaths {
            dev: "/dev".into(),
            sys: "/sys".into(),
            udev: "/run/udev".into(),
            state: "/run/virtpod-hook".into(),
            added: added::DEFAULT_DIR.into(),
            allow_modules: Vec::new(),
            modprobe: None,
        }
    }
}
