//! `virtpod health`: for HEALTHCHECK and quadlet `HealthCmd`. Healthy only when every service
//! init runs is ready and libvirt answers a real call.

use std::path::Path;

use anyhow::{bail, Result};

use super::state::{self, ServiceState};

/// `libvirtd is backoff (restarted 3 times): exit code 1; last output: "…" | "…"`
pub fn describe(name: &str, svc: &ServiceState) -> String {
    let mut s = format!("{name} is {}", svc.state);
    if svc.restarts > 0 {
        s.push_str(&format!(" (restarted {} times)", svc.restarts));
    }
    if let Some(why) = &svc.why {
        s.push_str(&format!(": {why}"));
    }
    if !svc.last_output.is_empty() {
        let lines: Vec<String> = svc.last_output.iter().map(|l| format!("{l:?}")).collect();
        s.push_str(&format!("; last output: {}", lines.join(" | ")));
    }
    s
}

/// Ok with a one-line summary, or an error that says what is wrong.
pub fn check(state_path: &Path) -> Result<String> {
    let st = state::read(state_path)?;
    if st.stopping {
        bail!("stopping");
    }
    let not_ready: Vec<String> = st
        .services
        .iter()
        .filter(|(_, svc)| {
            let alive = svc.pid.is_some_and(|pid| {
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
            });
            svc.state != "ready" || !alive
        })
        .map(|(name, svc)| describe(name, svc))
        .collect();
    if !not_ready.is_empty() {
        bail!("{}", not_ready.join("; "));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_service_is_described_with_its_cause() {
        let svc = ServiceState {
            state: "backoff".into(),
            pid: None,
            restarts: 3,
            why: Some("exit code 1".into()),
            last_output: vec!["error: cannot bind".into()],
        };
        assert_eq!(
            describe("libvirtd", &svc),
            "libvirtd is backoff (restarted 3 times): exit code 1; last output: \"error: cannot bind\""
        );
    }
}
