//! The arguments of `virtpod init`, in systemd's kernel-command-line vocabulary, so a CMD
//! written for a systemd image keeps working with virtpod as PID 1.

use std::collections::BTreeSet;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArgError {
    #[error(
        "unknown argument {0:?}: virtpod init takes systemd.setenv=NAME=VALUE, \
         systemd.mask=SERVICE and systemd.wants=SERVICE"
    )]
    Unknown(String),
    #[error("malformed argument {arg:?}: {why}")]
    Malformed { arg: String, why: &'static str },
}

/// What the command line asks of init.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct BootArgs {
    /// `systemd.setenv=` pairs in command-line order; a later one wins.
    pub setenv: Vec<(String, String)>,
    pub mask: BTreeSet<String>,
    pub wants: BTreeSet<String>,
}

pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<BootArgs, ArgError> {
    let mut out = BootArgs::default();
    for arg in args {
        let arg = arg.as_ref();
        if let Some(pair) = arg.strip_prefix("systemd.setenv=") {
            let (name, value) = pair.split_once('=').ok_or_else(|| ArgError::Malformed {
                arg: arg.to_string(),
                why: "expected systemd.setenv=NAME=VALUE",
            })?;
            if !valid_env_name(name) {
                return Err(ArgError::Malformed {
                    arg: arg.to_string(),
                    why: "the variable name must be letters, digits and '_', not starting with a digit",
                });
            }
            out.setenv.push((name.to_string(), value.to_string()));
        } else if let Some(unit) = arg.strip_prefix("systemd.mask=") {
            out.mask.insert(service_name(arg, unit)?);
        } else if let Some(unit) = arg.strip_prefix("systemd.wants=") {
            out.wants.insert(service_name(arg, unit)?);
        } else {
            return Err(ArgError::Unknown(arg.to_string()));
        }
    }
    Ok(out)
}

fn valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `libvirtd` and `libvirtd.service` name the same service; other unit types do not exist here.
fn service_name(arg: &str, unit: &str) -> Result<String, ArgError> {
    let name = unit.strip_suffix(".service").unwrap_or(unit);
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '@'));
    if valid {
        Ok(name.to_string())
    } else {
        Err(ArgError::Malformed {
            arg: arg.to_string(),
            why: "expected a service name such as virtlockd or virtlockd.service",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_vocabulary() {
        let a = parse(&[
            "systemd.setenv=A=1",
            "systemd.setenv=B=x=y",
            "systemd.mask=virtlockd.service",
            "systemd.wants=sshd",
        ])
        .unwrap();
        assert_eq!(
            a.setenv,
            vec![("A".into(), "1".into()), ("B".into(), "x=y".into())]
        );
        assert!(a.mask.contains("virtlockd"));
        assert!(a.wants.contains("sshd"));
    }

    #[test]
    fn bad_arguments_are_errors() {
        assert_eq!(
            parse(&["--debug"]),
            Err(ArgError::Unknown("--debug".into()))
        );
        assert!(matches!(
            parse(&["systemd.setenv=NOVALUE"]),
            Err(ArgError::Malformed { .. })
        ));
        assert!(matches!(
            parse(&["systemd.setenv=1X=2"]),
            Err(ArgError::Malformed { .. })
        ));
        assert!(matches!(
            parse(&["systemd.mask=foo.socket"]),
            Err(ArgError::Malformed { .. })
        ));
        assert!(matches!(
            parse(&["systemd.wants="]),
            Err(ArgError::Malformed { .. })
        ));
    }

    #[test]
    fn message_names_the_argument_and_the_vocabulary() {
        let msg = parse(&["systemd.unit=foo"]).unwrap_err().to_string();
        assert!(msg.contains("systemd.unit=foo") && msg.contains("systemd.setenv=NAME=VALUE"));
    }
}
