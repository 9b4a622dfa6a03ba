//! `virtpod device`: devices given to a running container, kept across its restarts by the
//! precreate hook, taken out again (docs/hook.md, "At run time"). This host has no USB serial
//! adapter, so the nodes come from a device root of the test's own, made with mknod with the
//! numbers a real one has; opening one then reaches the kernel, which has no driver for it
//! ("No such device or address"), where a node the device cgroup denies gives "Operation not
//! permitted".

use std::fs;
use std::os::unix::fs::symlink;
use std::path::PathBuf;
use std::process::{Command, Output};

use crate::harness::*;

/// A device root, a records directory and a precreate hook (the host build) that uses both.
struct Setup {
    tmp: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let tmp = tempfile::tempdir().unwrap();
        let dev = tmp.path().join("dev");
        for (rel, major, minor) in [
            ("ttyUSB7", 188, 7),
            ("ttyACM0", 166, 0),
            ("snd/controlC0", 116, 0),
        ] {
            mknod(&dev.join(rel), "0660", major, minor);
        }
        fs::write(dev.join("ttyUSB8"), "not a device").unwrap();
        symlink("/dev/null", dev.join("ttyUSB9")).unwrap();
        fs::create_dir_all(tmp.path().join("udev/data")).unwrap();
        fs::write(tmp.path().join("usb-events"), "").unwrap();
        let hooks = tmp.path().join("hooks.d");
        fs::create_dir(&hooks).unwrap();
        // The shipped definitions' stages and conditions, with this setup's paths.
        let hotplug = r#"{"annotations": {"^(io\\.virtpod|org\\.containers\\.qm)\\.device\\.usb$": "^hotplug$"}}"#;
        let mut args = vec![
            "--usb-events".to_string(),
            tmp.path().join("usb-events").display().to_string(),
        ];
        args.extend(Setup::host_args_of(tmp.path()));
        write_hook_definitions(
            &hooks,
            tmp.path(),
            &args,
            &[
                ("50-virtpod.json", "precreate", ANY_DEVICE),
                ("51-virtpod-poststop.json", "poststop", ANY_DEVICE),
                ("52-virtpod-hotplug.json", "poststart", hotplug),
            ],
        );
        Setup { tmp }
    }

    fn host_args_of(dir: &std::path::Path) -> Vec<String> {
        vec![
            "--dev-root".into(),
            dir.join("dev").display().to_string(),
            "--udev-dir".into(),
            dir.join("udev").display().to_string(),
            "--added-dir".into(),
            dir.join("added").display().to_string(),
        ]
    }

    fn added_dir(&self) -> PathBuf {
        self.tmp.path().join("added")
    }

    fn hook_log(&self) -> String {
        fs::read_to_string(self.tmp.path().join("hook.log")).unwrap_or_default()
    }

    /// A running container (sleep) with `annotations`, removed on drop.
    fn container(&self, annotations: &[&str]) -> Running {
        self.container_with(&[], annotations)
    }

    /// The same, with more `podman run` options.
    fn container_with(&self, options: &[&str], annotations: &[&str]) -> Running {
        let name = unique("dev");
        let hooks = self.tmp.path().join("hooks.d").display().to_string();
        let mut args = vec![
            "run",
            "-d",
            "--name",
            &name,
            "--hooks-dir",
            &hooks,
            "--no-healthcheck",
        ];
        for a in annotations {
            args.extend(["--annotation", a]);
        }
        args.extend(options);
        args.extend(["--entrypoint", "sleep", image(), "infinity"]);
        let out = podman(&args);
        assert!(
            out.status.success(),
            "{}\n--- hook log ---\n{}",
            text(&out),
            self.hook_log()
        );
        Running { name }
    }

    /// `podman restart`, with the hooks dir: podman reads hook definitions anew at every start,
    /// from the dirs of that command (installed hooks are in the default one).
    fn restart(&self, c: &Running) {
        let hooks = self.tmp.path().join("hooks.d").display().to_string();
        podman_ok(&["restart", "--hooks-dir", &hooks, "-t", "0", &c.name]);
    }

    /// `virtpod device VERB ARGS…` with this setup's device root and records.
    fn device(&self, verb: &str, args: &[&str]) -> Output {
        Command::new(host_bin())
            .args(["device", verb])
            .args(args)
            .args(Setup::host_args_of(self.tmp.path()))
            .output()
            .unwrap()
    }
}

struct Running {
    name: String,
}

impl Running {
    /// What `script` printed, its errors included (podman's own warnings are not).
    fn sh(&self, script: &str) -> String {
        let out = podman(&[
            "exec",
            &self.name,
            "sh",
            "-c",
            &format!("exec 2>&1; {script}"),
        ]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // -v: the image's VOLUMEs give this container anonymous volumes of its own.
        podman(&["rm", "-f", "-v", "-t", "0", &self.name]);
    }
}

/// Opens the node read-write and says how that went (`<>` would make a file where there is no
/// node: use it only where one is).
const OPEN: &str = "exec 3<>/dev/ttyUSB7 && echo OPENED";

#[test]
fn a_device_added_at_run_time_opens_survives_a_restart_and_goes_with_remove() {
    require_prepared();
    let s = Setup::new();
    let c = s.container(&["io.virtpod.device.ttyACM=true"]);
    assert!(c.sh("ls /dev/ttyUSB7 2>&1").contains("No such file"));

    let out = s.device("add", &[&c.name, "ttyUSB=ttyUSB7"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("added /dev/ttyUSB7 (char 188:7"),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains("given again at every start"),
        "{}",
        text(&out)
    );
    let dialout = c.sh("getent group dialout | cut -d: -f3");
    let check = |when: &str| {
        assert_eq!(
            c.sh("stat -c '%F %t:%T %g' /dev/ttyUSB7").trim(),
            format!("character special file bc:7 {}", dialout.trim()),
            "{when}"
        );
        // The device cgroup lets it through: the error is the kernel's (no driver here).
        let open = c.sh(OPEN);
        assert!(
            open.contains("No such device or address") && !open.contains("not permitted"),
            "{when}: {open}"
        );
    };
    check("after add");

    let out = s.device("list", &[&c.name]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "annotation\tio.virtpod.device.ttyACM=true\t/dev/ttyACM0\n\
         added\tio.virtpod.device.ttyUSB=ttyUSB7\t/dev/ttyUSB7\n"
    );

    s.restart(&c);
    check("after podman restart");
    assert!(
        s.hook_log().contains(
            "io.virtpod.device.ttyUSB=ttyUSB7: added by `virtpod device add`, given again"
        ),
        "{}",
        s.hook_log()
    );

    // What the annotations give is not added again (nor recorded, so never stuck)...
    let out = s.device("add", &[&c.name, "ttyACM=ttyACM0"]);
    assert!(
        out.status.success() && text(&out).contains("given by the container's annotations already"),
        "{}",
        text(&out)
    );
    // ... and what the container was created with is not run-time's to take.
    let out = s.device("remove", &[&c.name, "ttyACM=ttyACM0"]);
    assert!(
        !out.status.success() && text(&out).contains("comes from the container's annotations"),
        "{}",
        text(&out)
    );
    let out = s.device("remove", &[&c.name, "ttyUSB"]);
    assert!(
        out.status.success(),
        "the whole class: what was added of it: {}",
        text(&out)
    );
    assert!(
        c.sh("ls /dev/ttyUSB7").contains("No such file"),
        "the node is gone"
    );
    let out = s.device("remove", &[&c.name, "ttyUSB=ttyUSB7"]);
    assert!(
        !out.status.success() && text(&out).contains("was not added by `virtpod device add`"),
        "twice: {}",
        text(&out)
    );
    let out = s.device("add", &[&c.name, "ttyUSB=ttyUSB7"]);
    assert!(out.status.success(), "{}", text(&out));

    let out = s.device("remove", &[&c.name, "ttyUSB=ttyUSB7"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        c.sh("ls /dev/ttyUSB7").contains("No such file"),
        "the node is gone"
    );
    // A node made again inside (podman gives CAP_MKNOD) no longer opens: the cgroup denies it.
    let again = c.sh(&format!("mknod /dev/ttyUSB7 c 188 7 && {OPEN}"));
    assert!(again.contains("Operation not permitted"), "{again}");
    assert!(
        fs::read_dir(s.added_dir()).unwrap().next().is_none(),
        "the record is gone"
    );
    let out = s.device("list", &[&c.name]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "annotation\tio.virtpod.device.ttyACM=true\t/dev/ttyACM0\n"
    );
    s.restart(&c);
    assert!(c.sh("ls /dev/ttyUSB7 2>&1").contains("No such file"));
}

/// A record by name (`io.virtpod.record`, as compose.yaml and the quadlet unit set it): what was
/// added to one container is given to the next one created with the same annotation, as when
/// `./appliance-up` re-creates the appliance, and not to a container without it; a remove on
/// the new container ends the record; `add --record-only` declares a device for a stopped
/// container's next start. A bad name is refused with the annotation named.
#[test]
fn a_record_by_name_gives_what_was_added_to_the_container_made_anew() {
    require_prepared();
    let s = Setup::new();
    let key = unique("keep");
    let by_name = format!("io.virtpod.record={key}");
    let first = s.container(&["io.virtpod.device.ttyACM=true", &by_name]);
    let out = s.device("add", &[&first.name, "ttyUSB=ttyUSB7"]);
    assert!(out.status.success(), "{}", text(&out));
    let record = s.added_dir().join(format!("name={key}.json"));
    assert!(record.exists(), "no record by name: {}", text(&out));
    drop(first);

    let second = s.container(&["io.virtpod.device.ttyACM=true", &by_name]);
    let open = second.sh(OPEN);
    assert!(
        open.contains("No such device or address") && !open.contains("not permitted"),
        "the container made anew: {open}\n{}",
        s.hook_log()
    );
    let out = s.device("list", &[&second.name]);
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("added\tio.virtpod.device.ttyUSB=ttyUSB7\t/dev/ttyUSB7"),
        "{}",
        text(&out)
    );
    let without = s.container(&["io.virtpod.device.ttyACM=true"]);
    assert!(
        without.sh("ls /dev/ttyUSB7").contains("No such file"),
        "a container without the annotation got it"
    );

    let out = s.device("remove", &[&second.name, "ttyUSB=ttyUSB7"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!record.exists(), "the record by name is gone after remove");
    drop(second);
    let third = s.container(&["io.virtpod.device.ttyACM=true", &by_name]);
    assert!(third.sh("ls /dev/ttyUSB7").contains("No such file"));

    // Declared for a stopped container (--record-only): given at its next start.
    podman_ok(&["stop", "-t", "0", &third.name]);
    let out = s.device("add", &["--record-only", &third.name, "ttyUSB=ttyUSB7"]);
    assert!(
        out.status.success()
            && text(&out).contains("ttyUSB=ttyUSB7: recorded for its next start (/dev/ttyUSB7)"),
        "{}",
        text(&out)
    );
    let out = s.device("add", &["--record-only", &third.name, "ttyUSB=ttyUSB5"]);
    assert!(
        !out.status.success() && text(&out).contains("ttyUSB5"),
        "a device the host lacks: {}",
        text(&out)
    );
    let hooks = s.tmp.path().join("hooks.d").display().to_string();
    podman_ok(&["start", "--hooks-dir", &hooks, &third.name]);
    let open = third.sh(OPEN);
    assert!(
        open.contains("No such device or address") && !open.contains("not permitted"),
        "declared, then started: {open}\n{}",
        s.hook_log()
    );

    // --json: the record beside the live state, and where they differ (a node the container
    // removed from its /dev).
    let json = |c: &Running| -> serde_json::Value {
        let out = s.device("list", &["--json", &c.name]);
        assert!(out.status.success(), "{}", text(&out));
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)))
    };
    let v = json(&third);
    assert_eq!(v["running"], true, "{v:#}");
    assert_eq!(v["record"]["key"], format!("name={key}"), "{v:#}");
    assert_eq!(
        v["record"]["devices"],
        serde_json::json!(["io.virtpod.device.ttyUSB=ttyUSB7"]),
        "{v:#}"
    );
    assert_eq!(v["differences"], serde_json::json!([]), "{v:#}");
    third.sh("rm /dev/ttyUSB7");
    let v = json(&third);
    let differences = v["differences"].to_string();
    assert!(
        differences.contains(
            "io.virtpod.device.ttyUSB=ttyUSB7: recorded, but /dev/ttyUSB7 is not in the container"
        ),
        "{v:#}"
    );

    let bad = s.container(&["io.virtpod.device.ttyACM=true", "io.virtpod.record=../etc"]);
    let out = s.device("add", &[&bad.name, "ttyUSB=ttyUSB7"]);
    assert!(
        !out.status.success()
            && text(&out).contains("io.virtpod.record=\"../etc\": not a record name"),
        "{}",
        text(&out)
    );
}

/// The container's /dev is the container's: `remove` takes back the host's grant (filter rule,
/// record) whatever the container planted at the node, never follows it, works on a stopped
/// container (record only), and refuses a list with one bad request whole.
#[test]
fn remove_takes_back_the_grant_whatever_the_container_did_and_works_stopped() {
    require_prepared();
    let s = Setup::new();
    let c = s.container(&["io.virtpod.device.ttyACM=true"]);
    let out = s.device("add", &[&c.name, "ttyUSB=ttyUSB7"]);
    assert!(out.status.success(), "{}", text(&out));

    // All or nothing: the annotation's device in the same call refuses the whole call.
    let out = s.device("remove", &[&c.name, "ttyUSB=ttyUSB7", "ttyACM=ttyACM0"]);
    assert!(
        !out.status.success() && text(&out).contains("comes from the container's annotations"),
        "{}",
        text(&out)
    );
    let open = c.sh(OPEN);
    assert!(
        open.contains("No such device or address"),
        "nothing removed: {open}"
    );

    // The container replaces its node with a symlink to /dev/null.
    c.sh("rm /dev/ttyUSB7 && ln -s /dev/null /dev/ttyUSB7");
    let out = s.device("remove", &[&c.name, "ttyUSB=ttyUSB7"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out)
            .contains("not a device node; left as it is; its access is withdrawn all the same"),
        "{}",
        text(&out)
    );
    assert_eq!(
        c.sh("readlink /dev/ttyUSB7").trim(),
        "/dev/null",
        "left as the container's"
    );
    assert!(
        c.sh("echo x > /dev/null && echo WROTE").contains("WROTE"),
        "/dev/null untouched"
    );
    let again = c.sh("mknod /dev/ttyUSB6 c 188 7 && exec 3<>/dev/ttyUSB6 && echo OPENED");
    assert!(again.contains("Operation not permitted"), "{again}");
    assert!(
        fs::read_dir(s.added_dir()).unwrap().next().is_none(),
        "the record is gone"
    );
    s.restart(&c);
    assert!(c.sh("ls /dev/ttyUSB7 2>&1").contains("No such file"));

    // Stopped: the record alone, so the next start gives nothing.
    let out = s.device("add", &[&c.name, "ttyUSB=ttyUSB7"]);
    assert!(out.status.success(), "{}", text(&out));
    podman_ok(&["stop", "-t", "0", &c.name]);
    let out = s.device("remove", &[&c.name, "ttyUSB=ttyUSB7"]);
    assert!(
        out.status.success() && text(&out).contains("taken out of the record; it is not running"),
        "{}",
        text(&out)
    );
    assert!(fs::read_dir(s.added_dir()).unwrap().next().is_none());
    let hooks = s.tmp.path().join("hooks.d").display().to_string();
    podman_ok(&["start", "--hooks-dir", &hooks, &c.name]);
    assert!(c.sh("ls /dev/ttyUSB7 2>&1").contains("No such file"));
}

/// A device the container was created with by `--device` is the container's: `add` neither
/// makes nor records it, and `remove` never takes it back. (A real node: podman's inspect lists
/// a `--device` only when the host has a device of its numbers, which a node of the test's own
/// device root has not; /dev/kvm is on these machines.)
#[test]
fn a_device_given_by_podman_device_is_neither_added_nor_removed() {
    require_prepared();
    let s = Setup::new();
    let c = s.container_with(
        &["--device", "/dev/kvm"],
        &["io.virtpod.device.ttyACM=true"],
    );
    let added = s.added_dir().display().to_string();
    let device = |verb: &str| {
        Command::new(host_bin())
            .args(["device", verb, &c.name, "kvm", "--added-dir", &added])
            .output()
            .unwrap()
    };
    let out = device("add");
    assert!(
        out.status.success()
            && text(&out).contains("given by the container's --device already; nothing to add"),
        "{}",
        text(&out)
    );
    assert!(!s.added_dir().exists() || fs::read_dir(s.added_dir()).unwrap().next().is_none());
    let out = device("remove");
    assert!(!out.status.success(), "{}", text(&out));
    assert!(c.sh("test -c /dev/kvm && echo THERE").contains("THERE"));
}

/// Every selection the hook refuses, `device add` refuses too, with the hook's words, and
/// nothing reaches the container or the records.
#[test]
fn device_add_refuses_what_the_hook_refuses() {
    require_prepared();
    let s = Setup::new();
    let c = s.container(&["io.virtpod.device.ttyACM=true"]);
    for (selection, says) in [
        (
            "ttyUSB=ttyUSB8",
            "is a regular file, not a character or block device; refused",
        ),
        ("ttyUSB=ttyUSB9", "outside"),
        ("ttyUSB=../kvm", "no '..'"),
        ("ttyUSB=ttyUSB5", "does not exist on this host"),
        ("nosuch=1", "unknown device class \"nosuch\""),
        ("usb=1234:5678", "no USB device 1234:5678"),
    ] {
        let out = s.device("add", &[&c.name, selection]);
        assert_eq!(out.status.code(), Some(1), "{selection}: {}", text(&out));
        assert!(text(&out).contains(says), "{selection}: {}", text(&out));
    }
    // The container's root owns its /dev and may plant symlinks there: one on the way to a
    // node is refused, never followed onto the host.
    let bait = tempfile::tempdir().unwrap();
    c.sh(&format!("ln -s {} /dev/snd", bait.path().display()));
    let out = s.device("add", &[&c.name, "audio=controlC0"]);
    assert!(
        !out.status.success() && text(&out).contains("/dev/snd in the container is a symlink"),
        "{}",
        text(&out)
    );
    assert_eq!(
        fs::read_dir(bait.path()).unwrap().count(),
        0,
        "made on the host"
    );
    // ... and nothing was allowed either: a node made inside does not open.
    let own = c.sh("rm /dev/snd && mknod /dev/ctl c 116 0 && exec 3<>/dev/ctl");
    assert!(own.contains("Operation not permitted"), "{own}");
    assert!(!s.added_dir().exists(), "nothing recorded");
    assert_eq!(
        c.sh("ls /dev | grep -c ttyUSB").trim(),
        "0",
        "nothing made in the container"
    );
    let out = s.device("add", &["no-such-container", "ttyUSB=ttyUSB7"]);
    assert!(
        !out.status.success() && text(&out).contains("no-such-container"),
        "{}",
        text(&out)
    );

    // Without an annotation of ours, podman will not run the hook at the next start: said.
    let plain = s.container(&[]);
    let out = s.device("add", &[&plain.name, "ttyUSB=ttyUSB7"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("the devices last until it stops"),
        "{}",
        text(&out)
    );
    podman_ok(&["stop", "-t", "0", &plain.name]);
    let out = s.device("add", &[&plain.name, "ttyUSB=ttyUSB7"]);
    assert!(
        !out.status.success() && text(&out).contains("is not running"),
        "{}",
        text(&out)
    );
}

/// What the kernel says when a USB device comes or goes, as `udevadm monitor --property`
/// prints it; the test's watcher reads these from a file instead of the kernel.
fn usb_event(action: &str, devname: &str, minor: u32) -> String {
    format!(
        "ACTION={action}\nDEVPATH=/devices/pci0000:00/0000:00:14.0/usb1/1-2\nSUBSYSTEM=usb\n\
         DEVNAME={devname}\nDEVTYPE=usb_device\nMAJOR=189\nMINOR={minor}\n\n"
    )
}

/// `io.virtpod.device.usb=hotplug`: the poststart stage starts `virtpod device watch`; a USB
/// device plugged into the host appears in the running container (node, cgroup rule, its udev
/// entry through the live /run/udev), unplugged it goes, and the watcher ends with the
/// container.
#[test]
fn usb_hotplug_gives_a_plugged_device_and_takes_an_unplugged_one() {
    require_prepared();
    let s = Setup::new();
    let c = s.container(&["io.virtpod.device.usb=hotplug"]);
    wait_for(
        "the hotplug watcher",
        std::time::Duration::from_secs(15),
        || s.hook_log().contains("watching for USB devices"),
    );
    let events = s.tmp.path().join("usb-events");
    let append = |text: String| {
        use std::io::Write;
        let mut f = fs::OpenOptions::new().append(true).open(&events).unwrap();
        f.write_all(text.as_bytes()).unwrap();
    };
    const NODE: &str = "/dev/bus/usb/001/005";

    // Plugged in: the kernel makes the node and the udev entry on the host, then says so.
    mknod(&s.tmp.path().join("dev/bus/usb/001/005"), "0664", 189, 4);
    fs::write(
        s.tmp.path().join("udev/data/c189:4"),
        "E:ID_VENDOR_ID=1d6b\nE:ID_MODEL_ID=0002\n",
    )
    .unwrap();
    append(usb_event("add", "bus/usb/001/005", 4));
    wait_for(
        "the plugged device in the container",
        std::time::Duration::from_secs(15),
        || !c.sh(&format!("ls {NODE}")).contains("No such file"),
    );
    assert_eq!(
        c.sh(&format!("stat -c '%F %t:%T %a' {NODE}")).trim(),
        "character special file bd:4 664"
    );
    let open = c.sh(&format!("exec 3<>{NODE} && echo OPENED"));
    assert!(
        open.contains("No such device or address") && !open.contains("not permitted"),
        "{open}"
    );
    assert!(
        c.sh("cat /run/udev/data/c189:4")
            .contains("ID_VENDOR_ID=1d6b"),
        "libvirt reads the vendor id from the live /run/udev"
    );

    // A remove event is not trusted for its numbers: one naming a device the watcher never gave,
    // with /dev/null's numbers, takes nothing; a line of bad bytes is skipped, and the watch goes on.
    append(
        usb_event("remove", "bus/usb/001/009", 4).replace("MAJOR=189\nMINOR=4", "MAJOR=1\nMINOR=3"),
    );
    {
        use std::io::Write;
        let mut f = fs::OpenOptions::new().append(true).open(&events).unwrap();
        f.write_all(b"ACTION=\xff\xfe\x00add\nDEVNAME=\xc3\n\n")
            .unwrap();
    }
    wait_for(
        "the forged remove to be said",
        std::time::Duration::from_secs(15),
        || {
            s.hook_log()
                .contains("/dev/bus/usb/001/009: not given by this watcher; nothing taken back")
        },
    );
    assert!(c.sh("echo x > /dev/null && echo WROTE").contains("WROTE"));

    // Unplugged.
    fs::remove_file(s.tmp.path().join("dev/bus/usb/001/005")).unwrap();
    append(usb_event("remove", "bus/usb/001/005", 4));
    wait_for(
        "the unplugged device gone",
        std::time::Duration::from_secs(15),
        || c.sh(&format!("ls {NODE}")).contains("No such file"),
    );
    let again = c.sh(&format!("mknod {NODE} c 189 4 && exec 3<>{NODE}"));
    assert!(again.contains("Operation not permitted"), "{again}");
    // An interface of a device is not a device; nothing happens for it.
    append(usb_event("add", "bus/usb/001/005", 4).replace("usb_device", "usb_interface"));

    // The watcher ends with the container.
    let watchers = || {
        let out = Command::new("pgrep")
            .args(["-f", "device watch --pid"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|pid| {
                fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                    String::from_utf8_lossy(&c).contains(&*s.tmp.path().to_string_lossy())
                })
            })
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(watchers().len(), 1, "{}", s.hook_log());
    let doctor = || {
        let out = Command::new(host_bin())
            .args(["doctor", "--socket", "/nonexistent/libvirt-sock"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let report = doctor();
    assert!(
        report.contains("ok    hotplug: a USB hotplug watcher runs for each of"),
        "{report}"
    );
    podman_ok(&["stop", "-t", "0", &c.name]);
    wait_for(
        "the watcher's end",
        std::time::Duration::from_secs(15),
        || watchers().is_empty(),
    );

    // A watcher that died: doctor names the container it should serve.
    let c2 = s.container(&["io.virtpod.device.usb=hotplug"]);
    wait_for(
        "the second watcher",
        std::time::Duration::from_secs(15),
        || watchers().len() == 1,
    );
    for pid in watchers() {
        let _ = Command::new("kill").args(["-9", &pid]).status();
    }
    wait_for(
        "the killed watcher's end",
        std::time::Duration::from_secs(15),
        || watchers().is_empty(),
    );
    let report = doctor();
    assert!(
        report.contains(&format!(
            "FAIL  hotplug: no `virtpod device watch` runs for {}",
            c2.name
        )),
        "{report}"
    );
    let log = s.hook_log();
    assert!(
        log.contains("added /dev/bus/usb/001/005") && log.contains("removed /dev/bus/usb/001/005"),
        "{log}"
    );
    // One line per event, one format, hook and watcher alike: time, level, then the container
    // and stage (the watcher's lines too).
    let line =
        regex::Regex::new(r"^\d{4}-\d\d-\d\dT[0-9:.]+Z +(TRACE|DEBUG|INFO|WARN|ERROR) ").unwrap();
    for l in log.lines() {
        assert!(line.is_match(l), "not in the log's format: {l:?}\n{log}");
    }
    assert!(
        log.lines()
            .any(|l| l.contains(" stage=\"watch\"}: ") && l.contains("added /dev/bus/usb/001/005")),
        "{log}"
    );
}
