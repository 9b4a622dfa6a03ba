//! The service catalog: one TOML file per service under `init/` (installed at
//! /usr/share/virtpod/init), and the choice of which services this container runs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use super::args::BootArgs;

pub const DEFAULT_DIR: &str = "/usr/share/virtpod/init";
/// The most `listen` sockets one service may have (init/README.md; activation.rs hands them
/// over without allocating).
pub const MAX_LISTEN: usize = 8;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServiceDef {
    pub command: Vec<String>,
    #[serde(default)]
    pub after: Vec<String>,
    #[serde(default)]
    pub ready: Option<Ready>,
    #[serde(default = "default_start_timeout", with = "secs")]
    pub start_timeout: Duration,
    #[serde(default = "default_stop_timeout", with = "secs")]
    pub stop_timeout: Duration,
    #[serde(default)]
    pub restart: RestartPolicy,
    #[serde(default)]
    pub finish: Option<Vec<String>>,
    #[serde(default)]
    pub start: Start,
    #[serde(default)]
    pub flavor: Flavor,
    #[serde(default)]
    pub libvirt_daemon: bool,
    /// libvirt cannot work without it: `systemd.mask=` refuses it.
    #[serde(default)]
    pub essential: bool,
    #[serde(default)]
    pub runtime_dirs: Vec<PathBuf>,
    /// sd_notify(3): the service gets a `NOTIFY_SOCKET` of its own from init, and its `READY=1`
    /// makes it ready (with `ready`'s socket as the fallback for a daemon that never says so).
    #[serde(default)]
    pub notify: bool,
    /// Runs on one CPU until libvirt first answers (qemu driver daemons): libvirt keys its cache
    /// of qemu's capabilities on CPUID data that holds the APIC id of the CPU that read it, so a
    /// daemon starting on another CPU than last time probes every qemu again (1–2 s per start).
    #[serde(default)]
    pub one_cpu_at_start: bool,
    /// Socket activation, as systemd's `.socket` units give libvirt's helper daemons upstream:
    /// init binds these unix sockets itself, the service starts when the first client connects
    /// to any of them (never at boot), and gets them as fds 3, 4, … with `LISTEN_FDS`,
    /// `LISTEN_PID` and `LISTEN_FDNAMES` (activation.rs).
    #[serde(default)]
    pub listen: Vec<Listen>,
}

/// One socket init listens on for a service: its path, and the name the service looks for in
/// `LISTEN_FDNAMES` (libvirt's daemons use their systemd unit names, e.g. `virtlogd.socket`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Listen {
    pub name: String,
    pub path: PathBuf,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Ready {
    Socket(PathBuf),
    NotifyFd(i32),
}

/// A service that dies is always started again (s6 never gives up): after `initial_delay`,
/// doubling with each start that fails before the service is ready, at most `max_delay`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RestartPolicy {
    #[serde(default = "half_second", with = "secs")]
    pub initial_delay: Duration,
    #[serde(default = "thirty_seconds", with = "secs")]
    pub max_delay: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            initial_delay: half_second(),
            max_delay: thirty_seconds(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Start {
    #[default]
    Wanted,
    Optional,
}

/// The two layouts of libvirt's daemons. `Any` services run in both.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Flavor {
    #[default]
    Any,
    Monolithic,
    Modular,
}

fn default_start_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_stop_timeout() -> Duration {
    Duration::from_secs(15)
}
fn half_second() -> Duration {
    Duration::from_millis(500)
}
fn thirty_seconds() -> Duration {
    Duration::from_secs(30)
}

/// Durations are written as seconds (a number) in the catalog.
mod secs {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = f64::deserialize(d)?;
        Duration::try_from_secs_f64(s).map_err(serde::de::Error::custom)
    }
}

/// All services of a catalog directory, by name.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub services: BTreeMap<String, ServiceDef>,
}

impl Catalog {
    pub fn load(dir: &Path) -> Result<Catalog> {
        let mut services = BTreeMap::new();
        let entries = std::fs::read_dir(dir)
            .with_context(|| format!("reading the service catalog {}", dir.display()))?;
        for entry in entries {
            let path = entry?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("toml") {
                continue;
            }
            let name = path
                .file_stem()
                .and_then(|s| s.to_str())
                .with_context(|| format!("service file name {} is not UTF-8", path.display()))?
                .to_string();
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let def = Self::parse(&text).with_context(|| format!("in {}", path.display()))?;
            services.insert(name, def);
        }
        let catalog = Catalog { services };
        catalog.check()?;
        Ok(catalog)
    }

    pub fn parse(text: &str) -> Result<ServiceDef> {
        let def: ServiceDef = toml::from_str(text)?;
        if def.command.is_empty() {
            bail!("`command` must name a program");
        }
        if !def.listen.is_empty() && (def.ready.is_some() || def.notify) {
            bail!(
                "`listen` and `ready`/`notify` do not go together: a service init listens for is \
                 ready as long as init holds its sockets (drop `ready` and `notify`)"
            );
        }
        if def.listen.len() > MAX_LISTEN {
            bail!(
                "`listen` has {} sockets; a service gets at most {}",
                def.listen.len(),
                MAX_LISTEN
            );
        }
        for l in &def.listen {
            if l.name.is_empty() || l.name.contains(':') {
                bail!(
                    "`listen` name {:?} must be non-empty and without ':' (LISTEN_FDNAMES separates \
                     names with ':')",
                    l.name
                );
            }
        }
        Ok(def)
    }

    fn check(&self) -> Result<()> {
        for (name, def) in &self.services {
            for dep in &def.after {
                if !self.services.contains_key(dep) {
                    bail!(
                        "service {name} is to start after {dep:?}, which the catalog does not have"
                    );
                }
            }
        }
        Ok(())
    }

    /// The services to run, in start order: those wanted by default in this flavor, plus
    /// `systemd.wants=`, minus `systemd.mask=`.
    pub fn select(&self, flavor: Flavor, args: &BootArgs) -> Result<Vec<String>> {
        for name in args.mask.iter().chain(&args.wants) {
            if !self.services.contains_key(name) {
                let known: Vec<&str> = self.services.keys().map(String::as_str).collect();
                bail!(
                    "no service named {name:?} (from systemd.mask= or systemd.wants=); known services: {}",
                    known.join(", ")
                );
            }
        }
        for name in &args.mask {
            let def = &self.services[name];
            if def.essential && (def.flavor == Flavor::Any || def.flavor == flavor) {
                bail!(
                    "systemd.mask={name}: libvirt cannot work without {name} in this image, so it \
                     cannot be masked (mask an optional service such as virtlockd instead)"
                );
            }
        }
        let chosen: BTreeSet<&str> = self
            .services
            .iter()
            .filter(|(name, def)| {
                let by_default = def.start == Start::Wanted
                    && (def.flavor == Flavor::Any || def.flavor == flavor);
                (by_default || args.wants.contains(*name)) && !args.mask.contains(*name)
            })
            .map(|(name, _)| name.as_str())
            .collect();
        self.start_order(&chosen)
    }

    /// Topological order over `after`, restricted to the chosen services; ties by name so the
    /// order is the same on every start.
    fn start_order(&self, chosen: &BTreeSet<&str>) -> Result<Vec<String>> {
        let mut order = Vec::new();
        let mut done: BTreeSet<&str> = BTreeSet::new();
        while done.len() < chosen.len() {
            let next = chosen.iter().find(|name| {
                !done.contains(*name)
                    && self.services[**name]
                        .after
                        .iter()
                        .all(|dep| !chosen.contains(dep.as_str()) || done.contains(dep.as_str()))
            });
            match next {
                Some(name) => {
                    done.insert(name);
                    order.push(name.to_string());
                }
                None => {
                    let left: Vec<&str> = chosen.difference(&done).copied().collect();
                    bail!(
                        "services {} wait for each other (a cycle in `after`)",
                        left.join(", ")
                    );
                }
            }
        }
        Ok(order)
    }
}

/// Monolithic `libvirtd` or the modular daemons: `VIRTPOD_LIBVIRT_MODE` when set (and the image
/// has that layout's daemon), otherwise what the image has (libvirtd where it exists, as the
/// distributions that ship both default to it only when they ship it).
pub fn detect_flavor(mode: Option<Flavor>, exists: impl Fn(&Path) -> bool) -> Result<Flavor> {
    let libvirtd = exists(Path::new("/usr/sbin/libvirtd"));
    let virtqemud = exists(Path::new("/usr/sbin/virtqemud"));
    match mode {
        Some(Flavor::Monolithic) if !libvirtd => bail!(
            "VIRTPOD_LIBVIRT_MODE=monolithic, but this image has no /usr/sbin/libvirtd; \
             leave the setting empty to use the daemons the image has"
        ),
        Some(Flavor::Modular) if !virtqemud => bail!(
            "VIRTPOD_LIBVIRT_MODE=modular, but this image has no /usr/sbin/virtqemud; \
             leave the setting empty to use the daemons the image has"
        ),
        Some(f) => Ok(f),
        None if libvirtd => Ok(Flavor::Monolithic),
        None if virtqemud => Ok(Flavor::Modular),
        None => bail!(
            "this image has neither /usr/sbin/libvirtd nor /usr/sbin/virtqemud: install libvirt's daemon"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::args;

    fn repo_catalog() -> Catalog {
        Catalog::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("init")).unwrap()
    }

    #[test]
    fn shipped_catalog_loads_and_covers_the_daemons() {
        let c = repo_catalog();
        for name in [
            "virtlogd",
            "virtlockd",
            "libvirtd",
            "virtqemud",
            "virtnetworkd",
            "virtstoraged",
            "virtnodedevd",
            "virtsecretd",
            "virtnwfilterd",
            "virtinterfaced",
            "virtproxyd",
            "dbus",
            "libvirt-dbus",
            "sshd",
            "cockpit-ws",
        ] {
            assert!(c.services.contains_key(name), "{name} missing");
        }
    }

    #[test]
    fn monolithic_selection_and_order() {
        let c = repo_catalog();
        let order = c.select(Flavor::Monolithic, &BootArgs::default()).unwrap();
        assert_eq!(order, vec!["virtlockd", "virtlogd", "libvirtd"]);
    }

    #[test]
    fn modular_selection_puts_proxy_last() {
        let c = repo_catalog();
        let order = c.select(Flavor::Modular, &BootArgs::default()).unwrap();
        assert!(!order.contains(&"libvirtd".to_string()));
        assert_eq!(order.last().unwrap(), "virtproxyd");
        assert_eq!(order.len(), 10);
    }

    #[test]
    fn mask_and_wants() {
        let c = repo_catalog();
        let a = args::parse(&[
            "systemd.mask=virtlockd",
            "systemd.wants=libvirt-dbus",
            "systemd.wants=dbus.service",
        ])
        .unwrap();
        let order = c.select(Flavor::Monolithic, &a).unwrap();
        assert_eq!(order, vec!["dbus", "virtlogd", "libvirtd", "libvirt-dbus"]);
        let a = args::parse(&["systemd.mask=nosuch"]).unwrap();
        let err = c.select(Flavor::Monolithic, &a).unwrap_err().to_string();
        assert!(err.contains("nosuch") && err.contains("virtlogd"), "{err}");
    }

    #[test]
    fn essential_daemons_cannot_be_masked_in_their_flavor() {
        let c = repo_catalog();
        for (name, flavor) in [
            ("libvirtd", Flavor::Monolithic),
            ("virtlogd", Flavor::Monolithic),
            ("virtqemud", Flavor::Modular),
            ("virtproxyd", Flavor::Modular),
            ("virtlogd", Flavor::Modular),
        ] {
            let a = args::parse(&[format!("systemd.mask={name}")]).unwrap();
            let err = c.select(flavor, &a).unwrap_err().to_string();
            assert!(err.contains("cannot be masked"), "{name}: {err}");
        }
        // Not part of this flavor: masking it changes nothing and is allowed.
        let a = args::parse(&["systemd.mask=virtqemud"]).unwrap();
        assert!(c.select(Flavor::Monolithic, &a).is_ok());
    }

    #[test]
    fn cycles_and_bad_files_are_errors() {
        let def = |after: &[&str]| ServiceDef {
            after: after.iter().map(|s| s.to_string()).collect(),
            ..Catalog::parse("command = [\"/bin/true\"]").unwrap()
        };
        let mut c = Catalog::default();
        c.services.insert("a".into(), def(&["b"]));
        c.services.insert("b".into(), def(&["a"]));
        assert!(c
            .select(Flavor::Any, &BootArgs::default())
            .unwrap_err()
            .to_string()
            .contains("cycle"));
        assert!(Catalog::parse("command = []").is_err());
        assert!(Catalog::parse("command = [\"x\"]\nbogus = 1")
            .unwrap_err()
            .to_string()
            .contains("bogus"));
        let d = Catalog::parse("command = [\"x\"]\nready = { notify_fd = 3 }\nstart_timeout = 2.5")
            .unwrap();
        assert_eq!(d.ready, Some(Ready::NotifyFd(3)));
        assert_eq!(d.start_timeout, Duration::from_millis(2500));
    }

    #[test]
    fn listen_sockets_exclude_other_readiness_and_colons() {
        let ok = Catalog::parse(
            "command = [\"x\"]\nlisten = [{ name = \"x.socket\", path = \"/run/x-sock\" }]",
        )
        .unwrap();
        assert_eq!(
            ok.listen,
            vec![Listen {
                name: "x.socket".into(),
                path: "/run/x-sock".into()
            }]
        );
        let listen = "listen = [{ name = \"x.socket\", path = \"/run/x-sock\" }]";
        for other in ["ready = { socket = \"/run/x-sock\" }", "notify = true"] {
            let e = Catalog::parse(&format!("command = [\"x\"]\n{listen}\n{other}"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("drop `ready` and `notify`"), "{e}");
        }
        let e = Catalog::parse(
            "command = [\"x\"]\nlisten = [{ name = \"a:b\", path = \"/run/x-sock\" }]",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("without ':'"), "{e}");
    }

    #[test]
    fn flavor_detection() {
        assert_eq!(
            detect_flavor(None, |p| p.ends_with("libvirtd")).unwrap(),
            Flavor::Monolithic
        );
        assert_eq!(
            detect_flavor(None, |p| p.ends_with("virtqemud")).unwrap(),
            Flavor::Modular
        );
        assert_eq!(
            detect_flavor(Some(Flavor::Modular), |_| true).unwrap(),
            Flavor::Modular
        );
        let e = detect_flavor(Some(Flavor::Modular), |p| p.ends_with("libvirtd")).unwrap_err();
        assert!(e.to_string().contains("no /usr/sbin/virtqemud"), "{e}");
        assert!(detect_flavor(None, |_| false).is_err());
    }
}
