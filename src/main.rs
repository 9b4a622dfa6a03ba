//! The `virtpod` binary: parse the command line and hand over to the command's own file under
//! `commands/`, as netavark does. Nothing else lives here.

mod commands;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

/// libvirt in a container: PID 1 of the appliance image and its helpers.
#[derive(Parser)]
#[command(name = "virtpod", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Init(commands::init::Init),
    Health(commands::health::Health),
    Prepare(commands::prepare::Prepare),
    #[cfg(feature = "systemd")]
    SystemdEnv(commands::systemd_env::SystemdEnv),
    #[cfg(feature = "systemd")]
    OneCpu(commands::one_cpu::OneCpu),
    #[command(subcommand)]
    Hooks(commands::hooks::Hooks),
    Hook(commands::hook::Hook),
    Doctor(commands::doctor::Doctor),
    Cdi(commands::cdi::Cdi),
    #[command(subcommand)]
    Device(commands::device::Device),
    Forward(commands::forward::Forward),
    LoginGate(commands::login_gate::LoginGate),
    Install(commands::install::Install),
    Uninstall(commands::install::Uninstall),
}

fn main() -> ExitCode {
    // podman runs the hook for every container it creates: it parses its own arguments only,
    // not the whole command line's (measured: ~0.1 ms of a ~0.5 ms call).
    // (--help goes the whole way, for the command's description.)
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let help = args.iter().any(|a| a == "-h" || a == "--help");
    if args.first().is_some_and(|a| a == "hook") && !help {
        return commands::hook::Hook::parse_alone(args.into_iter().skip(1)).exec();
    }
    let cli = Cli::parse();
    // The hook logs to its own file as well as stderr, and the watcher it starts to that file:
    // each sets up its own subscriber.
    match &cli.command {
        Command::Hook(_) => {}
        Command::Device(d) if d.log_file().is_some() => {}
        _ => virtpod::logging::init(),
    }
    match cli.command {
        Command::Init(c) => c.exec(),
        Command::Health(c) => c.exec(),
        Command::Prepare(c) => c.exec(),
        #[cfg(feature = "systemd")]
        Command::SystemdEnv(c) => c.exec(),
        #[cfg(feature = "systemd")]
        Command::OneCpu(c) => c.exec(),
        Command::Hooks(c) => c.exec(),
        Command::Hook(c) => c.exec(),
        Command::Doctor(c) => c.exec(),
        Command::Cdi(c) => c.exec(),
        Command::Device(c) => c.exec(),
        Command::Forward(c) => c.exec(),
        Command::LoginGate(c) => c.exec(),
        // Man pages and completions are generated from the whole command line.
        Command::Install(c) => c.exec(Cli::command()),
        Command::Uninstall(c) => c.exec(Cli::command()),
    }
}
