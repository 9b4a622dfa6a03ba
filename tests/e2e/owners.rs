//! State volumes moved to an image whose accounts have other numbers (another distribution,
//! another release): init re-owns the files, and the guest runs again, as a user sees it.

use std::time::{Duration, Instant};

use crate::harness::*;

/// The record init keeps in the /var/lib/libvirt volume (src/init/owners.rs).
const RECORD: &str = "/var/lib/libvirt/virtpod/owners";
/// A disk whose owner the user manages (libvirt does not relabel it): given to qemu's user by
/// hand, mode 0600, as for a disk on NFS. libvirtd re-owns its own directories at each start,
/// so this file is what keeps the guest from starting when nobody re-owns it.
const DISK: &str = "/var/lib/libvirt/images/owners-data.img";

/// An image of this test's own, removed on drop even when the test fails.
struct OwnImage(String);

impl OwnImage {
    /// The image under test with libvirt-qemu's uid and group moved from 64055 to 64056, as
    /// another release that allocated them differently would have them.
    fn build() -> OwnImage {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("Containerfile"),
            format!(
                "FROM {}\nRUN usermod -u 64056 libvirt-qemu && groupmod -g 64056 libvirt-qemu\n",
                image()
            ),
        )
        .unwrap();
        let own = OwnImage(format!(
            "localhost/virtpod-test:owners-{}",
            std::process::id()
        ));
        podman_ok(&[
            "build",
            "--network",
            "none",
            "-t",
            &own.0,
            dir.path().to_str().unwrap(),
        ]);
        own
    }
}

impl Drop for OwnImage {
    fn drop(&mut self) {
        podman(&["rmi", "-f", &self.0]);
    }
}

/// `Appliance::start` with another image on the same volumes.
fn start_with<'v>(vols: &'v Volumes, image: &str) -> Appliance<'v> {
    let name = unique("c");
    let mut args = vec![
        "run".to_string(),
        "-d".into(),
        "--name".into(),
        name.clone(),
        "--no-healthcheck".into(),
        "--device".into(),
        "/dev/kvm".into(),
    ];
    args.extend(vols.mounts());
    args.push(image.into());
    podman_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    Appliance {
        name,
        vols,
        uri_extra: String::new(),
    }
}

/// The test guest with DISK attached, qemu's by hand: started, booted to its console marker.
fn boot_guest_with_own_disk(app: &Appliance, guest: &str) {
    app.exec_ok(&format!(
        "truncate -s 1M {DISK} && chown libvirt-qemu:libvirt-qemu {DISK} && chmod 0600 {DISK}"
    ));
    // define_guest brings the kernel and initramfs in; the guest is then defined with the disk.
    app.define_guest(guest, "qemu");
    app.virsh_ok(&["undefine", guest]);
    let disk = format!(
        "<disk type='file' device='disk'><driver name='qemu' type='raw'/>\
         <source file='{DISK}'><seclabel model='dac' relabel='no'/></source>\
         <target dev='vda' bus='virtio'/></disk>"
    );
    let xml = guest_xml(guest, "qemu").replace("<memballoon", &format!("{disk}\n    <memballoon"));
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), xml).unwrap();
    app.virsh_ok(&["define", file.path().to_str().unwrap()]);
    app.virsh_ok(&["start", guest]);
    app.wait_console(guest, GUEST_BOOTED, 1);
}

/// Stops the appliance as a user does; the guest is recorded to start again.
fn stop(app: &Appliance) {
    podman_ok(&["stop", "-t", "90", &app.name]);
    assert_eq!(app.state("ExitCode"), "0", "{}", app.logs());
}

/// Waits for the guest recorded at the last stop to run again; the container log otherwise.
fn wait_running(app: &Appliance, guest: &str, when: &str) {
    let start = Instant::now();
    while app.domstate(guest) != "running" {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{guest} not running after 60 s {when}\n--- container log ---\n{}",
            app.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The number in init's line `…: N files re-owned`.
fn reowned(logs: &str) -> Option<usize> {
    let line = logs.lines().find(|l| l.contains(" files re-owned"))?;
    let (before, _) = line.rsplit_once(" files re-owned")?;
    before.rsplit(' ').next()?.parse().ok()
}

#[test]
fn volumes_moved_to_an_image_with_other_ids_are_reowned_and_the_guest_runs_again() {
    require_prepared();
    let moved = OwnImage::build();
    let vols = Volumes::new("owners");
    {
        let first = Appliance::start(&vols, Opts::default());
        first.wait_ready();
        assert!(
            first
                .logs()
                .contains("recorded this image's accounts (first start on these volumes)"),
            "{}",
            first.logs()
        );
        let record = first.exec_ok(&format!("cat {RECORD}"));
        assert!(record.contains("user qemu libvirt-qemu 64055"), "{record}");
        boot_guest_with_own_disk(&first, "g");
        stop(&first);
    }

    let second = start_with(&vols, &moved.0);
    second.wait_ready();
    wait_running(&second, "g", "in the image with other ids");
    second.wait_console("g", GUEST_BOOTED, 2);
    assert_eq!(
        second.exec_ok("stat -c %u:%g /var/lib/libvirt/qemu").trim(),
        "64056:64056"
    );
    let logs = second.logs();
    assert!(
        logs.contains(
            "state volumes came from an image where libvirt-qemu 64055:64055; \
             now libvirt-qemu 64056:64056: "
        ),
        "{logs}"
    );
    assert!(reowned(&logs).is_some_and(|n| n > 0), "{logs}");
    let record = second.exec_ok(&format!("cat {RECORD}"));
    assert!(record.contains("user qemu libvirt-qemu 64056"), "{record}");
    assert!(
        second
            .exec("test -e /var/lib/libvirt/virtpod/owners.moving")
            .status
            .code()
            == Some(1),
        "the journal is removed once done"
    );
    stop(&second);
    drop(second);

    // The same image again: nothing moved, nothing re-owned, and the guest still comes back.
    let third = start_with(&vols, &moved.0);
    third.wait_ready();
    wait_running(&third, "g", "after a start with nothing to re-own");
    third.wait_console("g", GUEST_BOOTED, 3);
    let logs = third.logs();
    assert!(!logs.contains("re-owned"), "{logs}");
}
