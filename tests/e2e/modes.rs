//! Deployment modes beyond the rootful socket-only one the other tests use (docs/modes.md).

use std::process::Command;
use std::time::Duration;

use crate::harness::*;

/// The unprivileged user tests/as-rootless-user runs rootless podman as.
pub const ROOTLESS_UID: u32 = 61234;

/// Rootless, socket only: an unprivileged user runs the appliance with rootless podman, its
/// sockets in a directory of the user's, and manages a guest with the host's virsh as that user.
/// No /dev/kvm here (the user may not open it on these hosts), so the guest runs under TCG; no
/// slirp4netns either (/dev/net/tun is root-only here), so --network none.
#[test]
fn rootless_appliance_serves_the_users_virsh_and_stops_its_guest_cleanly() {
    require_prepared();
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    chmod(t, 0o755);
    // The user's podman cannot see root's images: hand the image over as an archive.
    let archive = t.join("image.tar");
    podman_ok(&["save", "-q", "-o", archive.to_str().unwrap(), image()]);
    chmod(&archive, 0o644);
    for f in ["vmlinuz", "initrd.img"] {
        std::fs::copy(e2e_dir().join("guest").join(f), t.join(f)).unwrap();
    }
    std::fs::write(t.join("g.xml"), guest_xml("g", "qemu")).unwrap();

    let script = format!(
        r#"set -eu
echo "uid=$(id -u)"
mkdir -p ~/.config/containers "$XDG_RUNTIME_DIR/virtpod"
printf '[storage]\ndriver = "overlay"\n' > ~/.config/containers/storage.conf
podman load -q -i {t}/image.tar
sock="$XDG_RUNTIME_DIR/virtpod"
podman run -d --name virtpod --network none \
    -v virtpod-lib:/var/lib/libvirt -v virtpod-etc:/etc/libvirt -v virtpod-log:/var/log/libvirt \
    -v "$sock:/run/libvirt" {image} >/dev/null
uri="qemu+unix:///system?socket=$sock/libvirt-sock"
i=0; until virsh -c "$uri" version >/dev/null 2>&1; do
    i=$((i+1)); [ $i -lt 600 ] || {{ podman logs virtpod; exit 1; }}; sleep 0.1; done
echo "socket owner: $(stat -c %U "$sock/libvirt-sock")"
podman cp {t}/vmlinuz virtpod:/var/lib/libvirt/images/vmlinuz
podman cp {t}/initrd.img virtpod:/var/lib/libvirt/images/initrd.img
virsh -c "$uri" define {t}/g.xml
virsh -c "$uri" start g
i=0; until podman exec virtpod grep -q {GUEST_BOOTED} /var/log/libvirt/qemu/g-serial.log 2>/dev/null; do
    i=$((i+1)); [ $i -lt 900 ] || {{ echo "guest did not boot"; podman logs virtpod; exit 1; }}; sleep 0.1; done
echo "guest booted"
virsh -c "$uri" domstate g
podman stop -t 90 virtpod >/dev/null
podman logs virtpod 2>&1 | grep -E 'guest shut down|stopped code' || true
podman rm -v virtpod >/dev/null
"#,
        t = t.display(),
        image = image()
    );
    let out = Command::new(repo().join("tests/as-rootless-user"))
        .arg(ROOTLESS_UID.to_string())
        .arg(t.join("user"))
        .env("CONTAINERS_CONF", repo().join("tests/containers.conf"))
        .args(["sh", "-c", &script])
        .output()
        .unwrap();
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains(&format!("uid={ROOTLESS_UID}\n")), "{said}");
    assert!(said.contains("socket owner: virtpod-rootless\n"), "{said}");
    assert!(said.contains("Domain 'g' started"), "{said}");
    assert!(said.contains("guest booted\nrunning\n"), "{said}");
    // podman stop: init shut the guest down before the daemons, and exited 0.
    assert!(said.contains("guest shut down guest=\"g\""), "{said}");
    assert!(said.contains("stopped code=0"), "{said}");
}

fn chmod(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The systemd variant: the same image with systemd as PID 1. virtpod-prepare.service does what
/// virtpod init does before the daemons; libvirt's own units run them; libvirt-guests shuts the
/// guests down on stop and starts them again with the container. The stop leaves podman's mounts
/// alone (docs/troubleshooting.md item 11): its journal, kept in a directory of the test's, has
/// no "Failed unmounting".
#[test]
fn systemd_variant_serves_virsh_and_brings_its_guest_back_after_a_stop() {
    require_prepared();
    let vols = Volumes::new("systemd");
    // podman's tmpfs on /var/log/journal would lose the stop's lines with the container.
    let journal = tempfile::tempdir().unwrap();
    let journal_mount = format!("{}:/var/log/journal", journal.path().display());
    let options: Vec<&str> = SYSTEMD_VARIANT
        .iter()
        .copied()
        .chain(["-v", &journal_mount])
        .collect();
    let app = Appliance::start(
        &vols,
        Opts {
            podman: &options,
            ..Opts::default()
        },
    );
    app.wait_ready();
    assert_eq!(app.exec_ok("cat /proc/1/comm").trim(), "systemd");
    assert_eq!(
        app.exec_ok("systemctl is-active virtpod-prepare.service")
            .trim(),
        "active"
    );
    // Debian's unit would make the socket 0666 with no polkit behind it: host root only, as
    // under virtpod init (tests/e2e/socket.rs tests the settings that open it).
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(vols.socket()).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o700, "libvirt-sock mode {mode:o}");
    assert_eq!(
        app.exec_ok("stat -c %G:%a /dev/kvm").trim(),
        "kvm:660",
        "qemu's group must be able to open /dev/kvm"
    );
    // What systemd says in other containers and must not here (docs/troubleshooting.md item 9):
    // no kbrequest.target job (no terminal), no DeviceAllow= of a missing node.
    let journal = app.exec_ok("journalctl -b --no-pager -o cat");
    for noise in [
        "kbrequest.target",
        "/dev/mapper/control",
        "/dev/loop-control",
    ] {
        assert!(
            !journal.contains(noise),
            "{noise} in the journal:\n{journal}"
        );
    }

    app.boot_guest("g");
    // libvirtd started on one CPU and got them all back once libvirt answered
    // (systemd/libvirtd.service.d/virtpod-cpu.conf), so a start keeps libvirt's probe of qemu.
    let probed = app.qemu_probe_stamps();
    let all = app.cpus_of("1");
    let on_every_cpu = || {
        wait_for("libvirtd on every CPU", Duration::from_secs(60), || {
            app.pid_of("libvirtd")
                .is_some_and(|pid| app.cpus_of(&pid) == all)
        })
    };
    on_every_cpu();
    let out = podman(&["stop", "-t", "120", &app.name]);
    assert!(out.status.success(), "{}", text(&out));
    // Shut down through ACPI (the guest saw the power button), not killed.
    assert!(
        app.console("g").contains(GUEST_POWER_BUTTON),
        "{}",
        app.console("g")
    );
    podman_ok(&["start", &app.name]);
    app.wait_console("g", GUEST_BOOTED, 2);
    assert_eq!(app.domstate("g"), "running");
    assert_systemd_running(&app);
    on_every_cpu();
    // Two more starts: a start on the other CPU of two had an even chance of a new probe each.
    for boot in 3..=4 {
        podman_ok(&["stop", "-t", "120", &app.name]);
        podman_ok(&["start", &app.name]);
        app.wait_console("g", GUEST_BOOTED, boot);
        on_every_cpu();
    }
    assert_eq!(app.qemu_probe_stamps(), probed, "libvirt probed qemu again");

    // Both runs share the host's boot id, so `journalctl -b -1` cannot pick the first: the
    // whole journal holds one stop.
    let journal = app.exec_ok("journalctl --no-pager -o cat");
    assert!(
        journal.contains("Reached target umount.target"),
        "the stop is not in the journal:\n{journal}"
    );
    for unmount in [
        "Failed unmounting",
        "Unmounting ",
        "must be superuser to unmount",
    ] {
        assert!(
            !journal.contains(unmount),
            "{unmount:?} at the stop: systemd tried to unmount podman's mounts \
             (systemd/mount.d/virtpod.conf):\n{journal}"
        );
    }
}

/// systemd as PID 1 finished starting and no unit failed (`running`, not `degraded`).
fn assert_systemd_running(app: &Appliance) {
    let state = app.exec("systemctl is-system-running --wait");
    let failed = app.exec_ok("systemctl --failed --no-legend --no-pager");
    assert_eq!(failed.trim(), "", "systemctl --failed");
    assert_eq!(
        String::from_utf8_lossy(&state.stdout).trim(),
        "running",
        "{failed}"
    );
}

/// The systemd variant hears the container's environment (virtpod-systemd-env.service): a
/// variable given only with `podman run -e` reaches libvirtd, as under virtpod init;
/// `systemd.setenv=` on the command line still wins; nothing fails on the way.
#[test]
fn systemd_variant_gives_the_containers_environment_to_libvirtd() {
    require_prepared();
    let vols = Volumes::new("systemd-env");
    let env = [
        "-e",
        "VP_GREETING=from the container",
        "-e",
        "VP_BOTH=container",
        "-e",
        "VIRTPOD_FORWARD=18081:web:80",
    ];
    let podman: Vec<&str> = SYSTEMD_VARIANT.iter().chain(&env).copied().collect();
    let app = Appliance::start(
        &vols,
        Opts {
            podman: &podman,
            init_args: &["systemd.setenv=VP_BOTH=cmdline"],
            ..Opts::default()
        },
    );
    app.wait_ready();
    let pid = app
        .pid_of("libvirtd")
        .expect("libvirtd runs once libvirt answers");
    let environ = app.exec_ok(&format!("tr '\\0' '\\n' < /proc/{pid}/environ"));
    assert!(
        environ
            .lines()
            .any(|l| l == "VP_GREETING=from the container"),
        "{environ}"
    );
    assert!(environ.lines().any(|l| l == "VP_BOTH=cmdline"), "{environ}");
    assert_systemd_running(&app);
    let journal = app.exec_ok("journalctl -b -u virtpod-systemd-env --no-pager -o cat");
    assert!(
        journal.contains("VP_GREETING") && journal.contains("VP_BOTH not passed to services"),
        "{journal}"
    );
    // A VIRTPOD_* setting acts here too: the forwarder's unit runs with it (docs/networking.md).
    assert_eq!(
        app.exec_ok("systemctl is-active virtpod-forward.service")
            .trim(),
        "active"
    );
    let forward = app.exec_ok("journalctl -b -u virtpod-forward --no-pager -o cat");
    assert!(
        forward.contains("forwarding the container's port 18081 to guest web:80"),
        "{forward}"
    );
}

/// Rootful with the host's network: the container shares the host's network namespace, so a
/// guest's NIC (here a tap device libvirt makes) is a host interface a user can bridge or route.
/// Needs NET_ADMIN and /dev/net/tun for libvirt to make it.
#[test]
fn host_network_puts_the_guests_nic_on_the_host() {
    require_prepared();
    let vols = Volumes::new("hostnet");
    let app = Appliance::start(
        &vols,
        Opts {
            podman: &[
                "--network",
                "host",
                "--cap-add",
                "NET_ADMIN",
                "--device",
                "/dev/net/tun",
            ],
            ..Opts::default()
        },
    );
    app.wait_ready();
    // Interface names are at most 15 characters.
    let tap = format!("vpt{}", std::process::id() % 1_000_000);
    let ip_link = || {
        Command::new("ip")
            .args(["-br", "link", "show", &tap])
            .output()
            .unwrap()
    };
    assert!(!ip_link().status.success(), "{tap} exists before the test");
    app.define_guest("unused", "qemu");
    app.virsh_ok(&["undefine", "unused"]);
    let xml = guest_xml("net", "qemu").replace(
        "    <serial type='file'>",
        &format!(
            "    <interface type='ethernet'><target dev='{tap}' managed='yes'/><model type='virtio'/></interface>\n    <serial type='file'>"
        ),
    );
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), xml).unwrap();
    app.virsh_ok(&["define", file.path().to_str().unwrap()]);
    app.virsh_ok(&["start", "net"]);
    app.wait_console("net", GUEST_BOOTED, 1);
    let shown = ip_link();
    assert!(
        shown.status.success(),
        "{tap} is not on the host while the guest runs: {}",
        text(&shown)
    );
    assert!(text(&shown).contains("UP"), "{}", text(&shown));
    app.virsh_ok(&["destroy", "net"]);
    assert!(!ip_link().status.success(), "{tap} outlived the guest");
}

/// Host processes whose cgroup path (any controller) contains `needle`, as "pid path" lines.
fn host_processes_in_cgroup(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(cg) = std::fs::read_to_string(entry.path().join("cgroup")) {
            if let Some(line) = cg.lines().find(|l| l.contains(needle)) {
                found.push(format!("{name} {line}"));
            }
        }
    }
    found
}

/// Rootful `--privileged` under `virtpod init`: everything works as in the default mode (the NAT
/// network starts, its container having every capability and a writable /proc/sys in its own
/// network namespace), and the guests stay inside the container: libvirt puts qemu in a cgroup
/// below the container's own (`…/libpod-ID/machine/qemu-…`), never beside it on the host, so a
/// `podman rm -f` takes them along. The image has no udev, so nothing in it replays the host's
/// device events. (The systemd variant privileged is not examined here: docs/modes.md.)
#[test]
fn privileged_appliance_keeps_its_guests_inside_its_own_cgroup() {
    require_prepared();
    let vols = Volumes::new("priv");
    let app = Appliance::start(
        &vols,
        Opts {
            podman: &["--privileged"],
            ..Default::default()
        },
    );
    app.wait_ready();
    let info = app.virsh_ok(&["net-info", "default"]);
    assert!(
        info.lines()
            .any(|l| l.starts_with("Active:") && l.ends_with("yes")),
        "{info}"
    );
    app.boot_guest("pg");
    let id = podman_ok(&["inspect", &app.name, "--format", "{{.Id}}"])
        .trim()
        .to_string();
    let nested = host_processes_in_cgroup(&format!("libpod-{id}/machine/qemu-"));
    assert!(
        !nested.is_empty(),
        "no host process in a machine cgroup below the container's own (libpod-{id})"
    );
    // Nowhere else: no qemu of this guest in a machine cgroup outside the container's.
    let outside: Vec<String> = host_processes_in_cgroup("qemu-1-pg.libvirt-qemu")
        .into_iter()
        .filter(|l| !l.contains(&format!("libpod-{id}")))
        .collect();
    assert!(outside.is_empty(), "{outside:?}");
    drop(app);
    wait_for(
        "the privileged container's processes to be gone",
        std::time::Duration::from_secs(30),
        || host_processes_in_cgroup(&format!("libpod-{id}")).is_empty(),
    );
}

/// Host kernel settings a privileged systemd would change from the image's /usr/lib/sysctl.d
/// (kernel.pid_max = 4194304, fs.protected_* = 1 or 2): read before the test, and put back on
/// drop if anything changed them, so a failing test leaves the machine as it found it.
struct HostSysctls(Vec<(&'static str, String)>);

const WATCHED_SYSCTLS: &[&str] = &[
    "/proc/sys/kernel/pid_max",
    "/proc/sys/fs/protected_regular",
    "/proc/sys/fs/protected_fifos",
    "/proc/sys/fs/protected_symlinks",
    "/proc/sys/fs/protected_hardlinks",
];

impl HostSysctls {
    fn read() -> HostSysctls {
        HostSysctls(
            WATCHED_SYSCTLS
                .iter()
                .map(|p| (*p, std::fs::read_to_string(p).unwrap_or_default()))
                .collect(),
        )
    }

    fn changed(&self) -> Vec<String> {
        self.0
            .iter()
            .filter_map(|(p, was)| {
                let now = std::fs::read_to_string(p).unwrap_or_default();
                (now != *was).then(|| format!("{p}: {} -> {}", was.trim(), now.trim()))
            })
            .collect()
    }
}

impl Drop for HostSysctls {
    fn drop(&mut self) {
        for (p, was) in &self.0 {
            if std::fs::read_to_string(p).unwrap_or_default() != *was {
                let _ = std::fs::write(p, was);
            }
        }
    }
}

/// The systemd variant `--privileged` leaves the host's kernel alone: /proc/sys is writable
/// there, and systemd-sysctl would apply the image's /usr/lib/sysctl.d to the host (on these
/// machines kernel.pid_max 32768 → 4194304, fs.protected_regular 0 → 2), systemd-binfmt and
/// systemd-modules-load likewise. The image masks them; libvirt works as usual.
#[test]
fn privileged_systemd_variant_leaves_the_hosts_kernel_settings_alone() {
    require_prepared();
    let host = HostSysctls::read();
    let vols = Volumes::new("privsd");
    let podman: Vec<&str> = SYSTEMD_VARIANT
        .iter()
        .chain(&["--privileged"])
        .copied()
        .collect();
    let app = Appliance::start(
        &vols,
        Opts {
            podman: &podman,
            ..Opts::default()
        },
    );
    app.wait_ready();
    for unit in [
        "systemd-sysctl.service",
        "systemd-binfmt.service",
        "systemd-modules-load.service",
    ] {
        let state = app.exec(&format!("systemctl is-enabled {unit}"));
        assert_eq!(
            String::from_utf8_lossy(&state.stdout).trim(),
            "masked",
            "{unit}"
        );
    }
    assert_systemd_running(&app);
    assert!(app.virsh_ok(&["list", "--all"]).contains("Name"));
    assert_eq!(
        host.changed(),
        Vec::<String>::new(),
        "the host's kernel settings changed"
    );
}
