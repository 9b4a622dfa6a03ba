use std::path::PathBuf;
use std::process::ExitCode;

use virtpod::hooks::{
    check, dirs::HookSet, dirs_or_default, explain, podman, validate::PODMAN_EXTENSION_STAGES,
    when::Container,
};

/// OCI hook definition files (oci-hooks(5)), read the way podman reads them.
// Parsed once per run: the size of the enum does not matter.
#[allow(clippy::large_enum_variant)]
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
    /// The podman whose behaviour to model, MAJOR.MINOR[.PATCH] (default: the installed
    /// podman's, else 4.3).
    #[arg(long, value_name = "VERSION")]
    podman_version: Option<podman::Version>,
    /// As `podman run --rm`.
    #[arg(long)]
    rm: bool,
    /// As `podman run --rmi` (podman 5.3 and later, with --rm).
    #[arg(long)]
    rmi: bool,
    /// As `podman run --init`; process.args[0] becomes /run/podman-init.
    #[arg(long)]
    init: bool,
    /// As `podman run --privileged`.
    #[arg(long)]
    privileged: bool,
    /// As `podman run -P`.
    #[arg(short = 'P', long)]
    publish_all: bool,
    /// As `podman run -t`.
    #[arg(short = 't', long)]
    tty: bool,
    /// As `podman run --stop-signal` (or the image's STOPSIGNAL): a name or a number.
    #[arg(long, value_name = "SIGNAL", value_parser = podman::parse_signal)]
    stop_signal: Option<u32>,
    /// As `podman run --stop-timeout`, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    stop_timeout: u64,
    /// As `podman run --systemd`: true, false or always.
    #[arg(long, default_value = "true")]
    systemd: podman::Systemd,
    /// As `podman run --security-opt` (repeatable).
    #[arg(long = "security-opt", value_name = "OPT")]
    security_opts: Vec<String>,
    /// As `podman run --cidfile`.
    #[arg(long, value_name = "PATH")]
    cidfile: Option<String>,
    /// As `podman run --volumes-from` (repeatable).
    #[arg(long = "volumes-from", value_name = "CONTAINER")]
    volumes_from: Vec<String>,
    /// As `podman run --userns` (or containers.conf userns).
    #[arg(long, value_name = "MODE")]
    userns: Option<String>,
    /// As `podman run --group-add` (repeatable); only keep-groups changes what hooks see.
    #[arg(long = "group-add", value_name = "GROUP")]
    group_add: Vec<String>,
    /// As `podman run --pod`: the pod's infra container ID, or the pod's ID without one.
    #[arg(long = "pod", value_name = "SANDBOX_ID")]
    pod_sandbox_id: Option<String>,
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
        for (a, b) in set.case_ties() {
            eprintln!(
                "warning: {a} and {b} differ only in case; podman runs them in an undefined order"
            );
        }
        let user: std::collections::BTreeMap<String, String> =
            self.annotations.iter().cloned().collect();
        let command = self.command.clone().unwrap_or_else(|| "sh".into());
        let container = if self.no_default_annotations {
            Container {
                annotations: user,
                command: Some(command),
                has_bind_mounts: self.has_bind_mounts,
            }
        } else {
            let run = podman::PodmanRun {
                version: self.podman_version.unwrap_or_else(podman::default_version),
                rm: self.rm,
                rmi: self.rmi,
                init: self.init,
                privileged: self.privileged,
                publish_all: self.publish_all,
                tty: self.tty,
                stop_signal: self.stop_signal,
                stop_timeout: self.stop_timeout,
                systemd: self.systemd,
                security_opts: self.security_opts.clone(),
                cidfile: self.cidfile.clone(),
                volumes_from: self.volumes_from.clone(),
                userns: self.userns.clone(),
                keep_groups: self.group_add.iter().any(|g| g == "keep-groups"),
                pod_sandbox_id: self.pod_sandbox_id.clone(),
            };
            match run.container(&command, &user, self.has_bind_mounts) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("podman would refuse these options: {e}");
                    return ExitCode::FAILURE;
                }
            }
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
