//! The container's environment for systemd's services. systemd as PID 1 gives its services only
//! its own environment plus `systemd.setenv=` from its command line; the variables podman set
//! (`-e`, compose `environment:`) stay with PID 1. `virtpod systemd-env` reads them back from
//! PID 1 and sets them on the manager, with the same rules as `virtpod init`: every variable but
//! the service-manager protocol's own, and `systemd.setenv=` wins over the container's value.

use std::collections::BTreeSet;

/// Variables that belong to the service-manager protocol between systemd and one process; a
/// copy in every service would make each of them think it was meant.
const PROTOCOL: &[&str] = &[
    "NOTIFY_SOCKET",
    "LISTEN_PID",
    "LISTEN_FDS",
    "LISTEN_FDNAMES",
];

/// What to hand the manager, and what was left out and why.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// `NAME=VALUE`, in PID 1's order: the argument of `SetEnvironment`.
    pub set: Vec<String>,
    /// (name, why) of each variable not passed on.
    pub skipped: Vec<(String, &'static str)>,
}

/// `environ` and `cmdline` are PID 1's /proc files: NUL-separated.
pub fn plan(environ: &[u8], cmdline: &[u8]) -> Plan {
    let from_cmdline = setenv_names(cmdline);
    let mut plan = Plan::default();
    for entry in environ.split(|b| *b == 0).filter(|e| !e.is_empty()) {
        let entry = String::from_utf8_lossy(entry);
        let Some((name, value)) = entry.split_once('=') else {
            plan.skipped.push((entry.into_owned(), "not NAME=VALUE"));
            continue;
        };
        let why = if PROTOCOL.contains(&name) {
            Some("systemd's own protocol with one process")
        } else if from_cmdline.contains(name) {
            Some("systemd.setenv= on the command line sets it")
        } else if !valid_name(name) {
            Some("not a variable name systemd accepts")
        } else if !valid_value(value) {
            Some("its value is not UTF-8 or holds control characters")
        } else {
            None
        };
        match why {
            Some(why) => plan.skipped.push((name.to_string(), why)),
            None => plan.set.push(entry.into_owned()),
        }
    }
    plan
}

/// Names given by `systemd.setenv=NAME=VALUE` arguments (systemd applies those itself).
fn setenv_names(cmdline: &[u8]) -> BTreeSet<String> {
    cmdline
        .split(|b| *b == 0)
        .filter_map(|arg| std::str::from_utf8(arg).ok())
        .filter_map(|arg| arg.strip_prefix("systemd.setenv="))
        .filter_map(|pair| pair.split_once('=').map(|(name, _)| name.to_string()))
        .collect()
}

/// systemd's rule (env_name_is_valid): letters, digits and '_', not starting with a digit.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// systemd refuses the whole call for one bad value; it accepts UTF-8 without control
/// characters other than tab and newline. (A lossy conversion shows as U+FFFD: refused too.)
fn valid_value(value: &str) -> bool {
    !value.contains('\u{FFFD}')
        && value
            .chars()
            .all(|c| !c.is_control() || c == '\t' || c == '\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nul(parts: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in parts {
            out.extend_from_slice(p.as_bytes());
            out.push(0);
        }
        out
    }

    #[test]
    fn passes_the_containers_variables_in_order() {
        let p = plan(
            &nul(&[
                "PATH=/usr/bin",
                "VIRTPOD_SOCKET_GID=1000",
                "container=podman",
                "EMPTY=",
            ]),
            &nul(&["/sbin/init"]),
        );
        assert_eq!(
            p.set,
            [
                "PATH=/usr/bin",
                "VIRTPOD_SOCKET_GID=1000",
                "container=podman",
                "EMPTY="
            ]
        );
        assert!(p.skipped.is_empty());
    }

    #[test]
    fn the_command_lines_setenv_wins() {
        let p = plan(
            &nul(&["A=container", "B=container"]),
            &nul(&["/sbin/init", "systemd.setenv=A=cmdline", "systemd.unit=x"]),
        );
        assert_eq!(p.set, ["B=container"]);
        assert_eq!(p.skipped[0].0, "A");
        assert!(p.skipped[0].1.contains("systemd.setenv="));
    }

    #[test]
    fn protocol_variables_and_what_systemd_refuses_stay_out() {
        let mut environ = nul(&[
            "NOTIFY_SOCKET=/run/notify",
            "LISTEN_FDS=3",
            "1BAD=x",
            "CTRL=a\x07b",
            "noequals",
        ]);
        environ.extend_from_slice(b"BIN=\xff\0OK=yes\0");
        let p = plan(&environ, b"");
        assert_eq!(p.set, ["OK=yes"]);
        let names: Vec<&str> = p.skipped.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "NOTIFY_SOCKET",
                "LISTEN_FDS",
                "1BAD",
                "CTRL",
                "noequals",
                "BIN"
            ]
        );
    }

    #[test]
    fn tab_and_newline_are_values_systemd_takes() {
        let p = plan(&nul(&["MULTI=a\tb\nc"]), b"");
        assert_eq!(p.set, ["MULTI=a\tb\nc"]);
    }
}
