//! `virtpod init`: set up, then hand over to the supervisor until a stop signal.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use tracing::{error, info, warn};

use super::args;
use super::catalog::{detect_flavor, Catalog};
use super::prepare;
use super::reaper;
use super::settings::Settings;
use super::spawn;
use super::state;
use super::supervisor::{Config, Supervisor};

pub struct Options {
    pub catalog: PathBuf,
    pub args: Vec<String>,
}

/// Where the guests running at the last stop are recorded: inside the /var/lib/libvirt volume,
/// so a re-created container finds it.
pub const GUEST_RECORD: &str = "/var/lib/libvirt/virtpod/running-guests.json";

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Returns the process exit code: 2 for a setup error, otherwise the stop sequence's.
pub fn run(opts: Options) -> i32 {
    // Before any thread exists, so only the reaper thread ever sees these signals.
    if let Err(e) = reaper::block_signals() {
        error!("blocking signals: {e}");
        return 2;
    }
    match setup(opts) {
        Ok(supervisor) => supervisor.run(),
        Err(e) => {
            error!("{e:#}");
            2
        }
    }
}

/// The environment every service gets: the container's own (no s6 `with-contenv` step needed),
/// then `systemd.setenv=` in order. NOTIFY_SOCKET is init's alone, from wherever it comes:
/// libvirtd would otherwise send READY=1 itself, before libvirt as a whole is ready.
pub fn service_env(
    container: impl IntoIterator<Item = (String, String)>,
    setenv: &[(String, String)],
) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = container.into_iter().collect();
    env.entry("PATH".into())
        .or_insert_with(|| DEFAULT_PATH.into());
    for (k, v) in setenv {
        env.insert(k.clone(), v.clone());
    }
    if env.remove("NOTIFY_SOCKET").is_some() && setenv.iter().any(|(k, _)| k == "NOTIFY_SOCKET") {
        tracing::warn!("systemd.setenv=NOTIFY_SOCKET=… ignored: the notify socket is init's own (podman --sdnotify=container sets it)");
    }
    env
}

/// Settings, catalog and flavor: what both `init` and `prepare` decide before touching anything.
fn choose(
    catalog_dir: &Path,
    boot: &args::BootArgs,
    env: &BTreeMap<String, String>,
) -> Result<(Settings, Catalog, Vec<String>)> {
    let settings = Settings::from_env(env)?;
    for name in Settings::unknown_names(env) {
        tracing::warn!("{name} is not a virtpod setting and is ignored (docs/init.md lists them)");
    }
    let catalog = Catalog::load(catalog_dir)?;
    let flavor = detect_flavor(settings.mode, Path::exists)?;
    let mut wanted: Vec<(&str, &[&str])> = Vec::new();
    if settings.cockpit.is_some() {
        wanted.push(("VIRTPOD_COCKPIT=1", super::cockpit::SERVICES));
    }
    if settings.ssh_keys.is_some() {
        wanted.push(("VIRTPOD_SSH_AUTHORIZED_KEYS", super::ssh::SERVICES));
    }
    if !settings.forward.is_empty() {
        wanted.push((crate::forward::SETTING, &["forward"]));
    }
    let boot = super::cockpit::with_services(&wanted, boot)?;
    let order = catalog.select(flavor, &boot)?;
    info!(?flavor, services = ?order, socket = settings.socket.describe(), "virtpod settings");
    Ok((settings, catalog, order))
}

fn setup(opts: Options) -> Result<Supervisor> {
    let boot = args::parse(&opts.args)?;
    let notify_socket = std::env::var("NOTIFY_SOCKET")
        .ok()
        .filter(|s| !s.is_empty());
    let env = service_env(std::env::vars(), &boot.setenv);
    info!(pid = std::process::id(), "virtpod init starting");
    let (settings, catalog, order) = choose(&opts.catalog, &boot, &env)?;
    let exe = std::env::current_exe().context("finding this binary for init's helpers")?;
    let helper = super::helpers::locate(&exe);
    anyhow::ensure!(
        helper.is_file(),
        "{} is missing: init speaks to libvirt through it (beside {} or at {}; `cargo build` builds it with virtpod, the images install it)",
        super::helpers::BINARY,
        exe.display(),
        super::helpers::INSTALLED
    );

    let (tx, rx) = std::sync::mpsc::channel();
    reaper::spawn(tx.clone()).context("starting the reaper thread")?;
    if std::process::id() != 1 {
        reaper::become_subreaper().context("becoming the child subreaper")?;
        if !super::polkit::own_pid_namespace() {
            warn!(
                "this container shares the host's PID namespace: `podman stop` signals every process in it, and qemu ends on SIGTERM without shutting its guest down; run it with --stop-signal SIGURG, which only virtpod init heeds (docs/modes.md)"
            );
        }
    }

    prepare_in_child(&exe, &opts.catalog, &env, &tx, &rx)?;

    let services = order.into_iter().map(|n| {
        let def = catalog.services[&n].clone();
        (n, def)
    });
    let cfg = Config {
        env,
        notify_socket,
        policy: settings.policy,
        guest_record: PathBuf::from(GUEST_RECORD),
        state_path: PathBuf::from(state::PATH),
        helper,
    };
    Ok(Supervisor::new(services.collect(), cfg, tx, rx))
}

/// The preparation runs as init's first child, `virtpod prepare`, the very command the systemd
/// variant runs: it may run programs of its own (saslpasswd2) and wait for them, which PID 1
/// must never do beside its reaper. A stop signal meanwhile is handed on to the supervisor.
fn prepare_in_child(
    exe: &Path,
    catalog: &Path,
    env: &BTreeMap<String, String>,
    tx: &std::sync::mpsc::Sender<reaper::Event>,
    rx: &std::sync::mpsc::Receiver<reaper::Event>,
) -> Result<()> {
    let argv = vec![
        exe.display().to_string(),
        "prepare".to_string(),
        "--catalog".to_string(),
        catalog.display().to_string(),
    ];
    let (pid, output) = spawn::spawn_with_output(
        spawn::Spawn {
            name: "prepare",
            argv: &argv,
            env,
            notify_fd: None,
            tail: None,
            affinity: None,
            listen: &[],
        },
        tx,
    )?;
    let mut stop = None;
    let exit = loop {
        match rx.recv().context("the reaper thread ended")? {
            reaper::Event::Exited(exit) if exit.pid == pid => break exit,
            reaper::Event::Stop(sig) => stop = Some(sig),
            _ => {}
        }
    };
    if let Some(sig) = stop {
        let _ = tx.send(reaper::Event::Stop(sig));
    }
    // Its last words first: the error below points at them.
    output.drain();
    if !exit.clean() {
        anyhow::bail!(
            "preparing the container failed ({exit}): the reason is the [prepare] line above"
        );
    }
    Ok(())
}

/// Everything before the daemons start: directories, owners of state from another image,
/// libvirt's settings for the daemons in `order`, /dev/kvm for qemu, no stale sockets.
fn prepare_container(catalog: &Catalog, order: &[String], settings: &Settings) -> Result<()> {
    prepare::capabilities(&std::fs::read_to_string("/proc/self/status").unwrap_or_default())?;
    if settings.polkit {
        super::polkit::check(&super::polkit::facts())?;
    }
    prepare::directories()?;
    super::owners::fix();
    let host_users = settings.socket.gid.is_some() || settings.polkit;
    if let Err(e) = super::accounts::add_host_accounts(host_users) {
        warn!("{e:#}: host users other than root may be refused by libvirt");
    }
    let daemons: Vec<&str> = order
        .iter()
        .filter(|n| catalog.services[*n].libvirt_daemon)
        .map(String::as_str)
        .collect();
    prepare::write_config(&daemons, settings)?;
    if let Some(credentials) = &settings.cockpit {
        super::cockpit::configure(credentials)?;
    }
    if let Some(keys) = &settings.ssh_keys {
        super::ssh::configure(keys)?;
    }
    prepare::kvm_device(&std::fs::read_to_string("/etc/group").unwrap_or_default());
    prepare::stale_sockets()
}

/// `virtpod prepare`: the preparation alone, for the image run with systemd as PID 1
/// (virtpod-prepare.service, before libvirt's sockets): the same settings for the same daemons,
/// with the environment systemd gives it (`systemd.setenv=` on systemd's command line).
pub fn prepare_only(catalog_dir: &Path) -> Result<()> {
    let env = service_env(std::env::vars(), &[]);
    let (settings, catalog, order) = choose(catalog_dir, &args::BootArgs::default(), &env)?;
    prepare_container(&catalog, &order, &settings)?;
    super::sasl::guests_login(settings.sasl.as_deref())
}

/// `virtpod prepare --socket rw=PATH|ro=PATH`: the socket settings applied to sockets systemd
/// made (the systemd variant's libvirtd.socket and libvirtd-ro.socket run it after binding).
pub fn socket_access_only(sockets: &[(bool, PathBuf)]) -> Result<()> {
    let env = service_env(std::env::vars(), &[]);
    let settings = Settings::from_env(&env)?;
    for (read_only, path) in sockets {
        prepare::socket_access(path, *read_only, &settings.socket)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_env_reaches_services_and_setenv_wins() {
        let container = [
            ("A".to_string(), "from-container".to_string()),
            ("NOTIFY_SOCKET".to_string(), "/run/notify".to_string()),
        ];
        let env = service_env(
            container,
            &[
                ("A".into(), "1".into()),
                ("A".into(), "2".into()),
                ("B".into(), "x".into()),
            ],
        );
        assert_eq!(env["A"], "2");
        assert_eq!(env["B"], "x");
        assert!(!env.contains_key("NOTIFY_SOCKET"));
        assert_eq!(env["PATH"], DEFAULT_PATH);
        let env = service_env([], &[("NOTIFY_SOCKET".into(), "/x".into())]);
        assert!(
            !env.contains_key("NOTIFY_SOCKET"),
            "not even through setenv"
        );
    }
}
