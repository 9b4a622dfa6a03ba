//! Load-time rules, in the order podman applies them, so the first broken rule reported is the
//! one podman would report.

use regex::Regex;

use super::schema::Hook;

/// The stages of the OCI runtime specification.
pub const OCI_STAGES: &[&str] = &[
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// The extension stages podman allows (it runs these itself): `precreate`, and `poststop`.
pub const PODMAN_EXTENSION_STAGES: &[&str] = &["precreate", "poststop"];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Invalid {
    #[error("missing required property: hook.path")]
    NoPath,
    #[error("hook.path {0:?} does not exist")]
    PathMissing(String),
    #[error("invalid annotation key {0:?}: {1}")]
    AnnotationKey(String, String),
    #[error("invalid annotation value {0:?}: {1}")]
    AnnotationValue(String, String),
    #[error("invalid command {0:?}: {1}")]
    Command(String, String),
    #[error("missing required property: stages")]
    NoStages,
    #[error("unknown stage {0:?} (valid: {1})")]
    Stage(String, String),
}

pub fn validate(
    hook: &Hook,
    extension_stages: &[&str],
    path_exists: impl Fn(&str) -> bool,
) -> Result<(), Invalid> {
    if hook.hook.path.is_empty() {
        return Err(Invalid::NoPath);
    }
    if !path_exists(&hook.hook.path) {
        return Err(Invalid::PathMissing(hook.hook.path.clone()));
    }
    for (key, value) in hook.when.annotations.iter().flatten() {
        compile(key).map_err(|e| Invalid::AnnotationKey(key.clone(), e))?;
        compile(value).map_err(|e| Invalid::AnnotationValue(value.clone(), e))?;
    }
    for command in hook.when.commands.iter().flatten() {
        compile(command).map_err(|e| Invalid::Command(command.clone(), e))?;
    }
    let stages = hook.stages.as_ref().ok_or(Invalid::NoStages)?;
    for stage in stages {
        if !OCI_STAGES.contains(&stage.as_str()) && !extension_stages.contains(&stage.as_str()) {
            let valid: Vec<&str> = OCI_STAGES.iter().chain(extension_stages).copied().collect();
            return Err(Invalid::Stage(stage.clone(), valid.join(", ")));
        }
    }
    Ok(())
}

/// The one-line message of a regex error (the crate's Display spans several lines).
pub fn compile(pattern: &str) -> Result<Regex, String> {
    Regex::new(pattern).map_err(|e| match e {
        regex::Error::Syntax(s) => s
            .lines()
            .last()
            .unwrap_or("syntax error")
            .trim()
            .to_string(),
        other => other.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hooks::schema::parse;

    fn check(json: &str) -> Result<(), Invalid> {
        validate(&parse(json).unwrap(), PODMAN_EXTENSION_STAGES, |p| {
            p == "/bin/true"
        })
    }

    #[test]
    fn rules() {
        assert_eq!(
            check(
                r#"{"version":"1.0.0","hook":{"path":"/bin/true"},"when":{"always":true},"stages":["precreate"]}"#
            ),
            Ok(())
        );
        assert_eq!(
            check(r#"{"version":"1.0.0","hook":{},"stages":["prestart"]}"#),
            Err(Invalid::NoPath)
        );
        assert_eq!(
            check(r#"{"version":"1.0.0","hook":{"path":"/nope"},"stages":["prestart"]}"#),
            Err(Invalid::PathMissing("/nope".into()))
        );
        assert_eq!(
            check(r#"{"version":"1.0.0","hook":{"path":"/bin/true"}}"#),
            Err(Invalid::NoStages)
        );
        assert!(matches!(
            check(
                r#"{"version":"1.0.0","hook":{"path":"/bin/true"},"when":{"annotations":{"[":"a"}},"stages":[]}"#
            ),
            Err(Invalid::AnnotationKey(..))
        ));
        assert!(matches!(
            check(
                r#"{"version":"1.0.0","hook":{"path":"/bin/true"},"when":{"annotations":{"a":"("}},"stages":[]}"#
            ),
            Err(Invalid::AnnotationValue(..))
        ));
        assert!(matches!(
            check(
                r#"{"version":"1.0.0","hook":{"path":"/bin/true"},"when":{"commands":["*"]},"stages":[]}"#
            ),
            Err(Invalid::Command(..))
        ));
        let e = check(r#"{"version":"1.0.0","hook":{"path":"/bin/true"},"stages":["prestrat"]}"#)
            .unwrap_err();
        assert!(e.to_string().contains("\"prestrat\"") && e.to_string().contains("precreate"));
    }
}
