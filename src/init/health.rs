//! `virtpod health`: for HEALTHCHECK and quadlet `HealthCmd`. Healthy only when every service
//! init runs is ready and libvirt answers a real call.

use std::path::Path;

use anyhow::{bail, Result};

use super::state;

/// Ok with a one-line summary, or an error that says what is wrong.
pub fn check(state_path: &Path) -> Result<String> {
    let st = state::read(state_path)?;
    if st.stopping {
        bail!("stopping");
    }
    let mut not_ready = Vec::new();
    for (name, svc) in &st.services {
        let alive = svc.pid.is_some_and(|pid| {
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
        });
        if svc.state != "ready" || !alive {
            not_ready.push(format!("{name} is {}", svc.state));
        }
    }
    if !not_ready.is_empty() {
        bail!("{}", not_ready.join(", "));
    }
    if !st.libvirt_ready {
        bail!("libvirt has not answered yet");
    }
    let mut conn = virt::connect::Connect::open(Some(crate::libvirt::URI))
        .map_err(|e| anyhow::anyhow!("libvirt does not answer on {}: {e}", crate::libvirt::URI))?;
    let version = conn.get_lib_version()?;
    let _ = conn.close();
    Ok(format!(
        "ok: {} services ready, libvirt {}.{}.{}",
        st.services.len(),
        version / 1_000_000,
        version / 1000 % 1000,
        version % 1000
    ))
}
