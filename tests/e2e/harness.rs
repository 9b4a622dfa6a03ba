//! The harness every end-to-end test uses: podman with the tests' own containers.conf,
//! appliance containers with unique names and volumes that are removed even when a test fails,
//! host virsh through the exposed socket, and the test guest.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The image the front doors (compose.yaml, the quadlet unit) name: bookworm's.
pub const DEFAULT_IMAGE: &str = "localhost/virtpod:debian";
/// The appliance's base image (scripts/build-image makes it with debootstrap).
pub const BASE_IMAGE: &str = "docker.io/library/debian:bookworm";
/// What the test guest's init prints on its console once booted (tests/guest/init).
pub const GUEST_BOOTED: &str = "VIRTPOD-GUEST-BOOTED";
pub const GUEST_LEASE: &str = "VIRTPOD-GUEST-LEASE";
/// What it prints when it sees the ACPI power button, before powering off.
pub const GUEST_POWER_BUTTON: &str = "VIRTPOD-GUEST-POWER-BUTTON";
/// `podman run` options of the systemd variant (docs/modes.md): systemd as PID 1, which stops
/// on SIGRTMIN+3 (it ignores the image's SIGTERM).
pub const SYSTEMD_VARIANT: &[&str] = &[
    "--systemd=always",
    "--stop-signal",
    "SIGRTMIN+3",
    "--entrypoint",
    "/sbin/init",
];

/// The appliance image under test: DEFAULT_IMAGE, or the one VIRTPOD_TEST_IMAGE names
/// (tests/run runs the image-level tests again against localhost/virtpod:debian-trixie).
pub fn image() -> &'static str {
    static IMAGE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    IMAGE.get_or_init(|| match std::env::var("VIRTPOD_TEST_IMAGE") {
        Ok(image) if !image.is_empty() => image,
        _ => DEFAULT_IMAGE.to_string(),
    })
}

/// The flavour of [`image`] (`localhost/virtpod:<flavour>`), as scripts/build-image and
/// ./appliance-up name it.
pub fn flavour() -> &'static str {
    image().rsplit_once(':').map_or("debian", |(_, tag)| tag)
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The host-side virtpod as users install it: built without libvirt by tests/prepare.
pub fn host_bin() -> PathBuf {
    let bin = e2e_dir().join("virtpod-host");
    assert!(
        bin.exists(),
        "{} is missing: run tests/prepare",
        bin.display()
    );
    bin
}

pub fn e2e_dir() -> PathBuf {
    repo().join("target/e2e")
}

pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub fn podman(args: &[&str]) -> Output {
    Command::new("podman")
        .env("CONTAINERS_CONF", repo().join("tests/containers.conf"))
        .args(args)
        .output()
        .expect("running podman (tests/prepare installs it)")
}

/// podman that must succeed; its stdout.
pub fn podman_ok(args: &[&str]) -> String {
    let out = podman(args);
    assert!(
        out.status.success(),
        "podman {args:?} failed: {}",
        text(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Fails (never skips) when tests/prepare has not run: the tests need the real image.
pub fn require_prepared() {
    let out = podman(&["image", "exists", image()]);
    assert!(
        out.status.success(),
        "image {} is missing: run tests/run (or tests/prepare) first",
        image()
    );
    assert!(
        e2e_dir().join("guest/initrd.img").exists(),
        "test guest missing: run tests/prepare"
    );
}

/// A character device node at `path` (parents made), for device roots of a test's own.
pub fn mknod(path: &std::path::Path, mode: &str, major: u32, minor: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let st = Command::new("mknod")
        .args(["-m", mode])
        .arg(path)
        .args(["c", &major.to_string(), &minor.to_string()])
        .status()
        .unwrap();
    assert!(st.success(), "mknod {}", path.display());
}

pub fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub fn unique(test: &str) -> String {
    format!(
        "vp-{test}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// The appliance's state: named volumes for /var/lib/libvirt, /etc/libvirt and /var/log/libvirt,
/// and a host directory for /run/libvirt, where host clients find the socket. Outlives
/// containers so a test can re-create one on the same state. The volumes are named
/// `<prefix>_lib`, `_etc`, `_log`, as compose.yaml's are for a project named `<prefix>`.
pub struct Volumes {
    pub prefix: String,
    pub run_dir: tempfile::TempDir,
}

impl Volumes {
    pub fn new(test: &str) -> Volumes {
        Volumes {
            prefix: unique(test),
            run_dir: tempfile::tempdir().unwrap(),
        }
    }

    /// `-v` options for the three state volumes and the socket directory.
    pub fn mounts(&self) -> Vec<String> {
        let mut v = Vec::new();
        for (suffix, target) in [
            ("lib", "/var/lib/libvirt"),
            ("etc", "/etc/libvirt"),
            ("log", "/var/log/libvirt"),
        ] {
            v.push("-v".into());
            v.push(format!("{}_{suffix}:{target}", self.prefix));
        }
        v.push("-v".into());
        v.push(format!("{}:/run/libvirt", self.run_dir.path().display()));
        v
    }

    /// A path inside one of the named volumes, read from the host: works whether or not a
    /// container is running.
    pub fn host_path(&self, suffix: &str, rel: &str) -> PathBuf {
        let vol = format!("{}_{suffix}", self.prefix);
        let mountpoint = podman_ok(&["volume", "inspect", "--format", "{{.Mountpoint}}", &vol]);
        PathBuf::from(mountpoint.trim()).join(rel)
    }

    pub fn socket(&self) -> PathBuf {
        self.run_dir.path().join("libvirt-sock")
    }
}

impl Drop for Volumes {
    fn drop(&mut self) {
        for suffix in ["lib", "etc", "log"] {
            podman(&["volume", "rm", "-f", &format!("{}_{suffix}", self.prefix)]);
        }
    }
}

/// A podman secret made from a file (what `--secret NAME` mounts at /run/secrets/NAME);
/// removed on drop.
pub struct Secret(pub String);

impl Secret {
    pub fn create(test: &str, file: &std::path::Path) -> Secret {
        let name = unique(test);
        podman_ok(&["secret", "create", &name, file.to_str().unwrap()]);
        Secret(name)
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        podman(&["secret", "rm", &self.0]);
    }
}

#[derive(Default)]
pub struct Opts<'a> {
    pub podman: &'a [&'a str],
    pub init_args: &'a [&'a str],
    /// Leave out `--device /dev/kvm` (the hook gives it instead).
    pub no_kvm_device: bool,
    /// A libvirt client auth file (SASL credentials) host virsh logs in with.
    pub auth_file: Option<&'a std::path::Path>,
}

/// One appliance container; removed on drop.
pub struct Appliance<'v> {
    pub name: String,
    pub vols: &'v Volumes,
    /// Appended to host virsh's URI (`&authfile=…`).
    pub uri_extra: String,
}

impl<'v> Appliance<'v> {
    /// `podman run -d` of the appliance with /dev/kvm, the volumes, and `opts`.
    pub fn start(vols: &'v Volumes, opts: Opts<'_>) -> Appliance<'v> {
        let name = unique("c");
        let mut args: Vec<String> = ["run", "-d", "--name", &name, "--no-healthcheck"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        if !opts.no_kvm_device {
            args.extend(["--device".to_string(), "/dev/kvm".to_string()]);
        }
        args.extend(vols.mounts());
        args.extend(opts.podman.iter().map(|s| s.to_string()));
        args.push(image().into());
        args.extend(opts.init_args.iter().map(|s| s.to_string()));
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        podman_ok(&argv);
        let uri_extra = opts
            .auth_file
            .map(|f| format!("&authfile={}", f.display()))
            .unwrap_or_default();
        Appliance {
            name,
            vols,
            uri_extra,
        }
    }

    pub fn virsh(&self, args: &[&str]) -> Output {
        let uri = format!(
            "qemu+unix:///system?socket={}{}",
            self.vols.socket().display(),
            self.uri_extra
        );
        Command::new("virsh")
            .arg("-c")
            .arg(uri)
            .args(args)
            .output()
            .expect("running virsh")
    }

    pub fn virsh_ok(&self, args: &[&str]) -> String {
        let out = self.virsh(args);
        assert!(
            out.status.success(),
            "virsh {args:?} failed: {}\n--- container log ---\n{}",
            text(&out),
            self.logs()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until host virsh reaches libvirt through the socket.
    pub fn wait_ready(&self) {
        let start = Instant::now();
        while !self.virsh(&["version"]).status.success() {
            if start.elapsed() > Duration::from_secs(60) {
                panic!(
                    "libvirt not reachable from the host after 60 s\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn exec(&self, script: &str) -> Output {
        podman(&["exec", &self.name, "sh", "-c", script])
    }

    pub fn exec_ok(&self, script: &str) -> String {
        let out = self.exec(script);
        assert!(
            out.status.success(),
            "exec {script:?} failed: {}",
            text(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn logs(&self) -> String {
        text(&podman(&["logs", &self.name]))
    }

    pub fn state(&self, field: &str) -> String {
        podman_ok(&[
            "inspect",
            &self.name,
            "--format",
            &format!("{{{{.State.{field}}}}}"),
        ])
        .trim()
        .to_string()
    }

    /// Copies the test guest's kernel and initramfs in (once) and defines a guest. `kind` is the
    /// domain type: `qemu` (TCG, boots here) or `kvm` (proves /dev/kvm; no nested boot here).
    pub fn define_guest(&self, guest: &str, kind: &str) {
        self.define_guest_with(guest, kind, "");
    }

    /// `define_guest` with more kernel arguments (`virtpod.ignore_acpi`: a guest that never
    /// powers off on the ACPI button).
    pub fn define_guest_with(&self, guest: &str, kind: &str, cmdline: &str) {
        if !self
            .exec("test -s /var/lib/libvirt/images/initrd.img")
            .status
            .success()
        {
            for f in ["vmlinuz", "initrd.img"] {
                let src = e2e_dir().join("guest").join(f);
                podman_ok(&[
                    "cp",
                    src.to_str().unwrap(),
                    &format!("{}:/var/lib/libvirt/images/{f}", self.name),
                ]);
            }
        }
        let xml = guest_xml(guest, kind)
            .replace("quiet</cmdline>", &format!("quiet {cmdline}</cmdline>"));
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), xml).unwrap();
        self.virsh_ok(&["define", file.path().to_str().unwrap()]);
    }

    /// Defines a TCG guest with one network interface (`interface`: the `<interface>` element,
    /// virtio) that takes a DHCP lease and serves HTTP on port 80 (tests/guest/init,
    /// `virtpod.net`); `cmdline` adds kernel arguments (`virtpod.fetch=URL`).
    pub fn define_networked_guest(&self, guest: &str, interface: &str, cmdline: &str) {
        self.define_guest_with(guest, "qemu", &format!("virtpod.net {cmdline}"));
        let xml = self.virsh_ok(&["dumpxml", "--inactive", guest]);
        let xml = xml.replace("<devices>", &format!("<devices>\n    {interface}"));
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), xml).unwrap();
        self.virsh_ok(&["define", file.path().to_str().unwrap()]);
    }

    /// The address the guest's console says it leased (tests/guest/udhcpc-script).
    pub fn wait_lease(&self, guest: &str) -> String {
        self.wait_console(guest, GUEST_LEASE, 1);
        let console = self.console(guest);
        let line = console.lines().find(|l| l.contains(GUEST_LEASE)).unwrap();
        line.split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string()
    }

    /// Defines a TCG guest, starts it and waits for its first boot marker on the console.
    pub fn boot_guest(&self, guest: &str) {
        self.define_guest(guest, "qemu");
        self.virsh_ok(&["start", guest]);
        self.wait_console(guest, GUEST_BOOTED, 1);
    }

    /// The guest's serial console so far (appended across boots); empty before its first boot.
    pub fn console(&self, guest: &str) -> String {
        let path = self
            .vols
            .host_path("log", &format!("qemu/{guest}-serial.log"));
        std::fs::read(path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    pub fn wait_console(&self, guest: &str, marker: &str, count: usize) {
        wait_for(
            &format!("{marker} x{count} on {guest}'s console"),
            Duration::from_secs(90),
            || self.console(guest).matches(marker).count() >= count,
        );
    }

    pub fn domstate(&self, guest: &str) -> String {
        String::from_utf8_lossy(&self.virsh(&["domstate", guest]).stdout)
            .trim()
            .to_string()
    }

    /// `virtpod health` in the container: (exit 0, its output).
    pub fn health(&self) -> (bool, String) {
        let out = podman(&["exec", &self.name, "virtpod", "health"]);
        (out.status.success(), text(&out))
    }

    /// Processes in the container in state Z, as "pid comm" lines.
    pub fn zombies(&self) -> Vec<String> {
        let out = self.exec_ok("for s in /proc/[0-9]*/stat; do cat $s 2>/dev/null; echo; done");
        out.lines()
            .filter(|l| {
                l.split(") ")
                    .nth(1)
                    .is_some_and(|rest| rest.starts_with('Z'))
            })
            .map(str::to_string)
            .collect()
    }

    /// The name and mtime of each cached probe of a qemu binary: the same after a start when
    /// libvirt kept its probes (src/init/cpus.rs says when it does not).
    pub fn qemu_probe_stamps(&self) -> String {
        self.exec_ok("stat -c '%n %Y' /var/cache/libvirt/qemu/capabilities/*.xml")
    }

    /// The CPU lists the threads of `pid` may run on, one line per distinct list.
    pub fn cpus_of(&self, pid: &str) -> String {
        self.exec_ok(&format!(
            "grep -h Cpus_allowed_list /proc/{pid}/task/*/status | sort -u"
        ))
    }

    pub fn pid_of(&self, comm: &str) -> Option<String> {
        let out = self.exec(&format!("pgrep -x {comm}"));
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}

impl Drop for Appliance<'_> {
    fn drop(&mut self) {
        podman(&["rm", "-f", "-v", "-t", "0", &self.name]);
    }
}

pub fn guest_xml(guest: &str, kind: &str) -> String {
    format!(
        r#"<domain type='{kind}'>
  <name>{guest}</name>
  <memory unit='MiB'>192</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>/var/lib/libvirt/images/vmlinuz</kernel>
    <initrd>/var/lib/libvirt/images/initrd.img</initrd>
    <cmdline>console=ttyS0 panic=-1 quiet</cmdline>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <serial type='file'>
      <source path='/var/log/libvirt/qemu/{guest}-serial.log' append='on'/>
      <target port='0'/>
    </serial>
    <memballoon model='none'/>
  </devices>
</domain>
"#
    )
}

/// The appliance image's /etc/group line for `group` (`getent group`), if it has one.
pub fn image_group_entry(group: &str) -> Option<String> {
    let out = podman(&[
        "run",
        "--rm",
        "--no-healthcheck",
        "--entrypoint",
        "getent",
        image(),
        "group",
        group,
    ]);
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !line.is_empty()).then_some(line)
}

/// The shipped hook definitions' condition: any device annotation, in both vocabularies.
pub const ANY_DEVICE: &str =
    r#"{"annotations": {"^(io\\.virtpod|org\\.containers\\.qm)\\.device\\.": ".*"}}"#;

/// oci-hooks(5) definitions in `dir`, one per (file, stage, when), each running the host's
/// `virtpod hook` with its log and records under `scratch`, then `args`, then the stage.
pub fn write_hook_definitions(
    dir: &Path,
    scratch: &Path,
    args: &[String],
    hooks: &[(&str, &str, &str)],
) {
    for (file, stage, when) in hooks {
        let mut argv: Vec<String> = vec!["virtpod".into(), "hook".into(), "--log".into()];
        argv.push(scratch.join("hook.log").display().to_string());
        argv.push("--state-dir".into());
        argv.push(scratch.join("state").display().to_string());
        argv.extend(args.iter().cloned());
        argv.push(stage.to_string());
        let def = serde_json::json!({
            "version": "1.0.0",
            "hook": {"path": host_bin(), "args": argv, "timeout": 10},
            "when": serde_json::from_str::<serde_json::Value>(when).unwrap(),
            "stages": [stage],
        });
        std::fs::write(dir.join(file), def.to_string()).unwrap();
    }
}

/// What init's own libvirt work must do under any access setting (tests/e2e/access.rs, and the
/// polkit test): libvirt counts as ready (`virtpod health` ok), a running guest gets ACPI at
/// `podman stop` and is recorded, and the next start brings it back. A guest `g` the caller
/// already started is used as it is (the polkit test starts it as a host user).
pub fn init_keeps_guests_across_a_stop(app: &Appliance, stop_args: &[&str]) {
    wait_for(
        "init to count libvirt as ready",
        Duration::from_secs(60),
        || app.logs().contains("libvirt answers: ready"),
    );
    let (ok, health) = app.health();
    assert!(ok, "virtpod health: {health}\n{}", app.logs());
    if app.domstate("g") != "running" {
        app.boot_guest("g");
    }

    let mut stop = vec!["stop"];
    stop.extend_from_slice(stop_args);
    stop.push(&app.name);
    podman_ok(&stop);
    assert_eq!(app.state("ExitCode"), "0", "{}", app.logs());
    assert!(
        app.console("g").contains(GUEST_POWER_BUTTON),
        "the guest was not shut down through ACPI:\n{}\n--- init ---\n{}",
        app.console("g"),
        app.logs()
    );
    let record = std::fs::read_to_string(app.vols.host_path("lib", "virtpod/running-guests.json"))
        .unwrap_or_default();
    assert!(
        record.contains("\"g\""),
        "the running guest is not in the record: {record:?}\n{}",
        app.logs()
    );

    podman_ok(&["start", &app.name]);
    app.wait_ready();
    wait_for("g running again", Duration::from_secs(60), || {
        app.domstate("g") == "running"
    });
    app.wait_console("g", GUEST_BOOTED, 2);
    let logs = app.logs();
    assert!(logs.contains("started again"), "{logs}");
    let (ok, health) = app.health();
    assert!(ok, "virtpod health after the restart: {health}");
    assert!(
        !logs.contains("No worthy mechs"),
        "libvirt refused init:\n{logs}"
    );
    // init's helpers log under their names: none of them may have met an error.
    let helper_trouble: Vec<&str> = logs
        .lines()
        .filter(|l| l.starts_with("[virtpod-") && (l.contains("ERROR") || l.contains("WARN")))
        .collect();
    assert!(
        helper_trouble.is_empty(),
        "init's helpers: {helper_trouble:#?}\n{logs}"
    );
}
