//! `virtpod hook` through real podman: hooks directories given with --hooks-dir, the host-side
//! binary built without libvirt, containers asking for devices by annotation.

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::harness::*;
use crate::modes::ROOTLESS_UID;

/// A hooks directory of a test's own, with the log and records in the same temp dir.
struct Hooks {
    tmp: tempfile::TempDir,
}

impl Hooks {
    fn dir(&self) -> String {
        self.tmp.path().join("hooks.d").display().to_string()
    }

    fn log(&self) -> String {
        fs::read_to_string(self.tmp.path().join("hook.log")).unwrap_or_default()
    }

    fn state_dir(&self) -> PathBuf {
        self.tmp.path().join("state")
    }

    /// What `virtpod install` writes: the shipped definitions, default options, into a prefix
    /// of the test's own (the host's /usr/local stays as it is).
    fn installed() -> Hooks {
        let tmp = tempfile::tempdir().unwrap();
        let out = Command::new(host_bin())
            // The test's podman is told the directory with --hooks-dir: no drop-in in /etc.
            .args(["install", "--no-host-conf", "--hooks-dir"])
            .arg(tmp.path().join("hooks.d"))
            .arg("--prefix")
            .arg(tmp.path().join("prefix"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        assert!(text(&out).contains("wrote "), "{}", text(&out));
        Hooks { tmp }
    }

    /// Our hook at `stage` (and poststop), with `args` before the stage, logging to the temp dir.
    fn custom(stage: &str, when: &str, args: &[&str]) -> Hooks {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("hooks.d");
        fs::create_dir(&dir).unwrap();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        write_hook_definitions(
            &dir,
            tmp.path(),
            &args,
            &[
                ("50-virtpod.json", stage, when),
                ("51-virtpod-poststop.json", "poststop", when),
            ],
        );
        Hooks { tmp }
    }
}

/// `podman run --rm` of the appliance image running `script` with sh; its output.
fn run(hooks: &Hooks, annotations: &[&str], script: &str) -> std::process::Output {
    let dir = hooks.dir();
    let mut args = vec!["run", "--rm", "--hooks-dir", &dir, "--no-healthcheck"];
    for a in annotations {
        args.extend(["--annotation", a]);
    }
    args.extend(["--entrypoint", "sh", image(), "-c", script]);
    podman(&args)
}

fn run_ok(hooks: &Hooks, annotations: &[&str], script: &str) -> String {
    let out = run(hooks, annotations, script);
    assert!(
        out.status.success(),
        "podman run {annotations:?} failed: {}\n--- hook log ---\n{}",
        text(&out),
        hooks.log()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The gid of a group in the appliance image, if it has one.
fn image_group(group: &str) -> Option<String> {
    image_group_entry(group)?
        .split(':')
        .nth(2)
        .map(String::from)
}

fn image_gid(group: &str) -> String {
    image_group(group).unwrap_or_else(|| panic!("the appliance image has no group {group}"))
}

#[test]
fn kvm_by_annotation_runs_a_kvm_guest_in_the_appliance() {
    require_prepared();
    let hooks = Hooks::installed();
    // The installed definitions are what `virtpod hooks check` accepts.
    let check = Command::new(host_bin())
        .args(["hooks", "check", &hooks.dir()])
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", text(&check));

    let vols = Volumes::new("hookkvm");
    let dir = hooks.dir();
    let app = Appliance::start(
        &vols,
        Opts {
            podman: &[
                "--hooks-dir",
                &dir,
                "--annotation",
                "io.virtpod.device.kvm=true",
            ],
            no_kvm_device: true,
            ..Opts::default()
        },
    );
    app.wait_ready();
    let kvm = app.exec_ok("stat -c '%F %t:%T %a %g' /dev/kvm");
    assert_eq!(
        kvm.trim(),
        format!("character special file a:e8 660 {}", image_gid("kvm"))
    );
    app.define_guest("kvm", "kvm");
    app.virsh_ok(&["start", "kvm"]);
    assert_eq!(app.domstate("kvm"), "running");
    // Nobody else fixed the node: init found it right.
    assert!(!app.logs().contains("gave /dev/kvm"), "{}", app.logs());
}

#[test]
fn host_devices_arrive_with_their_groups() {
    require_prepared();
    let hooks = Hooks::custom("precreate", ANY_DEVICE, &[]);
    let classes = [
        ("tun", "net/tun", None),
        ("ttys", "tty0", Some("tty")),
        ("ttys", "tty7", Some("tty")),
        ("fuse", "fuse", None),
        ("vhost-net", "vhost-net", Some("kvm")),
        ("vhost-vsock", "vhost-vsock", Some("kvm")),
    ];
    let present: Vec<_> = classes
        .iter()
        .filter(|(_, rel, _)| Path::new("/dev").join(rel).exists())
        .collect();
    assert!(present.len() >= 4, "this host lacks tun, ttys or fuse");
    let annotations: Vec<String> = present
        .iter()
        .map(|(c, _, _)| format!("io.virtpod.device.{c}=true"))
        .collect();
    let a: Vec<&str> = annotations.iter().map(String::as_str).collect();
    let paths: Vec<String> = present
        .iter()
        .map(|(_, r, _)| format!("/dev/{r}"))
        .collect();
    // Open each node read-write as root: the device cgroup allows it.
    let script = format!(
        "for d in {0}; do stat -c '%n %g' $d; done; for d in {0}; do exec 3<>$d && echo opened $d; exec 3<&-; done",
        paths.join(" ")
    );
    let out = run_ok(&hooks, &a, &script);
    for ((_, rel, group), path) in present.iter().zip(&paths) {
        let meta = fs::metadata(path).unwrap();
        let gid = match group {
            Some(g) => image_gid(g),
            None => std::os::unix::fs::MetadataExt::gid(&meta).to_string(),
        };
        assert!(out.contains(&format!("{path} {gid}\n")), "{rel}: {out}");
        assert!(out.contains(&format!("opened {path}\n")), "{rel}: {out}");
    }
}

/// A device root of the test's own, with nodes made by mknod for classes this host lacks.
struct FakeHost {
    tmp: tempfile::TempDir,
}

impl FakeHost {
    fn new() -> FakeHost {
        let tmp = tempfile::tempdir().unwrap();
        let dev = tmp.path().join("dev");
        let nodes = [
            ("snd/controlC0", 116, 0),
            ("snd/pcmC0D0p", 116, 16),
            ("video0", 81, 0),
            ("media0", 239, 0),
            ("input/event0", 13, 64),
            ("dvb/adapter0/frontend0", 212, 0),
            ("radio0", 81, 64),
            ("dri/card0", 226, 0),
            ("dri/renderD128", 226, 128),
            ("ttyUSB0", 188, 0),
            ("ttyUSB1", 188, 1),
            ("ttyACM0", 166, 0),
            ("bus/usb/001/002", 189, 1),
            ("bus/usb/001/003", 189, 2),
            ("vfio/vfio", 10, 196),
        ];
        for (rel, major, minor) in nodes {
            mknod(&dev.join(rel), "0660", major, minor);
        }
        fs::create_dir_all(dev.join("hugepages")).unwrap();
        // Bad entries for the safety tests.
        fs::write(dev.join("ttyUSB8"), "not a device").unwrap();
        symlink("/dev/null", dev.join("ttyUSB9")).unwrap();
        // udev's database and sysfs for vendor:product.
        let udev = tmp.path().join("udev/data");
        fs::create_dir_all(&udev).unwrap();
        fs::write(udev.join("c189:1"), "E:ID_VENDOR_ID=1d6b\n").unwrap();
        let usb = tmp.path().join("sys/bus/usb/devices/1-1");
        fs::create_dir_all(&usb).unwrap();
        for (f, v) in [
            ("idVendor", "1d6b"),
            ("idProduct", "0002"),
            ("busnum", "1"),
            ("devnum", "2"),
        ] {
            fs::write(usb.join(f), format!("{v}\n")).unwrap();
        }
        FakeHost { tmp }
    }

    fn args(&self) -> Vec<String> {
        let p = self.tmp.path();
        vec![
            "--dev-root".into(),
            p.join("dev").display().to_string(),
            "--sys-root".into(),
            p.join("sys").display().to_string(),
            "--udev-dir".into(),
            p.join("udev").display().to_string(),
        ]
    }

    fn hooks(&self) -> Hooks {
        let args = self.args();
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        Hooks::custom("precreate", ANY_DEVICE, &a)
    }
}

#[test]
fn classes_this_host_lacks_arrive_from_a_device_root() {
    require_prepared();
    let fake = FakeHost::new();
    let hooks = fake.hooks();
    let out = run_ok(
        &hooks,
        &[
            "io.virtpod.device.audio=true",
            "io.virtpod.device.video=true",
            "io.virtpod.device.input=true",
            "io.virtpod.device.dvb=true",
            "io.virtpod.device.radio=true",
            "io.virtpod.device.dri=true",
            "io.virtpod.device.ttyUSB=ttyUSB1",
            "io.virtpod.device.ttyACM=true",
            "io.virtpod.device.usb=1d6b:0002",
            "io.virtpod.device.vfio=true",
            "io.virtpod.device.hugepages=true",
        ],
        "cd /dev && for d in snd/controlC0 snd/pcmC0D0p video0 media0 input/event0 dvb/adapter0/frontend0 radio0 \
         dri/card0 dri/renderD128 ttyUSB1 ttyACM0 bus/usb/001/002 vfio/vfio; do stat -c '%n %F %t:%T %g' $d; done; \
         ls ttyUSB0 bus/usb/001/003 2>&1; cat /run/udev/data/c189:1; touch /run/udev/x 2>&1; \
         test -d /dev/hugepages && echo hugepages-dir",
    );
    let expect = [
        ("snd/controlC0", "74:0", "audio"),
        ("snd/pcmC0D0p", "74:10", "audio"),
        ("video0", "51:0", "video"),
        ("media0", "ef:0", "video"),
        ("input/event0", "d:40", "input"),
        ("dvb/adapter0/frontend0", "d4:0", "video"),
        ("radio0", "51:40", "video"),
        ("dri/card0", "e2:0", "video"),
        ("dri/renderD128", "e2:80", "render"),
        ("ttyUSB1", "bc:1", "dialout"),
        ("ttyACM0", "a6:0", "dialout"),
        ("bus/usb/001/002", "bd:1", ""),
        ("vfio/vfio", "a:c4", ""),
    ];
    for (rel, numbers, group) in expect {
        // Nodes without a role, and roles the image has no group for, keep the host's gid (0);
        // the latter is said.
        let gid = match image_group(group) {
            Some(gid) if !group.is_empty() => gid,
            _ if group.is_empty() => "0".to_string(),
            _ => {
                let said =
                    format!("the image has no group {group}; /dev/{rel} keeps the host's gid 0");
                assert!(hooks.log().contains(&said), "{said}\n{}", hooks.log());
                "0".to_string()
            }
        };
        let line = format!("{rel} character special file {numbers} {gid}\n");
        assert!(
            out.contains(&line),
            "missing {line:?} in:\n{out}\n{}",
            hooks.log()
        );
    }
    // Only what was selected, udev's database read-only, hugepages bound.
    assert!(out.contains("ls: cannot access 'ttyUSB0'"), "{out}");
    assert!(out.contains("ls: cannot access 'bus/usb/001/003'"), "{out}");
    assert!(out.contains("E:ID_VENDOR_ID=1d6b"), "{out}");
    assert!(out.contains("Read-only file system"), "{out}");
    assert!(out.contains("hugepages-dir"), "{out}");
    assert!(
        hooks.log().contains("usb: /dev/bus/usb/001/002 c 189:1"),
        "{}",
        hooks.log()
    );
}

#[test]
fn qm_annotations_give_the_same_devices() {
    require_prepared();
    let fake = FakeHost::new();
    let hooks = fake.hooks();
    let script = "cd /dev && stat -c '%n %F %t:%T %a %g' snd/* video0 media0 input/* ttyUSB* 2>&1";
    let qm = run_ok(
        &hooks,
        &[
            "org.containers.qm.device.audio=true",
            "org.containers.qm.device.video=true",
            "org.containers.qm.device.input=true",
            "org.containers.qm.device.ttyUSB=true",
        ],
        script,
    );
    let ours = run_ok(
        &hooks,
        &[
            "io.virtpod.device.audio=true",
            "io.virtpod.device.video=true",
            "io.virtpod.device.input=true",
            "io.virtpod.device.ttyUSB=true",
        ],
        script,
    );
    assert_eq!(qm, ours);
    assert!(qm.contains("snd/controlC0 character special file"), "{qm}");
    // And on the host's real ttys.
    let hooks = Hooks::custom("precreate", ANY_DEVICE, &[]);
    let script = "stat -c '%n %F %t:%T %a %g' /dev/tty[0-7]";
    let qm = run_ok(&hooks, &["org.containers.qm.device.ttys=true"], script);
    let ours = run_ok(&hooks, &["io.virtpod.device.ttys=true"], script);
    assert_eq!(qm, ours);
    assert_eq!(qm.lines().count(), 8, "{qm}");
}

/// podman run must fail, and its stderr name `annotation` and contain `reason`.
fn refused(hooks: &Hooks, annotation: &str, reason: &str) {
    let out = run(hooks, &[annotation], "echo CONTAINER-RAN");
    let all = text(&out);
    assert!(
        !out.status.success(),
        "{annotation}: podman run succeeded: {all}"
    );
    assert!(!all.contains("CONTAINER-RAN"), "{all}");
    let line = all
        .lines()
        .find(|l| l.contains("virtpod hook refused the container"))
        .unwrap_or_else(|| panic!("{annotation}: no refusal on podman's stderr:\n{all}"));
    assert!(line.contains(annotation), "{line}");
    assert!(line.contains(reason), "{annotation}: {line}");
}

#[test]
fn bad_requests_fail_podman_run_and_name_the_annotation() {
    require_prepared();
    let fake = FakeHost::new();
    let hooks = fake.hooks();
    refused(
        &hooks,
        "io.virtpod.device.kvm=maybe",
        "expected true, false",
    );
    refused(
        &hooks,
        "io.virtpod.device.nosuch=true",
        "unknown device class \"nosuch\"; valid classes: kvm,",
    );
    refused(
        &hooks,
        "io.virtpod.device.ttyUSB=ttyUSB0 ttyUSB5",
        "does not exist on this host",
    );
    refused(
        &hooks,
        "io.virtpod.device.usb=1234:5678",
        "no USB device 1234:5678",
    );
    // Unsafe selections.
    refused(&hooks, "io.virtpod.device.ttyUSB=../kvm", "no '..'");
    refused(&hooks, "io.virtpod.device.ttyUSB=ttyUSB9", "outside");
    refused(
        &hooks,
        "io.virtpod.device.ttyUSB=ttyUSB8",
        "is a regular file, not a character or block device; refused",
    );
    // A class the host lacks is a warning, not a failure; podman shows it.
    let out = run(
        &hooks,
        &["io.virtpod.device.fuse=true"],
        "echo CONTAINER-RAN",
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("no fuse device on this host"),
        "{}",
        text(&out)
    );
}

#[test]
fn no_annotation_leaves_the_config_as_it_was() {
    require_prepared();
    // Our hook between two recorders, for every container.
    let hooks = Hooks::custom("precreate", r#"{"always": true}"#, &[]);
    let dir = hooks.tmp.path().join("hooks.d");
    for (file, out) in [
        ("00-before.json", "before.json"),
        ("99-after.json", "after.json"),
    ] {
        let def = serde_json::json!({
            "version": "1.0.0",
            "hook": {"path": "/usr/bin/tee", "args": ["tee", hooks.tmp.path().join(out)]},
            "when": {"always": true},
            "stages": ["precreate"],
        });
        fs::write(dir.join(file), def.to_string()).unwrap();
    }
    run_ok(&hooks, &["io.virtpod.device.kvm=false", "other=1"], "true");
    let read = |f: &str| -> serde_json::Value {
        serde_json::from_slice(&fs::read(hooks.tmp.path().join(f)).unwrap()).unwrap()
    };
    let before = read("before.json");
    assert!(before["process"].is_object(), "{before}");
    assert_eq!(before, read("after.json"));
}

#[test]
fn poststop_forgets_what_the_container_was_given() {
    require_prepared();
    let hooks = Hooks::custom("precreate", ANY_DEVICE, &[]);
    let dir = hooks.dir();
    let name = unique("poststop");
    podman_ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "--hooks-dir",
        &dir,
        "--no-healthcheck",
        "--annotation",
        "io.virtpod.device.kvm=true",
        "--entrypoint",
        "sleep",
        image(),
        "1000",
    ]);
    let id = podman_ok(&["inspect", "--format", "{{.Id}}", &name]);
    let record = hooks.state_dir().join(format!("{}.json", id.trim()));
    let recorded = fs::read_to_string(&record).unwrap_or_default();
    podman(&["rm", "-f", "-v", "-t", "0", &name]);
    assert!(recorded.contains("/dev/kvm"), "{recorded}\n{}", hooks.log());
    wait_for("the record removed", Duration::from_secs(10), || {
        !record.exists()
    });
    assert!(
        hooks.log().contains("released [\"/dev/kvm\"]"),
        "{}",
        hooks.log()
    );
}

/// Images whose /etc/group, or /etc, is a symlink (one that stays inside the image, so podman
/// itself is content): the hook does not follow it. The container starts, its /dev/kvm keeps
/// the host's gid and mode, and the log names the link. The image is changed in the created
/// container's own layer, through `podman mount`. (A FIFO at /etc/group cannot be shown this way:
/// podman 4.3 itself blocks opening it before any hook runs; the unit tests and the fuzzer
/// cover the hook's side.)
#[test]
fn a_symlinked_group_file_is_not_followed_and_the_host_gid_stays() {
    require_prepared();
    let hooks = Hooks::custom("precreate", ANY_DEVICE, &[]);
    let dir = hooks.dir();
    let host = fs::metadata("/dev/kvm").expect("this host has /dev/kvm");
    let host = format!("{:o} {}", host.mode() & 0o7777, host.gid());
    let cases = [
        (
            "mv etc/group etc/group.real && ln -s group.real etc/group",
            "/etc/group: is a symlink, not a regular file; not read",
        ),
        (
            "mv etc etc.real && ln -s etc.real etc",
            "/etc: is a symlink, not followed; not read",
        ),
    ];
    for (craft, why) in cases {
        let name = unique("crafted-group");
        podman_ok(&[
            "create",
            "--name",
            &name,
            "--no-healthcheck",
            "--annotation",
            "io.virtpod.device.kvm=true",
            "--entrypoint",
            "stat",
            image(),
            "-c",
            "%a %g",
            "/dev/kvm",
        ]);
        let merged = podman_ok(&["mount", &name]);
        let crafted = Command::new("sh")
            .args(["-c", craft])
            .current_dir(merged.trim())
            .status()
            .unwrap();
        // Hooks are chosen when the container starts, by the process that starts it.
        let out = podman(&["--hooks-dir", &dir, "start", "--attach", &name]);
        podman(&["rm", "-f", "-v", "-t", "0", &name]);
        assert!(crafted.success(), "{craft}");
        assert!(
            out.status.success(),
            "{craft}: {}\n{}",
            text(&out),
            hooks.log()
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), host, "{craft}");
        assert!(
            hooks.log().contains(why) && hooks.log().contains("/dev/kvm keeps the host's gid"),
            "{craft}: {}",
            hooks.log()
        );
    }
}

/// Every virtpod the README's commands build is a PIE (ELF type DYN), so ASLR covers the
/// root-run parser of configs: the host's (built without libvirt) and the image's own.
#[test]
fn every_virtpod_binary_is_position_independent() {
    require_prepared();
    let in_image = podman(&[
        "run",
        "--rm",
        "--no-healthcheck",
        "--entrypoint",
        "head",
        image(),
        "-c",
        "18",
        "/usr/bin/virtpod",
    ]);
    assert!(in_image.status.success(), "{}", text(&in_image));
    let host = fs::read(host_bin()).unwrap();
    for (which, head) in [("host", &host[..]), ("image", &in_image.stdout[..])] {
        assert_eq!(&head[..4], b"\x7fELF", "{which}");
        let e_type = u16::from_le_bytes([head[16], head[17]]);
        assert_eq!(
            e_type, 3,
            "{which} virtpod: ELF type {e_type}: 2 is EXEC (not PIE), 3 is DYN"
        );
    }
}

#[test]
fn create_runtime_stage_makes_the_nodes_for_runtimes_without_precreate() {
    require_prepared();
    let fake = FakeHost::new();
    let args = fake.args();
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let hooks = Hooks::custom("createRuntime", ANY_DEVICE, &a);
    let out = run_ok(
        &hooks,
        &[
            "io.virtpod.device.ttyUSB=ttyUSB1",
            "io.virtpod.device.audio=true",
            "io.virtpod.device.udev=true",
        ],
        "stat -c '%n %F %t:%T %a %g' /dev/ttyUSB1 /dev/snd/controlC0; cat /run/udev/data/c189:1",
    );
    assert!(
        out.contains(&format!(
            "/dev/ttyUSB1 character special file bc:1 660 {}",
            image_gid("dialout")
        )),
        "{out}\n{}",
        hooks.log()
    );
    assert!(
        out.contains(&format!(
            "/dev/snd/controlC0 character special file 74:0 660 {}",
            image_gid("audio")
        )),
        "{out}"
    );
    assert!(out.contains("E:ID_VENDOR_ID=1d6b"), "{out}");
    assert!(
        hooks.log().contains("stage=\"createRuntime\""),
        "{}",
        hooks.log()
    );
}

fn give_to_rootless_user(path: &Path) {
    let st = Command::new("chown")
        .arg("-R")
        .arg(format!("{ROOTLESS_UID}:{ROOTLESS_UID}"))
        .arg(path)
        .status()
        .unwrap();
    assert!(st.success(), "chown {}", path.display());
}

#[test]
fn rootless_podman_gets_bind_mounts_of_the_nodes_the_user_may_open() {
    require_prepared();
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    fs::set_permissions(t, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    // A device root with the real kvm device (10:232) the user owns, and a tun node only root
    // may open.
    let dev = t.join("dev");
    mknod(&dev.join("kvm"), "0600", 10, 232);
    give_to_rootless_user(&dev.join("kvm"));
    mknod(&dev.join("net/tun"), "0600", 10, 200);
    let dev_arg = dev.display().to_string();
    let hooks = Hooks::custom("precreate", ANY_DEVICE, &["--dev-root", &dev_arg]);
    give_to_rootless_user(hooks.tmp.path());
    fs::set_permissions(
        hooks.tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    // The container's root: busybox, owned by the user (no image store needed).
    let rootfs = t.join("rootfs");
    for d in ["bin", "dev", "proc", "sys", "etc", "tmp"] {
        fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    fs::copy("/bin/busybox", rootfs.join("bin/busybox"))
        .expect("busybox-static (tests/prepare installs it)");
    symlink("busybox", rootfs.join("bin/sh")).unwrap();
    give_to_rootless_user(&rootfs);

    let out = Command::new(repo().join("tests/as-rootless-user"))
        .arg(ROOTLESS_UID.to_string())
        .arg(t.join("user"))
        .env("CONTAINERS_CONF", repo().join("tests/containers.conf"))
        .args(["podman", "run", "--rm", "--network", "none", "--hooks-dir"])
        .arg(hooks.dir())
        .args([
            "--annotation",
            "io.virtpod.device.kvm=true",
            "--annotation",
            "io.virtpod.device.tun=true",
            "--rootfs",
        ])
        .arg(&rootfs)
        .args([
            "/bin/sh",
            "-c",
            "id -u; stat -c '%n %t:%T' /dev/kvm; exec 3<>/dev/kvm && echo opened /dev/kvm; ls /dev/net/tun 2>&1; true",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let log = hooks.log();
    assert!(out.status.success(), "{}\n{log}", text(&out));
    // Rootless: podman runs in the user's namespace, where the user is root.
    assert!(stdout.starts_with("0\n"), "{}\n{log}", text(&out));
    assert!(
        stdout.contains("/dev/kvm a:e8\nopened /dev/kvm\n"),
        "{}\n{log}",
        text(&out)
    );
    assert!(
        log.contains(&format!("kvm: bind-mount {dev_arg}/kvm")),
        "{log}"
    );
    // The node the user may not open is not given, and podman's stderr says why.
    assert!(
        stdout.contains("ls: /dev/net/tun: No such file or directory"),
        "{}",
        text(&out)
    );
    let refused = format!(
        "tun: {dev_arg}/net/tun (mode 0600) cannot be opened by this user, so it is not given"
    );
    assert!(stderr.contains(&refused), "{}\n{log}", text(&out));
    assert!(log.contains(&refused), "{log}");
}
