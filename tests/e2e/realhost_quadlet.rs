//! The quadlet units and rootless podman on a host like our users' hosts (scripts/realhost:
//! Debian trixie booted with user-mode-linux, systemd 257 as PID 1 on cgroup v2, podman 5.4.2
//! with crun; no /dev/kvm, so guests run under TCG). tests/e2e/quadlet.rs runs the same units
//! in a privileged container on these machines' v1 cgroups, with a drop-in for the user unit;
//! here they run as docs/modes.md "Quadlet" gives them, started and stopped by the host's own
//! systemd, the user unit under the user's manager with the delegation cgroup v2 gives.
//!
//! One boot of the rig, three stories, each told by the lines the script prints:
//! 1. the system unit in /etc/containers/systemd (with the documented drop-in for a host
//!    without /dev/kvm): `systemctl start` returns once libvirt answers, host virsh reaches it
//!    through /run/virtpod, a guest boots, `systemctl stop` shuts the guest down (ACPI) and
//!    then the daemons, init ending with code 0;
//! 2. the user unit in ~/.config/containers/systemd of a user made here (useradd, the
//!    subordinate ids it allocates, `loginctl enable-linger`) under `systemctl --user`: the
//!    same, virsh as the user through $XDG_RUNTIME_DIR/virtpod;
//! 3. `podman run` of the appliance as that user, as docs/modes.md "Rootless, socket only".

use std::process::Command;
use std::time::Instant;

use crate::harness::*;

/// The script run in the rig, as root, in its copy of the checkout. Every line the test
/// looks for is printed by systemctl, virsh, podman, stat or init itself.
const QUADLET_STORIES: &str = r#"
set -u
t0=$(date +%s)
took() { echo "took: $1 at $(( $(date +%s) - t0 ))s"; }
# init's lines from the stop on: the signal, each daemon, its exit code.
init_lines() { grep -E 'guest shut down| INFO (stopping|stopped)' | sed 's/^/init: /'; }

echo "== system"
# The host's hook from the image, as docs/modes.md "Quadlet" says, then the units, and the
# drop-in of quadlet/system/virtpod.container for a host without /dev/kvm.
podman run --rm --network none -v /usr/local:/host/usr/local -v /etc/containers:/host/etc/containers \
    -v /usr/share/containers:/host/usr/share/containers \
    --entrypoint /usr/bin/virtpod localhost/virtpod:debian install --root /host 2>&1 \
    | grep 'oci-hooks.d/virtpod-devices.json' | sed 's/^/install: /'
cp quadlet/system/* /etc/containers/systemd/
mkdir -p /etc/containers/systemd/virtpod.container.d
printf '[Container]\nAnnotation=io.virtpod.device.kvm=false\n' >/etc/containers/systemd/virtpod.container.d/tcg.conf
systemctl daemon-reload
systemctl show -p Type,FragmentPath virtpod.service | sed 's/^/show: /'
systemctl start virtpod.service && echo "start: returned"
took "system start"
echo "is-active: $(systemctl is-active virtpod.service)"
uri='qemu+unix:///system?socket=/run/virtpod/libvirt-sock'
virsh -c "$uri" version 2>&1 | sed 's/^/virsh: /'
sed 's/^/cgroup: /' "/proc/$(podman inspect --format '{{.State.Pid}}' virtpod)/cgroup"
podman inspect --format 'annotation: kvm={{index .Config.Annotations "io.virtpod.device.kvm"}}' virtpod
podman exec virtpod test -e /dev/kvm || echo "kvm: none in the container"
podman exec virtpod stat -c 'tun: %F' /dev/net/tun 2>&1
# A guest (TCG), so that the stop has one to shut down before the daemons.
podman cp "$REALHOST_CHECKOUT/target/e2e/guest/vmlinuz" virtpod:/var/lib/libvirt/images/vmlinuz
podman cp "$REALHOST_CHECKOUT/target/e2e/guest/initrd.img" virtpod:/var/lib/libvirt/images/initrd.img
virsh -c "$uri" define /dev/stdin <<END >/dev/null
GUEST_XML
END
virsh -c "$uri" start g >/dev/null && echo "guest: started"
for _ in $(seq 90); do
    podman exec virtpod grep -q GUEST_BOOTED /var/log/libvirt/qemu/g-serial.log 2>/dev/null \
        && { echo "guest: booted"; break; }
    sleep 2
done
took "guest booted"
systemctl stop virtpod.service && echo "stop: returned"
took "system stop"
echo "after stop: $(systemctl is-active virtpod.service) $(systemctl show -p Result --value virtpod.service)"
journalctl -u virtpod.service -o cat --no-pager | init_lines
podman ps -a --format 'left: container {{.Names}}'
[ -e /run/virtpod ] && echo "left: /run/virtpod"

echo "== user"
useradd -m -s /bin/bash vq
uid=$(id -u vq)
echo "uid: $uid"
grep -h '^vq:' /etc/subuid /etc/subgid | sed 's/^/subids: /'
loginctl enable-linger vq
for _ in $(seq 60); do systemctl is-active -q "user@$uid.service" && break; sleep 1; done
as_user() { runuser -u vq -- env -C /home/vq XDG_RUNTIME_DIR=/run/user/$uid "$@"; }
echo "manager: $(as_user systemctl --user is-system-running --wait)"
echo "delegated: $(cat /sys/fs/cgroup/user.slice/user-$uid.slice/user@$uid.service/cgroup.controllers)"
# The rig has no udev, whose rule makes /dev/net/tun 0666 on a host (rootless podman's network,
# pasta, opens it).
chmod 0666 /dev/net/tun
# The image for the user without a `podman load` (minutes under UML): root's store as a
# read-only additional image store. Root's store is root's alone (0700, root's ids: podman
# says "open …/overlay-images/images.lock: permission denied"), so the user gets an idmapped
# read-only view of it, with root as the user and the image's other ids as the user's
# subordinate ones, which is how the user's podman would have stored them.
read -r sub _ < <(awk -F: '$1 == "vq" {print $2, $3}' /etc/subuid)
mkdir -p /var/lib/containers/vq
mount --bind -o ro,X-mount.idmap="b:0:$uid:1 b:1:$sub:65535" /var/lib/containers/storage /var/lib/containers/vq
mkdir -p /home/vq/.config/containers/systemd
printf '[storage]\ndriver = "overlay"\n[storage.options]\nadditionalimagestores = ["/var/lib/containers/vq"]\n' \
    >/home/vq/.config/containers/storage.conf
cp quadlet/user/* /home/vq/.config/containers/systemd/
chown -R vq: /home/vq/.config
as_user podman info --format 'podman: {{.Host.CgroupsVersion}} {{.Host.CgroupManager}} {{.Host.OCIRuntime.Name}} rootless={{.Host.Security.Rootless}}'
as_user podman images --format 'image: {{.Repository}}:{{.Tag}} read-only={{.ReadOnly}}'
as_user systemctl --user daemon-reload
as_user systemctl --user show -p Type,FragmentPath virtpod.service | sed 's/^/show: /'
as_user systemctl --user start virtpod.service && echo "start: returned"
took "user start"
echo "is-active: $(as_user systemctl --user is-active virtpod.service)"
uri="qemu+unix:///system?socket=/run/user/$uid/virtpod/libvirt-sock"
as_user virsh -c "$uri" version 2>&1 | sed 's/^/virsh: /'
stat -c 'socket: %F %U' "/run/user/$uid/virtpod/libvirt-sock"
sed 's/^/cgroup: /' "/proc/$(as_user podman inspect --format '{{.State.Pid}}' virtpod)/cgroup"
as_user systemctl --user stop virtpod.service && echo "stop: returned"
took "user stop"
echo "after stop: $(as_user systemctl --user is-active virtpod.service) $(as_user systemctl --user show -p Result --value virtpod.service)"
journalctl "_UID=$uid" _SYSTEMD_USER_UNIT=virtpod.service -o cat --no-pager | init_lines
as_user podman ps -a --format 'left: container {{.Names}}'
[ -e "/run/user/$uid/virtpod" ] && find "/run/user/$uid/virtpod" -printf 'left: %p %M %u\n'

echo "== rootless run"
as_user bash -c 'mkdir -p "$XDG_RUNTIME_DIR/virtpod" && podman run -d --name virtpod \
    -v virtpod-lib:/var/lib/libvirt -v virtpod-etc:/etc/libvirt -v virtpod-log:/var/log/libvirt \
    -v "$XDG_RUNTIME_DIR/virtpod:/run/libvirt" localhost/virtpod:debian' >/dev/null && echo "run: started"
for _ in $(seq 90); do
    as_user virsh -c "$uri" version >/tmp/virsh.out 2>&1 && break
    sleep 1
done
took "rootless answers"
sed 's/^/virsh: /' /tmp/virsh.out
stat -c 'socket: %F %U' "/run/user/$uid/virtpod/libvirt-sock"
sed 's/^/cgroup: /' "/proc/$(as_user podman inspect --format '{{.State.Pid}}' virtpod)/cgroup"
as_user podman stop -t 120 virtpod >/dev/null
took "rootless stop"
echo "exit code: $(as_user podman inspect --format '{{.State.ExitCode}}' virtpod)"
as_user podman logs virtpod 2>&1 | init_lines
as_user podman rm -v virtpod >/dev/null
echo "== end"
"#;

/// The part of the script's output from `== name` to the next `== `.
fn section<'a>(said: &'a str, name: &str) -> &'a str {
    let start = said
        .find(&format!("== {name}\n"))
        .unwrap_or_else(|| panic!("no {name:?} in:\n{said}"));
    let rest = &said[start + name.len() + 4..];
    &rest[..rest.find("\n== ").unwrap_or(rest.len())]
}

/// init's stop as the unit's journal or `podman logs` shows it: the stop signal, libvirtd
/// stopped before the daemons it uses (when they ran), its exit code 0, and last `stopped
/// code=0` (every guest stopped as asked and every service cleanly).
fn assert_init_stopped_in_order(part: &str, daemons: &[&str]) {
    let init: Vec<&str> = part
        .lines()
        .filter_map(|l| l.strip_prefix("init: "))
        .collect();
    let at = |what: &str| {
        init.iter()
            .position(|l| l.contains(what))
            .unwrap_or_else(|| panic!("{what:?} not in init's lines:\n{part}"))
    };
    let signal = at("stopping signal=\"SIGTERM\"");
    let mut last = signal;
    for daemon in daemons {
        let stopping = at(&format!("stopping service=\"{daemon}\""));
        let stopped = at(&format!("stopped service=\"{daemon}\" exit=exit code 0"));
        assert!(
            last < stopping && stopping < stopped,
            "{daemon} out of order:\n{part}"
        );
        last = stopped;
    }
    assert_eq!(
        init.last().map(|l| l.trim()),
        Some("INFO stopped code=0"),
        "{part}"
    );
}

fn assert_has(part: &str, lines: &[&str]) {
    for line in lines {
        assert!(part.lines().any(|l| l == *line), "{line:?} not in:\n{part}");
    }
}

fn assert_no_leftovers(part: &str) {
    assert!(!part.contains("left: "), "left behind by the stop:\n{part}");
}

#[test]
fn quadlet_system_and_user_units_and_rootless_podman_on_a_cgroup_v2_host() {
    require_prepared();
    let script = QUADLET_STORIES
        .replace("GUEST_XML", &guest_xml("g", "qemu"))
        .replace("GUEST_BOOTED", GUEST_BOOTED);
    let started = Instant::now();
    let out = Command::new(repo().join("scripts/realhost"))
        .env("CONTAINERS_CONF", repo().join("tests/containers.conf"))
        .args(["--image", DEFAULT_IMAGE, "--", "bash", "-c", &script])
        .output()
        .expect("running scripts/realhost");
    let said = text(&out);
    // What the rig printed, and how long it took (shown with --nocapture).
    eprintln!("{said}");
    eprintln!(
        "realhost_quadlet: the rig's run took {:?}",
        started.elapsed()
    );
    assert!(out.status.success() && said.contains("== end"), "{said}");

    // 1. The system unit, by the rig's systemd: generated from /etc/containers/systemd, the
    // container in the unit's own cgroup, the drop-in's annotation given, the hook's tun.
    let system = section(&said, "system");
    assert_has(
        system,
        &[
            "install: wrote /host/usr/local/share/virtpod/oci-hooks.d/virtpod-devices.json (runs /usr/local/bin/virtpod)",
            "show: Type=notify",
            "show: FragmentPath=/run/systemd/generator/virtpod.service",
            "start: returned",
            "is-active: active",
            "annotation: kvm=false",
            "kvm: none in the container",
            "tun: character special file",
            "guest: started",
            "guest: booted",
            "stop: returned",
            "after stop: inactive success",
        ],
    );
    assert!(
        system
            .lines()
            .any(|l| l.starts_with("virsh: Running hypervisor: QEMU ")),
        "host virsh did not reach libvirt through /run/virtpod:\n{system}"
    );
    assert!(
        system
            .lines()
            .any(|l| l.starts_with("cgroup: 0::/system.slice/virtpod.service/libpod-payload-")),
        "the container is not in the unit's cgroup:\n{system}"
    );
    let shut = system
        .find("guest shut down guest=\"g\"")
        .unwrap_or_else(|| panic!("the stop did not shut the guest down by ACPI:\n{system}"));
    let daemon = system
        .find("stopping service=\"libvirtd\"")
        .unwrap_or_else(|| panic!("{system}"));
    assert!(
        shut < daemon,
        "the daemons stopped before the guest:\n{system}"
    );
    assert_init_stopped_in_order(system, &["libvirtd", "virtlogd"]);
    assert_no_leftovers(system);

    // 2. The user unit under the user's systemd manager: cgroup v2 delegation, rootless
    // podman with crun and podman's systemd cgroup manager, no drop-in.
    let user = section(&said, "user");
    let uid = user
        .lines()
        .find_map(|l| l.strip_prefix("uid: "))
        .unwrap_or_else(|| panic!("{user}"));
    assert_has(
        user,
        &[
            "manager: running",
            "podman: v2 systemd crun rootless=true",
            "image: localhost/virtpod:debian read-only=true",
            "show: Type=notify",
            &format!("show: FragmentPath=/run/user/{uid}/systemd/generator/virtpod.service"),
            "start: returned",
            "is-active: active",
            "socket: socket vq",
            "stop: returned",
            "after stop: inactive success",
        ],
    );
    assert!(
        user.lines().any(|l| l.starts_with("subids: vq:")),
        "useradd allocated no subordinate ids:\n{user}"
    );
    assert!(
        user.lines()
            .any(|l| l.starts_with("delegated: ") && l.contains("memory") && l.contains("pids")),
        "{user}"
    );
    assert!(
        user.lines()
            .any(|l| l.starts_with("virsh: Running hypervisor: QEMU ")),
        "the user's virsh did not reach libvirt through its socket:\n{user}"
    );
    assert!(
        user.lines().any(|l| l.starts_with(&format!(
            "cgroup: 0::/user.slice/user-{uid}.slice/user@{uid}.service/app.slice/virtpod.service/libpod-payload-"
        ))),
        "the container is not in the user unit's cgroup:\n{user}"
    );
    assert_init_stopped_in_order(user, &["libvirtd"]);
    assert_no_leftovers(user);

    // 3. Rootless `podman run` as docs/modes.md gives it.
    let rootless = section(&said, "rootless run");
    assert_has(
        rootless,
        &["run: started", "socket: socket vq", "exit code: 0"],
    );
    assert!(
        rootless
            .lines()
            .any(|l| l.starts_with("virsh: Running hypervisor: QEMU ")),
        "{rootless}"
    );
    assert!(
        rootless.lines().any(|l| l.starts_with(&format!(
            "cgroup: 0::/user.slice/user-{uid}.slice/user@{uid}.service/"
        ))),
        "{rootless}"
    );
    assert_init_stopped_in_order(rootless, &["libvirtd"]);
}
