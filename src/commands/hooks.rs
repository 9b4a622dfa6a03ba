use std::path::PathBuf;
use std::process::ExitCode;

use virtpod::hooks::{
    check, dirs::HookSet, dirs_or_default, explain, validate::PODMAN_EXTENSION_STAGES,
    when::Container,
};

/// OCI hook definition files (oci-hooks(5)), read the way podman reads them.
#[derive(clap::Subcommand)]
pub enum Hooks {
    /// Validate hook files: one line per file, the problem named, masking shown. Exit 1 when any
    /// file is invalid.
    Check {
        /// Hook directories in increasing precedence (default: podman's two).
        dirs: Vec<PathBuf>,
    },
    /// Which hooks run for a container like this, at which stage, in which order.
    Explain(Explain),
}

#[derive(clap::Args)]
pub struct Explain {
    /// A hooks directory, as podman's --hooks-dir: repeatable, later ones take precedence.
    #[arg(long = "hooks-dir")]
    hooks_dirs: Vec<PathBuf>,
    /// An annotation of the container, KEY=VALUE (repeatable).
    #[arg(long = "annotation", value_parser = parse_annotation)]
    annotations: Vec<(String, String)>,
    /// The container's process.args[0].
    #[arg(long)]
    command: Option<String>,
    /// The container has bind mounts or volumes (-v).
    #[arg(long)]
    has_bind_mounts: bool,
    /// Leave out the annotations podman adds to every container (io.podman.annotations.*).
    #[arg(long)]
    no_default_annotations: bool,
    /// Print one JSON object: {"stages": {"<stage>": [{file, dir, path, args, env, timeout}]}}.
    #[arg(long)]
    json: bool,
}

fn parse_annotation(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{s:?}: expected KEY=VALUE"))
}

impl Hooks {
    pub fn exec(self) -> ExitCode {
        match self {
            Hooks::Check { dirs } => {
                let set = HookSet::load(&dirs_or_default(&dirs), PODMAN_EXTENSION_STAGES);
                let (report, ok) = check::report(&set);
                print!("{report}");
                super::exit_ok(ok)
            }
            Hooks::Explain(explain) => explain.exec(),
        }
    }
}

impl Explain {
    fn exec(self) -> ExitCode {
        let set = HookSet::load(&dirs_or_default(&self.hooks_dirs), PODMAN_EXTENSION_STAGES);
        let mut all = if self.no_default_annotations {
            Default::default()
        } else {
            explain::podman_default_annotations()
        };
        all.extend(self.annotations);
        for (a, b) in set.case_ties() {
            eprintln!(
                "warning: {a} and {b} differ only in case; podman runs them in an undefined order"
            );
        }
        let container = Container {
            annotations: all,
            command: Some(self.command.unwrap_or_else(|| "sh".into())),
            has_bind_mounts: self.has_bind_mounts,
        };
        let stages = match explain::explain(&set, &container) {
            Ok(stages) => stages,
            Err(e) => {
                eprintln!("podman would refuse to create this container: {e}");
                return ExitCode::FAILURE;
            }
        };
        if self.json {
            println!("{}", serde_json::json!({ "stages": stages }));
            return ExitCode::SUCCESS;
        }
        if stages.is_empty() {
            println!("no hook runs for this container");
        }
        for (stage, entries) in &stages {
            println!("{stage}:");
            for (i, e) in entries.iter().enumerate() {
                let timeout = e
                    .timeout
                    .map(|t| format!(" (timeout {t}s)"))
                    .unwrap_or_default();
                println!(
                    "  {}. {} from {}: {} {}{timeout}",
                    i + 1,
                    e.file,
                    e.dir.display(),
                    e.path,
                    e.args.join(" ")
                );
            }
        }
        ExitCode::SUCCESS
    }
}
