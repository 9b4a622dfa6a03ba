//! The front door the README gives: `./appliance-up`, which runs podman-compose on compose.yaml,
//! as a user runs it, with only the container name and socket directory of the test's own.

use std::process::Command;

use crate::harness::*;

/// compose makes a network per project and `down` leaves it behind.
struct ProjectNetwork(String);

impl Drop for ProjectNetwork {
    fn drop(&mut self) {
        podman(&["network", "rm", "-f", &format!("{}_default", self.0)]);
    }
}

fn appliance_up(vols: &Volumes) -> String {
    appliance_up_variant(vols, "init")
}

fn appliance_up_variant(vols: &Volumes, variant: &str) -> String {
    let out = Command::new(repo().join("appliance-up"))
        .env("VIRTPOD_VARIANT", variant)
        .env("VIRTPOD_NAME", &vols.prefix)
        .env("VIRTPOD_SOCKET_DIR", vols.run_dir.path())
        .env("CONTAINERS_CONF", repo().join("tests/containers.conf"))
        .output()
        .expect("running ./appliance-up");
    assert!(
        out.status.success(),
        "./appliance-up failed: {}",
        text(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn appliance_up_serves_virsh_and_a_rerun_keeps_the_guests() {
    require_prepared();
    let vols = Volumes::new("compose");
    let _network = ProjectNetwork(vols.prefix.clone());
    let app = Appliance {
        name: vols.prefix.clone(),
        vols: &vols,
    };

    let said = appliance_up(&vols);
    // It returns once libvirt answers and says how to reach it.
    let uri = format!("qemu+unix:///system?socket={}", vols.socket().display());
    assert!(said.contains(&uri), "{said}");
    assert!(app.virsh_ok(&["list", "--all"]).contains("Name"));
    assert_eq!(app.exec_ok("stat -c %t:%T /dev/kvm").trim(), "a:e8");
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

    // Again: a new container on the same volumes; the guest that was running runs again.
    appliance_up(&vols);
    let second = podman_ok(&["inspect", "--format", "{{.Id}}", &app.name]);
    assert_ne!(first, second, "the container was not replaced");
    app.wait_console("g", GUEST_BOOTED, 2);
    assert_eq!(app.domstate("g"), "running");
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
    };
    let said = appliance_up_variant(&vols, "systemd");
    assert!(
        said.contains("-f compose.systemd.yaml down -t 120"),
        "{said}"
    );
    assert_eq!(app.exec_ok("cat /proc/1/comm").trim(), "systemd");
    assert!(app.virsh_ok(&["list", "--all"]).contains("Name"));
    app.boot_guest("g");

    appliance_up_variant(&vols, "systemd");
    // Shut down through ACPI by libvirt-guests, then started again with the new container.
    assert!(
        app.console("g").contains(GUEST_POWER_BUTTON),
        "{}",
        app.console("g")
    );
    app.wait_console("g", GUEST_BOOTED, 2);
    assert_eq!(app.domstate("g"), "running");
}

/// When podman cannot start the appliance, appliance-up says so at once, with podman's error
/// and `virtpod doctor`'s view of the host, instead of waiting for libvirt. The cause here: a
/// containers.conf without lowered ulimits, which on the build machines (root without
/// CAP_SYS_RESOURCE, hard nofile 20000) fails every rootful container. Where podman copes with
/// it, appliance-up must simply succeed.
#[test]
fn appliance_up_fails_fast_and_says_why_when_the_container_cannot_start() {
    require_prepared();
    let vols = Volumes::new("compose-fail");
    let _network = ProjectNetwork(vols.prefix.clone());
    let _app = Appliance {
        name: vols.prefix.clone(),
        vols: &vols,
    };
    let conf = vols.run_dir.path().join("containers.conf");
    std::fs::write(
        &conf,
        "[engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n",
    )
    .unwrap();
    let podman_copes = Command::new("podman")
        .env("CONTAINERS_CONF", &conf)
        .args(["run", "--rm", "--network", "none", BASE_IMAGE, "true"])
        .output()
        .unwrap()
        .status
        .success();

    let started = std::time::Instant::now();
    let out = Command::new(repo().join("appliance-up"))
        .env("VIRTPOD_NAME", &vols.prefix)
        .env("VIRTPOD_SOCKET_DIR", vols.run_dir.path())
        .env("CONTAINERS_CONF", &conf)
        .output()
        .expect("running ./appliance-up");
    let said = text(&out);
    if podman_copes {
        assert!(
            out.status.success(),
            "podman runs containers here, but: {said}"
        );
        return;
    }
    assert!(!out.status.success(), "{said}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "took {:?}: it waited for a container that never ran\n{said}",
        started.elapsed()
    );
    assert!(
        said.contains("error setting rlimit"),
        "podman's error: {said}"
    );
    assert!(
        said.contains(&format!("the container {} is", vols.prefix)) && said.contains("not running"),
        "{said}"
    );
    assert!(
        said.contains("FAIL  ulimits:"),
        "the doctor's verdict: {said}"
    );
}
