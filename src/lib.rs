//! virtpod: libvirt in a container.
//!
//! `init` is PID 1 inside the appliance image; `hook` is the host-side OCI hook that gives a
//! container its devices; `hooks` reads oci-hooks(5) definitions as podman does; `libvirt`
//! holds what virtpod knows about libvirt itself (its configuration files, its guests);
//! `doctor` checks a host for what the appliance and the hook need; `cdi` writes the hook's
//! device classes as a CDI spec; `device` gives a running container devices at run time (its device filter through `cgroup`, v1 or v2); `forward` forwards the container's TCP ports to guests; `logins` throttles the web console's password logins; `modules` loads the host kernel modules a container asks for (by the hook); `install` puts the host side (binary, hook definitions, man
//! pages, completions) onto a host. The binary in `main.rs` is a thin clap layer.
//!
//! Only `libvirt::guests` and `libvirt::tasks` speak libvirt, for the `virtpod-libvirt` binary
//! (src/bin), which init runs for its libvirt work: the `virtpod` binary never loads libvirt,
//! whatever it was built with. The `libvirt` feature (default) builds that binary; without it
//! (`--no-default-features`) nothing needs libvirt's headers. The `systemd` feature (default)
//! is `systemd-env`, for the image's systemd variant; it brings zbus.

pub mod cdi;
pub mod cgroup;
pub mod device;
pub mod doctor;
pub mod files;
pub mod forward;
pub mod hook;
pub mod hooks;
pub mod init;
pub mod install;
pub mod libvirt;
pub mod logging;
pub mod logins;
pub mod modules;
#[cfg(feature = "systemd")]
pub mod systemd;
pub mod userns;
