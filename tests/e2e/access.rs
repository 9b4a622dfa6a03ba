//! init's own libvirt work (readiness, the guests of the last run, the guests at a stop) under
//! each access setting of libvirt's socket: the default (host root only), a host group
//! (`VIRTPOD_SOCKET_GID`) and SASL passwords (`VIRTPOD_SASL_CREDENTIALS`). The fourth,
//! polkit, is in tests/e2e/polkit.rs (it needs the test's own system bus). Under SASL, init's
//! helpers were once refused like any client without a password: never ready, and every guest
//! lost at a stop (issue 27).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::harness::*;

/// A SASL credentials file with two users and a client auth file for the first.
fn sasl_files(dir: &Path) -> (PathBuf, PathBuf) {
    let creds = dir.join("creds");
    std::fs::write(&creds, "admin:correct horse\nother:pw\n").unwrap();
    let auth = dir.join("auth.conf");
    std::fs::write(
        &auth,
        "[credentials-virtpod]\nauthname=admin\npassword=correct horse\n\n[auth-libvirt-default]\ncredentials=virtpod\n",
    )
    .unwrap();
    (creds, auth)
}

#[test]
fn default_access_keeps_the_guests() {
    require_prepared();
    let vols = Volumes::new("acc-default");
    let app = Appliance::start(&vols, Opts::default());
    init_keeps_guests_across_a_stop(&app, &["-t", "90"]);
}

#[test]
fn a_socket_group_keeps_the_guests() {
    require_prepared();
    let vols = Volumes::new("acc-gid");
    let app = Appliance::start(
        &vols,
        Opts {
            podman: &["-e", "VIRTPOD_SOCKET_GID=4242"],
            ..Opts::default()
        },
    );
    init_keeps_guests_across_a_stop(&app, &["-t", "90"]);
    let meta = std::fs::metadata(vols.socket()).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::gid(&meta), 4242);
}

#[test]
fn sasl_keeps_the_guests() {
    require_prepared();
    let dir = tempfile::tempdir().unwrap();
    let (creds, auth) = sasl_files(dir.path());
    let secret = Secret::create("acc-sasl", &creds);
    let setting = format!("VIRTPOD_SASL_CREDENTIALS=/run/secrets/{}", secret.0);
    let vols = Volumes::new("acc-sasl");
    let app = Appliance::start(
        &vols,
        Opts {
            podman: &["--secret", &secret.0, "-e", &setting],
            auth_file: Some(&auth),
            ..Opts::default()
        },
    );
    init_keeps_guests_across_a_stop(&app, &["-t", "90"]);
    // The socket still asks everyone else for a password.
    let plain = std::process::Command::new("virsh")
        .arg("-c")
        .arg(format!(
            "qemu+unix:///system?socket={}",
            vols.socket().display()
        ))
        .arg("list")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        !plain.status.success() && text(&plain).contains("authentication"),
        "no password, yet connected, or refused for another reason: {}",
        text(&plain)
    );

    // The password database is the container's own, never on the /etc/libvirt volume...
    assert!(app
        .exec("test -s /run/virtpod/sasl-passwd.db")
        .status
        .success());
    assert!(!app.exec("test -e /etc/libvirt/passwd.db").status.success());
    // ... where an older version kept it: with SASL off, no database is left anywhere.
    app.exec_ok("cp /run/virtpod/sasl-passwd.db /etc/libvirt/passwd.db");
    drop(app);
    let app = Appliance::start(&vols, Opts::default());
    app.wait_ready();
    for db in ["/etc/libvirt/passwd.db", "/run/virtpod/sasl-passwd.db"] {
        assert!(
            !app.exec(&format!("test -e {db}")).status.success(),
            "{db} left"
        );
    }
    // (The image's own /etc/sasl2/libvirt.conf, Debian's, is not virtpod's to remove.)
    assert!(!app
        .exec("grep -q 'Written by virtpod' /etc/sasl2/libvirt.conf")
        .status
        .success());
    let (ok, health) = app.health();
    assert!(ok, "{health}");
}

/// The systemd variant: libvirt-guests' virsh shuts the guests down and starts them again, and
/// with SASL on it logs in too (systemd/libvirt-guests.service.d/virtpod.conf).
#[test]
fn systemd_variant_with_sasl_keeps_the_guests() {
    require_prepared();
    let dir = tempfile::tempdir().unwrap();
    let (creds, auth) = sasl_files(dir.path());
    let secret = Secret::create("acc-sd-sasl", &creds);
    let setting = format!("VIRTPOD_SASL_CREDENTIALS=/run/secrets/{}", secret.0);
    let vols = Volumes::new("acc-sd-sasl");
    let podman: Vec<&str> = SYSTEMD_VARIANT
        .iter()
        .copied()
        .chain(["--secret", &secret.0, "-e", &setting])
        .collect();
    let app = Appliance::start(
        &vols,
        Opts {
            podman: &podman,
            auth_file: Some(&auth),
            ..Opts::default()
        },
    );
    app.wait_ready();
    app.boot_guest("g");
    podman_ok(&["stop", "-t", "120", &app.name]);
    assert!(
        app.console("g").contains(GUEST_POWER_BUTTON),
        "libvirt-guests did not shut the guest down through ACPI:\n{}\n--- journal ---\n{}",
        app.console("g"),
        app.logs()
    );
    podman_ok(&["start", &app.name]);
    app.wait_ready();
    wait_for("g running again", Duration::from_secs(90), || {
        app.domstate("g") == "running"
    });
    app.wait_console("g", GUEST_BOOTED, 2);
    let env = app.exec_ok("stat -c '%a %U' /run/virtpod/libvirt-auth.conf");
    assert_eq!(
        env.trim(),
        "600 root",
        "the client auth file holds a password"
    );
}
