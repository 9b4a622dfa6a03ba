//! The ledger on disk and the lines for the container's log. Every cockpit-session (one per
//! login) runs the gate through pam_exec, in parallel: the file is read and written under an
//! exclusive lock.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, Result};
use nix::fcntl::{Flock, FlockArg};

use super::ledger::{Ledger, Verdict, POLICY};

/// In the container's /run: gone with the container, as are the sessions it throttles.
pub const PATH: &str = "/run/virtpod/cockpit-logins.json";
/// The container's log: init's stderr, which podman keeps.
pub const LOG: &str = "/proc/1/fd/2";
/// More than any ledger of `POLICY.max_entries` pairs takes.
const MAX_SIZE: u64 = 4 << 20;

/// The stage of the PAM stack the gate runs at (/etc/pam.d/virtpod-cockpit-auth).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Stage {
    /// Before the password is checked: fails while the pair is locked out.
    Check,
    /// After a wrong password.
    Failed,
    /// After the right one.
    Passed,
}

/// One login attempt as PAM describes it to pam_exec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub user: String,
    pub addr: String,
}

impl Attempt {
    /// PAM_USER and PAM_RHOST (cockpit-ws's peer address), as pam_exec exports them.
    pub fn from_env() -> Attempt {
        let var = |k| std::env::var(k).unwrap_or_default();
        let addr = var("PAM_RHOST");
        Attempt {
            user: var("PAM_USER"),
            addr: if addr.is_empty() {
                "an unknown address".into()
            } else {
                addr
            },
        }
    }
}

/// The outcome: whether PAM may go on, and the line for the log (if any).
pub struct Outcome {
    pub allow: bool,
    pub line: Option<(tracing::Level, String)>,
}

fn name(user: &str) -> String {
    let cut: String = user.chars().take(64).collect();
    format!("{cut:?}")
}

/// What a stage does to the ledger, and what it says. Pure, for the tests.
pub fn decide(ledger: &mut Ledger, stage: Stage, a: &Attempt, now: u64) -> Outcome {
    use tracing::Level;
    let who = format!("{} from {}", name(&a.user), name(&a.addr).trim_matches('"'));
    match stage {
        Stage::Check => match ledger.check(&POLICY, &a.user, &a.addr, now) {
            Verdict::Open => Outcome {
                allow: true,
                line: None,
            },
            Verdict::Locked {
                remaining,
                failures,
                first,
            } => Outcome {
                allow: false,
                line: first.then(|| {
                    (
                        Level::WARN,
                        format!("cockpit login as {who} refused without a look at the password: locked out for {remaining} s more after {failures} failed logins in a row (further tries in this lockout are counted, not logged)"),
                    )
                }),
            },
        },
        Stage::Failed => {
            let f = ledger.failed(&POLICY, &a.user, &a.addr, now);
            let mut line = format!(
                "cockpit login as {who} failed: wrong user name or password ({} in a row)",
                f.failures
            );
            if f.refused_before > 0 {
                line += &format!(
                    "; {} tries were refused during the last lockout",
                    f.refused_before
                );
            }
            if let Some(secs) = f.locked_for {
                line += &format!("; locked out from that address for {secs} s");
            }
            Outcome {
                allow: true,
                line: Some((Level::WARN, line)),
            }
        }
        Stage::Passed => {
            let before = ledger.passed(&a.user, &a.addr);
            let after = if before > 0 {
                format!(" after {before} failed")
            } else {
                String::new()
            };
            Outcome {
                allow: true,
                line: Some((Level::INFO, format!("cockpit login as {who}{after}"))),
            }
        }
    }
}

/// `decide` on the ledger at `path`, under its lock; the ledger is written back before the lock
/// is let go. A ledger that does not parse is started afresh (and said so): the password is
/// still checked, so nobody is let in by it, and nobody is locked out by a bad file.
pub fn run(path: &Path, stage: Stage, a: &Attempt, now: u64) -> Result<(Outcome, Option<String>)> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let mut file = Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .with_context(|| format!("cannot lock {}", path.display()))?;
    let mut text = String::new();
    (&*file)
        .take(MAX_SIZE)
        .read_to_string(&mut text)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let (mut ledger, note) = if text.trim().is_empty() {
        (Ledger::default(), None)
    } else {
        match serde_json::from_str(&text) {
            Ok(l) => (l, None),
            Err(e) => (
                Ledger::default(),
                Some(format!("{}: {e}; started afresh", path.display())),
            ),
        }
    };
    let outcome = decide(&mut ledger, stage, a, now);
    write_back(&mut file, &ledger).with_context(|| format!("cannot write {}", path.display()))?;
    Ok((outcome, note))
}

fn write_back(file: &mut File, ledger: &Ledger) -> std::io::Result<()> {
    let json = serde_json::to_vec(ledger)?;
    file.set_len(0)?;
    file.rewind()?;
    file.write_all(&json)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(user: &str, addr: &str) -> Attempt {
        Attempt {
            user: user.into(),
            addr: addr.into(),
        }
    }

    #[test]
    fn the_log_says_who_from_where_and_what_happened() {
        let mut l = Ledger::default();
        let a = at("admin", "203.0.113.7");
        for _ in 0..4 {
            let o = decide(&mut l, Stage::Failed, &a, 10);
            assert!(o.allow);
        }
        let o = decide(&mut l, Stage::Failed, &a, 10);
        let (_, line) = o.line.unwrap();
        assert_eq!(line, "cockpit login as \"admin\" from 203.0.113.7 failed: wrong user name or password (5 in a row); locked out from that address for 60 s");
        let o = decide(&mut l, Stage::Check, &a, 11);
        assert!(!o.allow);
        assert!(o.line.unwrap().1.contains("refused without a look at the password: locked out for 59 s more after 5 failed logins"));
        let o = decide(&mut l, Stage::Check, &a, 12);
        assert!(!o.allow && o.line.is_none(), "one line per lockout");
        let other = at("admin", "192.0.2.2");
        assert!(decide(&mut l, Stage::Check, &other, 12).allow);
        let o = decide(&mut l, Stage::Passed, &other, 12);
        assert_eq!(
            o.line.unwrap().1,
            "cockpit login as \"admin\" from 192.0.2.2"
        );
        let o = decide(&mut l, Stage::Failed, &a, 80);
        assert!(o.line.unwrap().1.contains("(6 in a row); 2 tries were refused during the last lockout; locked out from that address for 120 s"));
    }

    #[test]
    fn a_name_cannot_forge_a_log_line() {
        let mut l = Ledger::default();
        let o = decide(
            &mut l,
            Stage::Failed,
            &at("x\n INFO cockpit login as \"admin\"", "a\nb"),
            1,
        );
        let line = o.line.unwrap().1;
        assert!(!line.contains('\n'), "{line}");
    }

    #[test]
    fn the_ledger_lives_in_its_file_and_a_broken_file_starts_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logins.json");
        let a = at("admin", "203.0.113.7");
        for _ in 0..5 {
            run(&path, Stage::Failed, &a, 100).unwrap();
        }
        let (o, note) = run(&path, Stage::Check, &a, 101).unwrap();
        assert!(!o.allow && note.is_none());
        std::fs::write(&path, "{not json").unwrap();
        let (o, note) = run(&path, Stage::Check, &a, 102).unwrap();
        assert!(o.allow);
        assert!(note.unwrap().contains("started afresh"));
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        let e = run(&link, Stage::Check, &a, 103).err().unwrap();
        assert!(format!("{e:#}").contains("cannot open"), "{e:#}");
    }
}
