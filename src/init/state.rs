//! What init publishes about itself for `virtpod health`: a small JSON file rewritten on every
//! change (atomically), read by a separate process.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

pub const PATH: &str = "/run/virtpod/state.json";

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Published {
    /// Service name → its state word (`waiting`, `listening`, `starting`, `ready`, `killing`, `backoff`,
    /// `stopping`, `down`), pid when it has one, and why it is not ready.
    pub services: BTreeMap<String, ServiceState>,
    pub libvirt_ready: bool,
    pub stopping: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ServiceState {
    pub state: String,
    pub pid: Option<i32>,
    /// Times it was started again since init began.
    #[serde(default)]
    pub restarts: u32,
    /// Why it is not ready: its last exit, a failed exec, a missed start timeout.
    #[serde(default)]
    pub why: Option<String>,
    /// Its last lines of output, when it is not ready.
    #[serde(default)]
    pub last_output: Vec<String>,
}

pub fn write(path: &Path, state: &Published) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(state)?)?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

pub fn read(path: &Path) -> Result<Published> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("reading {} (is `virtpod init` PID 1 here?)", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
}
