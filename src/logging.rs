//! One place that sets up tracing for every subcommand.

use tracing_subscriber::EnvFilter;

const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];

/// `VIRTPOD_LOG` as a tracing filter: unset or empty is `info` (an empty setting is an unset
/// one, as for every other setting); `warning` is `warn`. Anything else is refused with a line
/// that names it, rather than read as a target name that silences every line, or as nothing.
pub fn filter(value: Option<&str>) -> Result<String, String> {
    let value = value.map(str::trim).unwrap_or_default();
    if value.is_empty() {
        return Ok("info".into());
    }
    let mut out = Vec::new();
    for directive in value.split(',').map(str::trim) {
        let (target, level) = match directive.rsplit_once('=') {
            Some((t, l)) if !t.is_empty() => (Some(t), l),
            _ => (None, directive),
        };
        let level = match level.to_ascii_lowercase().as_str() {
            "warning" => "warn".to_string(),
            l if LEVELS.contains(&l) => l.to_string(),
            _ => {
                return Err(format!(
                    "VIRTPOD_LOG={value}: {directive:?} is not a log level; use one of {} (or TARGET=LEVEL, comma separated), or leave it unset for info",
                    LEVELS.join(", ")
                ))
            }
        };
        out.push(match target {
            Some(t) => format!("{t}={level}"),
            None => level,
        });
    }
    Ok(out.join(","))
}

/// Logs go to stderr (the container log) at `VIRTPOD_LOG`. A refused setting ends the command
/// here (status 2), its line printed whatever the filter would have let through.
pub fn init() {
    let value = std::env::var("VIRTPOD_LOG").ok();
    let directives = match filter(value.as_deref()) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("virtpod: {e}");
            std::process::exit(2);
        }
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(directives))
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .without_time()
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_setting_is_a_level_or_refused_with_its_name() {
        assert_eq!(filter(None).unwrap(), "info");
        assert_eq!(filter(Some("")).unwrap(), "info");
        assert_eq!(filter(Some("warning")).unwrap(), "warn");
        assert_eq!(filter(Some("DEBUG")).unwrap(), "debug");
        assert_eq!(
            filter(Some("info,virtpod::init=trace")).unwrap(),
            "info,virtpod::init=trace"
        );
        for bad in ["verbose", "info,loud", "x=yes"] {
            let e = filter(Some(bad)).unwrap_err();
            assert!(
                e.contains(&format!("VIRTPOD_LOG={bad}")) && e.contains("warn, error"),
                "{e}"
            );
        }
    }
}
