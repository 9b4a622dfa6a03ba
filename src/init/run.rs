//! `virtpod init`: set up, then hand over to the supervisor until a stop signal.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use tracing::{error, info};

use super::args;
use super::catalog::{detect_flavor, Catalog};
use super::prepare;
use super::reaper;
use super::state;
use super::supervisor::{Config, Supervisor};
use crate::libvirt::guests::Policy;

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
/// then `systemd.setenv=` in order. NOTIFY_SOCKET is init's alone: libvirtd would otherwise send
/// READY=1 itself, before libvirt as a whole is ready.
pub fn service_env(
    container: impl IntoIterator<Item = (String, String)>,
    setenv: &[(String, String)],
) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = container.into_iter().collect();
    env.remove("NOTIFY_SOCKET");
    env.entry("PATH".into())
        .or_insert_with(|| DEFAULT_PATH.into());
    for (k, v) in setenv {
        env.insert(k.clone(), v.clone());
    }
    env
}

fn setup(opts: Options) -> Result<Supervisor> {
    let boot = args::parse(&opts.args)?;
    let notify_socket = std::env::var("NOTIFY_SOCKET")
        .ok()
        .filter(|s| !s.is_empty());
    let env = service_env(std::env::vars(), &boot.setenv);
    let policy = Policy::from_env(&env)?;
    let catalog = Catalog::load(&opts.catalog)?;
    let flavor = detect_flavor(
        env.get("VIRTPOD_LIBVIRT_MODE").map(String::as_str),
        Path::exists,
    )?;
    let order = catalog.select(flavor, &boot)?;
    info!(pid = std::process::id(), ?flavor, services = ?order, "virtpod init starting");

    let (tx, rx) = std::sync::mpsc::channel();
    reaper::spawn(tx.clone()).context("starting the reaper thread")?;
    if std::process::id() != 1 {
        reaper::become_subreaper().context("becoming the child subreaper")?;
    }

    prepare_container(&catalog, &order, &env)?;

    let services = order.into_iter().map(|n| {
        let def = catalog.services[&n].clone();
        (n, def)
    });
    let cfg = Config {
        env,
        notify_socket,
        policy,
        guest_record: PathBuf::from(GUEST_RECORD),
        state_path: PathBuf::from(state::PATH),
    };
    Ok(Supervisor::new(services.collect(), cfg, tx, rx))
}

/// Everything before the daemons start: directories, libvirt's settings for the daemons in
/// `order`, /dev/kvm for qemu, no stale sockets.
fn prepare_container(
    catalog: &Catalog,
    order: &[String],
    env: &BTreeMap<String, String>,
) -> Result<()> {
    prepare::directories()?;
    let daemons: Vec<&str> = order
        .iter()
        .filter(|n| catalog.services[*n].libvirt_daemon)
        .map(String::as_str)
        .collect();
    prepare::write_config(&daemons, env)?;
    prepare::kvm_device(&std::fs::read_to_string("/etc/group").unwrap_or_default());
    prepare::stale_sockets()
}

/// `virtpod prepare`: the preparation alone, for the image run with systemd as PID 1
/// (virtpod-prepare.service, before libvirt's sockets): the same settings for the same daemons,
/// with the environment systemd gives it (`systemd.setenv=` on systemd's command line).
pub fn prepare_only(catalog_dir: &Path) -> Result<()> {
    let env = service_env(std::env::vars(), &[]);
    let catalog = Catalog::load(catalog_dir)?;
    let flavor = detect_flavor(
        env.get("VIRTPOD_LIBVIRT_MODE").map(String::as_str),
        Path::exists,
    )?;
    let order = catalog.select(flavor, &args::BootArgs::default())?;
    info!(?flavor, services = ?order, "preparing the container for libvirt");
    prepare_container(&catalog, &order, &env)
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
    }
}
