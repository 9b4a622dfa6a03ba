//! virtpod installed into a host's real default places, then the host's other tools used as a
//! user would: the "host" is Debian trixie with podman 5.4 in a privileged container whose
//! /usr and /etc are its own (scripts/quadlet-host-image), nothing of this machine's /etc or
//! /usr is touched. An older install's `precreate` file in podman's shared hooks directory broke
//! every rootful `podman build` with a RUN step (buildah knows no precreate); `virtpod install`
//! moves the hook to a directory of its own named by a containers.conf.d drop-in, devices by
//! annotation keep working, and `virtpod uninstall` leaves no virtpod file behind.

use std::process::{Command, Output};

use crate::harness::*;

/// The trixie host: podman inside, its storage in a directory of the test's (overlay does not
/// stack on the container's own overlay). Removed on drop.
struct Host {
    name: String,
    _storage: tempfile::TempDir,
}

impl Host {
    fn start() -> Host {
        let out = Command::new(repo().join("scripts/quadlet-host-image"))
            .env("CONTAINERS_CONF", repo().join("tests/containers.conf"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "scripts/quadlet-host-image: {}",
            text(&out)
        );
        let image = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let storage = tempfile::tempdir_in(e2e_dir()).unwrap();
        let host = Host {
            name: unique("realhost"),
            _storage: storage,
        };
        let mount = format!("{}:/var/lib/containers", host._storage.path().display());
        // No systemd here: podman alone, its cgroups under the container's own (private
        // cgroup namespace: nothing of this machine's /sys/fs/cgroup is handed over).
        podman_ok(&[
            "run",
            "-d",
            "--name",
            &host.name,
            "--privileged",
            "--network",
            "none",
            "-v",
            &mount,
            &image,
            "sleep",
            "infinity",
        ]);
        for (file, to) in [
            (host_bin(), "/root/virtpod"),
            ("/bin/busybox".into(), "/root/busybox"),
        ] {
            podman_ok(&["cp", file.to_str().unwrap(), &format!("{}:{to}", host.name)]);
        }
        // A base image without a registry: busybox alone.
        host.sh_ok(
            "mkdir -p /root/bb/bin && cp /root/busybox /root/bb/bin/busybox \
             && /root/bb/bin/busybox --install -s /root/bb/bin \
             && tar -C /root/bb -c . | podman import -q - localhost/bb >/dev/null",
        );
        host
    }

    /// A script as root in the host, with podman as a host without systemd runs it.
    fn sh(&self, script: &str) -> Output {
        podman(&[
            "exec",
            "-e",
            "PODMAN_IGNORE_CGROUPSV1_WARNING=1",
            &self.name,
            "bash",
            "-c",
            script,
        ])
    }

    fn sh_ok(&self, script: &str) -> String {
        let out = self.sh(script);
        assert!(
            out.status.success(),
            "in the host: {script:?} failed: {}",
            text(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A rootful `podman build` of an image with a RUN step.
    fn build(&self) -> Output {
        self.sh(
            "d=$(mktemp -d) && printf 'FROM localhost/bb\\nRUN echo built > /built\\n' > $d/Containerfile \
             && podman --cgroup-manager cgroupfs build --network none -q -t localhost/built $d",
        )
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        // The inner podman's containers first: their cgroups live under this container's.
        let _ = self.sh("podman rm -af -t 0; podman rmi -af");
        podman(&["rm", "-f", "-t", "0", &self.name]);
    }
}

fn virtpod_files(host: &Host) -> String {
    host.sh_ok("find /usr /etc -name '*virtpod*' | sort")
}

#[test]
fn install_into_the_default_places_keeps_podman_build_working_and_uninstall_leaves_nothing() {
    require_prepared();
    let host = Host::start();
    assert_eq!(virtpod_files(&host), "", "a fresh host has no virtpod file");
    let build = host.build();
    assert!(
        build.status.success(),
        "before any install: {}",
        text(&build)
    );

    // What an older install left: the precreate definition in podman's shared directory.
    let old = std::fs::read_to_string(repo().join("hooks.d/virtpod-devices.json"))
        .unwrap()
        .replace("/usr/bin/virtpod", "/usr/local/bin/virtpod");
    let old_file = "/usr/share/containers/oci/hooks.d/virtpod-devices.json";
    host.sh_ok(&format!(
        "install -D -m 0755 /root/virtpod /usr/local/bin/virtpod \
         && mkdir -p /usr/share/containers/oci/hooks.d && cat > {old_file} <<'END'\n{old}\nEND"
    ));
    let broken = host.build();
    assert!(
        !broken.status.success() && text(&broken).contains("unknown stage \"precreate\""),
        "an older install's file must break the build as it did on users' hosts: {}",
        text(&broken)
    );
    let doctor = host.sh("/usr/local/bin/virtpod doctor 2>&1");
    let report = text(&doctor);
    assert!(
        report.contains("FAIL  shared hooks directories")
            && report.contains(&format!("{old_file}: an older virtpod install's")),
        "{report}"
    );

    // The real install, into the default places, as root.
    let said = host.sh_ok("/root/virtpod install --prefix /usr/local");
    for line in [
        "wrote /usr/local/share/virtpod/oci-hooks.d/virtpod-devices.json",
        "wrote /etc/containers/containers.conf.d/50-virtpod-hooks.conf",
        &format!("removed {old_file}"),
    ] {
        assert!(said.contains(line), "{line:?} not in:\n{said}");
    }
    let build = host.build();
    assert!(
        build.status.success(),
        "after virtpod install, podman build with RUN: {}",
        text(&build)
    );
    assert_eq!(
        host.sh_ok("podman run --rm --network none localhost/built cat /built")
            .trim(),
        "built"
    );
    // podman still runs the hook: /dev/kvm by annotation, the host's node.
    let kvm = host.sh_ok(
        "podman --cgroup-manager cgroupfs run --rm --network none \
         --annotation io.virtpod.device.kvm=true localhost/bb stat -c '%F %t:%T' /dev/kvm",
    );
    assert_eq!(kvm.trim(), "character special file a:e8", "{kvm}");
    let without = host.sh(
        "podman --cgroup-manager cgroupfs run --rm --network none localhost/bb test -e /dev/kvm",
    );
    assert!(!without.status.success(), "no annotation, no /dev/kvm");
    let doctor = host.sh_ok("/usr/local/bin/virtpod doctor 2>&1 || true");
    assert!(
        doctor.contains("ok    shared hooks directories")
            && doctor.contains("virtpod hook at precreate (/usr/local/share/virtpod/oci-hooks.d/"),
        "{doctor}"
    );

    // uninstall with the same options: nothing of virtpod's is left in /usr or /etc.
    let said = host.sh_ok("/usr/local/bin/virtpod uninstall --prefix /usr/local");
    assert!(
        said.contains("removed /usr/local/bin/virtpod")
            && said.contains("removed /etc/containers/containers.conf.d/50-virtpod-hooks.conf"),
        "{said}"
    );
    assert_eq!(virtpod_files(&host), "", "left behind by uninstall");
    let build = host.build();
    assert!(build.status.success(), "after uninstall: {}", text(&build));
}
