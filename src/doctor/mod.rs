//! `virtpod doctor`: checks this host for what the appliance and the hook need, and for each
//! problem names the thing and the fix.
//!
//! [`facts`] gathers what the host says (podman, limits, /dev/kvm, hook files, the socket);
//! [`checks`] turns facts into findings without touching the host, so every verdict is
//! unit-tested; this file runs them and prints the report.

pub mod checks;
pub mod facts;

use std::fmt::Write;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

/// One verdict: what was checked, what was found, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub level: Level,
    pub what: &'static str,
    pub detail: String,
    pub fix: Option<String>,
}

impl Finding {
    pub fn ok(what: &'static str, detail: impl Into<String>) -> Finding {
        Finding {
            level: Level::Ok,
            what,
            detail: detail.into(),
            fix: None,
        }
    }

    pub fn warn(what: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding {
            level: Level::Warn,
            what,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    pub fn fail(what: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding {
            level: Level::Fail,
            what,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

pub struct Options {
    /// libvirt's socket as exposed on the host.
    pub socket: PathBuf,
    /// Hook directories, as podman's --hooks-dir (empty: podman's defaults).
    pub hooks_dirs: Vec<PathBuf>,
}

pub const DEFAULT_SOCKET: &str = "/run/virtpod/libvirt-sock";

/// Every check, in the order a user would fix things.
pub fn run(o: &Options) -> Vec<Finding> {
    let podman = facts::podman();
    let mut findings = vec![checks::podman(&podman)];
    if let Ok(p) = &podman {
        findings.push(checks::runtime(
            p,
            facts::cgroup_hybrid(),
            facts::systemd_is_pid1(),
        ));
        findings.push(checks::ulimits(
            &facts::limits(),
            &facts::containers_conf_ulimits(),
            !nix::unistd::geteuid().is_root(),
        ));
    }
    findings.push(checks::kvm(&facts::kvm()));
    // Without --hooks-dir: containers.conf's hooks_dir (virtpod install's drop-in names ours
    // there), else the directories this podman reads by default.
    let hooks_dirs = match (&podman, o.hooks_dirs.is_empty()) {
        (_, false) => o.hooks_dirs.clone(),
        (podman, true) => match (facts::containers_conf_hooks_dirs(), podman) {
            (Some((dirs, _)), _) => dirs,
            (None, Ok(p)) => crate::hooks::default_dirs_for(&p.version),
            (None, Err(_)) => Vec::new(),
        },
    };
    findings.push(checks::hooks(&facts::hooks(&hooks_dirs)));
    findings.push(checks::shared_hooks_dirs(&facts::precreate_in_shared_dirs()));
    findings.push(checks::socket(&o.socket, &facts::connect(&o.socket)));
    if podman.is_ok() {
        findings.push(checks::hotplug(&facts::hotplug()));
        if nix::unistd::geteuid().is_root() {
            findings.push(checks::run_time_devices(&facts::run_time_devices(
                &Default::default(),
            )));
        }
    }
    findings
}

/// The report, and whether nothing failed.
pub fn render(findings: &[Finding]) -> (String, bool) {
    let mut out = String::new();
    for f in findings {
        let tag = match f.level {
            Level::Ok => "ok  ",
            Level::Warn => "warn",
            Level::Fail => "FAIL",
        };
        let _ = writeln!(out, "{tag}  {}: {}", f.what, f.detail);
        if let Some(fix) = &f.fix {
            let _ = writeln!(out, "      fix: {fix}");
        }
    }
    let ok = !findings.iter().any(|f| f.level == Level::Fail);
    (out, ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_fails_the_report_and_shows_its_fix() {
        let (text, ok) = render(&[
            Finding::ok("podman", "4.3.1"),
            Finding::fail("socket", "gone", "start it"),
        ]);
        assert!(!ok);
        assert_eq!(
            text,
            "ok    podman: 4.3.1\nFAIL  socket: gone\n      fix: start it\n"
        );
        let (_, ok) = render(&[Finding::warn("kvm", "slow", "enable it")]);
        assert!(ok);
    }
}
