//! SSH into the appliance, `VIRTPOD_SSH_AUTHORIZED_KEYS=FILE`: for the host's own Cockpit (it
//! adds the appliance as a remote host and runs the appliance's cockpit-bridge over SSH) and for
//! `qemu+ssh://` clients. The setting wants sshd, the system bus and libvirt-dbus; the keys are
//! root's, key logins only (/etc/ssh/sshd_config.d/virtpod.conf). Host keys live in the
//! /etc/libvirt volume, so a re-created container keeps its identity.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{bail, Context, Result};
use tracing::info;

/// The services the setting wants, in the catalog's names.
pub const SERVICES: &[&str] = &["sshd", "dbus", "libvirt-dbus"];
const KEY: &str = "VIRTPOD_SSH_AUTHORIZED_KEYS";
/// `ssh-keygen -A -f` prefix: the keys land in `<prefix>/etc/ssh/`, as sshd's drop-in names them.
pub const HOST_KEY_PREFIX: &str = "/etc/libvirt/virtpod-ssh";
const AUTHORIZED: &str = "/root/.ssh/authorized_keys";

/// Key types OpenSSH accepts in authorized_keys.
fn key_type(field: &str) -> bool {
    ["ssh-", "ecdsa-sha2-", "sk-ssh-", "sk-ecdsa-sha2-"]
        .iter()
        .any(|p| field.starts_with(p))
}

/// authorized_keys lines: `[options] TYPE BASE64 [comment]`; blank lines and `#` comments
/// kept out. A line without a key type followed by key data is an error naming the line.
pub fn parse_keys(text: &str, source: &Path) -> Result<Vec<String>> {
    let mut keys = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let ok = fields.windows(2).any(|w| {
            key_type(w[0])
                && w[1].len() >= 16
                && w[1]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+/=".contains(c))
        });
        if !ok {
            bail!(
                "{KEY}={}: line {} is not a public key (TYPE BASE64 [comment], such as a line of ~/.ssh/id_ed25519.pub)",
                source.display(),
                n + 1
            );
        }
        keys.push(line.to_string());
    }
    if keys.is_empty() {
        bail!(
            "{KEY}={}: no public key in it, so nobody could log in",
            source.display()
        );
    }
    Ok(keys)
}

/// root's authorized_keys from the file, and host keys made once in the /etc/libvirt volume.
/// Runs in `virtpod prepare`, never in PID 1 itself.
pub fn configure(source: &Path) -> Result<()> {
    let text = std::fs::read_to_string(source).with_context(|| {
        format!(
            "{KEY}={}: cannot read it (mount the file or podman secret there)",
            source.display()
        )
    })?;
    let keys = parse_keys(&text, source)?;
    let dir = Path::new(AUTHORIZED).parent().unwrap();
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    let mut body = format!("# Written by virtpod from {KEY} at every start.\n");
    for k in &keys {
        body.push_str(k);
        body.push('\n');
    }
    std::fs::write(AUTHORIZED, body).with_context(|| format!("writing {AUTHORIZED}"))?;
    std::fs::set_permissions(AUTHORIZED, std::fs::Permissions::from_mode(0o600))?;
    let host_dir = format!("{HOST_KEY_PREFIX}/etc/ssh");
    std::fs::create_dir_all(&host_dir).with_context(|| format!("creating {host_dir}"))?;
    super::tool::run("ssh-keygen", &["-A", "-f", HOST_KEY_PREFIX])
        .context("making sshd's host keys (package openssh-server)")?;
    info!(
        keys = keys.len(),
        host_keys = host_dir,
        "sshd: key logins for root from {KEY}"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorized_keys_file() {
        let p = Path::new("/run/secrets/keys");
        let keys = parse_keys(
            "# mine\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG me@host\n\nfrom=\"10.0.0.1\" ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTY=\n",
            p,
        )
        .unwrap();
        assert_eq!(keys.len(), 2);
        assert!(keys[1].starts_with("from="));
        let e = parse_keys("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG\nhello world\n", p)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 2") && e.contains("VIRTPOD_SSH_AUTHORIZED_KEYS=/run/secrets/keys"),
            "{e}"
        );
        assert!(parse_keys("ssh-rsa\n", p).is_err(), "no key data");
        assert!(parse_keys("# none\n", p)
            .unwrap_err()
            .to_string()
            .contains("nobody could log in"));
    }
}
