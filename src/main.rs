use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// libvirt in a container: PID 1 of the appliance image and its helpers.
#[derive(Parser)]
#[command(name = "virtpod", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    #[cfg(feature = "libvirt")]
    /// Run as PID 1 of the appliance: supervise libvirt's daemons, stop guests cleanly on stop.
    ///
    /// Arguments use systemd's kernel-command-line vocabulary:
    /// systemd.setenv=NAME=VALUE, systemd.mask=SERVICE, systemd.wants=SERVICE.
    Init {
        /// Directory of service definitions (one TOML file per service).
        #[arg(long, default_value = virtpod::init::catalog::DEFAULT_DIR)]
        catalog: PathBuf,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    #[cfg(feature = "libvirt")]
    /// Exit 0 when every service init runs is ready and libvirt answers; say why not otherwise.
    Health,
    #[cfg(feature = "libvirt")]
    /// Only prepare the container for libvirt (settings, directories, /dev/kvm, stale sockets)
    /// and exit: for the image run with systemd as PID 1 (virtpod-prepare.service).
    Prepare {
        /// Directory of service definitions: which daemons will run and need settings.
        #[arg(long, default_value = virtpod::init::catalog::DEFAULT_DIR)]
        catalog: PathBuf,
    },
    /// OCI hook definition files (oci-hooks(5)), read the way podman reads them.
    #[command(subcommand)]
    Hooks(HooksCommand),
    /// The OCI hook podman runs on the host: devices by annotation (io.virtpod.device.<class>).
    Hook {
        /// The hook stage podman or the runtime runs us for.
        stage: Stage,
        /// Log file for every decision (besides stderr).
        #[arg(long, default_value = virtpod::hook::log::DEFAULT_FILE)]
        log: PathBuf,
        /// off, error, warn, info, debug or trace.
        #[arg(long, default_value = "info")]
        log_level: tracing::level_filters::LevelFilter,
        #[command(flatten)]
        devices: DeviceArgs,
        /// Where what each container was given is recorded for poststop.
        #[arg(long, default_value = "/run/virtpod-hook")]
        state_dir: PathBuf,
    },
    /// Check this host for what the appliance and the hook need; name each problem and its fix.
    /// Exit 1 when something fails.
    Doctor {
        /// libvirt's socket as the appliance exposes it on the host.
        #[arg(long, default_value = virtpod::doctor::DEFAULT_SOCKET)]
        socket: PathBuf,
        /// A hooks directory, as podman's --hooks-dir (repeatable; default: podman's two).
        #[arg(long = "hooks-dir")]
        hooks_dirs: Vec<PathBuf>,
    },
    /// The hook's device classes present on this host as a CDI spec (one device per class),
    /// for `podman run --device virtpod.io/device=<class>`.
    Cdi {
        /// The spec's kind, vendor/class.
        #[arg(long, default_value = virtpod::cdi::DEFAULT_KIND)]
        kind: String,
        /// Write the spec here (e.g. /etc/cdi/virtpod.json) instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
        #[command(flatten)]
        devices: DeviceArgs,
    },
    /// Write our hook definitions where podman reads them, with this binary's absolute path.
    Install {
        /// The hooks directory.
        #[arg(long, default_value = virtpod::hook::install::DEFAULT_HOOKS_DIR)]
        hooks_dir: PathBuf,
        /// Also copy this binary to PREFIX/bin/virtpod and point the hooks there.
        #[arg(long)]
        prefix: Option<PathBuf>,
    },
}

/// Where the hook and `cdi` look for the host's devices.
#[derive(clap::Args)]
struct DeviceArgs {
    /// The host's device directory (tests point it at a directory of their own).
    #[arg(long, default_value = "/dev")]
    dev_root: PathBuf,
    /// sysfs, for USB vendor:product selections.
    #[arg(long, default_value = "/sys")]
    sys_root: PathBuf,
    /// udev's database, bound read-only for usb and udev.
    #[arg(long, default_value = "/run/udev")]
    udev_dir: PathBuf,
}

impl DeviceArgs {
    fn host_paths(self, state: PathBuf) -> virtpod::hook::HostPaths {
        virtpod::hook::HostPaths {
            dev: self.dev_root,
            sys: self.sys_root,
            udev: self.udev_dir,
            state,
        }
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Stage {
    Precreate,
    #[value(name = "createRuntime")]
    CreateRuntime,
    Prestart,
    Poststop,
}

#[derive(Subcommand)]
enum HooksCommand {
    /// Validate hook files: one line per file, the problem named, masking shown. Exit 1 when any
    /// file is invalid.
    Check {
        /// Hook directories in increasing precedence (default: podman's two).
        dirs: Vec<PathBuf>,
    },
    /// Which hooks run for a container like this, at which stage, in which order.
    Explain {
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
    },
}

fn parse_annotation(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{s:?}: expected KEY=VALUE"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Hook { .. }) {
        virtpod::logging::init();
    }
    match cli.command {
        #[cfg(feature = "libvirt")]
        Command::Init { catalog, args } => {
            let code = virtpod::init::run::run(virtpod::init::run::Options { catalog, args });
            ExitCode::from(code.clamp(0, 255) as u8)
        }
        #[cfg(feature = "libvirt")]
        Command::Health => {
            match virtpod::init::health::check(std::path::Path::new(virtpod::init::state::PATH)) {
                Ok(summary) => {
                    println!("{summary}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    println!("unhealthy: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        #[cfg(feature = "libvirt")]
        Command::Prepare { catalog } => match virtpod::init::run::prepare_only(&catalog) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!("{e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Hooks(cmd) => hooks(cmd),
        Command::Hook {
            stage,
            log,
            log_level,
            devices,
            state_dir,
        } => {
            virtpod::hook::log::init(log_level, &log);
            hook(stage, &devices.host_paths(state_dir))
        }
        Command::Doctor { socket, hooks_dirs } => {
            let findings = virtpod::doctor::run(&virtpod::doctor::Options { socket, hooks_dirs });
            let (report, ok) = virtpod::doctor::render(&findings);
            print!("{report}");
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Command::Cdi {
            kind,
            output,
            devices,
        } => {
            // cdi records nothing: the state directory is not used.
            let host = devices.host_paths(PathBuf::new());
            match cdi(&kind, output.as_deref(), &host) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("virtpod cdi: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Install { hooks_dir, prefix } => {
            let result = virtpod::hook::install::place_binary(prefix.as_deref())
                .and_then(|bin| Ok((virtpod::hook::install::install(&hooks_dir, &bin)?, bin)));
            match result {
                Ok((written, bin)) => {
                    for path in written {
                        println!("wrote {} (runs {})", path.display(), bin.display());
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("virtpod install: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn cdi(
    kind: &str,
    output: Option<&std::path::Path>,
    host: &virtpod::hook::HostPaths,
) -> anyhow::Result<()> {
    use anyhow::{anyhow, Context};
    virtpod::cdi::check_kind(kind).map_err(|e| anyhow!(e))?;
    let found = virtpod::cdi::discover(host).map_err(|e| anyhow!(e))?;
    let spec = virtpod::cdi::spec(kind, &found);
    let text = serde_json::to_string_pretty(&spec)? + "\n";
    let (present, absent): (Vec<_>, Vec<_>) =
        found.iter().partition(|(_, f)| virtpod::cdi::is_present(f));
    let names: Vec<&str> = present.iter().map(|(n, _)| *n).collect();
    let absent: Vec<&str> = absent.iter().map(|(n, _)| *n).collect();
    match output {
        None => print!("{text}"),
        Some(path) => {
            // Written beside and renamed: podman never reads half a spec.
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, &text)
                .and_then(|_| std::fs::rename(&tmp, path))
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {}: {kind}={{{}}}", path.display(), names.join(","));
        }
    }
    if !absent.is_empty() {
        eprintln!("not on this host: {}", absent.join(", "));
    }
    Ok(())
}

fn hook(stage: Stage, host: &virtpod::hook::HostPaths) -> ExitCode {
    use std::io::{Read, Write};
    use virtpod::hook::stage;
    let mut input = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut input) {
        tracing::error!("virtpod hook: reading stdin: {e}");
        return ExitCode::FAILURE;
    }
    let result = match stage {
        Stage::Precreate => stage::precreate(&input, host)
            .and_then(|out| Ok(std::io::stdout().lock().write_all(&out)?)),
        Stage::CreateRuntime => stage::create_runtime(&input, host, "createRuntime"),
        Stage::Prestart => stage::create_runtime(&input, host, "prestart"),
        Stage::Poststop => {
            stage::poststop(&input, host);
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("virtpod hook refused the container: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn hooks(cmd: HooksCommand) -> ExitCode {
    use virtpod::hooks::{
        check, dirs::HookSet, explain, validate::PODMAN_EXTENSION_STAGES, when::Container,
    };
    match cmd {
        HooksCommand::Check { dirs } => {
            let set = HookSet::load(
                &virtpod::hooks::dirs_or_default(&dirs),
                PODMAN_EXTENSION_STAGES,
            );
            let (report, ok) = check::report(&set);
            print!("{report}");
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        HooksCommand::Explain {
            hooks_dirs,
            annotations,
            command,
            has_bind_mounts,
            no_default_annotations,
            json,
        } => {
            let set = HookSet::load(
                &virtpod::hooks::dirs_or_default(&hooks_dirs),
                PODMAN_EXTENSION_STAGES,
            );
            let mut all = if no_default_annotations {
                Default::default()
            } else {
                explain::podman_default_annotations()
            };
            all.extend(annotations);
            for (a, b) in set.case_ties() {
                eprintln!("warning: {a} and {b} differ only in case; podman runs them in an undefined order");
            }
            let container = Container {
                annotations: all,
                command: Some(command.unwrap_or_else(|| "sh".into())),
                has_bind_mounts,
            };
            match explain::explain(&set, &container) {
                Ok(stages) if json => {
                    println!("{}", serde_json::json!({ "stages": stages }));
                    ExitCode::SUCCESS
                }
                Ok(stages) => {
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
                Err(e) => {
                    eprintln!("podman would refuse to create this container: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
