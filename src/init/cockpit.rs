//! The built-in web console, `VIRTPOD_COCKPIT=1`: cockpit-ws on port 9090 (TLS) with a real
//! login (PAM, through cockpit-session), the Machines page talking to libvirt-dbus on the
//! container's own system bus. The setting wants three optional services of the catalog; the
//! login users come from a `USER:PASSWORD` file (`VIRTPOD_COCKPIT_CREDENTIALS`, a podman
//! secret) and are made in the image's /etc/passwd at every start: created when new, their
//! password set from the file, locked when they left it. Decisions are pure functions
//! (`parse_credentials`, `with_services`, `plan`); `configure` runs the programs.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use tracing::info;

use super::args::BootArgs;
use super::tool::run;

/// The services `VIRTPOD_COCKPIT=1` wants, in the catalog's names.
pub const SERVICES: &[&str] = &["dbus", "libvirt-dbus", "cockpit-ws"];
/// The port cockpit-ws listens on in the container (init/cockpit-ws.toml).
pub const PORT: u16 = 9090;
/// The comment (GECOS) of the users virtpod makes: only those are ever changed or locked.
pub const MARKER: &str = "virtpod cockpit login";
/// Members may call org.libvirt on the system bus (Debian's org.libvirt.conf).
pub const GROUP: &str = "libvirt";
const KEY: &str = "VIRTPOD_COCKPIT_CREDENTIALS";
const CERT_ENSURE: &str = "/usr/lib/cockpit/cockpit-certificate-ensure";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    pub user: String,
    pub password: String,
}

/// A user name useradd accepts everywhere: a lowercase letter or `_`, then lowercase letters,
/// digits, `-` and `_`, at most 32 characters.
fn valid_user(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 32
        && matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// `user:password` per line; blank lines and `#` comments ignored. Errors name the file and the
/// line, never the password.
pub fn parse_credentials(text: &str, source: &Path) -> Result<Vec<Login>> {
    let mut logins: Vec<Login> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let at = format!("{KEY}={}: line {}", source.display(), n + 1);
        let Some((user, password)) = line.split_once(':') else {
            bail!("{at} is not USER:PASSWORD");
        };
        if !valid_user(user) {
            bail!("{at}: the user name must be a lowercase letter or _, then lowercase letters, digits, - or _ (at most 32)");
        }
        if user == "root" {
            bail!("{at}: Cockpit refuses root's password login (/etc/cockpit/disallowed-users); name another user, it is made for you");
        }
        if password.is_empty() {
            bail!("{at}: the password is empty");
        }
        if logins.iter().any(|l| l.user == user) {
            bail!("{at}: user {user} is listed twice");
        }
        logins.push(Login {
            user: user.to_string(),
            password: password.to_string(),
        });
    }
    if logins.is_empty() {
        bail!(
            "{KEY}={}: no USER:PASSWORD line, so nobody could log in",
            source.display()
        );
    }
    Ok(logins)
}

/// Services that cannot run without their setting: wanted by hand without it, each would fail
/// at every start, for ever.
const NEED_A_SETTING: &[(&str, &str)] = &[
    (
        "sshd",
        "VIRTPOD_SSH_AUTHORIZED_KEYS (the keys that may log in)",
    ),
    (
        "cockpit-ws",
        "VIRTPOD_COCKPIT=1 with VIRTPOD_COCKPIT_CREDENTIALS (the console's logins)",
    ),
    ("forward", "VIRTPOD_FORWARD (the ports to forward)"),
];

/// `systemd.wants=` plus the services settings turn on, given as (the setting, its services):
/// the console's (`SERVICES`), SSH's (ssh.rs), the forward's. Masking one of them while the
/// setting asks for it is a contradiction, and so is wanting one whose setting is not set: both
/// refused with the fix.
pub fn with_services(wanted: &[(&str, &[&str])], boot: &BootArgs) -> Result<BootArgs> {
    for (service, setting) in NEED_A_SETTING {
        if boot.wants.contains(*service) && !wanted.iter().any(|(_, s)| s.contains(service)) {
            bail!("systemd.wants={service}: {service} needs {setting}, which is not set, and would fail at every start; set it (docs/init.md), or drop systemd.wants={service}");
        }
    }
    let mut wants = boot.wants.clone();
    for (setting, services) in wanted {
        if let Some(m) = services.iter().find(|s| boot.mask.contains(**s)) {
            bail!("{setting} needs the {m} service, yet systemd.mask={m} masks it: drop one of the two");
        }
        wants.extend(services.iter().map(|s| s.to_string()));
    }
    Ok(BootArgs {
        setenv: boot.setenv.clone(),
        mask: boot.mask.clone(),
        wants,
    })
}

/// What to do to the image's users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A new user: made with the marker, in the libvirt group, with a home and a shell.
    Create(String),
    /// One virtpod made before (an earlier start of this container): kept in the group.
    Keep(String),
    /// One virtpod made that is no longer in the file: password locked, account expired.
    Lock(String),
}

/// The steps for `logins`, given /etc/passwd's text. A name that exists but was not made by
/// virtpod (a system account such as libvirt-qemu) is refused: its password is not ours to set.
pub fn plan(logins: &[Login], passwd: &str, source: &Path) -> Result<Vec<Step>> {
    let accounts: Vec<(&str, &str)> = passwd
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 5).then(|| (f[0], f[4]))
        })
        .collect();
    let mut steps = Vec::new();
    for login in logins {
        match accounts.iter().find(|(name, _)| *name == login.user) {
            None => steps.push(Step::Create(login.user.clone())),
            Some((_, gecos)) if *gecos == MARKER => steps.push(Step::Keep(login.user.clone())),
            Some(_) => bail!(
                "{KEY}={}: user {} is an account of the image itself, not a console login; choose another name",
                source.display(),
                login.user
            ),
        }
    }
    let wanted: BTreeSet<&str> = logins.iter().map(|l| l.user.as_str()).collect();
    for (name, gecos) in &accounts {
        if *gecos == MARKER && !wanted.contains(name) {
            steps.push(Step::Lock(name.to_string()));
        }
    }
    Ok(steps)
}

/// chpasswd's input: one `user:password` line per login.
pub fn chpasswd_input(logins: &[Login]) -> String {
    logins
        .iter()
        .map(|l| format!("{}:{}\n", l.user, l.password))
        .collect()
}

/// The login users and cockpit-ws's TLS certificate. Runs in `virtpod prepare` (a child of
/// init, never PID 1 itself): it runs programs and waits for them.
pub fn configure(credentials: &Path) -> Result<()> {
    let text = std::fs::read_to_string(credentials).with_context(|| {
        format!(
            "{KEY}={}: cannot read it (mount the file or podman secret there)",
            credentials.display()
        )
    })?;
    let logins = parse_credentials(&text, credentials)?;
    let passwd = std::fs::read_to_string("/etc/passwd").context("reading /etc/passwd")?;
    let steps = plan(&logins, &passwd, credentials)?;
    for step in &steps {
        match step {
            Step::Create(user) => run(
                "useradd",
                &[
                    "--create-home",
                    "--comment",
                    MARKER,
                    "--groups",
                    GROUP,
                    "--shell",
                    "/bin/bash",
                    user,
                ],
            )?,
            Step::Keep(user) => run("usermod", &["--append", "--groups", GROUP, user])?,
            Step::Lock(user) => run("usermod", &["--lock", "--expiredate", "1", user])?,
        }
        info!(?step, "cockpit login user");
    }
    let mut child = Command::new("chpasswd")
        .stdin(Stdio::piped())
        .spawn()
        .context("running chpasswd")?;
    child
        .stdin
        .take()
        .context("chpasswd's stdin")?
        .write_all(chpasswd_input(&logins).as_bytes())
        .context("giving chpasswd the passwords")?;
    let status = child.wait().context("waiting for chpasswd")?;
    if !status.success() {
        bail!("chpasswd failed ({status}) setting the passwords from {KEY}");
    }
    // A kept user may have been locked (expired) at an earlier start: back in the file, back in.
    for step in &steps {
        if let Step::Keep(user) = step {
            run("usermod", &["--expiredate", "", user])?;
        }
    }
    // A self-signed certificate in /etc/cockpit/ws-certs.d unless one is there (yours, mounted).
    run(CERT_ENSURE, &[]).context("making cockpit-ws's TLS certificate")?;
    info!(
        users = logins.len(),
        port = PORT,
        "cockpit web console: https, login with the users of {KEY}"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::args;

    fn src() -> &'static Path {
        Path::new("/run/secrets/cockpit")
    }

    #[test]
    fn credentials_file() {
        let logins = parse_credentials("# who\nadmin:s3cr:et\n\nops_2:pw\r\n", src()).unwrap();
        assert_eq!(
            logins,
            vec![
                Login {
                    user: "admin".into(),
                    password: "s3cr:et".into()
                },
                Login {
                    user: "ops_2".into(),
                    password: "pw".into()
                }
            ]
        );
        for (text, says) in [
            ("admin:ok\nnocolon\n", "line 2 is not USER:PASSWORD"),
            ("Admin:secretword\n", "lowercase"),
            ("al ice:secretword\n", "lowercase"),
            ("root:secretword\n", "disallowed-users"),
            ("admin:\n", "password is empty"),
            ("a:secretword\na:secretword\n", "listed twice"),
            ("# nobody\n", "nobody could log in"),
        ] {
            let e = parse_credentials(text, src()).unwrap_err().to_string();
            assert!(
                e.starts_with("VIRTPOD_COCKPIT_CREDENTIALS=/run/secrets/cockpit")
                    && e.contains(says),
                "{text:?}: {e}"
            );
            assert!(!e.contains("secretword"), "never echo a password: {e}");
        }
    }

    #[test]
    fn the_setting_wants_the_services_and_refuses_a_mask_of_one() {
        let boot = args::parse(&["systemd.wants=virtlockd"]).unwrap();
        let on = [("VIRTPOD_COCKPIT=1", SERVICES)];
        let b = with_services(&on, &boot).unwrap();
        for s in ["virtlockd", "dbus", "libvirt-dbus", "cockpit-ws"] {
            assert!(b.wants.contains(s), "{s}");
        }
        assert_eq!(with_services(&[], &boot).unwrap(), boot);
        // A service that lives on its setting, wanted without it.
        for (service, setting) in [
            ("sshd", "VIRTPOD_SSH_AUTHORIZED_KEYS"),
            ("cockpit-ws", "VIRTPOD_COCKPIT=1"),
            ("forward", "VIRTPOD_FORWARD"),
        ] {
            let boot = args::parse(&[&format!("systemd.wants={service}")]).unwrap();
            let e = with_services(&[], &boot).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!(
                    "systemd.wants={service}: {service} needs {setting}"
                )),
                "{e}"
            );
        }
        let boot = args::parse(&["systemd.wants=cockpit-ws"]).unwrap();
        assert!(with_services(&on, &boot).is_ok(), "with its setting");
        let boot = args::parse(&["systemd.mask=dbus"]).unwrap();
        let e = with_services(&on, &boot).unwrap_err().to_string();
        assert!(
            e.starts_with("VIRTPOD_COCKPIT=1 needs the dbus service")
                && e.contains("systemd.mask=dbus"),
            "{e}"
        );
        assert!(with_services(&[], &boot).is_ok());
    }

    #[test]
    fn plan_creates_keeps_locks_and_never_takes_a_system_account() {
        let passwd = format!(
            "root:x:0:0:root:/root:/bin/bash\n\
             libvirt-qemu:x:64055:104:Libvirt Qemu,,,:/var/lib/libvirt:/usr/sbin/nologin\n\
             old:x:1000:1000:{MARKER}:/home/old:/bin/bash\n\
             admin:x:1001:1001:{MARKER}:/home/admin:/bin/bash\n"
        );
        let logins = parse_credentials("admin:a\nnew:b\n", src()).unwrap();
        assert_eq!(
            plan(&logins, &passwd, src()).unwrap(),
            vec![
                Step::Keep("admin".into()),
                Step::Create("new".into()),
                Step::Lock("old".into())
            ]
        );
        let logins = parse_credentials("libvirt-qemu:a\n", src()).unwrap();
        let e = plan(&logins, &passwd, src()).unwrap_err().to_string();
        assert!(e.contains("account of the image"), "{e}");
    }

    #[test]
    fn chpasswd_gets_one_line_per_login() {
        let logins = parse_credentials("a:x:y\nb:z\n", src()).unwrap();
        assert_eq!(chpasswd_input(&logins), "a:x:y\nb:z\n");
    }
}
