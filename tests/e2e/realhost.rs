//! On a host like our users' hosts (scripts/realhost: Debian trixie booted with user-mode-linux,
//! systemd 257 as PID 1 on cgroup v2, podman 5.4 with crun; its /usr and /etc are its own, so
//! virtpod is installed into the real default places and nothing of this machine changes).
//!
//! An older install's `precreate` file in podman's shared hooks directory broke every rootful
//! `podman build` with a RUN step (buildah knows no precreate). `virtpod install` moves the hook
//! to a directory of its own named by a containers.conf.d drop-in, devices by annotation keep
//! working, and `virtpod uninstall` leaves no virtpod file behind.

use std::process::{Command, Output};

use crate::harness::*;

/// `scripts/realhost -- bash -c SCRIPT` (the rig is booted for this call alone).
fn on_realhost(script: &str) -> Output {
    Command::new(repo().join("scripts/realhost"))
        .env("CONTAINERS_CONF", repo().join("tests/containers.conf"))
        .args(["--", "bash", "-c", script])
        .output()
        .expect("running scripts/realhost")
}

#[test]
fn the_rig_is_a_cgroup_v2_host_with_systemd_podman_5_and_crun() {
    let out = on_realhost(
        "systemctl is-system-running; cat /proc/1/comm; stat -fc %T /sys/fs/cgroup; \
         podman info --format '{{.Host.CgroupsVersion}} {{.Host.OCIRuntime.Name}} {{.Host.CgroupManager}} {{.Version.Version}}'; \
         exit 7",
    );
    let said = text(&out);
    assert_eq!(out.status.code(), Some(7), "the command's status: {said}");
    for line in ["running", "systemd", "cgroup2fs", "v2 crun systemd 5.4.2"] {
        assert!(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|l| l == line),
            "{line:?} not in: {said}"
        );
    }
}

/// The runtimes and podman's cgroup managers the matrices run under, in the scripts' order.
const COMBINATIONS: [(&str, &str); 4] = [
    ("crun", "systemd"),
    ("runc", "systemd"),
    ("crun", "cgroupfs"),
    ("runc", "cgroupfs"),
];

/// The part of a matrix script's output under `== RUNTIME MANAGER`, up to the next `== `.
fn combination<'a>(said: &'a str, runtime: &str, manager: &str) -> &'a str {
    let start = said
        .find(&format!("== {runtime} {manager}\n"))
        .unwrap_or_else(|| panic!("{runtime} {manager} did not run:\n{said}"));
    let rest = &said[start..];
    &rest[..rest[3..].find("\n== ").map_or(rest.len(), |i| i + 3)]
}

/// The script run in the rig: each step prints a line the test looks for.
const INSTALL_AND_BUILD: &str = r#"
set -u
virtpod=$PWD/target/e2e/virtpod-host
mkdir -p /tmp/bb/bin && cp /bin/busybox /tmp/bb/bin/
for applet in sh echo cat stat test; do ln -s busybox /tmp/bb/bin/$applet; done
tar -C /tmp/bb -c . | podman import -q - localhost/bb >/dev/null
build() {
    d=$(mktemp -d) && printf 'FROM localhost/bb\nRUN echo built > /built\n' >"$d/Containerfile"
    podman build --no-cache --network none -q -t localhost/built "$d" >/dev/null 2>"$d/err" && echo "build ok ($1)" \
        || { echo "build failed ($1):"; cat "$d/err"; }
}
files() { find /usr /etc -name '*virtpod*' | sort | sed 's/^/file: /'; }
echo "== fresh"; files; build fresh
echo "== older install"
install -D -m 0755 "$virtpod" /usr/local/bin/virtpod
mkdir -p /usr/share/containers/oci/hooks.d
sed 's|/usr/bin/virtpod|/usr/local/bin/virtpod|' hooks.d/virtpod-devices.json \
    >/usr/share/containers/oci/hooks.d/virtpod-devices.json
build "older install"
/usr/local/bin/virtpod doctor 2>&1 | sed 's/^/doctor: /'
echo "== install"
"$virtpod" install --prefix /usr/local | sed 's/^/install: /'
build installed
podman run --rm --network none localhost/built cat /built | sed 's/^/run: /'
podman run --rm --network none --annotation io.virtpod.device.tun=true localhost/bb \
    stat -c 'tun: %F %t:%T' /dev/net/tun
podman run --rm --network none localhost/bb test -e /dev/net/tun || echo "tun: none without the annotation"
/usr/local/bin/virtpod doctor 2>&1 | sed 's/^/doctor: /'
echo "== uninstall"
/usr/local/bin/virtpod uninstall --prefix /usr/local | sed 's/^/uninstall: /'
files; build uninstalled
echo "== end"
"#;

#[test]
fn install_into_the_default_places_keeps_podman_build_working_and_uninstall_leaves_nothing() {
    let _ = host_bin(); // the rig copies it in; fail here, with the fix, when it is missing
    let out = on_realhost(INSTALL_AND_BUILD);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    let section = |name: &str| {
        let start = said
            .find(&format!("== {name}\n"))
            .unwrap_or_else(|| panic!("no {name:?} in:\n{said}"));
        let rest = &said[start + name.len() + 4..];
        rest[..rest.find("\n== ").unwrap_or(rest.len())].to_string()
    };
    let fresh = section("fresh");
    assert!(
        !fresh.contains("file: "),
        "a fresh host has no virtpod file:\n{fresh}"
    );
    assert!(fresh.contains("build ok (fresh)"), "{fresh}");

    let old_file = "/usr/share/containers/oci/hooks.d/virtpod-devices.json";
    let older = section("older install");
    assert!(
        older.contains("build failed (older install)")
            && older.contains("unknown stage \"precreate\""),
        "the older layout must break the build as it did on users' hosts:\n{older}"
    );
    assert!(
        older.contains("doctor: FAIL  shared hooks directories")
            && older.contains(&format!("{old_file}: an older virtpod install's")),
        "{older}"
    );

    let installed = section("install");
    for line in [
        "install: wrote /usr/local/share/virtpod/oci-hooks.d/virtpod-devices.json",
        "install: wrote /etc/containers/containers.conf.d/50-virtpod-hooks.conf",
        &format!("install: removed {old_file}"),
        "build ok (installed)",
        "run: built",
        // /dev/net/tun by annotation: the hook still runs for podman.
        "tun: character special file a:c8",
        "tun: none without the annotation",
        "doctor: ok    shared hooks directories",
        "doctor: ok    hooks: virtpod hook at precreate (/usr/local/share/virtpod/oci-hooks.d/virtpod-devices.json)",
    ] {
        assert!(installed.contains(line), "{line:?} not in:\n{installed}");
    }

    let uninstalled = section("uninstall");
    assert!(
        uninstalled.contains("uninstall: removed /usr/local/bin/virtpod")
            && uninstalled.contains(
                "uninstall: removed /etc/containers/containers.conf.d/50-virtpod-hooks.conf"
            ),
        "{uninstalled}"
    );
    assert!(
        !uninstalled.contains("file: "),
        "left behind by uninstall:\n{uninstalled}"
    );
    assert!(
        uninstalled.contains("build ok (uninstalled)"),
        "{uninstalled}"
    );
    assert!(said.contains("== end"), "{said}");
}

/// `./appliance-up` on the cgroup v2 host, as a user there runs it (the image loaded, not built:
/// VIRTPOD_BUILD=false; no /dev/kvm: VIRTPOD_KVM=false), under crun and runc with podman's
/// systemd and cgroupfs managers. Under the first a TCG guest boots and `podman stop` shuts it
/// down by ACPI before the daemons; under each, host virsh reaches libvirt and the stop ends
/// with init's exit code 0. (The rig has one CPU: a guest boot takes about a minute there, so
/// the other three combinations start no guest.)
const APPLIANCE_MATRIX: &str = r#"
set -u
export VIRTPOD_BUILD=false VIRTPOD_KVM=false VIRTPOD_SHUTDOWN_TIMEOUT=60
uri='qemu+unix:///system?socket=/run/virtpod/libvirt-sock'
first=yes
for combo in "crun systemd" "runc systemd" "crun cgroupfs" "runc cgroupfs"; do
    set -- $combo
    printf '[engine]\nruntime = "%s"\ncgroup_manager = "%s"\n' "$1" "$2" \
        >/etc/containers/containers.conf.d/20-realhost-combo.conf
    echo "== $1 $2"
    since=$(date '+%Y-%m-%d %H:%M:%S')
    if ! ./appliance-up >/tmp/up.log 2>&1; then
        echo "appliance-up failed:"; cat /tmp/up.log; podman logs virtpod 2>&1 | tail -n 30; continue
    fi
    podman inspect --format 'container: {{.OCIRuntime}} {{.HostConfig.CgroupManager}}' virtpod
    echo "apparmor: $(cat /proc/$(podman inspect --format '{{.State.Pid}}' virtpod)/attr/current)"
    virsh -c "$uri" list --all >/dev/null && echo "virsh: ok"
    if [ $first = yes ]; then
        first=no
        podman cp "$REALHOST_CHECKOUT/target/e2e/guest/vmlinuz" virtpod:/var/lib/libvirt/images/vmlinuz
        podman cp "$REALHOST_CHECKOUT/target/e2e/guest/initrd.img" virtpod:/var/lib/libvirt/images/initrd.img
        virsh -c "$uri" define /dev/stdin <<END >/dev/null
GUEST_XML
END
        virsh -c "$uri" start g >/dev/null && echo "guest: started"
        for _ in $(seq 60); do
            podman exec virtpod grep -q VIRTPOD-GUEST-BOOTED /var/log/libvirt/qemu/g-serial.log 2>/dev/null \
                && { echo "guest: booted"; break; }
            sleep 5
        done
    fi
    podman stop -t 120 virtpod >/dev/null
    echo "exit code: $(podman inspect --format '{{.State.ExitCode}}' virtpod)"
    podman logs virtpod 2>&1 | grep -E 'guest shut down|stopping service=|stopped code=' | sed 's/^/init: /'
    # What the profile refused the appliance, from the kernel's log (no auditd on the rig).
    journalctl -k --since "$since" --no-pager -q -o cat --grep 'apparmor="DENIED"' | sed 's/^/denied: /'
    # Its volumes too: the next combination starts with no guest to bring back.
    podman-compose -p virtpod -f compose.yaml down -v -t 120 >/dev/null 2>&1
done
echo "== end"
"#;

#[test]
fn appliance_up_on_cgroup_v2_under_crun_and_runc_with_both_cgroup_managers() {
    require_prepared();
    let script = APPLIANCE_MATRIX.replace("GUEST_XML", &guest_xml("g", "qemu"));
    let out = Command::new(repo().join("scripts/realhost"))
        .env("CONTAINERS_CONF", repo().join("tests/containers.conf"))
        .args(["--image", DEFAULT_IMAGE, "--", "bash", "-c", &script])
        .output()
        .expect("running scripts/realhost");
    let said = text(&out);
    assert!(out.status.success() && said.contains("== end"), "{said}");
    let mut first = true;
    for (runtime, manager) in COMBINATIONS {
        let part = combination(&said, runtime, manager);
        assert!(
            part.contains(&format!("container: {runtime} {manager}")),
            "{runtime} {manager}:\n{part}"
        );
        // AppArmor is on in the rig, as on a Debian or Ubuntu host: podman confines the
        // appliance with its default profile (it is not --privileged), and it works so.
        assert!(
            part.lines().any(
                |l| l.starts_with("apparmor: containers-default-") && l.ends_with(" (enforce)")
            ),
            "{runtime} {manager}: not under podman's AppArmor profile:\n{part}"
        );
        for denied in part.lines().filter(|l| l.starts_with("denied: ")) {
            println!("{runtime} {manager}: {denied}");
        }
        assert!(part.contains("virsh: ok"), "{runtime} {manager}:\n{part}");
        assert!(
            part.contains("exit code: 0"),
            "{runtime} {manager}:\n{part}"
        );
        assert!(
            part.contains("init: ") && part.contains("stopped code=0"),
            "{runtime} {manager}:\n{part}"
        );
        if first {
            first = false;
            assert!(part.contains("guest: booted"), "{part}");
            let shut = part.find("guest shut down guest=\"g\"").unwrap_or_else(|| {
                panic!("the guest was not shut down by ACPI at the stop:\n{part}")
            });
            let daemon = part
                .find("stopping service=\"libvirtd\"")
                .unwrap_or_else(|| panic!("{part}"));
            assert!(
                shut < daemon,
                "the daemons stopped before the guest:\n{part}"
            );
        }
    }
}

/// `virtpod device add/remove/list/watch` on the cgroup v2 host under crun and runc with both
/// cgroup managers: each prints lines the test reads (the device root is the test's own, with
/// the numbers a real USB serial adapter has: an allowed open reaches the kernel, which has no
/// driver for it, "No such device or address"; a denied one gives "Operation not permitted").
const DEVICES_MATRIX: &str = r#"
set -u
virtpod=$PWD/target/e2e/virtpod-host
mkdir -p /tmp/bb/bin /tmp/bb/etc && cp /bin/busybox /tmp/bb/bin/ && echo 'dialout:x:20:' >/tmp/bb/etc/group
for applet in sh echo cat stat test ls sleep mknod rm; do ln -s busybox /tmp/bb/bin/$applet; done
tar -C /tmp/bb -c . | podman import -q - localhost/bb >/dev/null
D=/tmp/devices
mkdir -p $D/dev/bus/usb/001 $D/udev/data $D/hooks.d
mknod $D/dev/ttyUSB7 c 188 7 && mknod $D/dev/ttyACM0 c 166 0
# Records in the real place (/var/lib/virtpod/devices), where doctor looks.
host="--dev-root $D/dev --udev-dir $D/udev"
printf '{"version":"1.0.0","hook":{"path":"%s","args":["virtpod","hook","--dev-root","%s","--udev-dir","%s","precreate"]},"when":{"annotations":{"^io\\\\.virtpod\\\\.device\\\\.":".*"}},"stages":["precreate"]}\n' \
    "$virtpod" $D/dev $D/udev >$D/hooks.d/50-virtpod.json
try() { # NAME NODE: opens NODE read-write in the container, says how that went
    podman exec t sh -c "exec 3<>$2 && echo OPENED" 2>&1 | sed "s/^/$1: /"
}
made() { # NAME NODE MAJOR MINOR: makes the node in the container and opens it (either may be denied)
    podman exec t sh -c "mknod $2 c $3 $4 && (exec 3<>$2 && echo OPENED); rm -f $2" 2>&1 | sed "s/^/$1: /"
}
event() { # ACTION MINOR
    printf 'ACTION=%s\nDEVPATH=/devices/pci0000:00/0000:00:14.0/usb1/1-2\nSUBSYSTEM=usb\nDEVNAME=bus/usb/001/005\nDEVTYPE=usb_device\nMAJOR=189\nMINOR=%s\n\n' "$1" "$2" >>$D/usb-events
}
for combo in "crun systemd" "runc systemd" "crun cgroupfs" "runc cgroupfs"; do
    set -- $combo
    p="podman --runtime $1 --cgroup-manager $2 --hooks-dir $D/hooks.d"
    echo "== $1 $2"
    rm -rf /var/lib/virtpod/devices
    # CAP_MKNOD (podman 5 leaves it out): the test makes nodes in the container to see the filter deny them.
    $p run -d --name t --network none --cap-add MKNOD --annotation io.virtpod.device.ttyACM=true localhost/bb sleep 1000 >/dev/null
    podman inspect --format 'container: {{.OCIRuntime}} {{.HostConfig.CgroupManager}}' t
    made before /dev/ttyUSB7 188 7
    $virtpod device add $host t ttyUSB=ttyUSB7 2>&1 | sed 's/^/add: /'
    try added /dev/ttyUSB7
    $p update --cpu-shares 512 t >/dev/null && try updated /dev/ttyUSB7
    $virtpod device list $host t 2>&1 | sed 's/^/list: /'
    # doctor takes about 25 s under UML: asked under one manager, where crun loses the grant and runc keeps it.
    [ $2 = cgroupfs ] && $virtpod doctor --socket /nonexistent 2>&1 | grep -A1 'run-time devices' | sed 's/^/doctor: /'
    $virtpod device add $host t ttyUSB=ttyUSB7 >/dev/null 2>&1 && try again /dev/ttyUSB7
    $p restart -t 0 t >/dev/null && try restarted /dev/ttyUSB7
    $virtpod device remove $host t ttyUSB=ttyUSB7 2>&1 | sed 's/^/remove: /'
    made removed /dev/ttyUSB7 188 7
    : >$D/usb-events
    $virtpod device watch t --events $D/usb-events $host >/tmp/watch.log 2>&1 &
    watcher=$!
    mknod $D/dev/bus/usb/001/005 c 189 4
    event add 4
    for _ in $(seq 50); do podman exec t test -e /dev/bus/usb/001/005 && break; sleep 0.2; done
    try plugged /dev/bus/usb/001/005
    rm $D/dev/bus/usb/001/005
    event remove 4
    for _ in $(seq 50); do podman exec t test -e /dev/bus/usb/001/005 || break; sleep 0.2; done
    made unplugged /dev/bus/usb/001/005 189 4
    podman rm -f -t 0 t >/dev/null
    wait $watcher; echo "watch ended: $?"
    sed 's/^/watch: /' /tmp/watch.log
done
echo "== end"
"#;

#[test]
fn devices_at_run_time_on_cgroup_v2_under_crun_and_runc_with_both_cgroup_managers() {
    let _ = host_bin(); // the rig copies it in; fail here, with the fix, when it is missing
    let out = on_realhost(DEVICES_MATRIX);
    let said = text(&out);
    assert!(out.status.success() && said.contains("== end"), "{said}");
    const DENIED: &str = "Operation not permitted";
    const REACHED: &str = "No such device or address";
    for (runtime, manager) in COMBINATIONS {
        let part = combination(&said, runtime, manager);
        let line = |name: &str| {
            part.lines()
                .find(|l| l.starts_with(name) && l[name.len()..].starts_with([':', '\t']))
                .unwrap_or_else(|| panic!("no {name:?} line under {runtime} {manager}:\n{part}"))
                .to_string()
        };
        assert!(
            part.contains(&format!("container: {runtime} {manager}")),
            "{part}"
        );
        assert!(line("before").contains(DENIED), "{part}");
        assert!(
            part.contains("add: t: added /dev/ttyUSB7 (char 188:7, group 20)"),
            "{part}"
        );
        assert!(line("added").contains(REACHED), "{part}");
        // `podman update` rebuilds crun's filter from podman's list (research/cgroup-v2.md
        // §1.6); runc leaves it, and with the systemd manager the unit's own list (DeviceAllow)
        // keeps the device through systemd's recompile. Whichever: `device list` tells the truth.
        let updated = line("updated");
        let listed = line("list: added");
        if runtime == "runc" {
            assert!(updated.contains(REACHED), "{part}");
        }
        assert_eq!(
            updated.contains(DENIED),
            listed.contains("not in force: the container's device filter denies /dev/ttyUSB7 now")
                && listed.contains("virtpod device add t ttyUSB=ttyUSB7"),
            "{part}"
        );
        if manager == "cgroupfs" {
            assert_eq!(
                updated.contains(DENIED),
                part.contains("doctor: warn  run-time devices: not in force: t: io.virtpod.device.ttyUSB=ttyUSB7"),
                "{part}"
            );
            if !updated.contains(DENIED) {
                assert!(part.contains("doctor: ok    run-time devices"), "{part}");
            }
        }
        assert!(line("again").contains(REACHED), "{part}");
        assert!(line("restarted").contains(REACHED), "{part}");
        assert!(part.contains("remove: t: removed /dev/ttyUSB7"), "{part}");
        assert!(line("removed").contains(DENIED), "{part}");
        assert!(line("plugged").contains(REACHED), "{part}");
        assert!(line("unplugged").contains(DENIED), "{part}");
        assert!(part.contains("watch ended: 0"), "{part}");
        assert!(
            part.contains("watch: t: removed /dev/bus/usb/001/005"),
            "{part}"
        );
    }
}

/// Host kernel modules on request (`io.virtpod.module.NAME=true`, issue 23 item 4): the
/// precreate hook loads one on its list (nbd, which this kernel has as a module and nothing
/// loads) before the container starts, refuses one off it (dummy) with the fix, and loads that
/// one too once the hook's definition says `--allow-module dummy`. Rootless, the same
/// annotation is refused with the command to run as root.
const MODULES_SCRIPT: &str = r#"
set -u
# Where the rootless user can run it too (the checkout's copy is under root's home).
install -D -m 0755 target/e2e/virtpod-host /opt/virtpod-test/virtpod
virtpod=/opt/virtpod-test/virtpod
mkdir -p /tmp/bb/bin && cp /bin/busybox /tmp/bb/bin/ && ln -s busybox /tmp/bb/bin/true
tar -C /tmp/bb -c . | podman import -q - localhost/bb >/dev/null
hooks() { # DIR EXTRA-ARGS: a hook definition as virtpod install writes it, with extra arguments
    mkdir -p $1
    printf '{"version":"1.0.0","hook":{"path":"%s","args":["virtpod","hook"%s,"precreate"]},"when":{"annotations":{"^(io\\\\.virtpod\\\\.(device|sysctl|module)|org\\\\.containers\\\\.qm\\\\.device)\\\\.":".*"}},"stages":["precreate"]}\n' \
        "$virtpod" "$2" >$1/50-virtpod.json
}
hooks /tmp/hooks ''
hooks /tmp/hooks-dummy ',"--allow-module","dummy"'
loaded() { [ -d /sys/module/$1 ] && echo "$1: loaded" || echo "$1: not loaded"; }
loaded nbd; loaded dummy
podman run --rm --network none --hooks-dir /tmp/hooks --annotation io.virtpod.module.nbd=true localhost/bb true \
    && echo "run nbd: ok"
loaded nbd
podman run --rm --network none --hooks-dir /tmp/hooks --annotation io.virtpod.module.dummy=true localhost/bb true 2>&1 \
    | sed 's/^/run dummy: /'
loaded dummy
podman run --rm --network none --hooks-dir /tmp/hooks-dummy --annotation io.virtpod.module.dummy=true localhost/bb true \
    && echo "run dummy allowed: ok"
loaded dummy
grep -h 'kernel module' /var/log/virtpod-hook.log | sed 's/^/log: /'
rmmod dummy nbd
for _ in $(seq 60); do systemctl is-active -q user@1000.service && break; sleep 1; done
as_user() { runuser -u vpuser -- env -C /home/vpuser XDG_RUNTIME_DIR=/run/user/1000 "$@"; }
tar -C /tmp/bb -c . | as_user podman import -q - localhost/bb >/dev/null
as_user podman run --rm --network none --hooks-dir /tmp/hooks --annotation io.virtpod.module.nbd=true localhost/bb true 2>&1 \
    | sed 's/^/rootless: /'
[ "${PIPESTATUS[0]}" = 0 ] && echo "rootless: started"
# podman 5.4 rootless shows only the hook's exit status; its words, as the user's hook says them:
echo '{"ociVersion":"1.0.0","annotations":{"io.virtpod.module.nbd":"true"}}' \
    | as_user $virtpod hook precreate 2>&1 >/dev/null | sed 's/^/rootless hook: /'
loaded nbd
echo "== end"
"#;

#[test]
fn host_kernel_modules_on_request_from_the_list_only() {
    let _ = host_bin();
    let out = on_realhost(MODULES_SCRIPT);
    let said = text(&out);
    assert!(out.status.success() && said.contains("== end"), "{said}");
    let has = |line: &str| said.lines().any(|l| l.trim_end() == line);
    let contains = |text: &str| said.lines().any(|l| l.contains(text));
    for line in [
        "nbd: not loaded",
        "dummy: not loaded",
        "run nbd: ok",
        "nbd: loaded",
        "run dummy allowed: ok",
        "dummy: loaded",
    ] {
        assert!(has(line), "{line:?} not in:\n{said}");
    }
    // Refused: the container did not start, the module was not loaded, and the words say why
    // and what to do.
    assert!(!has("run dummy: ok"), "{said}");
    let refused = said
        .find("dummy: not loaded")
        .and_then(|first| said[first + 1..].find("dummy: not loaded"))
        .is_some();
    assert!(refused, "dummy loaded without --allow-module:\n{said}");
    assert!(
        contains("io.virtpod.module.dummy: dummy is not a module virtpod loads for a container")
            && contains("--allow-module dummy"),
        "{said}"
    );
    assert!(
        contains("kernel module nbd: loaded") && contains("kernel module dummy: loaded"),
        "the hook's log:\n{said}"
    );
    assert!(
        !contains("rootless: started")
            && contains("rootless hook: ")
            && contains("needs root on the host")
            && contains("sudo modprobe nbd"),
        "{said}"
    );
    assert_eq!(
        said.lines().rfind(|l| l.starts_with("nbd: ")),
        Some("nbd: not loaded"),
        "rootless loaded it:\n{said}"
    );
}
