//! The quadlet front door (quadlet/, docs/modes.md "Quadlet"): the units as podman 5.4's own
//! quadlet converts them, checked the way podman's quadlet tests check (the generated unit's
//! keys and podman arguments), verified by systemd-analyze, then started and stopped by a real
//! systemd (Debian trixie: systemd 257, podman 5.4.2) with a guest running in the appliance,
//! as root (system install) and as a lingering user (user install, rootless podman).
//! scripts/fetch-quadlet and scripts/quadlet-host-image (both run by tests/prepare) provide the
//! quadlet binary and the trixie host image; both reuse what they made before.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::*;

/// The unpacked trixie podman package (scripts/fetch-quadlet): its quadlet generator.
fn quadlet_bin() -> PathBuf {
    let out = Command::new(repo().join("scripts/fetch-quadlet"))
        .output()
        .expect("running scripts/fetch-quadlet");
    assert!(
        out.status.success(),
        "scripts/fetch-quadlet failed: {}",
        text(&out)
    );
    let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let bin = Path::new(&dir).join("usr/libexec/podman/quadlet");
    let version = Command::new(&bin).arg("-version").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        "5.4.2",
        "{}",
        bin.display()
    );
    bin
}

/// (section, key, value) in file order.
type Keys = Vec<(String, String, String)>;

/// One generated unit.
struct Unit(Keys);

impl Unit {
    fn values(&self, section: &str, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(s, k, _)| s == section && k == key)
            .map(|(_, _, v)| v.as_str())
            .collect()
    }

    /// The one value of a key, as podman's `assert-key-is`.
    fn key(&self, section: &str, key: &str) -> &str {
        let v = self.values(section, key);
        assert_eq!(v.len(), 1, "[{section}] {key}: {v:?}");
        v[0]
    }

    /// ExecStart split into words as systemd does (double or single quotes group words).
    fn exec_start(&self) -> Vec<String> {
        split_command(self.key("Service", "ExecStart"))
    }
}

fn split_command(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    let mut in_word = false;
    for c in line.chars() {
        match (quote, c) {
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (_, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// `quadlet [-user] -dryrun` over a directory of quadlet/: the generated units by name.
fn dryrun(dir: &str, user: bool) -> BTreeMap<String, Unit> {
    let mut cmd = Command::new(quadlet_bin());
    cmd.env("QUADLET_UNIT_DIRS", repo().join("quadlet").join(dir));
    if user {
        cmd.arg("-user");
    }
    let out = cmd.arg("-dryrun").output().unwrap();
    let said = text(&out);
    assert!(out.status.success(), "quadlet -dryrun failed: {said}");
    assert!(!said.contains("level=error"), "{said}");
    let mut units = BTreeMap::new();
    let mut current: Option<(String, Keys)> = None;
    let mut section = String::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some(name) = line.strip_prefix("---").and_then(|l| l.strip_suffix("---")) {
            if let Some((n, keys)) = current.take() {
                units.insert(n, Unit(keys));
            }
            current = Some((name.to_string(), Vec::new()));
        } else if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.to_string();
        } else if let Some((k, v)) = line.split_once('=') {
            if !line.starts_with('#') {
                if let Some((_, keys)) = current.as_mut() {
                    keys.push((section.clone(), k.to_string(), v.to_string()));
                }
            }
        }
    }
    if let Some((n, keys)) = current {
        units.insert(n, Unit(keys));
    }
    units
}

/// `args` appear in `argv` in this order, next to each other (podman's `assert-podman-args`).
fn assert_podman_args(argv: &[String], args: &[&str]) {
    assert!(
        argv.windows(args.len()).any(|w| w == args),
        "podman arguments {args:?} not in {argv:?}"
    );
}

/// The value after `flag` in `argv`.
fn arg_after<'a>(argv: &'a [String], flag: &str) -> &'a str {
    let i = argv
        .iter()
        .position(|a| a == flag)
        .unwrap_or_else(|| panic!("{flag} not in {argv:?}"));
    &argv[i + 1]
}

/// How the unit asks for /dev/kvm: from the host's hook by annotation (system), or from
/// podman itself (user: rootless podman reads no hooks unless configured to).
enum Kvm {
    Annotation,
    Device,
}

/// What both installs must generate.
fn assert_virtpod_service(units: &BTreeMap<String, Unit>, kvm: Kvm) {
    let names: Vec<&String> = units.keys().collect();
    assert_eq!(
        names,
        [
            "virtpod-etc-volume.service",
            "virtpod-lib-volume.service",
            "virtpod-log-volume.service",
            "virtpod.service"
        ],
        "generated units"
    );
    let svc = &units["virtpod.service"];
    // Notify=true: systemd waits for init's READY=1, which podman passes on.
    assert_eq!(svc.key("Service", "Type"), "notify");
    assert_eq!(svc.key("Service", "NotifyAccess"), "all");
    let argv = svc.exec_start();
    assert_eq!(&argv[..2], ["/usr/bin/podman", "run"], "{argv:?}");
    assert_eq!(argv.last().unwrap(), DEFAULT_IMAGE, "{argv:?}");
    assert_podman_args(&argv, &["--name", "virtpod"]);
    assert_podman_args(&argv, &["--sdnotify=container"]);
    assert_podman_args(&argv, &["--health-cmd", "/usr/bin/virtpod health"]);
    match kvm {
        Kvm::Device => assert_podman_args(&argv, &["--device", "/dev/kvm"]),
        Kvm::Annotation => {
            assert_podman_args(&argv, &["--annotation", "io.virtpod.device.kvm=true"]);
            assert_podman_args(&argv, &["--annotation", "io.virtpod.device.tun=true"]);
            assert!(!argv.iter().any(|a| a == "--device"), "{argv:?}");
        }
    }
    for (v, target) in [
        ("lib", "/var/lib/libvirt"),
        ("etc", "/etc/libvirt"),
        ("log", "/var/log/libvirt"),
    ] {
        assert_podman_args(&argv, &["-v", &format!("virtpod_{v}:{target}")]);
        // Each volume has its own unit, which podman >= 4.4 runs before the container.
        let unit = format!("virtpod-{v}-volume.service");
        assert!(svc.values("Unit", "Requires").contains(&unit.as_str()));
        assert!(svc.values("Unit", "After").contains(&unit.as_str()));
        assert_eq!(
            split_command(units[&unit].key("Service", "ExecStart")),
            [
                "/usr/bin/podman",
                "volume",
                "create",
                "--ignore",
                &format!("virtpod_{v}")
            ]
        );
    }
    // The socket directory: %t/virtpod, made by systemd for the unit (RuntimeDirectory=).
    assert_podman_args(&argv, &["-v", "%t/virtpod:/run/libvirt"]);
    assert_eq!(svc.key("Service", "RuntimeDirectory"), "virtpod");
    for setting in [
        "VIRTPOD_SOCKET_GID",
        "VIRTPOD_SOCKET_PERMS",
        "VIRTPOD_SHUTDOWN_TIMEOUT",
        "VIRTPOD_ON_SHUTDOWN",
        "VIRTPOD_ON_BOOT",
        "VIRTPOD_SASL_CREDENTIALS",
    ] {
        assert_podman_args(&argv, &["--env", &format!("{setting}=")]);
    }
    // Time for init to shut the guests down (VIRTPOD_SHUTDOWN_TIMEOUT, 90 s by default) and
    // then the daemons: podman's stop timeout, and systemd's above it.
    let stop: u64 = arg_after(&argv, "--stop-timeout").parse().unwrap();
    assert!(stop >= 105, "--stop-timeout {stop}");
    let systemd_stop: u64 = svc.key("Service", "TimeoutStopSec").parse().unwrap();
    assert!(systemd_stop > stop, "TimeoutStopSec={systemd_stop}");
    // podman stops the container with `rm -f`, which honours --stop-timeout.
    assert_eq!(
        svc.key("Service", "ExecStop"),
        "/usr/bin/podman rm -v -f -i --cidfile=%t/%N.cid"
    );
}

#[test]
fn quadlet_system_units_generate_a_notify_service_with_health_stop_timeout_device_and_mounts() {
    let units = dryrun("system", false);
    assert_virtpod_service(&units, Kvm::Annotation);
    let svc = &units["virtpod.service"];
    assert_eq!(svc.key("Install", "WantedBy"), "multi-user.target");
}

#[test]
fn quadlet_user_units_generate_the_same_service_for_systemctl_user() {
    let units = dryrun("user", true);
    // AddDevice=-/dev/kvm: given when the host has it (here it has).
    assert_virtpod_service(&units, Kvm::Device);
    let svc = &units["virtpod.service"];
    assert_eq!(svc.key("Install", "WantedBy"), "default.target");
}

/// The generated units as systemd reads them: `systemd-analyze verify` prints warnings without
/// changing its exit code, so any line on its stderr fails the test.
#[test]
fn quadlet_generated_units_pass_systemd_analyze_verify_without_a_warning() {
    for (dir, user) in [("system", false), ("user", true)] {
        let out_dir = tempfile::tempdir().unwrap();
        let runtime = tempfile::tempdir().unwrap();
        let mut gen = Command::new(quadlet_bin());
        gen.env("QUADLET_UNIT_DIRS", repo().join("quadlet").join(dir));
        if user {
            gen.arg("-user");
        }
        let out = gen.arg(out_dir.path()).output().unwrap();
        assert!(out.status.success(), "quadlet {dir}: {}", text(&out));
        let mut verify = Command::new("systemd-analyze");
        verify
            .current_dir(out_dir.path())
            .env("XDG_RUNTIME_DIR", runtime.path());
        if user {
            verify.arg("--user");
        }
        verify.arg("verify");
        for unit in [
            "virtpod.service",
            "virtpod-lib-volume.service",
            "virtpod-etc-volume.service",
            "virtpod-log-volume.service",
        ] {
            assert!(out_dir.path().join(unit).exists(), "{dir}: {unit}");
            verify.arg(format!("./{unit}"));
        }
        let out = verify.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.trim().is_empty(),
            "systemd-analyze verify ({dir}): {}",
            text(&out)
        );
    }
}

/// Each cgroup file system mounted under this machine's /sys/fs/cgroup (v1 hierarchies and
/// the cgroup2 one), by mount point; /sys/fs/cgroup itself on a pure cgroup v2 host.
fn host_cgroup_hierarchies() -> Vec<String> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    let found: Vec<String> = mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_, target, fstype) = (f.next()?, f.next()?, f.next()?);
            (target.starts_with("/sys/fs/cgroup/") && fstype.starts_with("cgroup"))
                .then(|| target.to_string())
        })
        .collect();
    if found.is_empty() {
        return vec!["/sys/fs/cgroup".to_string()];
    }
    found
}

/// The user of the user install in the trixie host (scripts/quadlet-host-image).
const USER_UID: u32 = 1000;

/// The trixie "host" container: systemd as PID 1, podman 5.4 inside, its container storage in
/// a directory of the test's own. Removed (with everything running in it) on drop.
struct TrixieHost {
    name: String,
    storage: tempfile::TempDir,
}

impl TrixieHost {
    fn start() -> TrixieHost {
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
        let host = TrixieHost {
            name: unique("quadlet-host"),
            storage: tempfile::tempdir_in(e2e_dir()).unwrap(),
        };
        let storage = format!("{}:/var/lib/containers", host.storage.path().display());
        // The user's storage on this machine's file system too: overlay cannot stack on the
        // host container's overlay without fuse, and /dev/fuse is root's only here.
        let user_dir = host.storage.path().join("user");
        std::fs::create_dir(&user_dir).unwrap();
        std::os::unix::fs::chown(&user_dir, Some(USER_UID), Some(USER_UID)).unwrap();
        let user_storage = format!(
            "{}:/home/vpuser/.local/share/containers",
            user_dir.display()
        );
        let quadlet = format!("{}:/mnt/quadlet:ro", repo().join("quadlet").display());
        // These machines' cgroups are v1 (hybrid): systemd 257 runs there only when told
        // (SYSTEMD_CGROUP_ENABLE_LEGACY_FORCE=1, which a container's systemd reads from its own
        // arguments), and each of the host's hierarchies is mounted whole (cgroupns=host) so
        // that the paths podman inside reads in /proc/self/cgroup exist under /sys/fs/cgroup.
        // They sit on a tmpfs of the container's own, never on the host's /sys/fs/cgroup: the
        // systemd inside remounts that tmpfs read-only and makes directories in it, which on the
        // host's own superblock broke every later `podman run` on the machine.
        let mut args: Vec<String> = [
            "run",
            "-d",
            "--name",
            &host.name,
            "--privileged",
            "--systemd=always",
            "--cgroupns=host",
            "--mount",
            "type=tmpfs,destination=/sys/fs/cgroup",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for hierarchy in host_cgroup_hierarchies() {
            args.push("-v".into());
            args.push(format!("{hierarchy}:{hierarchy}:rw"));
        }
        args.extend(
            [
                "-v",
                &storage,
                "-v",
                &user_storage,
                "-v",
                &quadlet,
                &image,
                "/sbin/init",
                "SYSTEMD_CGROUP_ENABLE_LEGACY_FORCE=1",
            ]
            .iter()
            .map(|s| s.to_string()),
        );
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        podman_ok(&argv);
        // Until systemd listens, systemctl cannot even connect; then --wait for the boot.
        wait_for(
            "systemd in the trixie host",
            Duration::from_secs(60),
            || host.sh("test -S /run/systemd/private").status.success(),
        );
        let state = host.sh("systemctl is-system-running --wait");
        assert_eq!(
            String::from_utf8_lossy(&state.stdout).trim(),
            "running",
            "{}\n{}",
            text(&state),
            text(&host.sh("systemctl --failed --no-legend"))
        );
        host
    }

    fn sh(&self, script: &str) -> std::process::Output {
        podman(&["exec", &self.name, "bash", "-c", script])
    }

    fn sh_ok(&self, script: &str) -> String {
        let out = self.sh(script);
        assert!(
            out.status.success(),
            "in the trixie host: {script:?} failed: {}\n--- journal ---\n{}",
            text(&out),
            text(&self.sh("journalctl -u virtpod.service --no-pager -o cat | tail -n 40"))
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `podman save` here, `podman load` there: the appliance image in the host's storage.
    fn load_image(&self, user: bool) {
        let mut save = Command::new("podman")
            .env("CONTAINERS_CONF", repo().join("tests/containers.conf"))
            .args(["save", DEFAULT_IMAGE])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let load = Command::new("podman")
            .env("CONTAINERS_CONF", repo().join("tests/containers.conf"))
            .args(["exec", "-i", &self.name])
            .args(if user { USER_PREFIX } else { &[] })
            .args(["podman", "load", "-q"])
            .stdin(save.stdout.take().unwrap())
            .output()
            .unwrap();
        assert!(
            save.wait().unwrap().success(),
            "podman save {DEFAULT_IMAGE}"
        );
        assert!(load.status.success(), "podman load: {}", text(&load));
        assert!(text(&load).contains(DEFAULT_IMAGE), "{}", text(&load));
    }

    /// A script as the trixie host's user, with its systemd manager and runtime directory.
    fn user_sh_ok(&self, script: &str) -> String {
        self.sh_ok(&format!(
            "runuser -u vpuser -- env XDG_RUNTIME_DIR=/run/user/{USER_UID} bash -c {}",
            shell_quote(script)
        ))
    }

    /// A file in one of the appliance's named volumes (root's or the user's), from this machine.
    fn volume_path(&self, user: bool, volume: &str, rel: &str) -> PathBuf {
        self.storage
            .path()
            .join(if user {
                "user/storage/volumes"
            } else {
                "storage/volumes"
            })
            .join(volume)
            .join("_data")
            .join(rel)
    }

    fn console(&self, user: bool, guest: &str) -> String {
        std::fs::read(self.volume_path(user, "virtpod_log", &format!("qemu/{guest}-serial.log")))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    fn wait_console(&self, user: bool, guest: &str, marker: &str, count: usize) {
        wait_for(
            &format!("{marker} x{count} on {guest}'s console"),
            Duration::from_secs(90),
            || self.console(user, guest).matches(marker).count() >= count,
        );
    }

    /// A file in the trixie host, from `content`.
    fn write(&self, path: &str, content: &str) {
        let mut child = Command::new("podman")
            .env("CONTAINERS_CONF", repo().join("tests/containers.conf"))
            .args([
                "exec",
                "-i",
                &self.name,
                "sh",
                "-c",
                &format!("cat > {path}; chmod 0644 {path}"),
            ])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(content.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "writing {path}: {}", text(&out));
    }
}

impl Drop for TrixieHost {
    fn drop(&mut self) {
        podman(&["rm", "-f", "-t", "10", &self.name]);
    }
}

const USER_PREFIX: &[&str] = &[
    "runuser",
    "-u",
    "vpuser",
    "--",
    "env",
    "XDG_RUNTIME_DIR=/run/user/1000",
];

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The install as docs/modes.md gives it, then what a user does with it: `systemctl start`
/// returns once libvirt answers, virsh on that host boots a guest through the socket,
/// `systemctl stop` shuts the guest down (ACPI) before the container goes, and `systemctl
/// start` brings the guest back.
fn start_stop_story(user: bool) {
    require_prepared();
    let host = TrixieHost::start();
    let versions = host.sh_ok("systemctl --version | head -n1; podman --version");
    assert!(versions.contains("systemd 257"), "{versions}");
    assert!(versions.contains("podman version 5.4.2"), "{versions}");
    host.load_image(user);
    let sh = |script: &str| {
        if user {
            host.user_sh_ok(script)
        } else {
            host.sh_ok(script)
        }
    };
    let (systemctl, socket_dir, generator) = if user {
        (
            "systemctl --user",
            "/run/user/1000/virtpod",
            "/run/user/1000/systemd/generator",
        )
    } else {
        ("systemctl", "/run/virtpod", "/run/systemd/generator")
    };
    let virsh = |args: &str| {
        sh(&format!(
            "virsh -c 'qemu+unix:///system?socket={socket_dir}/libvirt-sock' {args}"
        ))
    };

    if user {
        // Two adaptations to these machines, in a drop-in beside the unchanged units: their
        // cgroups are v1, where an unprivileged user may not create cgroups (quadlet's
        // --cgroups=split fails: "mkdir /sys/fs/cgroup/pids/…/user@1000.service/runtime:
        // permission denied"; --cgroups=disabled needs crun, which refuses hybrid cgroups), and
        // /dev/net/tun is root's only (no rootless network): docs/modes.md.
        sh("mkdir -p ~/.config/containers/systemd/virtpod.container.d \
            && cp /mnt/quadlet/user/* ~/.config/containers/systemd/ \
            && printf '[Container]\\nNetwork=none\\nPodmanArgs=--cgroups=no-conmon\\n' \
               > ~/.config/containers/systemd/virtpod.container.d/cgroups-v1.conf \
            && systemctl --user daemon-reload");
    } else {
        // The host side from the image, as docs/modes.md says: the hook the unit's annotations
        // ask for /dev/kvm and /dev/net/tun.
        let said = sh(&format!(
            "podman run --rm --network none -v /usr/local:/host/usr/local \
             -v /etc/containers:/host/etc/containers \
             -v /usr/share/containers:/host/usr/share/containers \
             --entrypoint /usr/bin/virtpod {DEFAULT_IMAGE} install --root /host 2>&1"
        ));
        assert!(
            said.contains("wrote /host/usr/local/share/virtpod/oci-hooks.d/virtpod-devices.json"),
            "{said}"
        );
        sh("cp /mnt/quadlet/system/* /etc/containers/systemd/ && systemctl daemon-reload");
    }
    let show = sh(&format!(
        "{systemctl} show -p Type,TimeoutStopUSec,FragmentPath virtpod.service"
    ));
    assert!(show.contains("Type=notify\n"), "{show}");
    assert!(show.contains("TimeoutStopUSec=2min 30s\n"), "{show}");
    assert!(
        show.contains(&format!("FragmentPath={generator}/virtpod.service\n")),
        "{show}"
    );
    // systemd 257's own verdict on the unit as its generator wrote it: no warning at all.
    let verify = sh(&format!(
        "{} verify {generator}/virtpod.service 2>&1",
        systemctl.replace("systemctl", "systemd-analyze")
    ));
    assert_eq!(verify, "", "systemd-analyze verify (systemd 257)");

    // Type=notify: `systemctl start` returns once init sent READY=1, i.e. once libvirt
    // answers; so the very first virsh call succeeds, with no retry.
    let started = Instant::now();
    sh(&format!("{systemctl} start virtpod.service"));
    eprintln!(
        "quadlet (user={user}): systemctl start took {:?}",
        started.elapsed()
    );
    assert!(virsh("version").contains("Running hypervisor: QEMU"));
    assert_eq!(
        sh(&format!("{systemctl} is-active virtpod.service")).trim(),
        "active"
    );
    // The health command, the stop timeout and the device, as podman ran them.
    sh("podman healthcheck run virtpod");
    assert_eq!(
        sh("podman inspect --format '{{.Config.StopTimeout}}' virtpod").trim(),
        "120"
    );
    // System: through the hook, with the image's kvm group; user: podman's own device.
    let kvm = sh("podman exec virtpod stat -c '%t:%T %G %a' /dev/kvm");
    if user {
        assert!(kvm.starts_with("a:e8 "), "{kvm}");
    } else {
        assert_eq!(kvm.trim(), "a:e8 kvm 660");
        let log = sh("grep 'kvm: /dev/kvm' /var/log/virtpod-hook.log || true");
        assert!(log.contains("group kvm of the image"), "hook log: {log}");
        // Guests' network: the unit's NET_ADMIN, NET_RAW and io.virtpod.sysctl.net=rw let
        // libvirt's default NAT network start inside the container (docs/networking.md).
        let net = virsh("net-info default");
        assert!(
            net.lines()
                .any(|l| l.starts_with("Active:") && l.ends_with("yes")),
            "{net}"
        );
    }
    let owner = if user { "vpuser" } else { "root" };
    assert_eq!(
        sh(&format!("stat -c '%F %U' {socket_dir}/libvirt-sock")).trim(),
        format!("socket {owner}")
    );

    // A guest, through the socket, from the trixie host's virsh.
    for f in ["vmlinuz", "initrd.img"] {
        let dest = host.volume_path(user, "virtpod_lib", &format!("images/{f}"));
        std::fs::copy(e2e_dir().join("guest").join(f), &dest).unwrap();
        if user {
            // The container's root is the user.
            std::os::unix::fs::chown(&dest, Some(USER_UID), Some(USER_UID)).unwrap();
        }
    }
    // System: on libvirt's default network (a lease, the first thing a guest with a network
    // prints after booting); user: no network (the unit runs with Network=none here).
    let mut xml = guest_xml("g", "qemu");
    if !user {
        xml = xml
            .replace("quiet</cmdline>", "quiet virtpod.net</cmdline>")
            .replace(
                "<devices>",
                "<devices>\n    <interface type='network'><source network='default'/><model type='virtio'/></interface>",
            );
    }
    host.write("/tmp/g.xml", &xml);
    virsh("define /tmp/g.xml");
    virsh("start g");
    host.wait_console(user, "g", GUEST_BOOTED, 1);
    assert_eq!(virsh("domstate g").trim(), "running");
    if !user {
        host.wait_console(user, "g", GUEST_LEASE, 1);
        let leases = virsh("net-dhcp-leases default");
        assert!(leases.contains("192.168.122."), "{leases}");
    }

    // systemctl stop: the guest sees the power button and powers off before the container goes.
    sh(&format!("{systemctl} stop virtpod.service"));
    let state = sh(&format!("{systemctl} is-active virtpod.service || true"));
    assert_eq!(state.trim(), "inactive");
    let console = host.console(user, "g");
    assert!(console.contains(GUEST_POWER_BUTTON), "{console}");
    assert_eq!(
        sh(&format!(
            "test -e {socket_dir}/libvirt-sock && echo left || true"
        ))
        .trim(),
        "",
        "the socket outlived the unit"
    );
    assert_eq!(
        sh("podman ps -a --format '{{.Names}}'").trim(),
        "",
        "the container outlived the unit"
    );

    // systemctl start: libvirt again, and the guest that was running at the stop runs again.
    sh(&format!("{systemctl} start virtpod.service"));
    host.wait_console(user, "g", GUEST_BOOTED, 2);
    assert_eq!(virsh("domstate g").trim(), "running");
    sh(&format!("{systemctl} stop virtpod.service"));
    assert_eq!(
        host.console(user, "g").matches(GUEST_POWER_BUTTON).count(),
        2
    );
}

/// The system install (quadlet/system in /etc/containers/systemd) under systemd 257 as PID 1
/// and podman 5.4.2, rootful.
#[test]
fn quadlet_system_unit_runs_under_systemd_and_stops_the_guest_first() {
    start_stop_story(false);
}

/// The user install (quadlet/user in ~/.config/containers/systemd) under the user's own
/// systemd manager (lingering) and rootless podman 5.4.2, with this machine's drop-in.
#[test]
fn quadlet_user_unit_runs_under_systemd_user_and_stops_the_guest_first() {
    start_stop_story(true);
}
