//! Host clients other than virsh, through the exposed socket, as users run them.

use std::process::Command;

use crate::harness::*;

/// virt-install (virt-manager's installer, from the host's virtinst) creates and starts a guest
/// on the appliance: the kernel and initramfs are paths inside the container, as for any remote
/// libvirt. TCG, so the guest boots here.
#[test]
fn virt_install_creates_and_boots_a_guest_through_the_socket() {
    require_prepared();
    let vols = Volumes::new("virt-install");
    let app = Appliance::start(&vols, Opts::default());
    app.wait_ready();
    // define_guest copies the kernel and initramfs in; its own domain is not needed.
    app.define_guest("unused", "qemu");
    app.virsh_ok(&["undefine", "unused"]);

    let uri = format!("qemu+unix:///system?socket={}", vols.socket().display());
    let out = Command::new("virt-install")
        .args([
            "--connect",
            &uri,
            "--name",
            "vi",
            "--memory",
            "192",
            "--vcpus",
            "1",
        ])
        .args([
            "--virt-type",
            "qemu",
            "--import",
            "--disk",
            "none",
            "--network",
            "none",
        ])
        .args([
            "--osinfo",
            "detect=on,require=off",
            "--graphics",
            "none",
            "--noautoconsole",
        ])
        .args([
            "--boot",
            "kernel=/var/lib/libvirt/images/vmlinuz,initrd=/var/lib/libvirt/images/initrd.img,\
             kernel_args=console=ttyS0 panic=-1 quiet",
            "--serial",
            "file,path=/var/log/libvirt/qemu/vi-serial.log",
        ])
        .output()
        .expect("virt-install (virtinst; tests/prepare installs it)");
    assert!(out.status.success(), "virt-install failed: {}", text(&out));
    assert!(
        text(&out).contains("Domain creation completed"),
        "{}",
        text(&out)
    );
    app.wait_console("vi", GUEST_BOOTED, 1);
    assert_eq!(app.domstate("vi"), "running");
    let xml = app.virsh_ok(&["dumpxml", "vi"]);
    assert!(
        xml.contains("<kernel>/var/lib/libvirt/images/vmlinuz</kernel>"),
        "{xml}"
    );
}
