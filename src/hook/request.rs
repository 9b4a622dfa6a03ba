//! Annotations → device requests. Pure: no I/O, so every malformed input is a unit test.

use std::collections::BTreeMap;

use super::class::{self, Class};

/// Our vocabulary and QM's device-manager vocabulary, accepted alike.
pub const PREFIXES: [&str; 2] = ["io.virtpod.device.", "org.containers.qm.device."];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    All,
    /// Node names (ttyUSB0, snd/controlC0, bus/usb/001/002) or, for usb, vendor:product ids.
    Names(Vec<String>),
}

#[derive(Debug, Clone)]
pub struct Request {
    /// `key=value`, as the user wrote it: every message about this request names it.
    pub annotation: String,
    pub class: &'static Class,
    pub selection: Selection,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RequestError {
    #[error("{annotation}: unknown device class {class:?}; valid classes: {valid}")]
    UnknownClass {
        annotation: String,
        class: String,
        valid: String,
    },
    #[error("{annotation}: {reason}; expected true, false or a comma-separated list of {class} devices (e.g. {example})")]
    BadValue {
        annotation: String,
        class: &'static str,
        reason: String,
        example: String,
    },
}

/// Does this annotation key belong to us (either vocabulary)?
pub fn is_device_annotation(key: &str) -> bool {
    PREFIXES.iter().any(|p| key.starts_with(p))
}

/// The requests in a container's annotations, in class order; `false` requests nothing.
/// The first malformed annotation (in key order) is the error.
pub fn parse<'a>(
    annotations: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Result<Vec<Request>, RequestError> {
    let ours: BTreeMap<&String, &String> = annotations
        .into_iter()
        .filter(|(k, _)| is_device_annotation(k))
        .collect();
    let mut requests: Vec<Request> = Vec::new();
    for (key, value) in ours {
        let name = PREFIXES
            .iter()
            .find_map(|p| key.strip_prefix(p))
            .unwrap_or_default();
        let annotation = format!("{key}={value}");
        let Some(class) = class::find(name) else {
            return Err(RequestError::UnknownClass {
                annotation,
                class: name.to_string(),
                valid: class::names(),
            });
        };
        let Some(selection) = parse_value(&annotation, class, value)? else {
            continue;
        };
        match requests.iter_mut().find(|r| r.class.name == class.name) {
            Some(existing) => merge(existing, selection),
            None => requests.push(Request {
                annotation,
                class,
                selection,
            }),
        }
    }
    requests.sort_by_key(|r| class::CLASSES.iter().position(|c| c.name == r.class.name));
    Ok(requests)
}

fn merge(existing: &mut Request, selection: Selection) {
    match (&mut existing.selection, selection) {
        (Selection::All, _) => {}
        (_, Selection::All) => existing.selection = Selection::All,
        (Selection::Names(a), Selection::Names(b)) => {
            for n in b {
                if !a.contains(&n) {
                    a.push(n);
                }
            }
        }
    }
}

fn parse_value(
    annotation: &str,
    class: &'static Class,
    value: &str,
) -> Result<Option<Selection>, RequestError> {
    let bad = |reason: String| RequestError::BadValue {
        annotation: annotation.to_string(),
        class: class.name,
        reason,
        example: class.example(),
    };
    let value = value.trim();
    if value.eq_ignore_ascii_case("true") {
        return Ok(Some(Selection::All));
    }
    if value.eq_ignore_ascii_case("false") {
        return Ok(None);
    }
    if value.is_empty() {
        return Err(bad("the value is empty".into()));
    }
    if class.nodes.is_empty() {
        return Err(bad(format!(
            "{value:?} is not true or false, and {} has no device names to select",
            class.name
        )));
    }
    let mut names = Vec::new();
    // Commas as the issue and QM write lists; spaces too, because `podman run --annotation`
    // splits its argument at commas and a space-separated list is what survives it.
    let mut list = Vec::new();
    for piece in value.split(',') {
        if piece.trim().is_empty() {
            return Err(bad("an element of the list is empty".into()));
        }
        list.extend(piece.split_whitespace());
    }
    for name in list {
        if !is_safe_name(name) {
            return Err(bad(format!(
                "{name:?} is not a device name (letters, digits, '_', '-', '.', ':' and '/' between names; no '..', no absolute path)"
            )));
        }
        if name.contains(':') && !(class.name == "usb" && is_usb_id(name)) {
            return Err(bad(format!(
                "{name:?}: vendor:product ids (4 hex digits each) select usb devices only"
            )));
        }
        let is_usb_id = class.name == "usb" && is_usb_id(name);
        if !is_usb_id && class.rel_for(name).is_none() {
            return Err(bad(format!("{name:?} is not a {} device name", class.name)));
        }
        names.push(name.to_string());
    }
    if names
        .iter()
        .any(|n| n.eq_ignore_ascii_case("true") || n.eq_ignore_ascii_case("false"))
    {
        return Err(bad(format!("{value:?} mixes true/false into a list")));
    }
    Ok(Some(Selection::Names(names)))
}

/// A relative path of plain components: no "..", no ".", no leading '/', a safe alphabet.
fn is_safe_name(name: &str) -> bool {
    name.len() <= 255
        && name.split('/').all(|c| {
            !c.is_empty()
                && c != "."
                && c != ".."
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-.:+".contains(&b))
        })
}

pub fn is_usb_id(name: &str) -> bool {
    match name.split_once(':') {
        Some((v, p)) => [v, p]
            .iter()
            .all(|x| x.len() == 4 && x.bytes().all(|b| b.is_ascii_hexdigit())),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(k: &str, v: &str) -> Result<Vec<Request>, RequestError> {
        let a = BTreeMap::from([(k.to_string(), v.to_string())]);
        parse(&a)
    }

    #[test]
    fn true_false_and_lists() {
        let r = one("io.virtpod.device.kvm", "true").unwrap();
        assert_eq!(r[0].class.name, "kvm");
        assert_eq!(r[0].selection, Selection::All);
        assert!(one("io.virtpod.device.kvm", "false").unwrap().is_empty());
        let r = one("io.virtpod.device.ttyUSB", "ttyUSB0, ttyUSB2").unwrap();
        assert_eq!(
            r[0].selection,
            Selection::Names(vec!["ttyUSB0".into(), "ttyUSB2".into()])
        );
        let r = one("io.virtpod.device.ttyUSB", "ttyUSB0 ttyUSB2").unwrap();
        assert_eq!(
            r[0].selection,
            Selection::Names(vec!["ttyUSB0".into(), "ttyUSB2".into()])
        );
        let r = one("io.virtpod.device.usb", "1d6b:0002").unwrap();
        assert_eq!(r[0].selection, Selection::Names(vec!["1d6b:0002".into()]));
    }

    #[test]
    fn qm_vocabulary_is_the_same_request() {
        let r = one("org.containers.qm.device.ttys", "true").unwrap();
        assert_eq!(r[0].class.name, "ttys");
        assert_eq!(r[0].annotation, "org.containers.qm.device.ttys=true");
    }

    #[test]
    fn both_vocabularies_merge() {
        let a = BTreeMap::from([
            (
                "org.containers.qm.device.ttys".to_string(),
                "tty1".to_string(),
            ),
            ("io.virtpod.device.ttys".to_string(), "tty2".to_string()),
        ]);
        let r = parse(&a).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(
            r[0].selection,
            Selection::Names(vec!["tty2".into(), "tty1".into()])
        );
    }

    #[test]
    fn errors_name_the_annotation_and_what_is_valid() {
        let e = one("io.virtpod.device.kvm", "maybe")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("io.virtpod.device.kvm=maybe: "), "{e}");
        assert!(e.contains("expected true, false"), "{e}");
        let e = one("io.virtpod.device.nosuch", "true")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown device class \"nosuch\"") && e.contains("kvm, vhost-net"),
            "{e}"
        );
        for v in [
            "../kvm",
            "/dev/kvm",
            "snd/../kvm",
            "a,,b",
            "",
            "tty 1",
            "ttyUSB0,true",
            "12:34",
        ] {
            let e = one("io.virtpod.device.ttyUSB", v).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("io.virtpod.device.ttyUSB={v}: ")),
                "{v}: {e}"
            );
        }
        assert!(one("io.virtpod.device.udev", "x").is_err());
        let e = one("io.virtpod.device.ttyUSB", "tty0")
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"tty0\" is not a ttyUSB device name"), "{e}");
    }

    #[test]
    fn other_annotations_are_ignored() {
        assert!(one("io.virtpod.other", "x").unwrap().is_empty());
        assert!(one("io.podman.annotations.init", "FALSE")
            .unwrap()
            .is_empty());
    }
}
