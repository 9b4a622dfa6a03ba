//! Annotations → device requests. Pure: no I/O, so every malformed input is a unit test.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};

use super::class::{self, Class};
use super::log;

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

/// The `usb` value that asks for USB hotplug as well (hooks.d/virtpod-usb-hotplug.json).
pub const HOTPLUG: &str = "hotplug";

/// The most names one annotation may select. A host has nowhere near this many devices of one
/// class, and the bound keeps the work on a crafted list small whatever its length.
pub const MAX_NAMES: usize = 4096;

/// Does this annotation key belong to us (either vocabulary)?
pub fn is_device_annotation(key: &str) -> bool {
    PREFIXES.iter().any(|p| key.starts_with(p))
}

/// The requests in a container's annotations, in class order; `false` requests nothing.
/// The first malformed annotation (in key order) is the error.
///
/// Linear in the size of the annotations: a config is user input, and podman kills a hook that
/// runs past its timeout, so no list is ever compared against another element by element.
pub fn parse<'a>(
    annotations: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Result<Vec<Request>, RequestError> {
    let ours: BTreeMap<&String, &String> = annotations
        .into_iter()
        .filter(|(k, _)| is_device_annotation(k))
        .collect();
    // At most one request per class, whichever vocabularies ask for it.
    let mut requests: Vec<Option<Request>> = class::CLASSES.iter().map(|_| None).collect();
    for (key, value) in ours {
        let name = PREFIXES
            .iter()
            .find_map(|p| key.strip_prefix(p))
            .unwrap_or_default();
        let annotation = log::clip(&format!("{key}={value}")).into_owned();
        let Some(index) = class::CLASSES.iter().position(|c| c.name == name) else {
            return Err(RequestError::UnknownClass {
                annotation,
                class: log::clip(name).into_owned(),
                valid: class::names(),
            });
        };
        let class = &class::CLASSES[index];
        let Some(selection) = parse_value(&annotation, class, value)? else {
            continue;
        };
        match &mut requests[index] {
            Some(existing) => merge(existing, selection),
            slot => {
                *slot = Some(Request {
                    annotation,
                    class,
                    selection,
                })
            }
        }
    }
    Ok(requests.into_iter().flatten().collect())
}

/// `extra` merged into `base` class by class (the annotations and `virtpod device add`'s
/// record), in class order.
pub fn combine(base: Vec<Request>, extra: Vec<Request>) -> Vec<Request> {
    let mut slots: Vec<Option<Request>> = class::CLASSES.iter().map(|_| None).collect();
    for r in base.into_iter().chain(extra) {
        let i = class::CLASSES
            .iter()
            .position(|c| c.name == r.class.name)
            .expect("a request's class is in the catalog");
        match &mut slots[i] {
            Some(existing) => merge(existing, r.selection),
            slot => *slot = Some(r),
        }
    }
    slots.into_iter().flatten().collect()
}

fn merge(existing: &mut Request, selection: Selection) {
    match (&mut existing.selection, selection) {
        (Selection::All, _) => {}
        (_, Selection::All) => existing.selection = Selection::All,
        (Selection::Names(a), Selection::Names(b)) => {
            // Each list is free of repeats already (parse_value).
            let have: HashSet<&str> = a.iter().map(String::as_str).collect();
            let new: Vec<String> = b.into_iter().filter(|n| !have.contains(&**n)).collect();
            a.extend(new);
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
    // `usb=hotplug`: every USB device now, and (crate::device::watch, started by the
    // poststart stage) every one plugged in while the container runs.
    if value.eq_ignore_ascii_case("true") || (class.name == "usb" && value == HOTPLUG) {
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
            "{:?} is not true or false, and {} has no device names to select",
            log::clip(value),
            class.name
        )));
    }
    // Commas as the issue and QM write lists; spaces too, because `podman run --annotation`
    // splits its argument at commas and a space-separated list is what survives it.
    let mut list = Vec::new();
    for piece in value.split(',') {
        if piece.trim().is_empty() {
            return Err(bad("an element of the list is empty".into()));
        }
        list.extend(piece.split_whitespace());
        if list.len() > MAX_NAMES {
            return Err(bad(format!(
                "more than {MAX_NAMES} names in one list; no host has that many {} devices",
                class.name
            )));
        }
    }
    let mut names = Vec::new();
    let mut seen: HashSet<Cow<str>> = HashSet::new();
    let mut scratch = String::new();
    for name in list {
        if name.eq_ignore_ascii_case("true") || name.eq_ignore_ascii_case("false") {
            return Err(bad(format!(
                "{:?} mixes true/false into a list",
                log::clip(value)
            )));
        }
        if !is_safe_name(name) {
            return Err(bad(format!(
                "{:?} is not a device name (letters, digits, '_', '-', '.', '+', ':' and '/' between names; no '..', no absolute path)",
                log::clip(name)
            )));
        }
        let name = if name.contains(':') {
            if class.name != "usb" {
                return Err(bad(format!(
                    "{name:?}: vendor:product ids select usb devices only"
                )));
            }
            if !is_usb_id(name) {
                return Err(bad(format!(
                    "{name:?} is not a usb id: vendor:product, 4 hex digits each, as lsusb shows them (e.g. 1d6b:0002)"
                )));
            }
            // One spelling per id, so that 1D6B:0002 and 1d6b:0002 are one selection.
            Cow::Owned(name.to_ascii_lowercase())
        } else {
            if !class.selects(name, &mut scratch) {
                return Err(bad(format!("{name:?} is not a {} device name", class.name)));
            }
            Cow::Borrowed(name)
        };
        if !seen.contains(&name) {
            names.push(name.to_string());
            seen.insert(name);
        }
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
    fn usb_ids_that_are_not_vendor_product_hex_say_so() {
        for v in ["1d6b:02", "1d6b:00g2", "1d6b:0002:1", ":0002", "12:34"] {
            let e = one("io.virtpod.device.usb", v).unwrap_err().to_string();
            assert!(
                e.contains("is not a usb id: vendor:product, 4 hex digits"),
                "{v}: {e}"
            );
        }
        let e = one("io.virtpod.device.audio", "1d6b:0002")
            .unwrap_err()
            .to_string();
        assert!(e.contains("select usb devices only"), "{e}");
        // One spelling per id.
        let r = one("io.virtpod.device.usb", "1D6B:0002 1d6b:0002").unwrap();
        assert_eq!(r[0].selection, Selection::Names(vec!["1d6b:0002".into()]));
    }

    #[test]
    fn echoed_values_are_clipped() {
        let huge = "x".repeat(1 << 20);
        for (k, v) in [
            ("io.virtpod.device.kvm", huge.as_str()),
            ("io.virtpod.device.ttyUSB", &format!("ttyUSB0 {huge}")),
            ("io.virtpod.device.ttyUSB", &format!("ttyUSB0 /{huge}")),
            (&format!("io.virtpod.device.{huge}"), "true"),
        ] {
            let e = one(k, v).unwrap_err().to_string();
            assert!(e.len() < 1000, "{} bytes: {}", e.len(), &e[..1000]);
            assert!(e.contains(" bytes)"), "{e}");
        }
    }

    /// The most names a list may hold, in both vocabularies, overlapping: merged in one pass.
    #[test]
    fn full_selections_in_both_vocabularies_merge_without_repeats() {
        let n = MAX_NAMES;
        let names = |r: std::ops::Range<usize>, sep| {
            r.map(|i| format!("ttyUSB{i}"))
                .collect::<Vec<_>>()
                .join(sep)
        };
        let a = BTreeMap::from([
            ("io.virtpod.device.ttyUSB".to_string(), names(0..n, " ")),
            (
                "org.containers.qm.device.ttyUSB".to_string(),
                names(n / 2..n + n / 2, ","),
            ),
            (
                "io.virtpod.device.ttyACM".to_string(),
                names(0..n, " ").replace("USB", "ACM"),
            ),
            ("io.virtpod.device.kvm".to_string(), "true".into()),
            ("org.containers.qm.device.kvm".to_string(), "kvm ".repeat(n)),
        ]);
        let r = parse(&a).unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].selection, Selection::All);
        let Selection::Names(names) = &r[1].selection else {
            panic!("{:?}", r[1].selection)
        };
        assert_eq!(names.len(), n + n / 2);
        assert_eq!(names[n], format!("ttyUSB{n}"));
        let Selection::Names(names) = &r[2].selection else {
            panic!()
        };
        assert_eq!(names.len(), n);
    }

    /// 100,000 names in each vocabulary: refused, after looking at the first few thousand.
    /// (The bench times it; a quadratic merge took 24 s here.)
    #[test]
    fn huge_selections_are_refused_early() {
        let huge: Vec<String> = (0..100_000).map(|i| format!("ttyUSB{i}")).collect();
        let a = BTreeMap::from([
            ("io.virtpod.device.ttyUSB".to_string(), huge.join(" ")),
            (
                "org.containers.qm.device.ttyUSB".to_string(),
                huge.join(","),
            ),
        ]);
        let e = parse(&a).unwrap_err().to_string();
        assert!(
            e.starts_with("io.virtpod.device.ttyUSB=ttyUSB0 ttyUSB1 "),
            "{e}"
        );
        assert!(
            e.contains("…(1188914 bytes): more than 4096 names in one list; "),
            "{e}"
        );
        assert!(e.len() < 600, "{e}");
    }

    #[test]
    fn other_annotations_are_ignored() {
        assert!(one("io.virtpod.other", "x").unwrap().is_empty());
        assert!(one("io.podman.annotations.init", "FALSE")
            .unwrap()
            .is_empty());
    }

    #[test]
    fn recorded_requests_merge_into_the_annotations_by_class() {
        let base = one("io.virtpod.device.ttyUSB", "ttyUSB0").unwrap();
        let mut extra = one("io.virtpod.device.ttyUSB", "ttyUSB7,ttyUSB0").unwrap();
        extra.extend(one("io.virtpod.device.kvm", "true").unwrap());
        let all = combine(base, extra);
        let names: Vec<&str> = all.iter().map(|r| r.class.name).collect();
        assert_eq!(names, ["kvm", "ttyUSB"], "class order");
        assert_eq!(
            all[1].selection,
            Selection::Names(vec!["ttyUSB0".into(), "ttyUSB7".into()])
        );
    }

    #[test]
    fn hotplug_is_every_usb_device_and_for_usb_only() {
        assert_eq!(
            one("io.virtpod.device.usb", "hotplug").unwrap()[0].selection,
            Selection::All
        );
        assert!(one("io.virtpod.device.ttyUSB", "hotplug").is_err());
    }
}
