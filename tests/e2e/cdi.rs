//! `virtpod cdi` through real podman: the spec it writes gives containers the devices by
//! `--device <kind>=<class>`. podman 4.3 reads CDI specs from /etc/cdi and /run/cdi only; each
//! test writes its own kind into /run/cdi and removes it. (/run/cdi itself, podman's own
//! default directory, stays: removing it could race a test running beside.)

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use crate::harness::*;

/// A spec file of a test's own under /run/cdi, removed on drop.
struct Spec {
    kind: String,
    path: PathBuf,
}

impl Spec {
    fn write(test: &str, extra: &[&str]) -> Spec {
        let name = unique(test);
        let kind = format!("{name}.virtpod.io/device");
        fs::create_dir_all("/run/cdi").unwrap();
        let path = PathBuf::from(format!("/run/cdi/{name}.json"));
        let out = Command::new(host_bin())
            .args(["cdi", "--kind", &kind, "--output"])
            .arg(&path)
            .args(extra)
            .output()
            .unwrap();
        let spec = Spec { kind, path };
        assert!(out.status.success(), "virtpod cdi failed: {}", text(&out));
        assert!(
            text(&out).contains(&format!("wrote {}: {}={{", spec.path.display(), spec.kind)),
            "{}",
            text(&out)
        );
        spec
    }

    fn device(&self, class: &str) -> String {
        format!("{}={class}", self.kind)
    }
}

impl Drop for Spec {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

#[test]
fn podman_gives_the_host_devices_the_spec_names() {
    require_prepared();
    let spec = Spec::write("cdi", &[]);
    let (kvm, tun, ttys) = (spec.device("kvm"), spec.device("tun"), spec.device("ttys"));
    let out = podman_ok(&[
        "run",
        "--rm",
        "--no-healthcheck",
        "--device",
        &kvm,
        "--device",
        &tun,
        "--device",
        &ttys,
        "--entrypoint",
        "sh",
        image(),
        "-c",
        "for d in /dev/kvm /dev/net/tun /dev/tty0 /dev/tty7; do stat -c '%n %t:%T' $d; done; \
         exec 3<>/dev/kvm && echo opened /dev/kvm; ls /dev/fuse 2>&1; true",
    ]);
    for line in [
        "/dev/kvm a:e8",
        "/dev/net/tun a:c8",
        "/dev/tty0 4:0",
        "/dev/tty7 4:7",
        "opened /dev/kvm",
        "ls: cannot access '/dev/fuse'",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    // A class the spec does not have: podman refuses and names it.
    let nosuch = spec.device("audio");
    let out = podman(&["run", "--rm", "--device", &nosuch, BASE_IMAGE, "true"]);
    assert!(!out.status.success());
    assert!(text(&out).contains(&nosuch), "{}", text(&out));
}

#[test]
fn classes_from_a_device_root_and_kvm_for_the_appliance() {
    require_prepared();
    // Classes this host lacks, from mknod nodes under a device root of the test's own.
    let tmp = tempfile::tempdir().unwrap();
    let dev = tmp.path().join("dev");
    mknod(&dev.join("video0"), "0660", 81, 0);
    mknod(&dev.join("snd/controlC0"), "0660", 116, 0);
    let spec = Spec::write("cdi-root", &["--dev-root", dev.to_str().unwrap()]);
    let (video, audio) = (spec.device("video"), spec.device("audio"));
    let out = podman_ok(&[
        "run",
        "--rm",
        "--device",
        &video,
        "--device",
        &audio,
        BASE_IMAGE,
        "sh",
        "-c",
        "stat -c '%n %t:%T %a' /dev/video0 /dev/snd/controlC0",
    ]);
    assert!(out.contains("/dev/video0 51:0 660\n"), "{out}");
    assert!(out.contains("/dev/snd/controlC0 74:0 660\n"), "{out}");

    // The appliance with /dev/kvm from the host's spec instead of --device /dev/kvm: init gives
    // it to qemu's group and a KVM domain runs.
    let host = Spec::write("cdi-kvm", &[]);
    let kvm = host.device("kvm");
    let vols = Volumes::new("cdi");
    let app = Appliance::start(
        &vols,
        Opts {
            podman: &["--device", &kvm],
            no_kvm_device: true,
            ..Opts::default()
        },
    );
    app.wait_ready();
    app.define_guest("kvm", "kvm");
    app.virsh_ok(&["start", "kvm"]);
    assert_eq!(app.domstate("kvm"), "running");
}
