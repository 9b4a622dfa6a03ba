//! Optional SASL on libvirt's sockets: SCRAM-SHA-256 with users from a credentials file (a
//! podman secret, say), for hosts where socket permissions alone are too coarse. libvirt reads
//! /etc/sasl2/libvirt.conf; the user database (passwords in clear, as SCRAM's sasldb keeps them)
//! lives in the container's own /run/virtpod, never on a volume: it is made anew from the file
//! at every start, so a user removed from the file loses access, and it goes with the container
//! and with SASL turned off.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

pub const SASL_CONF: &str = "/etc/sasl2/libvirt.conf";
pub const SASL_DB: &str = "/run/virtpod/sasl-passwd.db";
/// Where versions before 2026-12 kept it: on the /etc/libvirt volume, which outlives the
/// container and SASL itself. Removed at every start.
pub const OLD_SASL_DB: &str = "/etc/libvirt/passwd.db";
/// The systemd variant's client auth file and the environment that names it to
/// libvirt-guests.service (systemd/libvirt-guests.service.d/virtpod.conf).
pub const CLIENT_AUTH: &str = "/run/virtpod/libvirt-auth.conf";
pub const GUESTS_ENV: &str = "/run/virtpod/libvirt-guests.env";

/// `user:password` per line; blank lines and `#` comments ignored. Errors name the line, never
/// the password.
pub fn parse_credentials(text: &str, source: &Path) -> Result<Vec<(String, String)>> {
    let mut users = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        match line.split_once(':') {
            Some((user, pass))
                if !user.is_empty()
                    && !pass.is_empty()
                    && user
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c)) =>
            {
                users.push((user.to_string(), pass.to_string()))
            }
            _ => bail!(
                "VIRTPOD_SASL_CREDENTIALS={}: line {} is not USER:PASSWORD (user of letters, digits, . _ - @)",
                source.display(),
                n + 1
            ),
        }
    }
    if users.is_empty() {
        bail!(
            "VIRTPOD_SASL_CREDENTIALS={}: no USER:PASSWORD line, so nobody could connect",
            source.display()
        );
    }
    Ok(users)
}

pub fn sasl_conf() -> String {
    format!(
        "# Written by virtpod (VIRTPOD_SASL_CREDENTIALS) at every start.\nmech_list: scram-sha-256\nsasldb_path: {SASL_DB}\n"
    )
}

/// The users of the credentials file, read and parsed: what the user database is made of, and
/// whom init's own helpers and libvirt-guests log in as (the first).
pub fn read_credentials(credentials: &Path) -> Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(credentials).with_context(|| {
        format!(
            "VIRTPOD_SASL_CREDENTIALS={}: cannot read it (mount the file or podman secret there)",
            credentials.display()
        )
    })?;
    parse_credentials(&text, credentials)
}

/// Writes libvirt's SASL configuration and the user database. Runs in `virtpod prepare` (a
/// child of init, never PID 1 itself), since saslpasswd2 is a program to run and wait for.
pub fn configure(credentials: &Path) -> Result<usize> {
    let users = read_credentials(credentials)?;
    std::fs::create_dir_all("/etc/sasl2").context("creating /etc/sasl2")?;
    std::fs::write(SASL_CONF, sasl_conf()).with_context(|| format!("writing {SASL_CONF}"))?;
    remove_databases()?;
    std::fs::create_dir_all("/run/virtpod").context("creating /run/virtpod")?;
    for (user, pass) in &users {
        let mut child = Command::new("saslpasswd2")
            .args(["-f", SASL_DB, "-a", "libvirt", "-p", "-c", user])
            .stdin(Stdio::piped())
            .spawn()
            .context("running saslpasswd2 (package sasl2-bin)")?;
        child
            .stdin
            .take()
            .context("saslpasswd2's stdin")?
            .write_all(pass.as_bytes())
            .context("giving saslpasswd2 the password")?;
        let status = child.wait().context("waiting for saslpasswd2")?;
        if !status.success() {
            bail!("saslpasswd2 failed for user {user:?} ({status})");
        }
    }
    Ok(users.len())
}

/// SASL off: no user database is left anywhere, and libvirt's SASL configuration goes if it is
/// the one virtpod wrote.
pub fn unconfigure() -> Result<()> {
    remove_databases()?;
    if std::fs::read_to_string(SASL_CONF).is_ok_and(|t| t.starts_with("# Written by virtpod")) {
        remove(SASL_CONF)?;
    }
    Ok(())
}

fn remove_databases() -> Result<()> {
    remove(SASL_DB)?;
    remove(OLD_SASL_DB)
}

fn remove(path: &str) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {path}"))
        }
        _ => Ok(()),
    }
}

/// A libvirt client auth file (libvirt's auth.conf format) that logs in as `user`.
pub fn client_auth(user: &str, password: &str) -> String {
    format!(
        "# Written by virtpod prepare for libvirt-guests (VIRTPOD_SASL_CREDENTIALS).\n\
         [credentials-virtpod]\nauthname={user}\npassword={password}\n\n\
         [auth-libvirt-default]\ncredentials=virtpod\n"
    )
}

/// The systemd variant: libvirt-guests' virsh logs in as the first user of the credentials
/// when SASL is on (virtpod init's own helpers answer libvirt in memory instead,
/// src/libvirt/login.rs); with SASL off both files are removed.
pub fn guests_login(credentials: Option<&Path>) -> Result<()> {
    let Some(credentials) = credentials else {
        for file in [GUESTS_ENV, CLIENT_AUTH] {
            match std::fs::remove_file(file) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(e).with_context(|| format!("removing {file}"))
                }
                _ => {}
            }
        }
        return Ok(());
    };
    let users = read_credentials(credentials)?;
    let (user, password) = &users[0];
    std::fs::create_dir_all("/run/virtpod").context("creating /run/virtpod")?;
    write_private(Path::new(CLIENT_AUTH), &client_auth(user, password))?;
    write_private(
        Path::new(GUESTS_ENV),
        &format!("LIBVIRT_AUTH_FILE={CLIENT_AUTH}\n"),
    )
}

/// Written 0600 from the start: the file holds a password.
fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_file() {
        let p = Path::new("/run/secrets/sasl");
        let users = parse_credentials("# admins\nalice:s3cr:et\n\nbob@x:pw\n", p).unwrap();
        assert_eq!(
            users,
            vec![
                ("alice".to_string(), "s3cr:et".to_string()),
                ("bob@x".to_string(), "pw".to_string())
            ]
        );
        let e = parse_credentials("alice:ok\nnopassword\n", p)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 2") && e.contains("/run/secrets/sasl"),
            "{e}"
        );
        let e = parse_credentials("al ice:secretword\n", p)
            .unwrap_err()
            .to_string();
        assert!(!e.contains("secretword"), "never echo a password: {e}");
        assert!(parse_credentials("# none\n", p).is_err());
    }

    #[test]
    fn client_auth_file_names_the_default_uri() {
        let text = client_auth("admin", "correct horse");
        assert!(text.contains("[credentials-virtpod]\nauthname=admin\npassword=correct horse\n"));
        assert!(text.contains("[auth-libvirt-default]\ncredentials=virtpod\n"));
    }
}
