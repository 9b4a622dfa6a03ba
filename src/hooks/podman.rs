//! What podman itself puts into a container before it matches hooks: annotations of its own and,
//! with `--init`, another `process.args[0]`. A hook whose `when` depends on them runs or not
//! according to the podman version and the `podman run` options, so `explain` models both.
//!
//! podman matches hooks against the annotations of the container's stored spec while it
//! generates the runtime config at each start, after it has added the start-time ones (the
//! stop signal, the container manager, in 4.x the creation time): they alias the same map, so a
//! hook sees them. Measured through real podman 4.3.1 and 5.4.2 (tests/e2e/hooks.rs), and read
//! in podman's source (pkg/specgenutil/specgen.go, pkg/specgen/generate/{container,oci_linux,
//! namespaces_linux}.go, libpod/container_internal_common.go); docs/hooks.md has the table.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use super::when::Container;

/// A podman release, as far as annotations are concerned: major and minor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
}

impl Version {
    /// Debian 12's podman, the default when nothing else is known.
    pub const DEBIAN_12: Version = Version::new(4, 3);

    pub const fn new(major: u32, minor: u32) -> Version {
        Version { major, minor }
    }

    /// Before 4.4, every container carries TRUE/FALSE for --rm, --init, --privileged and -P, its
    /// TTY setting and its creation time; 4.4 dropped them all.
    fn records_false(self) -> bool {
        self < Version::new(4, 4)
    }
}

impl FromStr for Version {
    type Err = String;

    /// `MAJOR.MINOR` or `MAJOR.MINOR.PATCH` (patch releases change no annotation). A bare major
    /// is refused: 4.3 and 4.9 differ.
    fn from_str(s: &str) -> Result<Version, String> {
        let bad = || format!("{s:?}: expected a podman version such as 4.3 or 5.4.2");
        let mut parts = s.trim().trim_start_matches('v').split('.');
        let major = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let minor = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        // A patch may carry a suffix (5.4.2+ds1, 4.3.1-dev); only its presence is checked.
        if parts.next().is_some_and(|p| p.is_empty()) || parts.next().is_some() {
            return Err(bad());
        }
        if major < 4 {
            return Err(format!(
                "{s:?}: podman before 4.0 is not modelled (it has no precreate stage either)"
            ));
        }
        Ok(Version::new(major, minor))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The version of the `podman` on PATH (`podman --version` prints "podman version 4.3.1"), or
/// `None` when there is none or it says something else.
pub fn installed_version() -> Option<Version> {
    let out = std::process::Command::new("podman")
        .arg("--version")
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace().last()?.parse().ok()
}

/// The version to model when the user names none: the installed podman's, else Debian 12's.
pub fn default_version() -> Version {
    installed_version().unwrap_or(Version::DEBIAN_12)
}

/// `--systemd`: `true` (podman's default) means systemd mode when `process.args[0]` is an init.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Systemd {
    #[default]
    True,
    False,
    Always,
}

impl FromStr for Systemd {
    type Err = String;

    fn from_str(s: &str) -> Result<Systemd, String> {
        match s {
            "true" => Ok(Systemd::True),
            "false" => Ok(Systemd::False),
            "always" => Ok(Systemd::Always),
            _ => Err(format!("{s:?}: expected true, false or always")),
        }
    }
}

/// The `podman run` options that change what a hook sees. `Default` is a plain `podman run` on
/// Debian 12.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodmanRun {
    pub version: Version,
    /// `--rm`
    pub rm: bool,
    /// `--rmi` (podman ≥ 5.3; needs `--rm`)
    pub rmi: bool,
    /// `--init`: also makes `process.args[0]` podman's init.
    pub init: bool,
    /// `--privileged`
    pub privileged: bool,
    /// `-P`, `--publish-all`
    pub publish_all: bool,
    /// `-t`, `--tty`
    pub tty: bool,
    /// `--stop-signal`, or the image's STOPSIGNAL; a signal number.
    pub stop_signal: Option<u32>,
    /// `--stop-timeout` in seconds (containers.conf `stop_timeout`, 10 by default).
    pub stop_timeout: u64,
    /// `--systemd`
    pub systemd: Systemd,
    /// `--security-opt`, each as given.
    pub security_opts: Vec<String>,
    /// `--cidfile`
    pub cidfile: Option<String>,
    /// `--volumes-from`, each as given.
    pub volumes_from: Vec<String>,
    /// `--userns` (also containers.conf `userns`).
    pub userns: Option<String>,
    /// `--group-add keep-groups`
    pub keep_groups: bool,
    /// `--pod`: the pod's infra container ID, or the pod's ID when it has none.
    pub pod_sandbox_id: Option<String>,
}

impl Default for PodmanRun {
    fn default() -> PodmanRun {
        PodmanRun {
            version: Version::DEBIAN_12,
            rm: false,
            rmi: false,
            init: false,
            privileged: false,
            publish_all: false,
            tty: false,
            stop_signal: None,
            stop_timeout: 10,
            systemd: Systemd::True,
            security_opts: Vec::new(),
            cidfile: None,
            volumes_from: Vec::new(),
            userns: None,
            keep_groups: false,
            pod_sandbox_id: None,
        }
    }
}

/// Where podman mounts its init (catatonit) with `--init`; the container's command follows `--`.
pub const INIT_PATH: &str = "/run/podman-init";
/// SIGRTMIN+3, systemd's halt signal: the stop signal in systemd mode.
const SYSTEMD_STOP_SIGNAL: u32 = 37;
const DEFAULT_STOP_SIGNAL: u32 = 15;

const TRUE: &str = "TRUE";
const FALSE: &str = "FALSE";

impl PodmanRun {
    /// `process.args[0]` for a container whose own command starts with `command`.
    pub fn process_arg0(&self, command: &str) -> String {
        if self.init {
            INIT_PATH.to_string()
        } else {
            command.to_string()
        }
    }

    /// podman's systemd mode decides the default stop signal. It looks at the final command,
    /// after `--init` has put its init first, so `--init /sbin/init` is not systemd mode.
    fn systemd_mode(&self, command: &str) -> bool {
        match self.systemd {
            Systemd::Always => true,
            Systemd::False => false,
            Systemd::True => {
                let arg0 = self.process_arg0(command);
                matches!(
                    arg0.as_str(),
                    "/sbin/init" | "/usr/sbin/init" | "/usr/local/sbin/init"
                ) || arg0.rsplit('/').next() == Some("systemd")
            }
        }
    }

    fn stop_signal(&self, command: &str) -> u32 {
        match self.stop_signal {
            Some(s) => s,
            None if self.systemd_mode(command) => SYSTEMD_STOP_SIGNAL,
            None => DEFAULT_STOP_SIGNAL,
        }
    }

    /// The annotations hooks are matched against, for a container given `user` annotations
    /// (`--annotation`, containers.conf `annotations`, and before 4.5.1 the image's own) and a
    /// command starting with `command`. An error is what podman would reject the options for.
    pub fn annotations(
        &self,
        command: &str,
        user: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, String> {
        let v = self.version;
        let old = v.records_false();
        if self.rmi && !self.rm {
            return Err("--rmi does not work without --rm".into());
        }
        if self.rmi && v < Version::new(5, 3) {
            return Err(format!("podman {v} has no --rmi (5.3 added it)"));
        }
        let mut a: BTreeMap<String, String> = BTreeMap::new();
        let set = |a: &mut BTreeMap<String, String>, k: &str, val: &str| {
            a.insert(k.to_string(), val.to_string());
        };

        // The user's annotations are layered over these.
        if let Some(id) = &self.pod_sandbox_id {
            set(&mut a, "io.kubernetes.cri-o.SandboxID", id);
            if old {
                set(&mut a, "io.kubernetes.cri-o.ContainerType", "container");
            }
        }
        if old {
            let tty = if self.tty { "true" } else { "false" };
            set(&mut a, "io.kubernetes.cri-o.TTY", tty);
        }
        a.extend(user.iter().map(|(k, v)| (k.clone(), v.clone())));

        // Options recorded as annotations replace the user's of the same key.
        if self.keep_groups {
            set(&mut a, "run.oci.keep_original_groups", "1");
        }
        if let Some(userns) = &self.userns {
            if v >= Version::new(5, 3) {
                set(&mut a, "io.podman.annotations.userns", userns);
            }
        }
        if let Some(cidfile) = &self.cidfile {
            set(&mut a, "io.podman.annotations.cid-file", cidfile);
        }
        let mut labels: Vec<&str> = Vec::new();
        for opt in &self.security_opts {
            let (key, val) = security_opt(opt)?;
            match (key, val) {
                ("apparmor", Some(val)) => set(&mut a, "io.podman.annotations.apparmor", val),
                ("seccomp", Some(val)) => set(&mut a, "io.podman.annotations.seccomp", val),
                ("label", Some("nested")) if v >= Version::new(4, 5) => {
                    set(&mut a, "run.oci.mount_context_type", "rootcontext")
                }
                ("label", Some(val)) => {
                    labels.push(val);
                    set(
                        &mut a,
                        "io.podman.annotations.label",
                        &labels.join(",label="),
                    );
                }
                _ => {}
            }
        }

        // Written while the spec is generated: these replace the user's unconditionally.
        let flag = |on: bool| {
            if on {
                Some(TRUE)
            } else if old {
                Some(FALSE)
            } else {
                None
            }
        };
        for (key, on) in [
            ("io.podman.annotations.publish-all", self.publish_all),
            ("io.podman.annotations.autoremove", self.rm),
        ] {
            if let Some(val) = flag(on) {
                set(&mut a, key, val);
            }
        }
        if self.rmi {
            set(&mut a, "io.podman.annotations.autoremove-image", TRUE);
        }
        if !self.volumes_from.is_empty() {
            let sep = if v >= Version::new(5, 0) { ";" } else { "," };
            set(
                &mut a,
                "io.podman.annotations.volumes-from",
                &self.volumes_from.join(sep),
            );
        }
        for (key, on) in [
            ("io.podman.annotations.privileged", self.privileged),
            ("io.podman.annotations.init", self.init),
        ] {
            if let Some(val) = flag(on) {
                set(&mut a, key, val);
            }
        }

        // Written at every start, just before the hooks are matched.
        if old {
            set(&mut a, "io.kubernetes.cri-o.Created", &now_rfc3339_nano());
        }
        let signal = self.stop_signal(command).to_string();
        set(&mut a, "org.opencontainers.image.stopSignal", &signal);
        if v >= Version::new(5, 2) {
            set(&mut a, "org.systemd.property.KillSignal", &signal);
            if self.stop_timeout != 0 {
                let usec = format!("uint64 {}", self.stop_timeout.saturating_mul(1_000_000));
                set(&mut a, "org.systemd.property.TimeoutStopUSec", &usec);
            }
        }
        a.entry("io.container.manager".into())
            .or_insert_with(|| "libpod".into());
        Ok(a)
    }

    /// The container as podman matches hooks against it.
    pub fn container(
        &self,
        command: &str,
        user: &BTreeMap<String, String>,
        has_bind_mounts: bool,
    ) -> Result<Container, String> {
        Ok(Container {
            annotations: self.annotations(command, user)?,
            command: Some(self.process_arg0(command)),
            has_bind_mounts,
        })
    }
}

/// One `--security-opt` as podman splits it ("key=value", or docker's old "key:value"); errors
/// name what podman refuses.
fn security_opt(opt: &str) -> Result<(&str, Option<&str>), String> {
    let split = if opt.contains('=') {
        opt.split_once('=')
    } else {
        opt.split_once(':')
    };
    let (key, val) = match split {
        Some((k, v)) => (k, Some(v)),
        None if opt == "no-new-privileges" => (opt, None),
        None => return Err(format!("invalid --security-opt {opt:?}")),
    };
    match key {
        "apparmor" | "label" | "mask" | "proc-opts" | "seccomp" | "unmask" => Ok((key, val)),
        "systempaths" if val == Some("unconfined") => Ok((key, val)),
        "no-new-privileges" => match val {
            None
            | Some("1" | "t" | "T" | "true" | "TRUE" | "True")
            | Some("0" | "f" | "F" | "false" | "FALSE" | "False") => Ok((key, val)),
            Some(_) => Err(format!("invalid --security-opt {opt:?}")),
        },
        _ => Err(format!("invalid --security-opt {opt:?}")),
    }
}

/// A signal as `podman run --stop-signal` takes it: a number, or a name with or without "SIG",
/// in any case, including RTMIN+n and RTMAX-n.
pub fn parse_signal(s: &str) -> Result<u32, String> {
    const RTMIN: u32 = 34;
    const RTMAX: u32 = 64;
    let bad = || format!("{s:?}: not a signal");
    if let Ok(n) = s.parse::<u32>() {
        return if (1..=RTMAX).contains(&n) {
            Ok(n)
        } else {
            Err(bad())
        };
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let offset = |rest: &str, max: u32| -> Option<u32> {
        if rest.is_empty() {
            return Some(0);
        }
        let n: u32 = rest.parse().ok()?;
        (1..=max).contains(&n).then_some(n)
    };
    if let Some(rest) = name.strip_prefix("RTMIN") {
        let n = offset(rest.strip_prefix('+').unwrap_or(rest), 15).ok_or_else(bad)?;
        if !rest.is_empty() && !rest.starts_with('+') {
            return Err(bad());
        }
        return Ok(RTMIN + n);
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        let n = offset(rest.strip_prefix('-').unwrap_or(rest), 14).ok_or_else(bad)?;
        if !rest.is_empty() && !rest.starts_with('-') {
            return Err(bad());
        }
        return Ok(RTMAX - n);
    }
    let n = match name {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "ILL" => 4,
        "TRAP" => 5,
        "ABRT" | "IOT" => 6,
        "BUS" => 7,
        "FPE" => 8,
        "KILL" => 9,
        "USR1" => 10,
        "SEGV" => 11,
        "USR2" => 12,
        "PIPE" => 13,
        "ALRM" => 14,
        "TERM" => 15,
        "STKFLT" => 16,
        "CHLD" | "CLD" => 17,
        "CONT" => 18,
        "STOP" => 19,
        "TSTP" => 20,
        "TTIN" => 21,
        "TTOU" => 22,
        "URG" => 23,
        "XCPU" => 24,
        "XFSZ" => 25,
        "VTALRM" => 26,
        "PROF" => 27,
        "WINCH" => 28,
        "IO" | "POLL" => 29,
        "PWR" => 30,
        "SYS" => 31,
        _ => return Err(bad()),
    };
    Ok(n)
}

/// Now, the way Go prints RFC3339Nano in UTC (podman 4.x's creation-time annotation): trailing
/// zeros of the fraction dropped, no fraction at all when it is zero.
fn now_rfc3339_nano() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339_nano(now.as_secs(), now.subsec_nanos())
}

fn rfc3339_nano(secs: u64, nanos: u32) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    let mut s = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (Howard Hinnant's method).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Without the creation time, whose value is the clock's.
    fn ann(run: &PodmanRun, command: &str, user: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut a = run.annotations(command, &map(user)).unwrap();
        if run.version.records_false() {
            let created = a.remove("io.kubernetes.cri-o.Created").unwrap();
            assert!(created.ends_with('Z') && created.len() >= 20, "{created}");
        }
        a
    }

    fn v5() -> PodmanRun {
        PodmanRun {
            version: Version::new(5, 4),
            ..PodmanRun::default()
        }
    }

    /// Recorded: the config a precreate hook got from `podman run --network none IMAGE true`
    /// (podman 4.3.1, Debian 12), creation time aside.
    #[test]
    fn plain_run_on_4_3() {
        assert_eq!(
            ann(&PodmanRun::default(), "true", &[]),
            map(&[
                ("io.container.manager", "libpod"),
                ("io.kubernetes.cri-o.TTY", "false"),
                ("io.podman.annotations.autoremove", "FALSE"),
                ("io.podman.annotations.init", "FALSE"),
                ("io.podman.annotations.privileged", "FALSE"),
                ("io.podman.annotations.publish-all", "FALSE"),
                ("org.opencontainers.image.stopSignal", "15"),
            ])
        );
    }

    /// Recorded the same way through podman 5.4.2 (Debian 13's).
    #[test]
    fn plain_run_on_5_4() {
        assert_eq!(
            ann(&v5(), "true", &[]),
            map(&[
                ("io.container.manager", "libpod"),
                ("org.opencontainers.image.stopSignal", "15"),
                ("org.systemd.property.KillSignal", "15"),
                ("org.systemd.property.TimeoutStopUSec", "uint64 10000000"),
            ])
        );
    }

    #[test]
    fn options_on_4_3() {
        let run = PodmanRun {
            rm: true,
            init: true,
            privileged: true,
            publish_all: true,
            tty: true,
            stop_signal: Some(9),
            security_opts: vec![
                "seccomp=unconfined".into(),
                "label=disable".into(),
                "label:level:s0".into(),
                "apparmor=unconfined".into(),
                "no-new-privileges".into(),
            ],
            cidfile: Some("/tmp/cid".into()),
            volumes_from: vec!["a".into(), "b:ro".into()],
            userns: Some("host".into()),
            keep_groups: true,
            pod_sandbox_id: Some("abc".into()),
            ..PodmanRun::default()
        };
        assert_eq!(
            ann(&run, "true", &[]),
            map(&[
                ("io.container.manager", "libpod"),
                ("io.kubernetes.cri-o.ContainerType", "container"),
                ("io.kubernetes.cri-o.SandboxID", "abc"),
                ("io.kubernetes.cri-o.TTY", "true"),
                ("io.podman.annotations.apparmor", "unconfined"),
                ("io.podman.annotations.autoremove", "TRUE"),
                ("io.podman.annotations.cid-file", "/tmp/cid"),
                ("io.podman.annotations.init", "TRUE"),
                ("io.podman.annotations.label", "disable,label=level:s0"),
                ("io.podman.annotations.privileged", "TRUE"),
                ("io.podman.annotations.publish-all", "TRUE"),
                ("io.podman.annotations.seccomp", "unconfined"),
                ("io.podman.annotations.volumes-from", "a,b:ro"),
                ("org.opencontainers.image.stopSignal", "9"),
                ("run.oci.keep_original_groups", "1"),
            ])
        );
        assert_eq!(run.process_arg0("true"), "/run/podman-init");
    }

    #[test]
    fn options_on_5_4() {
        let run = PodmanRun {
            rm: true,
            rmi: true,
            init: true,
            privileged: true,
            publish_all: true,
            tty: true,
            stop_timeout: 3,
            security_opts: vec!["label=nested".into()],
            volumes_from: vec!["a".into(), "b:ro".into()],
            userns: Some("host".into()),
            pod_sandbox_id: Some("abc".into()),
            systemd: Systemd::Always,
            ..v5()
        };
        assert_eq!(
            ann(&run, "true", &[]),
            map(&[
                ("io.container.manager", "libpod"),
                ("io.kubernetes.cri-o.SandboxID", "abc"),
                ("io.podman.annotations.autoremove", "TRUE"),
                ("io.podman.annotations.autoremove-image", "TRUE"),
                ("io.podman.annotations.init", "TRUE"),
                ("io.podman.annotations.privileged", "TRUE"),
                ("io.podman.annotations.publish-all", "TRUE"),
                ("io.podman.annotations.userns", "host"),
                ("io.podman.annotations.volumes-from", "a;b:ro"),
                ("org.opencontainers.image.stopSignal", "37"),
                ("org.systemd.property.KillSignal", "37"),
                ("org.systemd.property.TimeoutStopUSec", "uint64 3000000"),
                ("run.oci.mount_context_type", "rootcontext"),
            ])
        );
    }

    /// Which of the user's annotations survive: measured through both versions.
    #[test]
    fn user_annotations_against_podmans() {
        let user = [
            ("io.podman.annotations.init", "TRUE"),
            ("io.podman.annotations.autoremove", "x"),
            ("io.container.manager", "foo"),
            ("org.opencontainers.image.stopSignal", "9"),
            ("io.kubernetes.cri-o.TTY", "maybe"),
            ("io.kubernetes.cri-o.Created", "old"),
        ];
        let a = ann(&PodmanRun::default(), "true", &user);
        assert_eq!(a["io.podman.annotations.init"], "FALSE");
        assert_eq!(a["io.podman.annotations.autoremove"], "FALSE");
        assert_eq!(a["io.container.manager"], "foo");
        assert_eq!(a["org.opencontainers.image.stopSignal"], "15");
        assert_eq!(a["io.kubernetes.cri-o.TTY"], "maybe");
        let a = ann(&v5(), "true", &user);
        // 5.x writes only TRUE, so a user's value stays.
        assert_eq!(a["io.podman.annotations.init"], "TRUE");
        assert_eq!(a["io.podman.annotations.autoremove"], "x");
        assert_eq!(a["io.container.manager"], "foo");
        assert_eq!(a["org.opencontainers.image.stopSignal"], "15");
        assert_eq!(a["io.kubernetes.cri-o.Created"], "old");
        // An option recorded as an annotation beats the user's.
        let run = PodmanRun {
            security_opts: vec!["seccomp=unconfined".into()],
            ..PodmanRun::default()
        };
        let a = ann(&run, "true", &[("io.podman.annotations.seccomp", "x")]);
        assert_eq!(a["io.podman.annotations.seccomp"], "unconfined");
    }

    #[test]
    fn version_thresholds() {
        let at = |major, minor| PodmanRun {
            version: Version::new(major, minor),
            volumes_from: vec!["a".into(), "b".into()],
            userns: Some("auto".into()),
            security_opts: vec!["label=nested".into()],
            ..PodmanRun::default()
        };
        let a = ann(&at(4, 9), "true", &[]);
        assert!(!a.contains_key("io.podman.annotations.init"));
        assert!(!a.contains_key("io.kubernetes.cri-o.TTY"));
        assert_eq!(a["io.podman.annotations.volumes-from"], "a,b");
        assert_eq!(a["run.oci.mount_context_type"], "rootcontext");
        assert!(!a.contains_key("org.systemd.property.KillSignal"));
        let a = ann(&at(4, 3), "true", &[]);
        assert_eq!(a["io.podman.annotations.label"], "nested");
        assert!(!a.contains_key("run.oci.mount_context_type"));
        assert_eq!(
            ann(&at(5, 0), "true", &[])["io.podman.annotations.volumes-from"],
            "a;b"
        );
        assert!(ann(&at(5, 2), "true", &[]).contains_key("org.systemd.property.KillSignal"));
        assert!(!ann(&at(5, 2), "true", &[]).contains_key("io.podman.annotations.userns"));
        assert_eq!(
            ann(&at(5, 3), "true", &[])["io.podman.annotations.userns"],
            "auto"
        );
    }

    #[test]
    fn stop_signal_and_systemd_mode() {
        let sig = |run: &PodmanRun, cmd: &str| {
            ann(run, cmd, &[])["org.opencontainers.image.stopSignal"].clone()
        };
        let plain = PodmanRun::default();
        assert_eq!(sig(&plain, "/sbin/init"), "37");
        assert_eq!(sig(&plain, "/usr/lib/systemd/systemd"), "37");
        assert_eq!(sig(&plain, "init"), "15");
        let init = PodmanRun {
            init: true,
            ..PodmanRun::default()
        };
        assert_eq!(sig(&init, "/sbin/init"), "15", "podman's init comes first");
        let off = PodmanRun {
            systemd: Systemd::False,
            ..PodmanRun::default()
        };
        assert_eq!(sig(&off, "/sbin/init"), "15");
        let given = PodmanRun {
            stop_signal: Some(2),
            systemd: Systemd::Always,
            ..PodmanRun::default()
        };
        assert_eq!(sig(&given, "true"), "2");
    }

    #[test]
    fn refusals() {
        let run = |opts: &[&str]| PodmanRun {
            security_opts: opts.iter().map(|s| s.to_string()).collect(),
            ..PodmanRun::default()
        };
        for bad in [
            "seccomp",
            "bogus=1",
            "systempaths=x",
            "no-new-privileges=maybe",
        ] {
            assert!(
                run(&[bad]).annotations("true", &BTreeMap::new()).is_err(),
                "{bad}"
            );
        }
        let rmi = PodmanRun { rmi: true, ..v5() };
        assert!(rmi.annotations("true", &BTreeMap::new()).is_err());
        let old_rmi = PodmanRun {
            rm: true,
            rmi: true,
            ..PodmanRun::default()
        };
        assert!(old_rmi.annotations("true", &BTreeMap::new()).is_err());
    }

    #[test]
    fn signals() {
        for (s, n) in [
            ("9", 9),
            ("KILL", 9),
            ("sigkill", 9),
            ("SIGTERM", 15),
            ("RTMIN+3", 37),
            ("SIGRTMIN", 34),
            ("rtmax-1", 63),
            ("RTMAX", 64),
            ("iot", 6),
        ] {
            assert_eq!(parse_signal(s), Ok(n), "{s}");
        }
        for s in ["0", "65", "NOPE", "RTMIN+16", "RTMIN3", "RTMAX-15", ""] {
            assert!(parse_signal(s).is_err(), "{s}");
        }
    }

    #[test]
    fn versions() {
        assert_eq!("4.3.1".parse(), Ok(Version::new(4, 3)));
        assert_eq!("5.4".parse(), Ok(Version::new(5, 4)));
        assert_eq!("v5.4.2+ds1".parse(), Ok(Version::new(5, 4)));
        for bad in ["4", "x.y", "3.4", "5.4.2.1", "5.4."] {
            assert!(bad.parse::<Version>().is_err(), "{bad}");
        }
    }

    #[test]
    fn go_time_format() {
        assert_eq!(rfc3339_nano(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339_nano(1_795_000_972, 802_992_310),
            "2026-11-18T11:22:52.80299231Z"
        );
        assert_eq!(
            rfc3339_nano(951_782_400, 5),
            "2000-02-29T00:00:00.000000005Z"
        );
    }
}
