//! One hook call, end to end: read stdin, decide, write stdout or act on the container.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

use super::discover;
use super::edit;
use super::groups;
use super::plan::{self, Mode, Plan};
use super::request::{self, Request, Selection};
use super::sysctl;
use super::HostPaths;

/// The container id podman put in the config (the precreate stage has no OCI state): from the
/// cgroup path or the container's own directory (`…/overlay-containers/<id>/userdata`, the source
/// of /etc/hostname and friends); none otherwise. Other mounts are no guide: volume names
/// are 64 hex digits too.
pub fn container_id(config: &Value) -> Option<String> {
    let mut texts: Vec<&str> = vec![config["linux"]["cgroupsPath"].as_str().unwrap_or("")];
    if let Some(mounts) = config["mounts"].as_array() {
        texts.extend(
            mounts
                .iter()
                .filter_map(|m| m["source"].as_str())
                .filter(|s| s.contains("/userdata/")),
        );
    }
    texts
        .iter()
        .flat_map(|t| t.split(['/', ':', '-']))
        .find(|c| c.len() == 64 && c.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(String::from)
}

/// An id as the log shows it: the first 12 characters, as podman shows ids.
fn short(id: &str) -> &str {
    id.char_indices().nth(12).map_or(id, |(i, _)| &id[..i])
}

/// Whether a runtime's container id can name a record file: runc's alphabet for ids, and no
/// path of any kind (the id in an OCI state is whatever the runtime was told).
fn is_record_name(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b))
}

fn parse_config(input: &[u8]) -> Result<Value> {
    let config: Value = serde_json::from_slice(input)
        .context("stdin is not an OCI runtime config (JSON); precreate hooks get the container's config.json")?;
    if !config.is_object() {
        bail!("stdin is not an OCI runtime config: a JSON object was expected");
    }
    Ok(config)
}

/// The requests in a config's annotations (empty when it asks for nothing).
pub fn requests(config: &Value) -> Result<Vec<Request>> {
    Ok(request::parse(edit::annotations(config))?)
}

fn may_open(path: &Path) -> bool {
    use nix::unistd::{faccessat, AccessFlags};
    faccessat(
        None,
        path,
        AccessFlags::R_OK | AccessFlags::W_OK,
        nix::fcntl::AtFlags::AT_EACCESS,
    )
    .is_ok()
}

/// Rootless podman runs its hooks inside its own user namespace and its configs need not declare
/// one; there, as in a declared one, nodes cannot be made and host nodes must be bind-mounted.
fn in_user_namespace() -> bool {
    crate::userns::in_user_namespace("self")
}

/// Nodes when the runtime can create them; bind mounts in a user namespace (the container's or
/// rootless podman's own).
fn mode_for(config: &Value) -> Mode {
    if edit::has_user_namespace(config) || in_user_namespace() {
        Mode::Binds
    } else {
        Mode::Nodes
    }
}

fn rootfs(config: &Value, bundle: &Path) -> PathBuf {
    let root = PathBuf::from(config["root"]["path"].as_str().unwrap_or("rootfs"));
    if root.is_absolute() {
        root
    } else {
        bundle.join(root)
    }
}

/// Resolve every request and decide; the first refused request is the error.
pub(crate) fn decide(
    requests: &[Request],
    host: &HostPaths,
    mode: Mode,
    root: &Path,
) -> Result<Plan> {
    let mut found = Vec::new();
    for r in requests {
        found.push(discover::resolve(r, host)?);
    }
    // The image is read only when a node takes a group from it.
    let roles = found
        .iter()
        .flat_map(|f| &f.nodes)
        .any(|n| n.group.is_some());
    let groups = match mode {
        Mode::Nodes if roles => groups::read(root),
        _ => Ok(Default::default()),
    };
    let plan = plan::plan(found, mode, &groups, may_open);
    for w in &plan.warnings {
        tracing::warn!("{w}");
    }
    for d in &plan.decisions {
        tracing::info!("{d}");
    }
    Ok(plan)
}

/// A recorded device the host no longer has: said, and left out (never a refused start).
fn not_given(e: &dyn std::fmt::Display) {
    tracing::warn!(
        "{e}: added by `virtpod device add`, not given this time (`virtpod device remove` forgets it)"
    );
}

/// What `virtpod device add` gave this container before, where the host still has it. A device
/// the host no longer has (a USB adapter unplugged) is said and left out: it never stops the
/// start, as a missing device an annotation names does.
fn recorded(host: &HostPaths, id: Option<&str>, config: &Value) -> Vec<Request> {
    // Only podman's 64-hex ids (or a record name) name records; and a user who may not read
    // root's records (rootless podman) has none.
    let by_name = config["annotations"][super::added::BY_NAME].as_str();
    let key = match super::added::key(id.unwrap_or_default(), by_name) {
        Ok(key) => key,
        Err(e) => {
            tracing::warn!("{e:#}; the devices added at run time are not given");
            return Vec::new();
        }
    };
    if super::added::path(&host.added, &key).is_err() {
        return Vec::new();
    }
    let id = key.as_str();
    if !may_read(&host.added) {
        tracing::debug!(
            "{} is not readable: no run-time additions",
            host.added.display()
        );
        return Vec::new();
    }
    let requests = super::added::read(&host.added, id)
        .map_err(|e| format!("{e:#}"))
        .and_then(|r| r.requests().map_err(|e| e.to_string()));
    let requests = match requests {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("{e}; the devices added at run time are not given");
            return Vec::new();
        }
    };
    requests
        .into_iter()
        .filter_map(|r| {
            // Name by name: one adapter unplugged must not take the others with it.
            let r = match &r.selection {
                Selection::All => discover::resolve(&r, host)
                    .map(|_| r.clone())
                    .map_err(|e| e.to_string()),
                Selection::Names(names) => {
                    let kept: Vec<String> = names
                        .iter()
                        .filter(|n| {
                            let one = Request {
                                selection: Selection::Names(vec![(*n).clone()]),
                                ..r.clone()
                            };
                            match discover::resolve(&one, host) {
                                Ok(_) => true,
                                Err(e) => {
                                    not_given(&e);
                                    false
                                }
                            }
                        })
                        .cloned()
                        .collect();
                    if kept.is_empty() {
                        return None;
                    }
                    Ok(Request {
                        selection: Selection::Names(kept),
                        ..r.clone()
                    })
                }
            };
            match r {
                Ok(r) => {
                    tracing::info!(
                        "{}: added by `virtpod device add`, given again",
                        r.annotation
                    );
                    Some(r)
                }
                Err(e) => {
                    not_given(&e);
                    None
                }
            }
        })
        .collect()
}

fn may_read(dir: &Path) -> bool {
    use nix::unistd::{access, AccessFlags};
    !dir.exists() || access(dir, AccessFlags::R_OK | AccessFlags::X_OK).is_ok()
}

/// What a container was given, kept for poststop. Only under an id of its own: without one,
/// every such container would share (and its poststop delete) one record.
fn record(host: &HostPaths, id: Option<&str>, stage: &str, plan: &Plan) {
    let Some(id) = id.filter(|id| is_record_name(id)) else {
        tracing::debug!("no usable container id: nothing recorded for poststop");
        return;
    };
    let given: Vec<String> = plan
        .grants
        .iter()
        .map(|g| g.node.container_path())
        .chain(plan.binds.iter().map(|b| b.dest.clone()))
        .collect();
    let body = serde_json::json!({ "id": id, "stage": stage, "given": given });
    let path = host.state.join(format!("{id}.json"));
    let written = fs::create_dir_all(&host.state).and_then(|_| fs::write(&path, body.to_string()));
    if let Err(e) = written {
        tracing::debug!("no record at {}: {e}", path.display());
    }
}

/// precreate: the config on stdin, the config with the devices on stdout. A config that asks
/// for nothing comes back byte for byte.
pub fn precreate(input: &[u8], host: &HostPaths) -> Result<Vec<u8>> {
    let mut config = parse_config(input)?;
    let id = container_id(&config);
    let shown = id.as_deref().map_or("unknown", short);
    let _span = tracing::info_span!("hook", container = %shown, stage = "precreate").entered();
    let requests = request::combine(requests(&config)?, recorded(host, id.as_deref(), &config));
    let writable_net = sysctl::wants_writable_net(&config)?;
    let modules = crate::modules::requests(&config)?;
    crate::modules::check(&modules, &host.allow_modules)?;
    for (module, how) in
        crate::modules::load(&modules, &host.sys.join("module"), host.modprobe.as_deref())?
    {
        match how {
            crate::modules::Loaded::Now => tracing::info!("kernel module {module}: loaded"),
            crate::modules::Loaded::Already => {
                tracing::info!("kernel module {module}: loaded already")
            }
        }
    }
    if requests.is_empty() && !writable_net {
        tracing::debug!("no device requested");
        return Ok(input.to_vec());
    }
    if writable_net {
        let said = sysctl::make_net_writable(&mut config, &proc_sys_entries()?, is_host_netns)?;
        tracing::info!("{said}");
    }
    if !requests.is_empty() {
        let mode = mode_for(&config);
        let plan = decide(&requests, host, mode, &rootfs(&config, Path::new(".")))?;
        for s in edit::apply(&mut config, &plan, mode) {
            tracing::info!("{s}");
        }
        record(host, id.as_deref(), "precreate", &plan);
    }
    Ok(serde_json::to_vec(&config)?)
}

/// The top-level directories of /proc/sys (the container's procfs has the same ones).
fn proc_sys_entries() -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir("/proc/sys").context("listing /proc/sys")? {
        names.push(entry?.file_name().to_string_lossy().into_owned());
    }
    Ok(names)
}

/// Whether a network namespace path is the one podman (and so this hook) runs in, or the one of
/// the host's PID 1: the same namespace file, by device and inode.
fn is_host_netns(path: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    let id = |p: &str| fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
    let Some(target) = id(path) else {
        return false;
    };
    ["/proc/self/ns/net", "/proc/1/ns/net"]
        .iter()
        .any(|p| id(p) == Some(target))
}

fn parse_state(input: &[u8]) -> Result<oci_spec::runtime::State> {
    serde_json::from_slice(input)
        .context("stdin is not an OCI container state (JSON); this stage gets the runtime's state")
}

/// createRuntime/prestart, for runtimes without precreate: create the nodes inside the
/// container's mount namespace (before pivot_root, so its root is still a path) and allow them
/// in its device cgroup. Nodes the config already has (precreate ran) are left alone.
pub fn create_runtime(input: &[u8], host: &HostPaths, stage: &str) -> Result<()> {
    let state = parse_state(input)?;
    let id = state.id().clone();
    let _span = tracing::info_span!("hook", container = %short(&id), stage).entered();
    let bundle = state.bundle().clone();
    let config_path = bundle.join("config.json");
    let config = parse_config(
        &fs::read(&config_path).with_context(|| format!("reading {}", config_path.display()))?,
    )?;
    let requests = request::combine(requests(&config)?, recorded(host, Some(&id), &config));
    if requests.is_empty() {
        return Ok(());
    }
    if mode_for(&config) == Mode::Binds {
        bail!("{stage}: device nodes cannot be created in a user namespace by this stage; register the hook for the precreate stage (podman >= 4.0), which bind-mounts them");
    }
    let pid = state
        .pid()
        .ok_or_else(|| anyhow!("the OCI state has no pid; is {stage} the right stage?"))?;
    let root = rootfs(&config, &bundle);
    let mut plan = decide(&requests, host, Mode::Nodes, &root)?;
    let existing = edit::existing_devices(&config);
    plan.grants
        .retain(|g| !existing.contains(&g.node.container_path()));
    allow_in_cgroup(pid, &id, &plan)?;
    enter_mount_namespace(pid)?;
    for g in &plan.grants {
        make_node(&root, g)?;
    }
    for b in &plan.binds {
        bind_mount(&root, &b.host, &b.dest, b.read_only)?;
    }
    record(host, Some(&id), stage, &plan);
    Ok(())
}

/// The plan's devices allowed in the container's device filter: needed from the stages after
/// the runtime set it up (precreate changes the spec, and the runtime allows them itself).
fn allow_in_cgroup(pid: i32, id: &str, plan: &Plan) -> Result<()> {
    if plan.grants.is_empty() {
        return Ok(());
    }
    let rules: Vec<_> = plan.grants.iter().map(|g| g.node.rule()).collect();
    crate::cgroup::of_process(pid, id)?.allow(&rules)
}

fn enter_mount_namespace(pid: i32) -> Result<()> {
    let ns = fs::File::open(format!("/proc/{pid}/ns/mnt"))
        .with_context(|| format!("opening the mount namespace of container process {pid}"))?;
    nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNS)
        .context("entering the container's mount namespace")?;
    Ok(())
}

fn make_node(root: &Path, g: &plan::Grant) -> Result<()> {
    let n = &g.node;
    match super::nodes::make(root, &n.rel, n.kind, n.major, n.minor, g.gid, g.mode)? {
        super::nodes::Made::Created => tracing::info!("created {}", n.container_path()),
        super::nodes::Made::Existed => tracing::info!(
            "{} already exists in the container; left as it is",
            n.container_path()
        ),
    }
    Ok(())
}

fn bind_mount(root: &Path, source: &Path, dest: &str, read_only: bool) -> Result<()> {
    use nix::mount::{mount, MsFlags};
    let target = root.join(dest.trim_start_matches('/'));
    fs::create_dir_all(&target)?;
    let none: Option<&str> = None;
    mount(
        Some(source),
        &target,
        none,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        none,
    )
    .with_context(|| format!("bind-mounting {} at {dest}", source.display()))?;
    if read_only {
        let flags = MsFlags::MS_BIND
            | MsFlags::MS_REMOUNT
            | MsFlags::MS_RDONLY
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV
            | MsFlags::MS_NOEXEC;
        mount(none, &target, none, flags, none)
            .with_context(|| format!("making {dest} read-only"))?;
    }
    Ok(())
}

/// poststart, for `io.virtpod.device.usb=hotplug` (hooks.d/virtpod-usb-hotplug.json): starts
/// `virtpod device watch` for the container, in a session of its own since it outlives this
/// hook, its lines in the hook's log in the hook's format (`--log`). poststop stops it; it also ends by itself when
/// the container's process is gone.
pub fn poststart(input: &[u8], host: &HostPaths, log: &Path, events: Option<&Path>) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let state = parse_state(input)?;
    let id = state.id().clone();
    let _span = tracing::info_span!("hook", container = %short(&id), stage = "poststart").entered();
    if !is_record_name(&id) {
        bail!(
            "container id {:?} is not usable as a file name",
            crate::hook::log::clip(&id)
        );
    }
    let pid = state
        .pid()
        .ok_or_else(|| anyhow!("the OCI state has no pid; is poststart the right stage?"))?;
    let exe = std::env::current_exe().context("finding this binary")?;
    // The watcher writes there itself: it must be writable now, not found out by nobody later.
    fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(log)
        .with_context(|| format!("opening {}", log.display()))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["device", "watch", "--pid", &pid.to_string(), "--id", &id])
        .arg("--log")
        .arg(log)
        .arg("--dev-root")
        .arg(&host.dev)
        .arg("--sys-root")
        .arg(&host.sys)
        .arg("--udev-dir")
        .arg(&host.udev)
        .arg("--added-dir")
        .arg(&host.added);
    if let Some(events) = events {
        cmd.arg("--events").arg(events);
    }
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: setsid is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| nix::unistd::setsid().map(drop).map_err(Into::into));
    }
    let child = cmd.spawn().context("starting `virtpod device watch`")?;
    fs::create_dir_all(&host.state)?;
    fs::write(
        host.state.join(format!("{id}.watch")),
        child.id().to_string(),
    )?;
    tracing::info!(
        "USB hotplug: `virtpod device watch` started (pid {})",
        child.id()
    );
    Ok(())
}

/// Stops the container's hotplug watcher, if poststart started one; never another process
/// that happens to have its pid now.
fn stop_watcher(host: &HostPaths, id: &str) {
    let path = host.state.join(format!("{id}.watch"));
    let Ok(text) = fs::read_to_string(&path) else {
        return;
    };
    if let Ok(pid) = text.trim().parse::<i32>() {
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let ours = String::from_utf8_lossy(&cmdline);
        if ours.contains("watch") && ours.contains(id) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
            tracing::info!("USB hotplug: stopped `virtpod device watch` (pid {pid})");
        }
    }
    let _ = fs::remove_file(&path);
}

/// poststop: forget what the container was given. Never fails a stop: every problem is logged.
pub fn poststop(input: &[u8], host: &HostPaths) {
    let state = match parse_state(input) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("poststop: {e:#}; nothing to clean");
            return;
        }
    };
    let id = state.id().clone();
    let _span = tracing::info_span!("hook", container = %short(&id), stage = "poststop").entered();
    if !is_record_name(&id) {
        tracing::warn!(
            "poststop: container id {:?} is not usable as a file name; nothing to clean",
            crate::hook::log::clip(&id)
        );
        return;
    }
    stop_watcher(host, &id);
    let path = host.state.join(format!("{id}.json"));
    match fs::read_to_string(&path) {
        Ok(text) => {
            let given: Value = serde_json::from_str(&text).unwrap_or_default();
            tracing::info!("released {}", given["given"]);
            if let Err(e) = fs::remove_file(&path) {
                tracing::warn!("poststop: removing {}: {e}", path.display());
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => tracing::debug!("nothing recorded"),
        Err(e) => tracing::warn!("poststop: reading {}: {e}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_id_from_podman_paths() {
        let id = "a".repeat(64);
        let c =
            serde_json::json!({"linux": {"cgroupsPath": format!("/libpod_parent/libpod-{id}")}});
        assert_eq!(container_id(&c).as_deref(), Some(&*id));
        let volume = format!(
            "/var/lib/containers/storage/volumes/{}/_data",
            "b".repeat(64)
        );
        let c = serde_json::json!({"mounts": [
            {"source": volume},
            {"source": format!("/var/lib/containers/storage/overlay-containers/{id}/userdata/hostname")}
        ]});
        assert_eq!(container_id(&c).as_deref(), Some(&*id));
        assert_eq!(container_id(&serde_json::json!({})), None);
    }

    #[test]
    fn no_request_is_the_same_bytes() {
        let input = br#"{"ociVersion":"1.0.2", "annotations": {"io.virtpod.device.kvm": "false"}, "z": [1, 2]}"#;
        let out = precreate(input, &HostPaths::default()).unwrap();
        assert_eq!(out, input);
    }

    /// A device root with a kvm node (root:root 0600, as without udev rules) and a state dir;
    /// None where this user may not mknod.
    fn fake_host(t: &Path) -> Option<HostPaths> {
        use nix::sys::stat::{makedev, mknod, Mode as Perm, SFlag};
        let host = HostPaths {
            dev: t.join("dev"),
            sys: t.join("sys"),
            udev: t.join("udev"),
            state: t.join("state"),
            added: t.join("added"),
            ..HostPaths::default()
        };
        fs::create_dir_all(&host.dev).unwrap();
        let kvm = host.dev.join("kvm");
        if let Err(e) = mknod(&kvm, SFlag::S_IFCHR, Perm::empty(), makedev(10, 232)) {
            eprintln!("mknod: {e}; not checked here (run the tests as root)");
            return None;
        }
        fs::set_permissions(&kvm, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        nix::unistd::chown(&kvm, Some(0.into()), Some(0.into())).unwrap();
        Some(host)
    }

    /// Runs `f` on another thread and fails the test, rather than hanging it, past 10 s.
    fn promptly<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(f()));
        rx.recv_timeout(std::time::Duration::from_secs(10))
            .expect("the hook hung")
    }

    /// Images crafted against the hook: each read is refused with its reason, and the node
    /// keeps the host's gid. None of them makes the hook wait or read more than the limit.
    #[test]
    fn crafted_images_leave_the_host_gid_and_say_why() {
        use std::os::unix::fs::symlink;
        let t = tempfile::tempdir().unwrap();
        let Some(host) = fake_host(t.path()) else {
            return;
        };
        let fifo =
            |p: &Path| nix::unistd::mkfifo(p, nix::sys::stat::Mode::from_bits_truncate(0o644));
        type Craft = fn(&Path, &dyn Fn(&Path) -> nix::Result<()>);
        let cases: [(&str, Craft, &str); 8] = [
            (
                "huge",
                |r, _| {
                    fs::create_dir(r.join("etc")).unwrap();
                    let f = fs::File::create(r.join("etc/group")).unwrap();
                    f.set_len(8 << 30).unwrap();
                },
                "etc/group: is 8589934592 bytes, more than the 1048576 read",
            ),
            (
                "fifo",
                |r, fifo| {
                    fs::create_dir(r.join("etc")).unwrap();
                    fifo(&r.join("etc/group")).unwrap();
                },
                "etc/group: is a FIFO, not a regular file",
            ),
            (
                "device",
                |r, _| {
                    use nix::sys::stat::{makedev, mknod, Mode as Perm, SFlag};
                    fs::create_dir(r.join("etc")).unwrap();
                    // /dev/zero: read, it never ends.
                    mknod(
                        &r.join("etc/group"),
                        SFlag::S_IFCHR,
                        Perm::empty(),
                        makedev(1, 5),
                    )
                    .unwrap();
                },
                "etc/group: is a character device, not a regular file",
            ),
            (
                "symlink",
                |r, _| {
                    fs::create_dir(r.join("etc")).unwrap();
                    symlink("/etc/group", r.join("etc/group")).unwrap();
                },
                "etc/group: is a symlink, not a regular file",
            ),
            (
                "etc symlink",
                |r, _| {
                    symlink("/etc", r.join("etc")).unwrap();
                },
                "etc: is a symlink, not followed",
            ),
            (
                "chain out",
                |r, _| {
                    symlink("x/../y", r.join("etc")).unwrap();
                    fs::create_dir(r.join("x")).unwrap();
                    symlink("../../../../../../../../etc", r.join("y")).unwrap();
                },
                "etc: is a symlink, not followed",
            ),
            (
                "fifo etc",
                |r, fifo| fifo(&r.join("etc")).unwrap(),
                "etc: is a FIFO, not a directory",
            ),
            (
                "loop",
                |r, _| {
                    fs::create_dir(r.join("etc")).unwrap();
                    symlink("group", r.join("etc/group")).unwrap();
                },
                "etc/group: is a symlink, not a regular file",
            ),
        ];
        for (name, craft, why) in cases {
            let root = t.path().join(name);
            fs::create_dir(&root).unwrap();
            craft(&root, &fifo);
            let config = serde_json::json!({
                "root": {"path": root},
                "linux": {"cgroupsPath": format!("libpod-{}", "c".repeat(64))},
                "annotations": {"io.virtpod.device.kvm": "true"},
            });
            let reqs = requests(&config).unwrap();
            let (h, r) = (host.clone(), root.clone());
            let plan = promptly(move || decide(&reqs, &h, Mode::Nodes, &r).unwrap());
            assert_eq!(
                (plan.grants[0].gid, plan.grants[0].mode),
                (0, 0o600),
                "{name}"
            );
            let said = plan.warnings.join("\n");
            assert!(said.contains(why), "{name}: {said}");
            assert!(
                said.contains("/dev/kvm keeps the host's gid 0 instead of group kvm"),
                "{name}: {said}"
            );
            // And the whole precreate: the container is created, with the host's gid.
            let (h, input) = (host.clone(), serde_json::to_vec(&config).unwrap());
            let out = promptly(move || precreate(&input, &h).unwrap());
            let out: Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(out["linux"]["devices"][0]["gid"], 0, "{name}");
        }
        // Beside them, a plain image gives its own kvm group.
        let root = t.path().join("plain");
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::write(root.join("etc/group"), "kvm:x:104:\n").unwrap();
        let config = serde_json::json!({"root": {"path": root}, "annotations": {"io.virtpod.device.kvm": "true"}});
        let plan = decide(&requests(&config).unwrap(), &host, Mode::Nodes, &root).unwrap();
        assert_eq!((plan.grants[0].gid, plan.grants[0].mode), (104, 0o660));
    }

    /// Huge selections in both vocabularies through the whole precreate: a node is looked at
    /// once however often it is named, and the first missing one ends the call.
    #[test]
    fn huge_annotation_mixes_end_in_a_grant_or_a_refusal() {
        let t = tempfile::tempdir().unwrap();
        let Some(host) = fake_host(t.path()) else {
            return;
        };
        let names =
            |n, f: &dyn Fn(usize) -> String, sep| (0..n).map(f).collect::<Vec<_>>().join(sep);
        let all = |n| {
            serde_json::json!({
                "io.virtpod.device.kvm": names(n, &|_| "kvm".into(), " "),
                "org.containers.qm.device.kvm": names(n, &|_| "kvm".into(), ","),
                "io.virtpod.device.ttyUSB": names(n, &|i| format!("ttyUSB{i}"), " "),
                "org.containers.qm.device.ttyUSB": names(n, &|i| format!("ttyUSB{}", n - i), ","),
                "io.virtpod.device.usb": names(n, &|i| ["1d6b:0002", "1D6B:0002"][i % 2].into(), " "),
            })
        };
        let run = |annotations: &Value| {
            let input = serde_json::to_vec(&serde_json::json!({ "annotations": annotations }));
            let h = host.clone();
            promptly(move || precreate(&input.unwrap(), &h).map_err(|e| e.to_string()))
        };
        // 100,000 names a list: refused on the first list's count.
        let e = run(&all(100_000)).unwrap_err();
        assert!(e.contains("more than 4096 names in one list"), "{e}");
        assert!(e.len() < 600, "{e}");
        // As many as a list may hold: each node is looked at once, the first missing one ends
        // the call, and the message names it in a line.
        let mut annotations = all(request::MAX_NAMES);
        let e = run(&annotations).unwrap_err();
        assert!(e.contains(": no USB device 1d6b:0002 on this host"), "{e}");
        assert!(e.len() < 600, "{e}");
        annotations
            .as_object_mut()
            .unwrap()
            .remove("io.virtpod.device.usb");
        let e = run(&annotations).unwrap_err();
        assert!(
            e.contains("/dev/ttyUSB0: does not exist on this host"),
            "{e}"
        );
        annotations
            .as_object_mut()
            .unwrap()
            .remove("io.virtpod.device.ttyUSB");
        let e = run(&annotations).unwrap_err();
        assert!(
            e.contains("/dev/ttyUSB4096: does not exist on this host"),
            "{e}"
        );
        // The kvm lists alone: one node for all their names.
        annotations
            .as_object_mut()
            .unwrap()
            .remove("org.containers.qm.device.ttyUSB");
        let out: Value = serde_json::from_slice(&run(&annotations).unwrap()).unwrap();
        assert_eq!(out["linux"]["devices"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn no_container_id_no_record() {
        let t = tempfile::tempdir().unwrap();
        let Some(host) = fake_host(t.path()) else {
            return;
        };
        let root = t.path().join("rootfs");
        let c = serde_json::json!({"root": {"path": root}, "annotations": {"io.virtpod.device.kvm": "true"}});
        precreate(&serde_json::to_vec(&c).unwrap(), &host).unwrap();
        assert!(!host.state.exists() || fs::read_dir(&host.state).unwrap().next().is_none());
        let id = "d".repeat(64);
        let c = serde_json::json!({"root": {"path": root}, "annotations": {"io.virtpod.device.kvm": "true"},
            "linux": {"cgroupsPath": format!("machine.slice:libpod:{id}")}});
        precreate(&serde_json::to_vec(&c).unwrap(), &host).unwrap();
        assert!(host.state.join(format!("{id}.json")).exists());
        // A runtime's id that is a path names no file.
        for id in ["../x", "", ".hidden", "a/b", "x\ny"] {
            assert!(!is_record_name(id), "{id:?}");
        }
        assert_eq!(short("ab€cdefghijklmnop"), "ab€cdefghijk");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for input in [
            &b""[..],
            b"[]",
            b"{\"annotations\": 5}",
            b"\xff\xfe",
            b"{\"annotations\": {\"io.virtpod.device.kvm\": 1}}",
        ] {
            let _ = precreate(input, &HostPaths::default());
        }
        assert!(precreate(b"nope", &HostPaths::default())
            .unwrap_err()
            .to_string()
            .contains("not an OCI runtime config"));
    }
}
