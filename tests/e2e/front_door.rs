//! The front door the README gives: `./appliance-up`, which installs the host side from the
//! image and runs podman-compose on compose.yaml, as a user runs it. Of the test's own: the
//! container name, the socket directory, and where the host side goes (a temporary prefix and
//! hooks directory, which the test's containers.conf names, so the host's /etc is untouched).

use std::process::Command;

use crate::harness::*;

/// compose makes a network per project and `down` leaves it behind.
pub(crate) struct ProjectNetwork(pub(crate) String);

impl Drop for ProjectNetwork {
    fn drop(&mut self) {
        podman(&["network", "rm", "-f", &format!("{}_default", self.0)]);
    }
}

/// Where ./appliance-up installs the host side in a test, and podman's configuration that
/// reads the hooks from there: tests/containers.conf plus `hooks_dir`.
pub(crate) struct HostSide {
    dir: tempfile::TempDir,
}

impl HostSide {
    pub(crate) fn new() -> HostSide {
        let dir = tempfile::tempdir().unwrap();
        let conf = std::fs::read_to_string(repo().join("tests/containers.conf")).unwrap();
        let hooks = dir.path().join("hooks.d");
        let conf = conf.replacen(
            "[engine]\n",
            &format!("[engine]\nhooks_dir = [\"{}\"]\n", hooks.display()),
            1,
        );
        assert!(
            conf.contains("hooks_dir"),
            "no [engine] in tests/containers.conf"
        );
        std::fs::write(dir.path().join("containers.conf"), conf).unwrap();
        HostSide { dir }
    }

    fn conf(&self) -> std::path::PathBuf {
        self.dir.path().join("containers.conf")
    }

    fn hooks_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("hooks.d")
    }

    fn prefix(&self) -> std::path::PathBuf {
        self.dir.path().join("usr/local")
    }
}

fn run_appliance_up(vols: &Volumes, host: &HostSide, variant: &str) -> std::process::Output {
    appliance_up_command(vols, host)
        .env("VIRTPOD_VARIANT", variant)
        .output()
        .expect("running ./appliance-up")
}

/// ./appliance-up with the test's own names, sockets and host side.
pub(crate) fn appliance_up_command(vols: &Volumes, host: &HostSide) -> Command {
    let mut command = Command::new(repo().join("appliance-up"));
    command
        .env("VIRTPOD_FLAVOUR", flavour())
        .env("VIRTPOD_NAME", &vols.prefix)
        .env("VIRTPOD_SOCKET_DIR", vols.run_dir.path())
        .env("VIRTPOD_PREFIX", host.prefix())
        .env("VIRTPOD_HOOKS_DIR", host.hooks_dir())
        .env("CONTAINERS_CONF", host.conf());
    command
}

fn appliance_up_variant(vols: &Volumes, host: &HostSide, variant: &str) -> String {
    let out = run_appliance_up(vols, host, variant);
    assert!(
        out.status.success(),
        "./appliance-up failed: {}",
        text(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A record of `virtpod device add` in the host's real place, removed whatever happens.
struct RecordFile(std::path::PathBuf);

impl Drop for RecordFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        // The directory too, when the test made it and left it empty.
        let _ = std::fs::remove_dir("/var/lib/virtpod/devices");
        let _ = std::fs::remove_dir("/var/lib/virtpod");
    }
}

#[test]
fn appliance_up_serves_virsh_and_a_rerun_keeps_the_guests() {
    require_prepared();
    let vols = Volumes::new("compose");
    let _network = ProjectNetwork(vols.prefix.clone());
    let app = Appliance {
        name: vols.prefix.clone(),
        vols: &vols,
        uri_extra: String::new(),
    };

    let host = HostSide::new();
    let out = run_appliance_up(&vols, &host, "init");
    let said = text(&out);
    assert!(out.status.success(), "./appliance-up failed: {said}");
    // It returns once libvirt answers and says how to reach it.
    let uri = format!("qemu+unix:///system?socket={}", vols.socket().display());
    assert!(said.contains(&uri), "{said}");
    assert!(app.virsh_ok(&["list", "--all"]).contains("Name"));
    // The host side came out of the image and says what it wrote: the static hook binary and
    // the definitions that run it from where it was put.
    let bin = host.prefix().join("bin/virtpod");
    assert!(bin.exists(), "{said}");
    let hook_json = std::fs::read_to_string(host.hooks_dir().join("virtpod-devices.json")).unwrap();
    assert!(hook_json.contains(&*bin.to_string_lossy()), "{hook_json}");
    assert!(said.contains("virtpod-devices.json"), "{said}");
    // /dev/kvm arrived through the hook, with the image's kvm group, not through `devices:`.
    assert_eq!(
        app.exec_ok("stat -c '%t:%T %G %a' /dev/kvm").trim(),
        "a:e8 kvm 660"
    );
    // podman was asked for no device (the hook's nodes are in the spec, so inspect's devices
    // list them; the command that created the container does not).
    let created = podman_ok(&[
        "inspect",
        "--format",
        "{{.Config.CreateCommand}}",
        &app.name,
    ]);
    assert!(
        !created.contains("--device") && created.contains("io.virtpod.device.kvm=true"),
        "{created}"
    );
    let id = podman_ok(&["inspect", "--format", "{{.Id}}", &app.name]);
    let log = std::fs::read_to_string("/var/log/virtpod-hook.log").unwrap_or_default();
    let ours: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(&format!("container={}", &id.trim()[..12])))
        .collect();
    assert!(
        ours.iter().any(|l| l.contains("/dev/kvm")),
        "the hook's log (/var/log/virtpod-hook.log) has no /dev/kvm line for container {}:\n{}",
        id.trim(),
        ours.join("\n")
    );
    // compose.yaml's named volumes are the ones the harness names for this project.
    assert_eq!(
        podman_ok(&[
            "volume",
            "inspect",
            "--format",
            "{{.Name}}",
            &format!("{}_lib", vols.prefix)
        ])
        .trim(),
        format!("{}_lib", vols.prefix)
    );
    app.boot_guest("g");
    let first = podman_ok(&["inspect", "--format", "{{.Id}}", &app.name]);
    // A device added at run time (/dev/fuse, which podman 4.3 does not give) is recorded under
    // the appliance's name (compose.yaml's io.virtpod.record), in the host's real place.
    let record = RecordFile(std::path::PathBuf::from(format!(
        "/var/lib/virtpod/devices/name={}.json",
        app.name
    )));
    assert!(app
        .exec_ok("ls /dev/fuse 2>&1 || true")
        .contains("No such file"));
    let added = Command::new(&bin)
        .args(["device", "add", &app.name, "fuse"])
        .output()
        .unwrap();
    assert!(added.status.success(), "{}", text(&added));
    assert!(record.0.exists(), "{}", text(&added));

    // Again: a new container on the same volumes; the guest that was running runs again. The
    // host side is there already and stays as it is.
    let again = run_appliance_up(&vols, &host, "init");
    assert!(again.status.success(), "{}", text(&again));
    assert!(text(&again).contains("unchanged"), "{}", text(&again));
    let second = podman_ok(&["inspect", "--format", "{{.Id}}", &app.name]);
    assert_ne!(first, second, "the container was not replaced");
    app.wait_console("g", GUEST_BOOTED, 2);
    assert_eq!(app.domstate("g"), "running");
    // The new container got the device added to the old one.
    assert_eq!(
        app.exec_ok("stat -c '%t:%T' /dev/fuse").trim(),
        "a:e5",
        "/dev/fuse added at run time did not come back with the new container"
    );
    let removed = Command::new(&bin)
        .args(["device", "remove", &app.name, "fuse"])
        .output()
        .unwrap();
    assert!(removed.status.success(), "{}", text(&removed));
    assert!(!record.0.exists(), "{}", text(&removed));

    // The stop command it prints works when pasted as printed (here with this machine's
    // --podman-run-args, which once broke it): the guest gets ACPI, the container goes.
    let said = String::from_utf8_lossy(&again.stdout).into_owned();
    let presses = app.console("g").matches(GUEST_POWER_BUTTON).count();
    let stop = said
        .lines()
        .find_map(|l| l.strip_prefix("Stop it (here, beside compose.yaml): "))
        .unwrap_or_else(|| panic!("no stop command in:\n{said}"));
    let out = Command::new("bash")
        .arg("-c")
        .arg(stop)
        .current_dir(repo())
        .env("CONTAINERS_CONF", host.conf())
        .output()
        .unwrap();
    assert!(out.status.success(), "{stop}: {}", text(&out));
    assert_eq!(
        app.console("g").matches(GUEST_POWER_BUTTON).count(),
        presses + 1,
        "{stop}: the guest was not shut down through ACPI"
    );
    assert!(
        !podman(&["container", "exists", &app.name]).status.success(),
        "{stop}: the container is still there"
    );
}

/// VIRTPOD_VARIANT=systemd: compose.yaml with compose.systemd.yaml, systemd as PID 1; a re-run
/// replaces the container and libvirt-guests starts the guest that was running.
#[test]
fn appliance_up_systemd_variant_serves_virsh_and_a_rerun_keeps_the_guests() {
    require_prepared();
    let vols = Volumes::new("compose-systemd");
    let _network = ProjectNetwork(vols.prefix.clone());
    let app = Appliance {
        name: vols.prefix.clone(),
        vols: &vols,
        uri_extra: String::new(),
    };
    let host = HostSide::new();
    let said = appliance_up_variant(&vols, &host, "systemd");
    assert!(
        said.contains("-f compose.systemd.yaml down -t 120"),
        "{said}"
    );
    assert_eq!(app.exec_ok("cat /proc/1/comm").trim(), "systemd");
    assert!(app.virsh_ok(&["list", "--all"]).contains("Name"));
    app.boot_guest("g");

    appliance_up_variant(&vols, &host, "systemd");
    // Shut down through ACPI by libvirt-guests, then started again with the new container.
    assert!(
        app.console("g").contains(GUEST_POWER_BUTTON),
        "{}",
        app.console("g")
    );
    app.wait_console("g", GUEST_BOOTED, 2);
    assert_eq!(app.domstate("g"), "running");
}

/// With the host's own podman configuration (here: one without the tests' lowered ulimits),
/// appliance-up overrides only what this host cannot give a rootful container, says why, and
/// the appliance runs. On the build machines root lacks CAP_SYS_RESOURCE and the hard nofile
/// limit is 20000, below podman's default 1048576; where podman copes, nothing is overridden.
#[test]
fn appliance_up_overrides_only_the_limits_this_host_cannot_give_and_says_why() {
    require_prepared();
    let vols = Volumes::new("compose-limits");
    let _network = ProjectNetwork(vols.prefix.clone());
    let app = Appliance {
        name: vols.prefix.clone(),
        vols: &vols,
        uri_extra: String::new(),
    };
    let host = HostSide::new();
    let conf = std::fs::read_to_string(host.conf()).unwrap();
    let without: String = conf
        .lines()
        .filter(|l| !l.starts_with("default_ulimits"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(host.conf(), &without).unwrap();
    let podman_copes = Command::new("podman")
        .env("CONTAINERS_CONF", host.conf())
        .args(["run", "--rm", "--network", "none", BASE_IMAGE, "true"])
        .output()
        .unwrap()
        .status
        .success();

    let out = run_appliance_up(&vols, &host, "init");
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(app.virsh_ok(&["list", "--all"]).contains("Name"));
    let limits = app.exec_ok("cat /proc/1/limits");
    let nofile = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    if podman_copes {
        assert!(!said.contains("--ulimit"), "{said}");
        return;
    }
    let hard = String::from_utf8(
        Command::new("sh")
            .args(["-c", "ulimit -Hn"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let hard = hard.trim();
    assert!(
        said.contains(&format!(
            "this host's hard nofile limit is {hard}, below podman's default 1048576"
        )) && said.contains(&format!("--ulimit nofile={hard}:{hard}")),
        "{said}"
    );
    assert!(nofile.contains(hard), "{nofile}");
}

/// When the appliance cannot start, appliance-up says so at once, with the container's own
/// words and `virtpod doctor`'s view of the host, instead of waiting for libvirt.
#[test]
fn appliance_up_fails_fast_and_says_why_when_the_container_cannot_start() {
    require_prepared();
    let vols = Volumes::new("compose-fail");
    let _network = ProjectNetwork(vols.prefix.clone());
    let _app = Appliance {
        name: vols.prefix.clone(),
        vols: &vols,
        uri_extra: String::new(),
    };
    let host = HostSide::new();
    let started = std::time::Instant::now();
    let out = appliance_up_command(&vols, &host)
        .env("VIRTPOD_SOCKET_GID", "libvirt")
        .output()
        .expect("running ./appliance-up");
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "took {:?}: it waited for a container that never ran\n{said}",
        started.elapsed()
    );
    assert!(
        said.contains("VIRTPOD_SOCKET_GID") && said.contains("expected the number of a group"),
        "init's error: {said}"
    );
    assert!(
        said.contains(&format!("the container {} is", vols.prefix)) && said.contains("not running"),
        "{said}"
    );
    assert!(
        said.contains("virtpod doctor:"),
        "the doctor's view: {said}"
    );
}
