//! What to do with the guests when the container stops and starts (libvirt-guests semantics):
//! plain data, read from the settings by init and applied by the libvirt helper.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnShutdown {
    Shutdown,
    Suspend,
    Destroy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnBoot {
    Start,
    Ignore,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub on_shutdown: OnShutdown,
    pub on_boot: OnBoot,
    /// The whole stop's budget for the guests: those still running after it are destroyed.
    pub shutdown_timeout: Duration,
    /// How many guests shut down at once; `0`: all of them.
    pub parallel: usize,
}
