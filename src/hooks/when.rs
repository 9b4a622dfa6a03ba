//! Whether a hook applies to a container, exactly as podman decides it: schema 1.0.0 conditions
//! must all hold (all of `always`, `hasBindMounts`, each annotation pattern pair); `commands`, when
//! the container has a process, must match its `args[0]`; with no condition the hook never runs.
//! Files converted from 0.1.0 match when any condition holds. Patterns are unanchored RE2.

use std::collections::BTreeMap;

use super::schema::When;
use super::validate::compile;

/// What podman knows about the container when it picks hooks.
#[derive(Debug, Clone, Default)]
pub struct Container {
    pub annotations: BTreeMap<String, String>,
    /// `process.args[0]`; `None` for a container without a process.
    pub command: Option<String>,
    pub has_bind_mounts: bool,
}

/// Patterns were compiled at validation; an error here names the pattern that failed.
pub fn matches(when: &When, c: &Container) -> Result<bool, String> {
    let or = when.or;
    let mut matched = 0;
    if let Some(always) = when.always {
        if always {
            if or {
                return Ok(true);
            }
            matched += 1;
        } else if !or {
            return Ok(false);
        }
    }
    if let Some(wanted) = when.has_bind_mounts {
        if wanted && c.has_bind_mounts {
            if or {
                return Ok(true);
            }
            matched += 1;
        } else if !or {
            return Ok(false);
        }
    }
    for (key_pattern, value_pattern) in when.annotations.iter().flatten() {
        let key_re = compile(key_pattern)?;
        let value_re = compile(value_pattern)?;
        let found = c
            .annotations
            .iter()
            .any(|(k, v)| key_re.is_match(k) && value_re.is_match(v));
        if found {
            if or {
                return Ok(true);
            }
            matched += 1;
        } else if !or {
            return Ok(false);
        }
    }
    if let (Some(command), Some(patterns)) = (&c.command, &when.commands) {
        if !patterns.is_empty() {
            for p in patterns {
                if compile(p)?.is_match(command) {
                    return Ok(true);
                }
            }
            return Ok(false);
        }
    }
    Ok(matched > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hooks::schema::parse;

    fn when(json: &str) -> When {
        parse(&format!(
            r#"{{"version":"1.0.0","hook":{{"path":"/x"}},"when":{json},"stages":[]}}"#
        ))
        .unwrap()
        .when
    }

    fn ctr(annotations: &[(&str, &str)], command: &str, binds: bool) -> Container {
        Container {
            annotations: annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            command: Some(command.into()),
            has_bind_mounts: binds,
        }
    }

    #[test]
    fn all_of_for_current_schema() {
        let w = when(r#"{"always":true,"annotations":{"^io\\.virtpod\\.":"true"}}"#);
        assert!(matches(&w, &ctr(&[("io.virtpod.device.kvm", "true")], "sh", false)).unwrap());
        assert!(!matches(&w, &ctr(&[("other", "true")], "sh", false)).unwrap());
        assert!(!matches(&when(r#"{"always":false}"#), &ctr(&[], "sh", false)).unwrap());
        assert!(!matches(&when(r#"{"hasBindMounts":false}"#), &ctr(&[], "sh", false)).unwrap());
        assert!(!matches(&when("{}"), &ctr(&[], "sh", true)).unwrap());
    }

    #[test]
    fn commands_decide_when_present() {
        let w = when(r#"{"always":true,"commands":["^/?bin/sh$","true"]}"#);
        assert!(
            matches(&w, &ctr(&[], "/usr/bin/true", false)).unwrap(),
            "unanchored"
        );
        assert!(!matches(&w, &ctr(&[], "bash", false)).unwrap());
        // Commands alone suffice, and a match wins even with no other condition.
        assert!(matches(&when(r#"{"commands":["sh"]}"#), &ctr(&[], "sh", false)).unwrap());
    }

    #[test]
    fn any_of_for_legacy_schema() {
        let w = parse(r#"{"hook":"/x","stages":[],"annotation":["^on$"],"hasbindmounts":true}"#)
            .unwrap()
            .when;
        assert!(matches(&w, &ctr(&[], "sh", true)).unwrap());
        assert!(matches(&w, &ctr(&[("anything", "on")], "sh", false)).unwrap());
        assert!(!matches(&w, &ctr(&[("anything", "off")], "sh", false)).unwrap());
    }
}
