//! Man pages and shell completions, generated from the binary's own clap definitions so they
//! always say what this build accepts.

use anyhow::{Context, Result};
use clap::Command;
use clap_mangen::Man;

use super::paths::Layout;
use super::write::{write_atomic, Done};

/// One page per command, named the git way: virtpod.1, virtpod-hooks.1, virtpod-hooks-check.1.
/// Hidden commands (internal helpers) and `help` get none.
pub fn man_pages(cli: Command) -> Result<Vec<(String, Vec<u8>)>> {
    let mut cli = cli.disable_help_subcommand(true);
    // Building names each subcommand's page after its parents (display name virtpod-hooks-check).
    cli.build();
    // Subcommands carry no version of their own: every page says the binary's.
    let source = format!(
        "{} {}",
        cli.get_name(),
        cli.get_version().unwrap_or_default()
    );
    let mut pages = Vec::new();
    collect(&cli, &source, &mut pages)?;
    Ok(pages)
}

fn collect(cmd: &Command, source: &str, pages: &mut Vec<(String, Vec<u8>)>) -> Result<()> {
    let man = Man::new(cmd.clone()).source(source);
    let mut page = Vec::new();
    man.render(&mut page)
        .with_context(|| format!("rendering the man page of {}", cmd.get_name()))?;
    pages.push((man.get_filename(), page));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        collect(sub, source, pages)?;
    }
    Ok(())
}

/// The names of the virtpod man pages in `man1` (as read here): `virtpod.1` and `virtpod-*.1`
/// that say they are virtpod's (`.TH virtpod…`, as clap_mangen writes them). Another
/// package's page of a similar name is not among them.
pub fn generated_pages(man1: &std::path::Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(man1) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n == "virtpod.1" || (n.starts_with("virtpod-") && n.ends_with(".1")))
        .filter(|n| {
            crate::files::read_config(&man1.join(n), crate::files::CONFIG_LIMIT)
                .is_ok_and(|t| t.lines().any(|l| l.starts_with(".TH virtpod")))
        })
        .collect();
    names.sort();
    names
}

/// The completion script for `shell`.
pub fn completion(shell: clap_complete::aot::Shell, cli: &Command) -> Vec<u8> {
    let mut cli = cli.clone();
    let mut script = Vec::new();
    clap_complete::aot::generate(shell, &mut cli, "virtpod", &mut script);
    script
}

/// Writes every man page and completion file of the layout.
pub fn install(layout: &Layout, cli: &Command, out: &mut dyn FnMut(Done)) -> Result<()> {
    const FIX: &str = "run as root (sudo), or choose another place with --prefix or --root";
    let man1 = layout.man1();
    for (name, page) in man_pages(cli.clone())? {
        let path = layout.on_disk(&man1.join(&name));
        let outcome = write_atomic(&path, &page, 0o644, FIX)?;
        let topic = name.trim_end_matches(".1");
        let note = format!("man {topic}");
        out(Done {
            path,
            outcome,
            note,
        });
    }
    for (shell, file) in layout.completions() {
        let path = layout.on_disk(&file);
        let outcome = write_atomic(&path, &completion(shell, cli), 0o644, FIX)?;
        let note = format!("{shell} completion");
        out(Done {
            path,
            outcome,
            note,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_pages_are_ours_by_name_and_title_only() {
        let t = tempfile::tempdir().unwrap();
        let bigger = Command::new("virtpod")
            .subcommand(Command::new("hook"))
            .subcommand(Command::new("systemd-env"));
        for (name, page) in man_pages(bigger).unwrap() {
            std::fs::write(t.path().join(name), page).unwrap();
        }
        std::fs::write(t.path().join("virtpod-other.1"), ".TH OTHER 1\n").unwrap();
        std::fs::write(t.path().join("ls.1"), ".TH virtpod 1\n").unwrap();
        assert_eq!(
            generated_pages(t.path()),
            ["virtpod-hook.1", "virtpod-systemd-env.1", "virtpod.1"]
        );
    }

    fn cli() -> Command {
        Command::new("virtpod")
            .version("1.2.3")
            .subcommand(Command::new("hook").about("The OCI hook"))
            .subcommand(
                Command::new("hooks")
                    .subcommand(Command::new("check"))
                    .subcommand(Command::new("explain")),
            )
            .subcommand(Command::new("init-helper").hide(true))
    }

    #[test]
    fn one_page_per_visible_command_named_after_its_parents() {
        let pages = man_pages(cli()).unwrap();
        let names: Vec<&str> = pages.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "virtpod.1",
                "virtpod-hook.1",
                "virtpod-hooks.1",
                "virtpod-hooks-check.1",
                "virtpod-hooks-explain.1"
            ]
        );
        let hook = String::from_utf8(pages[1].1.clone()).unwrap();
        assert!(hook.contains("The OCI hook"), "{hook}");
        assert!(hook.contains("virtpod 1.2.3"), "{hook}");
    }

    #[test]
    fn a_second_install_is_unchanged() {
        let t = tempfile::tempdir().unwrap();
        let layout = Layout::new(Some(t.path().into()), None, Some("/h".into()), t.path()).unwrap();
        let mut first = Vec::new();
        install(&layout, &cli(), &mut |d| first.push(d)).unwrap();
        assert_eq!(first.len(), 5 + 3);
        assert!(first
            .iter()
            .all(|d| d.outcome == super::super::Outcome::Written));
        let bash = t
            .path()
            .join("usr/local/share/bash-completion/completions/virtpod");
        assert!(std::fs::read_to_string(bash).unwrap().contains("_virtpod"));
        let mut second = Vec::new();
        install(&layout, &cli(), &mut |d| second.push(d)).unwrap();
        assert!(second
            .iter()
            .all(|d| d.outcome == super::super::Outcome::Unchanged));
    }
}
