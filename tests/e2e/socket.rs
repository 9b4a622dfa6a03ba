//! Who may use libvirt's socket on the host. The container's gids are the host's (rootful), so
//! a socket group-owned by the image's `libvirt` group (103 in the Debian image) would be open
//! to whatever host group has that number. Host identities are made with setpriv (uid 65534
//! and the groups a test names), never by changing /etc.

use std::path::Path;
use std::process::{Command, Output};

use crate::harness::*;

/// A host group number no real group is likely to have.
const GID: u32 = 64_999;

fn virsh_as(groups: &str, socket: &Path, args: &[&str]) -> Output {
    virsh_as_ids(65534, groups, socket, args)
}

/// virsh as host uid and gid `id`, with the supplementary `groups`.
fn virsh_as_ids(id: u32, groups: &str, socket: &Path, args: &[&str]) -> Output {
    Command::new("setpriv")
        .args([
            &format!("--reuid={id}"),
            &format!("--regid={id}"),
            &format!("--groups={groups}"),
        ])
        .env("HOME", "/")
        .arg("virsh")
        .arg("-c")
        .arg(format!("qemu+unix:///system?socket={}", socket.display()))
        .args(args)
        .output()
        .expect("running setpriv virsh")
}

fn refused(out: &Output) -> bool {
    !out.status.success() && text(out).contains("Permission denied")
}

fn image_libvirt_gid(app: &Appliance) -> String {
    app.exec_ok("getent group libvirt | cut -d: -f3")
        .trim()
        .to_string()
}

/// What each identity gets on the read-write and the read-only socket.
fn check_access(app: &Appliance, vols: &Volumes, opened_to_gid: bool, ro_open: bool) {
    let rw = vols.socket();
    let ro = vols.run_dir.path().join("libvirt-sock-ro");
    let image_gid = image_libvirt_gid(app);
    // Host root always; the image's libvirt gid as a host group never.
    app.virsh_ok(&["list"]);
    let stranger = virsh_as(&image_gid, &rw, &["list"]);
    assert!(refused(&stranger), "gid {image_gid}: {}", text(&stranger));
    let member = virsh_as(&GID.to_string(), &rw, &["list"]);
    if opened_to_gid {
        assert!(
            member.status.success(),
            "member of {GID}: {}",
            text(&member)
        );
        let out = virsh_as(&image_gid, &ro, &["-r", "list"]);
        assert_eq!(
            out.status.success(),
            ro_open,
            "read-only socket: {}",
            text(&out)
        );
        let out = virsh_as(&GID.to_string(), &ro, &["-r", "list"]);
        assert!(out.status.success(), "member on ro: {}", text(&out));
    } else {
        assert!(refused(&member), "gid {GID}: {}", text(&member));
        let out = virsh_as(&image_gid, &ro, &["-r", "list"]);
        assert!(refused(&out), "read-only socket: {}", text(&out));
    }
}

#[test]
fn socket_is_host_root_only_by_default_and_opens_to_one_host_gid() {
    require_prepared();
    let vols = Volumes::new("sock-default");
    let app = Appliance::start(&vols, Opts::default());
    app.wait_ready();
    check_access(&app, &vols, false, false);
    drop(app);

    let gid = format!("VIRTPOD_SOCKET_GID={GID}");
    let vols = Volumes::new("sock-gid");
    let app = Appliance::start(
        &vols,
        Opts {
            podman: &["-e", &gid],
            ..Opts::default()
        },
    );
    app.wait_ready();
    check_access(&app, &vols, true, false);
    drop(app);

    let vols = Volumes::new("sock-ro");
    let app = Appliance::start(
        &vols,
        Opts {
            podman: &["-e", &gid, "-e", "VIRTPOD_SOCKET_RO_PERMS=0777"],
            ..Opts::default()
        },
    );
    app.wait_ready();
    check_access(&app, &vols, true, true);
}

/// A host user with an id of its own (uid 1000 on a desktop; the image has no such account) in
/// the socket's group. libvirt names every client and refuses one it cannot name, so without the
/// host's accounts the user is refused and init's log says which binds fix it; with them (as
/// the front doors bind them) the user connects, and a restart adds nothing twice.
#[test]
fn a_host_user_the_image_lacks_connects_once_the_hosts_accounts_are_bound() {
    require_prepared();
    const USER: u32 = 3_000_501;
    assert!(
        !std::fs::read_to_string("/etc/passwd")
            .unwrap()
            .contains(&format!(":{USER}:")),
        "uid {USER} is taken on this host; pick another"
    );
    // The host's accounts as they would be with this user: copies, /etc is not touched.
    let host = tempfile::tempdir().unwrap();
    for (file, extra) in [
        (
            "passwd",
            // And an entry no useradd would make: a 100,000-character name once made every
            // `podman exec` fail ("bufio.Scanner: token too long"), health check included.
            format!(
                "vp-desktop:x:{USER}:{USER}:virtpod test:/home/vp:/bin/sh\n{}:x:3000502:3000502::/:/bin/sh\n",
                "v".repeat(100_000)
            ),
        ),
        (
            "group",
            format!("vp-desktop:x:{USER}:\nvp-socket:x:{GID}:vp-desktop\n"),
        ),
    ] {
        let text = std::fs::read_to_string(format!("/etc/{file}")).unwrap() + &extra;
        std::fs::write(host.path().join(file), text).unwrap();
    }
    let gid = format!("VIRTPOD_SOCKET_GID={GID}");

    let vols = Volumes::new("sock-nameless");
    let app = Appliance::start(
        &vols,
        Opts {
            podman: &["-e", &gid],
            ..Opts::default()
        },
    );
    app.wait_ready();
    let out = virsh_as_ids(USER, &GID.to_string(), &vols.socket(), &["list"]);
    assert!(
        !out.status.success()
            && text(&out).contains(&format!("Failed to find user record for uid '{USER}'")),
        "{}",
        text(&out)
    );
    assert!(
        app.logs().contains(
            "-v /etc/passwd:/run/host/etc/passwd:ro -v /etc/group:/run/host/etc/group:ro"
        ),
        "init does not name the binds:\n{}",
        app.logs()
    );
    drop(app);

    let passwd = format!(
        "{}:/run/host/etc/passwd:ro",
        host.path().join("passwd").display()
    );
    let group = format!(
        "{}:/run/host/etc/group:ro",
        host.path().join("group").display()
    );
    let vols = Volumes::new("sock-named");
    let app = Appliance::start(
        &vols,
        Opts {
            podman: &["-e", &gid, "-v", &passwd, "-v", &group],
            ..Opts::default()
        },
    );
    app.wait_ready();
    let out = virsh_as_ids(USER, &GID.to_string(), &vols.socket(), &["list"]);
    assert!(out.status.success(), "{}", text(&out));
    let (ok, health) = app.health();
    assert!(ok, "podman exec and the health check still work: {health}");
    assert!(
        app.logs()
            .contains("not a name useradd accepts: not copied into /etc/passwd"),
        "{}",
        app.logs()
    );
    assert!(!app.exec_ok("cat /etc/passwd").contains("vvvvvvvvvv"));
    assert_eq!(
        app.exec_ok(&format!("getent passwd {USER}")).trim(),
        format!("vp-desktop:*:{USER}:{USER}:virtpod test:/nonexistent:/usr/sbin/nologin")
    );
    // The image's own groups keep their numbers; the host's come as names only.
    assert_eq!(
        app.exec_ok(&format!("getent group {GID}")).trim(),
        format!("vp-socket:*:{GID}:")
    );
    assert_eq!(
        Some(app.exec_ok("getent group kvm").trim().to_string()),
        image_group_entry("kvm"),
        "the image's kvm group is unchanged"
    );

    podman_ok(&["restart", "-t", "30", &app.name]);
    app.wait_ready();
    assert_eq!(
        app.exec_ok(&format!("grep -c ':{USER}:' /etc/passwd"))
            .trim(),
        "1"
    );
    let out = virsh_as_ids(USER, &GID.to_string(), &vols.socket(), &["list"]);
    assert!(out.status.success(), "after a restart: {}", text(&out));
}

#[test]
fn systemd_variant_obeys_the_same_socket_settings() {
    require_prepared();
    let systemd = SYSTEMD_VARIANT;
    let vols = Volumes::new("sock-systemd");
    let app = Appliance::start(
        &vols,
        Opts {
            podman: systemd,
            ..Opts::default()
        },
    );
    app.wait_ready();
    check_access(&app, &vols, false, false);
    drop(app);

    // Given as the container's environment, as compose.yaml does (virtpod-systemd-env).
    let gid = format!("VIRTPOD_SOCKET_GID={GID}");
    let with_gid: Vec<&str> = systemd.iter().copied().chain(["-e", &gid]).collect();
    let vols = Volumes::new("sock-systemd-gid");
    let app = Appliance::start(
        &vols,
        Opts {
            podman: &with_gid,
            ..Opts::default()
        },
    );
    app.wait_ready();
    check_access(&app, &vols, true, false);
}

#[test]
fn bad_socket_settings_stop_init_with_the_fix() {
    require_prepared();
    for (setting, says) in [
        ("VIRTPOD_SOCKET_PERMS=0000", "keep the owner's rw"),
        ("VIRTPOD_SOCKET_PERMS=7777", "0600 to 0777"),
        (
            "VIRTPOD_SOCKET_GID=libvirt",
            "number of a group on the host",
        ),
        ("VIRTPOD_SOCKET_GROUP=libvirt", "set VIRTPOD_SOCKET_GID"),
    ] {
        let out = podman(&["run", "--rm", "--no-healthcheck", "-e", setting, image()]);
        assert_eq!(out.status.code(), Some(2), "{setting}: {}", text(&out));
        assert!(text(&out).contains(says), "{setting}: {}", text(&out));
    }
    // Empty is the default, for every setting.
    let vols = Volumes::new("sock-empty");
    let app = Appliance::start(
        &vols,
        Opts {
            podman: &[
                "-e",
                "VIRTPOD_SOCKET_PERMS=",
                "-e",
                "VIRTPOD_SHUTDOWN_TIMEOUT=",
            ],
            ..Opts::default()
        },
    );
    app.wait_ready();
}

/// SASL (SCRAM-SHA-256) with users from a podman secret; host virsh authenticates with an auth
/// file named in the URI, as docs/init.md shows.
#[test]
fn sasl_with_credentials_from_a_podman_secret() {
    require_prepared();
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("creds");
    std::fs::write(&creds, "# user:password\nadmin:correct horse\n").unwrap();
    let secret = Secret::create("sasl", &creds);
    let secret = &secret.0;
    let setting = format!("VIRTPOD_SASL_CREDENTIALS=/run/secrets/{secret}");
    let vols = Volumes::new("sasl");
    let app = Appliance::start(
        &vols,
        Opts {
            podman: &["--secret", secret, "-e", &setting],
            ..Opts::default()
        },
    );
    let auth = |password: &str| {
        let path = dir.path().join(format!("auth-{}.conf", password.len()));
        std::fs::write(
            &path,
            format!("[credentials-virtpod]\nauthname=admin\npassword={password}\n\n[auth-libvirt-default]\ncredentials=virtpod\n"),
        )
        .unwrap();
        format!(
            "qemu+unix:///system?socket={}&authfile={}",
            vols.socket().display(),
            path.display()
        )
    };
    let virsh = |uri: &str| {
        Command::new("virsh")
            .args(["-c", uri, "list"])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    let good = auth("correct horse");
    wait_for(
        "libvirt to answer with SASL",
        std::time::Duration::from_secs(60),
        || virsh(&good).status.success(),
    );
    let bad = virsh(&auth("wrong"));
    assert!(!bad.status.success(), "a wrong password was accepted");
    assert!(
        text(&bad).contains("authentication failed"),
        "{}",
        text(&bad)
    );
    let plain = format!("qemu+unix:///system?socket={}", vols.socket().display());
    let none = virsh(&plain);
    assert!(
        !none.status.success(),
        "no credentials, yet connected: {}",
        text(&none)
    );
    assert!(
        app.logs()
            .contains("SASL (SCRAM-SHA-256) on libvirt's sockets users=1"),
        "{}",
        app.logs()
    );
}
