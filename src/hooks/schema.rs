//! The two schemas of oci-hooks(5) and their parsing, the way podman (containers/common
//! pkg/hooks) reads them: a file's `version` picks the reader; no `version` or `"0.1.0"` is the
//! legacy schema, converted to 1.0.0 with any-of matching.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A hook in schema 1.0.0, the form every file is converted to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    pub hook: Command,
    pub when: When,
    /// `None` when the file has no `stages` (an error at validation, as in podman).
    pub stages: Option<Vec<String>>,
}

/// What runs: the OCI runtime-spec hook object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    #[serde(default)]
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
}

impl Command {
    /// Whether this command is `virtpod hook …` (ours, wherever the binary is installed).
    pub fn runs_virtpod_hook(&self) -> bool {
        self.args
            .as_ref()
            .is_some_and(|a| a.len() >= 2 && a[0].ends_with("virtpod") && a[1] == "hook")
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct When {
    #[serde(default)]
    pub always: Option<bool>,
    #[serde(default)]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub commands: Option<Vec<String>>,
    #[serde(default, rename = "hasBindMounts")]
    pub has_bind_mounts: Option<bool>,
    /// Any-of matching, set only for files converted from 0.1.0 (as podman does).
    #[serde(skip)]
    pub or: bool,
}

impl When {
    pub fn is_empty(&self) -> bool {
        self.always.is_none()
            && self.annotations.as_ref().is_none_or(|a| a.is_empty())
            && self.commands.as_ref().is_none_or(|c| c.is_empty())
            && self.has_bind_mounts.is_none()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("not valid JSON: {0}")]
    Json(String),
    #[error("`version` must be a string: {0}")]
    VersionType(String),
    #[error("unrecognized hook version {0:?} (expected \"1.0.0\", or \"0.1.0\"/none for the legacy schema)")]
    Version(String),
    #[error("0.1.0: missing required property: hook")]
    MissingHook,
    #[error("0.1.0: missing required property: stages (or stage)")]
    MissingStages,
    #[error("0.1.0: cannot set both '{0}' and '{1}'")]
    Both(&'static str, &'static str),
}

#[derive(Deserialize)]
struct VersionOnly {
    #[serde(default)]
    version: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct V1 {
    #[serde(default)]
    hook: Option<Command>,
    #[serde(default)]
    when: Option<When>,
    #[serde(default)]
    stages: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct V0 {
    #[serde(default)]
    hook: Option<String>,
    #[serde(default)]
    arguments: Option<Vec<String>>,
    #[serde(default)]
    stages: Option<Vec<String>>,
    #[serde(default)]
    stage: Option<Vec<String>>,
    #[serde(default)]
    cmds: Option<Vec<String>>,
    #[serde(default)]
    cmd: Option<Vec<String>>,
    #[serde(default)]
    annotations: Option<Vec<String>>,
    #[serde(default)]
    annotation: Option<Vec<String>>,
    #[serde(default)]
    hasbindmounts: Option<bool>,
}

fn json<'a, T: Deserialize<'a>>(text: &'a str) -> Result<T, ParseError> {
    serde_json::from_str(text).map_err(|e| ParseError::Json(e.to_string()))
}

pub fn parse(text: &str) -> Result<Hook, ParseError> {
    let version = match json::<VersionOnly>(text)?.version {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(serde_json::Value::String(s)) => s,
        Some(other) => return Err(ParseError::VersionType(other.to_string())),
    };
    match version.as_str() {
        "1.0.0" => {
            let v: V1 = json(text)?;
            Ok(Hook {
                hook: v.hook.unwrap_or(Command {
                    path: String::new(),
                    args: None,
                    env: None,
                    timeout: None,
                }),
                when: v.when.unwrap_or_default(),
                stages: v.stages,
            })
        }
        "" | "0.1.0" => legacy(json(text)?),
        other => Err(ParseError::Version(other.to_string())),
    }
}

/// 0.1.0 → 1.0.0 as podman converts: `arguments` become args after the path, every condition
/// is any-of, annotation patterns are alternatives matched against every annotation's value.
fn legacy(raw: V0) -> Result<Hook, ParseError> {
    let path = raw.hook.ok_or(ParseError::MissingHook)?;
    let stages =
        either(raw.stages, raw.stage, ("stage", "stages"))?.ok_or(ParseError::MissingStages)?;
    let cmds = either(raw.cmds, raw.cmd, ("cmd", "cmds"))?;
    let annotations = either(
        raw.annotations,
        raw.annotation,
        ("annotation", "annotations"),
    )?;
    let args = raw
        .arguments
        .map(|a| std::iter::once(path.clone()).chain(a).collect());
    Ok(Hook {
        hook: Command {
            path,
            args,
            env: None,
            timeout: None,
        },
        when: When {
            always: None,
            annotations: annotations.map(|a| BTreeMap::from([(".*".to_string(), a.join("|"))])),
            commands: cmds,
            has_bind_mounts: raw.hasbindmounts,
            or: true,
        },
        stages: Some(stages),
    })
}

fn either(
    plural: Option<Vec<String>>,
    singular: Option<Vec<String>>,
    names: (&'static str, &'static str),
) -> Result<Option<Vec<String>>, ParseError> {
    match (plural, singular) {
        (Some(_), Some(_)) => Err(ParseError::Both(names.0, names.1)),
        (p, s) => Ok(p.or(s)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_schema() {
        let h = parse(r#"{"version":"1.0.0","hook":{"path":"/bin/true","args":["true","x"],"timeout":5},
            "when":{"annotations":{"^a$":"b"},"hasBindMounts":true},"stages":["prestart","precreate"]}"#)
        .unwrap();
        assert_eq!(h.hook.path, "/bin/true");
        assert_eq!(h.hook.timeout, Some(5));
        assert_eq!(h.when.has_bind_mounts, Some(true));
        assert!(!h.when.or);
        assert_eq!(h.stages.unwrap(), vec!["prestart", "precreate"]);
    }

    #[test]
    fn legacy_schema_converts_like_podman() {
        let h = parse(r#"{"hook":"/bin/hook","arguments":["a"],"stage":["prestart"],"cmd":["sh"],"annotation":["x","y"]}"#).unwrap();
        assert_eq!(h.hook.args.unwrap(), vec!["/bin/hook", "a"]);
        assert!(h.when.or);
        assert_eq!(h.when.annotations.unwrap()[".*"], "x|y");
        assert_eq!(h.when.commands.unwrap(), vec!["sh"]);
        assert_eq!(
            parse(r#"{"version":"0.1.0","hook":"/h","stages":[],"stage":[]}"#),
            Err(ParseError::Both("stage", "stages"))
        );
        assert_eq!(parse(r#"{"hook":"/h"}"#), Err(ParseError::MissingStages));
        assert_eq!(parse(r#"{}"#), Err(ParseError::MissingHook));
    }

    #[test]
    fn versions_and_json_errors() {
        assert_eq!(
            parse(r#"{"version":"2.0.0"}"#),
            Err(ParseError::Version("2.0.0".into()))
        );
        assert!(matches!(
            parse(r#"{"version":1}"#),
            Err(ParseError::VersionType(_))
        ));
        assert!(matches!(parse("{"), Err(ParseError::Json(_))));
        assert!(matches!(
            parse(r#"{"version":"1.0.0","stages":"prestart"}"#),
            Err(ParseError::Json(_))
        ));
    }
}
