//! `virtpod health`: for HEALTHCHECK and quadlet `HealthCmd`. Healthy only when every service
//! init runs is ready and libvirt answers a real call.

use std::path::Path;

use anyhow::{bail, Context, Result};

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

/// Ready with its process alive, or not started yet while init listens on its sockets (it
/// starts at its first client, as a socket-activated daemon does on a host).
fn serving(svc: &ServiceState) -> bool {
    match svc.state.as_str() {
        "listening" => true,
        "ready" => svc.pid.is_some_and(|pid| {
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
        }),
        _ => false,
    }
}

/// `3 services ready`, or `1 service ready, 2 listening (virtlockd, virtlogd)`.
fn summary(services: &std::collections::BTreeMap<String, ServiceState>) -> String {
    let listening: Vec<&str> = services
        .iter()
        .filter(|(_, s)| s.state == "listening")
        .map(|(name, _)| name.as_str())
        .collect();
    let ready = services.len() - listening.len();
    let mut s = format!("{ready} service{} ready", if ready == 1 { "" } else { "s" });
    if !listening.is_empty() {
        s.push_str(&format!(
            ", {} listening ({})",
            listening.len(),
            listening.join(", ")
        ));
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
        .filter(|(_, svc)| !serving(svc))
        .map(|(name, svc)| describe(name, svc))
        .collect();
    if !not_ready.is_empty() {
        bail!("{}", not_ready.join("; "));
    }
    if !st.libvirt_ready {
        bail!("libvirt has not answered yet");
    }
    if let Some(setting) = std::env::var(crate::forward::SETTING)
        .ok()
        .filter(|s| !s.is_empty())
    {
        let text = ["/proc/net/tcp", "/proc/net/tcp6"]
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .collect::<Vec<_>>()
            .join("\n");
        let silent =
            crate::forward::silent_ports(&setting, &crate::forward::listening_ports(&text));
        if !silent.is_empty() {
            let ports: Vec<String> = silent.iter().map(u16::to_string).collect();
            bail!(
                "{}: nothing listens on the container's port {} (the forward is down; init's log says why)",
                crate::forward::SETTING,
                ports.join(", ")
            );
        }
    }
    // libvirt is asked by the helper, so that this command, like PID 1, never loads it.
    let exe = std::env::current_exe().context("finding this binary")?;
    let helper = super::helpers::locate(&exe);
    let out = std::process::Command::new(&helper)
        .arg("version")
        .stdin(std::process::Stdio::null())
        .output()
        .with_context(|| format!("running {}", helper.display()))?;
    if !out.status.success() {
        bail!("{}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(format!(
        "ok: {}, libvirt {}",
        summary(&st.services),
        String::from_utf8_lossy(&out.stdout).trim()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_services_are_healthy_and_named_in_the_summary() {
        let svc = |state: &str, pid| ServiceState {
            state: state.into(),
            pid,
            ..Default::default()
        };
        let mut services = std::collections::BTreeMap::new();
        services.insert("libvirtd".to_string(), svc("ready", Some(1)));
        services.insert("virtlogd".to_string(), svc("listening", None));
        services.insert("virtlockd".to_string(), svc("listening", None));
        assert!(services.values().all(serving));
        assert_eq!(
            summary(&services),
            "1 service ready, 2 listening (virtlockd, virtlogd)"
        );
        services.insert("dbus".to_string(), svc("backoff", None));
        assert!(!serving(&services["dbus"]));
        services.retain(|_, s| s.state == "ready");
        assert_eq!(summary(&services), "1 service ready");
    }

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
