//! Every `VIRTPOD_*` setting of the appliance, read by one rule: unset or empty means the
//! default; any other value must be valid, or init stops at setup (exit 2) with a line that
//! names the variable, the value and what it accepts. A `VIRTPOD_*` name virtpod does not know
//! is a warning (a typo would otherwise be silently ignored).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::libvirt::policy::{OnBoot, OnShutdown, Policy};

use super::catalog::Flavor;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{key}={value:?}: {expected}")]
pub struct SettingError {
    pub key: &'static str,
    pub value: String,
    pub expected: String,
}

/// Who may use libvirt's sockets as the host sees them. Rootful, the container's uid 0 and gids
/// are the host's: by default only host root may connect; `VIRTPOD_SOCKET_GID` opens them to one
/// host group. Rootless, the container's root is the user, so the sockets are the user's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketAccess {
    /// Group owner by number, as the host sees it (`unix_sock_group = "+GID"`).
    pub gid: Option<u32>,
    pub rw_perms: u32,
    pub ro_perms: u32,
}

impl SocketAccess {
    pub fn describe(&self) -> String {
        let group = self
            .gid
            .map_or("root (host root only)".to_string(), |g| format!("gid {g}"));
        format!(
            "read-write socket {:04o} group {group}, read-only socket {:04o}",
            self.rw_perms, self.ro_perms
        )
    }
}

/// How libvirt checks a client the socket's owner and mode let in (`auth_unix_rw`/`_ro`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// The socket's owner and mode decide alone.
    None,
    /// A user name and password (`VIRTPOD_SASL_CREDENTIALS`).
    Sasl,
    /// The host's polkit decides (`VIRTPOD_AUTH=polkit`, with the host's PID namespace and
    /// system bus: polkit.rs).
    Polkit,
}

impl Auth {
    /// The value of libvirt's `auth_unix_*` settings.
    pub fn conf(self) -> &'static str {
        match self {
            Auth::None => "none",
            Auth::Sasl => "sasl",
            Auth::Polkit => "polkit",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `VIRTPOD_LIBVIRT_MODE`: None chooses by what the image has.
    pub mode: Option<Flavor>,
    pub policy: Policy,
    pub socket: SocketAccess,
    /// `VIRTPOD_SASL_CREDENTIALS`: SASL (SCRAM-SHA-256) on the sockets, users from this file.
    pub sasl: Option<PathBuf>,
    /// `VIRTPOD_AUTH=polkit`: the host's polkit decides who may use the sockets.
    pub polkit: bool,
    /// `VIRTPOD_COCKPIT=1`: the web console on, its login users from this file
    /// (`VIRTPOD_COCKPIT_CREDENTIALS`, see cockpit.rs).
    pub cockpit: Option<PathBuf>,
    /// `VIRTPOD_SSH_AUTHORIZED_KEYS`: sshd on, root's keys from this file (ssh.rs).
    pub ssh_keys: Option<PathBuf>,
    /// `VIRTPOD_FORWARD`: the container's TCP ports forwarded to guests (crate::forward).
    pub forward: Vec<crate::forward::rules::Rule>,
}

/// Names virtpod reads somewhere (here, the front doors, logging): not typos.
const KNOWN: &[&str] = &[
    "VIRTPOD_LIBVIRT_MODE",
    "VIRTPOD_ON_SHUTDOWN",
    "VIRTPOD_ON_BOOT",
    "VIRTPOD_SHUTDOWN_TIMEOUT",
    "VIRTPOD_PARALLEL_SHUTDOWN",
    "VIRTPOD_SOCKET_GID",
    "VIRTPOD_SOCKET_PERMS",
    "VIRTPOD_SOCKET_RO_PERMS",
    "VIRTPOD_SASL_CREDENTIALS",
    "VIRTPOD_AUTH",
    "VIRTPOD_COCKPIT",
    "VIRTPOD_COCKPIT_CREDENTIALS",
    "VIRTPOD_SSH_AUTHORIZED_KEYS",
    "VIRTPOD_FORWARD",
    "VIRTPOD_LOG",
    "VIRTPOD_NAME",
    "VIRTPOD_SOCKET_DIR",
    "VIRTPOD_VARIANT",
];

/// The one rule: unset and empty are the same, "use the default".
fn get<'a>(env: &'a BTreeMap<String, String>, key: &str) -> Option<&'a str> {
    env.get(key).map(String::as_str).filter(|v| !v.is_empty())
}

fn err(key: &'static str, value: &str, expected: impl Into<String>) -> SettingError {
    SettingError {
        key,
        value: value.chars().take(100).collect(),
        expected: expected.into(),
    }
}

fn choice<T: Copy>(
    env: &BTreeMap<String, String>,
    key: &'static str,
    default: T,
    options: &[(&str, T)],
) -> Result<T, SettingError> {
    let Some(v) = get(env, key) else {
        return Ok(default);
    };
    options
        .iter()
        .find(|(name, _)| *name == v)
        .map(|(_, t)| *t)
        .ok_or_else(|| {
            let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
            err(key, v, format!("expected {}", names.join(", ")))
        })
}

fn number(
    env: &BTreeMap<String, String>,
    key: &'static str,
    default: u64,
    max: u64,
) -> Result<u64, SettingError> {
    let Some(v) = get(env, key) else {
        return Ok(default);
    };
    match v.parse::<u64>() {
        Ok(n) if n <= max => Ok(n),
        _ => Err(err(
            key,
            v,
            format!("expected a whole number from 0 to {max}"),
        )),
    }
}

/// Socket permissions: octal, no setuid/setgid/sticky bits (meaningless on a socket), and the
/// owner (root) must keep read and write, or nobody could connect.
fn perms(
    env: &BTreeMap<String, String>,
    key: &'static str,
    default: u32,
) -> Result<u32, SettingError> {
    let Some(v) = get(env, key) else {
        return Ok(default);
    };
    let expected = "expected octal permissions from 0600 to 0777 that keep the owner's rw, such as 0700, 0770 or 0777";
    let octal = (3..=4).contains(&v.len()) && v.chars().all(|c| ('0'..='7').contains(&c));
    let n = octal
        .then(|| u32::from_str_radix(v, 8).ok())
        .flatten()
        .ok_or_else(|| err(key, v, expected))?;
    if n > 0o777 || n & 0o600 != 0o600 {
        return Err(err(key, v, expected));
    }
    Ok(n)
}

/// `VIRTPOD_COCKPIT` (`1` on, `0` off) and the credentials file the login needs: each without
/// the other is refused with the fix.
fn cockpit(env: &BTreeMap<String, String>) -> Result<Option<PathBuf>, SettingError> {
    const CREDS: &str = "VIRTPOD_COCKPIT_CREDENTIALS";
    let on = choice(env, "VIRTPOD_COCKPIT", false, &[("0", false), ("1", true)])?;
    let creds = match get(env, CREDS) {
        None => None,
        Some(v) if v.starts_with('/') => Some(PathBuf::from(v)),
        Some(v) => return Err(err(
            CREDS,
            v,
            "expected the absolute path of a USER:PASSWORD file in the container, such as /run/secrets/virtpod-cockpit",
        )),
    };
    match (on, creds) {
        (true, Some(path)) => Ok(Some(path)),
        (false, None) => Ok(None),
        (true, None) => Err(err(
            "VIRTPOD_COCKPIT",
            "1",
            "the web console's login needs users: set VIRTPOD_COCKPIT_CREDENTIALS=/run/secrets/NAME too, a USER:PASSWORD file (podman secret)",
        )),
        (false, Some(path)) => Err(err(
            CREDS,
            &path.display().to_string(),
            "the web console is off: set VIRTPOD_COCKPIT=1 too, or drop this setting",
        )),
    }
}

impl Settings {
    pub fn from_env(env: &BTreeMap<String, String>) -> Result<Settings, SettingError> {
        if let Some(v) = get(env, "VIRTPOD_SOCKET_GROUP") {
            return Err(err(
                "VIRTPOD_SOCKET_GROUP",
                v,
                "no longer read: a group name of the image is an unrelated group on the host; \
                 set VIRTPOD_SOCKET_GID to the number of a host group instead",
            ));
        }
        let mode = choice(
            env,
            "VIRTPOD_LIBVIRT_MODE",
            None,
            &[
                ("monolithic", Some(Flavor::Monolithic)),
                ("modular", Some(Flavor::Modular)),
            ],
        )?;
        let on_shutdown = choice(
            env,
            "VIRTPOD_ON_SHUTDOWN",
            OnShutdown::Shutdown,
            &[
                ("shutdown", OnShutdown::Shutdown),
                ("suspend", OnShutdown::Suspend),
                ("destroy", OnShutdown::Destroy),
            ],
        )?;
        let on_boot = choice(
            env,
            "VIRTPOD_ON_BOOT",
            OnBoot::Start,
            &[("start", OnBoot::Start), ("ignore", OnBoot::Ignore)],
        )?;
        let timeout = number(env, "VIRTPOD_SHUTDOWN_TIMEOUT", 90, 24 * 3600)?;
        let parallel = number(env, "VIRTPOD_PARALLEL_SHUTDOWN", 0, 10_000)?;
        let gid = match get(env, "VIRTPOD_SOCKET_GID") {
            None => None,
            Some(v) => match v.parse::<u32>() {
                Ok(g) if g != u32::MAX => Some(g),
                _ => {
                    return Err(err(
                        "VIRTPOD_SOCKET_GID",
                        v,
                        "expected the number of a group on the host, such as the output of `getent group libvirt | cut -d: -f3`",
                    ))
                }
            },
        };
        if get(env, "VIRTPOD_AUTH") == Some("sasl") {
            return Err(err(
                "VIRTPOD_AUTH",
                "sasl",
                "expected none or polkit; SASL is on when VIRTPOD_SASL_CREDENTIALS names its users file (/run/secrets/NAME)",
            ));
        }
        let polkit = choice(
            env,
            "VIRTPOD_AUTH",
            false,
            &[("none", false), ("polkit", true)],
        )?;
        // With polkit, every host user may reach the socket and polkit decides (libvirt's own
        // default); a socket group still narrows it.
        let rw_perms = perms(
            env,
            "VIRTPOD_SOCKET_PERMS",
            match (gid, polkit) {
                (Some(_), _) => 0o770,
                (None, true) => 0o666,
                (None, false) => 0o700,
            },
        )?;
        let ro_perms = perms(env, "VIRTPOD_SOCKET_RO_PERMS", rw_perms)?;
        let sasl = match get(env, "VIRTPOD_SASL_CREDENTIALS") {
            None => None,
            Some(v) if v.starts_with('/') => Some(PathBuf::from(v)),
            Some(v) => {
                return Err(err(
                    "VIRTPOD_SASL_CREDENTIALS",
                    v,
                    "expected the absolute path of a USER:PASSWORD file in the container, such as /run/secrets/virtpod-sasl",
                ))
            }
        };
        if polkit && sasl.is_some() {
            return Err(err(
                "VIRTPOD_AUTH",
                "polkit",
                "VIRTPOD_SASL_CREDENTIALS asks every client for a password already: choose polkit or SASL, not both",
            ));
        }
        let cockpit = cockpit(env)?;
        let ssh_keys = match get(env, "VIRTPOD_SSH_AUTHORIZED_KEYS") {
            None => None,
            Some(v) if v.starts_with('/') => Some(PathBuf::from(v)),
            Some(v) => {
                return Err(err(
                    "VIRTPOD_SSH_AUTHORIZED_KEYS",
                    v,
                    "expected the absolute path of an authorized_keys file in the container, such as /run/secrets/virtpod-ssh-keys",
                ))
            }
        };
        let forward = match get(env, crate::forward::SETTING) {
            None => Vec::new(),
            Some(v) => crate::forward::rules::parse(v).map_err(|e| SettingError {
                key: crate::forward::SETTING,
                value: v.to_string(),
                expected: e,
            })?,
        };
        Ok(Settings {
            mode,
            policy: Policy {
                on_shutdown,
                on_boot,
                shutdown_timeout: Duration::from_secs(timeout),
                parallel: parallel as usize,
            },
            socket: SocketAccess {
                gid,
                rw_perms,
                ro_perms,
            },
            sasl,
            polkit,
            cockpit,
            ssh_keys,
            forward,
        })
    }

    /// How libvirt checks the clients of its sockets.
    pub fn auth(&self) -> Auth {
        match (self.polkit, &self.sasl) {
            (true, _) => Auth::Polkit,
            (false, Some(_)) => Auth::Sasl,
            (false, None) => Auth::None,
        }
    }

    /// `VIRTPOD_*` names in `env` that no part of virtpod reads.
    pub fn unknown_names(env: &BTreeMap<String, String>) -> Vec<&str> {
        env.keys()
            .map(String::as_str)
            .filter(|k| k.starts_with("VIRTPOD_") && !KNOWN.contains(k))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults() {
        let s = Settings::from_env(&env(&[])).unwrap();
        assert_eq!(s.mode, None);
        assert_eq!(s.policy.on_shutdown, OnShutdown::Shutdown);
        assert_eq!(s.policy.on_boot, OnBoot::Start);
        assert_eq!(s.policy.shutdown_timeout, Duration::from_secs(90));
        assert_eq!(s.policy.parallel, 0, "all guests at once");
        assert_eq!(
            s.socket,
            SocketAccess {
                gid: None,
                rw_perms: 0o700,
                ro_perms: 0o700
            }
        );
    }

    #[test]
    fn empty_means_default_for_every_setting() {
        let all_empty: Vec<(&str, &str)> = KNOWN.iter().map(|k| (*k, "")).collect();
        assert_eq!(
            Settings::from_env(&env(&all_empty)).unwrap(),
            Settings::from_env(&env(&[])).unwrap()
        );
    }

    #[test]
    fn values() {
        let s = Settings::from_env(&env(&[
            ("VIRTPOD_LIBVIRT_MODE", "modular"),
            ("VIRTPOD_ON_SHUTDOWN", "suspend"),
            ("VIRTPOD_ON_BOOT", "ignore"),
            ("VIRTPOD_SHUTDOWN_TIMEOUT", "30"),
            ("VIRTPOD_PARALLEL_SHUTDOWN", "2"),
            ("VIRTPOD_SOCKET_GID", "1234"),
            ("VIRTPOD_SOCKET_RO_PERMS", "0777"),
        ]))
        .unwrap();
        assert_eq!(s.mode, Some(Flavor::Modular));
        assert_eq!(
            (s.policy.on_shutdown, s.policy.on_boot, s.policy.parallel),
            (OnShutdown::Suspend, OnBoot::Ignore, 2)
        );
        assert_eq!(s.policy.shutdown_timeout, Duration::from_secs(30));
        assert_eq!(
            s.socket,
            SocketAccess {
                gid: Some(1234),
                rw_perms: 0o770,
                ro_perms: 0o777
            }
        );
    }

    #[test]
    fn bad_values_name_the_variable_and_what_it_accepts() {
        for (k, v, says) in [
            ("VIRTPOD_LIBVIRT_MODE", "both", "monolithic, modular"),
            ("VIRTPOD_ON_SHUTDOWN", "halt", "shutdown, suspend, destroy"),
            ("VIRTPOD_ON_BOOT", "yes", "start, ignore"),
            ("VIRTPOD_SHUTDOWN_TIMEOUT", "2m", "whole number"),
            ("VIRTPOD_SHUTDOWN_TIMEOUT", "-1", "whole number"),
            ("VIRTPOD_PARALLEL_SHUTDOWN", "all", "whole number"),
            ("VIRTPOD_SOCKET_GID", "libvirt", "number of a group"),
            ("VIRTPOD_SOCKET_PERMS", "0000", "keep the owner's rw"),
            ("VIRTPOD_SOCKET_PERMS", "7777", "0600 to 0777"),
            ("VIRTPOD_SOCKET_PERMS", "0400", "0600 to 0777"),
            ("VIRTPOD_SOCKET_PERMS", "rw", "octal"),
            ("VIRTPOD_SOCKET_RO_PERMS", "99", "octal"),
            ("VIRTPOD_SOCKET_GROUP", "libvirt", "VIRTPOD_SOCKET_GID"),
            ("VIRTPOD_SASL_CREDENTIALS", "secrets/x", "absolute path"),
            ("VIRTPOD_COCKPIT", "yes", "expected 0, 1"),
            (
                "VIRTPOD_COCKPIT",
                "1",
                "VIRTPOD_COCKPIT_CREDENTIALS=/run/secrets/",
            ),
            (
                "VIRTPOD_COCKPIT_CREDENTIALS",
                "/run/secrets/c",
                "set VIRTPOD_COCKPIT=1",
            ),
            ("VIRTPOD_SSH_AUTHORIZED_KEYS", "keys", "absolute path"),
        ] {
            let e = Settings::from_env(&env(&[(k, v)])).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("{k}={v:?}: ")) && e.contains(says),
                "{k}={v}: {e}"
            );
        }
    }

    #[test]
    fn cockpit_needs_its_credentials_and_they_must_be_absolute() {
        let s = Settings::from_env(&env(&[
            ("VIRTPOD_COCKPIT", "1"),
            ("VIRTPOD_COCKPIT_CREDENTIALS", "/run/secrets/c"),
        ]))
        .unwrap();
        assert_eq!(s.cockpit, Some(PathBuf::from("/run/secrets/c")));
        let s = Settings::from_env(&env(&[("VIRTPOD_COCKPIT", "0")])).unwrap();
        assert_eq!(s.cockpit, None);
        let e = Settings::from_env(&env(&[
            ("VIRTPOD_COCKPIT", "1"),
            ("VIRTPOD_COCKPIT_CREDENTIALS", "c"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("VIRTPOD_COCKPIT_CREDENTIALS=\"c\"") && e.contains("absolute path"),
            "{e}"
        );
    }

    #[test]
    fn polkit_opens_the_sockets_to_every_host_user_unless_a_group_narrows_them() {
        let s = Settings::from_env(&env(&[("VIRTPOD_AUTH", "polkit")])).unwrap();
        assert_eq!(s.auth(), Auth::Polkit);
        assert_eq!((s.socket.rw_perms, s.socket.ro_perms), (0o666, 0o666));
        let s = Settings::from_env(&env(&[
            ("VIRTPOD_AUTH", "polkit"),
            ("VIRTPOD_SOCKET_GID", "5"),
        ]))
        .unwrap();
        assert_eq!(s.socket.rw_perms, 0o770);
        assert_eq!(Settings::from_env(&env(&[])).unwrap().auth(), Auth::None);
        let e = Settings::from_env(&env(&[
            ("VIRTPOD_AUTH", "polkit"),
            ("VIRTPOD_SASL_CREDENTIALS", "/run/secrets/s"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(e.contains("choose polkit or SASL"), "{e}");
        let e = Settings::from_env(&env(&[("VIRTPOD_AUTH", "sasl")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("VIRTPOD_SASL_CREDENTIALS names"), "{e}");
    }

    #[test]
    fn unknown_names_are_reported() {
        let e = env(&[
            ("VIRTPOD_SHUTDOWN_TIMOUT", "5"),
            ("VIRTPOD_ON_BOOT", "start"),
            ("PATH", "/bin"),
        ]);
        assert_eq!(Settings::unknown_names(&e), vec!["VIRTPOD_SHUTDOWN_TIMOUT"]);
    }
}
