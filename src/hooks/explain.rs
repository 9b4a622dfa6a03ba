//! "Which hooks run for this container, at which stage, in which order."

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use super::dirs::{HookSet, Outcome};
use super::when::{matches, Container};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub file: String,
    pub dir: PathBuf,
    pub path: String,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub timeout: Option<i64>,
}

/// Stage name (as the hook files spell it) → hooks in the order they run. Only stages with
/// hooks appear. An error is what podman would refuse the container for.
pub fn explain(
    set: &HookSet,
    container: &Container,
) -> Result<BTreeMap<String, Vec<Entry>>, String> {
    if let Some(e) = set.first_error() {
        return Err(e);
    }
    let mut stages: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
    for file in set.ordered() {
        let Outcome::Valid(hook) = &file.outcome else {
            continue;
        };
        let hit = matches(&hook.when, container)
            .map_err(|e| format!("matching hook {:?}: {e}", file.name))?;
        if !hit {
            continue;
        }
        for stage in hook.stages.iter().flatten() {
            stages.entry(stage.clone()).or_default().push(Entry {
                file: file.name.clone(),
                dir: file.dir.clone(),
                path: hook.hook.path.clone(),
                args: hook.hook.args.clone().unwrap_or_default(),
                env: hook.hook.env.clone().unwrap_or_default(),
                timeout: hook.hook.timeout,
            });
        }
    }
    Ok(stages)
}

/// The annotations a plain `podman run` on Debian 12 (podman 4.3) gives a container whose command
/// is not an init; hooks see them beside the user's. [`PodmanRun`](super::podman::PodmanRun)
/// models other versions and options, and which of the user's annotations podman replaces.
pub fn podman_default_annotations() -> BTreeMap<String, String> {
    super::podman::PodmanRun::default()
        .annotations("sh", &BTreeMap::new())
        .unwrap_or_default()
}
