use std::path::PathBuf;
use std::process::ExitCode;

/// Write our hook definitions where podman reads them, with this binary's absolute path.
#[derive(clap::Args)]
pub struct Install {
    /// The hooks directory.
    #[arg(long, default_value = virtpod::hook::install::DEFAULT_HOOKS_DIR)]
    hooks_dir: PathBuf,
    /// Also copy this binary to PREFIX/bin/virtpod and point the hooks there.
    #[arg(long)]
    prefix: Option<PathBuf>,
}

impl Install {
    pub fn exec(self) -> ExitCode {
        use virtpod::hook::install;
        let result = install::place_binary(self.prefix.as_deref())
            .and_then(|bin| Ok((install::install(&self.hooks_dir, &bin)?, bin)));
        match result {
            Ok((written, bin)) => {
                for path in written {
                    println!("wrote {} (runs {})", path.display(), bin.display());
                }
                ExitCode::SUCCESS
            }
            Err(e) => super::fail("install", e),
        }
    }
}
