//! `VIRTPOD_AUTH=polkit`: the host's polkit decides who may use libvirt, with the container in
//! the host's PID namespace (docs/modes.md). This host runs no system bus, so the test runs its
//! own as the host's: a dbus-daemon and polkitd in a mount namespace of the test's, where
//! libvirt's polkit actions and rules (copied from the image, as docs/modes.md tells an admin to)
//! and host accounts with a `libvirt` group are bound over the host's files. Nothing of the
//! host's /etc or /usr changes; the clients run in that namespace as those users.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::Duration;

use crate::harness::*;

/// In the host's `libvirt` group: the image's 60-libvirt.rules lets it in.
const MEMBER: u32 = 3_000_511;
/// Not in it: polkit would ask for a password, and no agent runs.
const OTHER: u32 = 3_000_512;
const LIBVIRT_GID: u32 = 3_000_510;

const POLKITD: &str = "/usr/lib/polkit-1/polkitd";
const RULES: &str = "/etc/polkit-1/rules.d";

/// A system bus and polkitd standing in for the host's; stopped on drop.
struct HostPolkit {
    dir: tempfile::TempDir,
    daemons: Child,
}

const START: &str = r#"
set -e
d=$1
mount --bind "$d/actions" /usr/share/polkit-1/actions
mount --bind "$d/rules" /etc/polkit-1/rules.d
mount --bind "$d/passwd" /etc/passwd
mount --bind "$d/group" /etc/group
dbus-daemon --config-file="$d/bus.conf" --nofork --nopidfile 2>"$d/bus.log" &
while [ ! -S "$d/system_bus_socket" ]; do sleep 0.1; done
DBUS_SYSTEM_BUS_ADDRESS="unix:path=$d/system_bus_socket" exec /usr/lib/polkit-1/polkitd --no-debug
"#;

impl HostPolkit {
    fn start() -> HostPolkit {
        for (path, package) in [
            (POLKITD, "polkitd"),
            ("/usr/bin/dbus-daemon", "dbus-daemon"),
        ] {
            assert!(
                Path::new(path).exists(),
                "{path} is missing: install {package} (tests/prepare does)"
            );
        }
        assert!(
            Path::new(RULES).is_dir(),
            "{RULES} is missing (polkitd makes it)"
        );
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // polkitd drops to its own user, which must reach the bus and read the files.
        chmod(d, 0o755);
        for sub in ["actions", "rules"] {
            std::fs::create_dir(d.join(sub)).unwrap();
        }
        for (from, to) in [
            (
                "/usr/share/polkit-1/actions/org.libvirt.unix.policy",
                "actions/org.libvirt.unix.policy",
            ),
            (
                "/usr/share/polkit-1/rules.d/60-libvirt.rules",
                "rules/60-libvirt.rules",
            ),
        ] {
            let out = podman_ok(&[
                "run",
                "--rm",
                "--no-healthcheck",
                "--entrypoint",
                "cat",
                image(),
                from,
            ]);
            std::fs::write(d.join(to), out).unwrap();
        }
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
        for id in [MEMBER, OTHER, LIBVIRT_GID] {
            assert!(
                !passwd.contains(&format!(":{id}:")),
                "id {id} is taken on this host"
            );
        }
        std::fs::write(
            d.join("passwd"),
            passwd
                + &format!(
                    "vp-member:x:{MEMBER}:{MEMBER}::/nonexistent:/bin/sh\n\
                     vp-other:x:{OTHER}:{OTHER}::/nonexistent:/bin/sh\n"
                ),
        )
        .unwrap();
        let group: String = std::fs::read_to_string("/etc/group")
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("libvirt:"))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(
            d.join("group"),
            group
                + &format!(
                    "vp-member:x:{MEMBER}:\nvp-other:x:{OTHER}:\nlibvirt:x:{LIBVIRT_GID}:vp-member\n"
                ),
        )
        .unwrap();
        std::fs::write(
            d.join("bus.conf"),
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <auth>EXTERNAL</auth>
  <listen>unix:path={}/system_bus_socket</listen>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_type="method_return"/>
    <allow send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="signal"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
  </policy>
</busconfig>
"#,
                d.display()
            ),
        )
        .unwrap();
        let daemons = Command::new("unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                START,
                "host-polkit",
            ])
            .arg(d)
            .process_group(0)
            .spawn()
            .expect("starting unshare");
        let polkit = HostPolkit { dir, daemons };
        // Ready when polkit answers for host root (always authorized).
        let me = std::process::id().to_string();
        wait_for(
            "the test's polkitd on its system bus",
            Duration::from_secs(20),
            || {
                polkit
                    .as_user(0, "pkcheck")
                    .env("DBUS_SYSTEM_BUS_ADDRESS", polkit.bus_address())
                    .args(["--action-id", "org.libvirt.unix.manage", "--process", &me])
                    .output()
                    .is_ok_and(|o| o.status.success())
            },
        );
        polkit
    }

    fn bus(&self) -> PathBuf {
        self.dir.path().join("system_bus_socket")
    }

    fn bus_address(&self) -> String {
        format!("unix:path={}", self.bus().display())
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `program` as host user `id`, in the namespace where the test's accounts are the host's.
    fn as_user(&self, id: u32, program: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.arg("-t")
            .arg(self.daemons.id().to_string())
            .args(["-m", "setpriv"])
            .args([format!("--reuid={id}"), format!("--regid={id}")])
            .args(["--init-groups", "env", "HOME=/", program]);
        c
    }

    fn virsh(&self, id: u32, socket: &Path, args: &[&str]) -> Output {
        self.as_user(id, "virsh")
            .arg("-c")
            .arg(format!("qemu+unix:///system?socket={}", socket.display()))
            .args(args)
            .output()
            .unwrap()
    }
}

impl Drop for HostPolkit {
    fn drop(&mut self) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(self.daemons.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.daemons.wait();
    }
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A desktop user in the host's `libvirt` group manages and starts a guest through the host's
/// polkit; another user is refused by polkit (no agent to ask for a password) but may read
/// through the read-only socket; `podman stop --stop-signal SIGURG` still shuts the guest down
/// first with init outside PID 1 (and init starts it again at the next start), and init's log
/// says why that signal.
#[test]
fn host_pid_namespace_with_polkit_lets_the_hosts_libvirt_group_in() {
    require_prepared();
    let polkit = HostPolkit::start();
    let bus = format!("{}:/run/dbus/system_bus_socket", polkit.bus().display());
    let passwd = format!(
        "{}:/run/host/etc/passwd:ro",
        polkit.file("passwd").display()
    );
    let group = format!("{}:/run/host/etc/group:ro", polkit.file("group").display());
    let vols = Volumes::new("polkit");
    let app = Appliance::start(
        &vols,
        Opts {
            podman: &[
                "--pid=host",
                // podman stop signals every process here; only init heeds SIGURG.
                "--stop-signal",
                "SIGURG",
                "-e",
                "VIRTPOD_AUTH=polkit",
                "-v",
                &bus,
                "-v",
                &passwd,
                "-v",
                &group,
            ],
            ..Opts::default()
        },
    );
    app.wait_ready();
    assert!(
        app.logs().contains("--stop-signal SIGURG"),
        "init does not warn about podman stop in the host's PID namespace:\n{}",
        app.logs()
    );
    let rw = vols.socket();
    let ro = vols.run_dir.path().join("libvirt-sock-ro");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&rw).unwrap().permissions());
    assert_eq!(
        mode & 0o777,
        0o666,
        "polkit decides, so every host user reaches the socket"
    );

    let out = polkit.virsh(MEMBER, &rw, &["list", "--all"]);
    assert!(out.status.success(), "libvirt group member: {}", text(&out));
    let out = polkit.virsh(OTHER, &rw, &["list"]);
    assert!(
        !out.status.success()
            && text(&out).contains(
                "no polkit agent available to authenticate action 'org.libvirt.unix.manage'"
            ),
        "a user outside the group: {}",
        text(&out)
    );
    let out = polkit.virsh(OTHER, &ro, &["-r", "list"]);
    assert!(out.status.success(), "read-only socket: {}", text(&out));

    app.define_guest("g", "qemu");
    let out = polkit.virsh(MEMBER, &rw, &["start", "g"]);
    assert!(
        out.status.success(),
        "the member starts a guest: {}",
        text(&out)
    );
    app.wait_console("g", GUEST_BOOTED, 1);
    // init's own libvirt work under polkit (the fourth cell of tests/e2e/access.rs): ready,
    // the guest shut down by ACPI and recorded at the stop, started again at the next start.
    init_keeps_guests_across_a_stop(&app, &["-t", "120"]);
}

/// Each piece polkit needs, missing, stops init with the fix.
#[test]
fn polkit_without_the_hosts_pid_namespace_or_bus_stops_init_with_the_fix() {
    require_prepared();
    for (extra, says) in [
        (&[][..], "run the container with --pid=host"),
        (
            &["--pid=host"][..],
            "-v /run/dbus/system_bus_socket:/run/dbus/system_bus_socket",
        ),
    ] {
        let mut args = vec![
            "run",
            "--rm",
            "--no-healthcheck",
            "-e",
            "VIRTPOD_AUTH=polkit",
        ];
        args.extend(extra);
        args.push(image());
        let out = podman(&args);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {}", text(&out));
        assert!(text(&out).contains(says), "{extra:?}: {}", text(&out));
    }
}
