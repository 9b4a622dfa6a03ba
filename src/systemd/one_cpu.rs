//! libvirt's qemu daemon on one CPU until libvirt first answers, in the systemd variant, as
//! `one_cpu_at_start` does under `virtpod init` (src/init/cpus.rs says why: libvirt keeps its
//! probe of qemu's capabilities only while the CPUID data it reads is the same, and that data
//! holds the id of the CPU that read it). systemd cannot do it by itself: `CPUAffinity=` is a
//! fixed list, which may not even be the container's, and stays for the daemon's whole life.
//! systemd/libvirtd.service.d/virtpod-cpu.conf runs [`exec_on_one_cpu`] as the daemon's
//! ExecStart and [`give_back_when_ready`] as its ExecStartPost.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::init::{cpus, helpers};

/// Runs `argv` in this process (its pid, so systemd's notify and MAINPID stay right) on the
/// first of this process's CPUs, or on all of them without /dev/kvm. Returns only when the
/// exec fails.
pub fn exec_on_one_cpu(argv: &[std::ffi::OsString]) -> anyhow::Error {
    let Some((program, args)) = argv.split_first() else {
        return anyhow::anyhow!("no program to run");
    };
    if let Some((one, _)) = cpus::for_start() {
        if let Err(e) = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &one) {
            tracing::warn!("staying on every CPU: {e}");
        }
    }
    let e = Command::new(program).args(args).exec();
    anyhow::Error::new(e).context(format!("executing {}", Path::new(program).display()))
}

/// Waits until libvirt answers (the helper's `ready`, at most `within`), then gives every
/// thread in the container still on the first CPU alone all of this process's CPUs: the
/// daemon's threads, and what it started meanwhile (dnsmasq, re-parented to systemd). Returns
/// how many threads it gave back; at once without /dev/kvm, where nothing was pinned.
pub fn give_back_when_ready(exe: &Path, within: Duration) -> Result<usize> {
    let Some((one, all)) = cpus::for_start() else {
        return Ok(0);
    };
    let helper = helpers::locate(exe);
    let mut child = Command::new(&helper)
        .arg("ready")
        .stdin(Stdio::null())
        .spawn()
        .with_context(|| format!("running {}", helper.display()))?;
    let deadline = Instant::now() + within;
    let answered = loop {
        if let Some(status) = child.try_wait()? {
            break status.success();
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break false;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // Given back either way: a daemon kept on one CPU for good is worse than a probe again.
    let given = cpus::give_back(&one, &all, 1);
    if !answered {
        bail!(
            "libvirt did not answer within {within:?}; gave every CPU back to {given} threads anyway"
        );
    }
    Ok(given)
}
