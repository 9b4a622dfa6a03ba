//! `virtpod device add|remove|list`: devices for a running container, rootful, cgroup v1 or v2.
//! The same classes, selections and refusals as the hook's annotations (crate::hook): `add`
//! makes the nodes in the container's /dev (through /proc/PID/root, its mount namespace's view),
//! with the image's group, allows them in its device filter (crate::cgroup), and records the request
//! (crate::hook::added) so that the precreate hook gives them again at every start; `remove`
//! undoes the three; `list` shows what the container has from its annotations and from run-time
//! additions.
//!
//! `container` reads podman's view of the container; the rest acts on the host.

pub mod container;
pub mod watch;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use crate::cgroup::{self, Filter, Rule};
use crate::hook::discover::{self, Kind, Node};
use crate::hook::plan::Mode;
use crate::hook::request::{self, Request, Selection};
use crate::hook::{added, nodes, stage, HostPaths};
use crate::userns::in_user_namespace;

pub use container::Container;

/// `class` or `class=selection` from the command line, as requests (the annotations'
/// vocabulary: `ttyUSB=ttyUSB7`, `usb=1d6b:0002`, `audio`).
pub fn parse(args: &[String]) -> Result<Vec<Request>> {
    // One annotation per class: a class named twice is one request with both selections.
    let mut by_class: Vec<(String, String)> = Vec::new();
    for a in args {
        let (class, value) = a.split_once('=').unwrap_or((a, "true"));
        let key = format!("{}{class}", request::PREFIXES[0]);
        match by_class.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => {
                v.push(',');
                v.push_str(value);
            }
            None => by_class.push((key, value.to_string())),
        }
    }
    let requests = request::parse(by_class.iter().map(|(k, v)| (k, v)))?;
    anyhow::ensure!(
        !requests.is_empty(),
        "nothing asked for: name a class, such as ttyUSB=ttyUSB0 or usb=1d6b:0002"
    );
    Ok(requests)
}

/// What the container in front of us allows: a rootful container.
struct Target<'a> {
    c: &'a Container,
    pid: i32,
    /// The container's root as seen through its mount namespace.
    root: PathBuf,
    filter: Filter,
}

fn target(c: &Container) -> Result<Target<'_>> {
    if !nix::unistd::Uid::effective().is_root() || in_user_namespace("self") {
        bail!(
            "devices can be added only by root on the host (rootful podman): a rootless user \
             cannot make device nodes; create the container with the annotation instead (the hook \
             bind-mounts the nodes the user may open)"
        );
    }
    let pid = c.running_pid()?;
    if in_user_namespace(&pid.to_string()) {
        bail!(
            "{} runs in a user namespace, where a device node made from outside would not open; \
             create it with the annotation instead",
            c.name
        );
    }
    let filter = cgroup::of_process(pid, &c.id).with_context(|| c.name.clone())?;
    Ok(Target {
        c,
        pid,
        root: PathBuf::from(format!("/proc/{pid}/root")),
        filter,
    })
}

/// Whether podman runs our hook at this container's next start: the hook definitions match our
/// annotations only, so a container without one would not get its additions again.
fn hook_runs_for(c: &Container) -> bool {
    c.annotations.keys().any(|k| {
        request::is_device_annotation(k)
            || k.starts_with("io.virtpod.sysctl.")
            || k.starts_with(crate::modules::PREFIX)
            || k == added::BY_NAME
    })
}

/// `virtpod device add --record-only`: the requests recorded for the container's next start,
/// nothing made or allowed now (a stopped container). Each must resolve on the host now, as the
/// hook would resolve it, and what the container's annotations give is not recorded.
pub fn declare(host: &HostPaths, c: &Container, requests: Vec<Request>) -> Result<Vec<String>> {
    let from_annotations = annotation_nodes(c, host)?;
    let mut record = added::read(&host.added, &c.record_key()?)?;
    let mut said = Vec::new();
    for r in &requests {
        let found = discover::resolve(r, host).with_context(|| r.annotation.clone())?;
        if !found.nodes.is_empty()
            && found
                .nodes
                .iter()
                .all(|n| from_annotations.contains(&n.rel))
        {
            said.push(format!(
                "{}: {}: given by the container's annotations already; nothing to record",
                c.name, r.annotation
            ));
            continue;
        }
        record.add(r);
        said.push(format!(
            "{}: {}: recorded for its next start ({})",
            c.name,
            r.annotation,
            found
                .nodes
                .iter()
                .map(|n| n.container_path())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    added::write(&host.added, &record)?;
    if !hook_runs_for(c) {
        said.push(format!(
            "{}: podman runs virtpod's hook only for containers with an io.virtpod.device.* annotation, and this one has none: nothing will give them; create it with one (e.g. --annotation io.virtpod.device.kvm=true)",
            c.name
        ));
    }
    if c.pid > 0 {
        said.push(format!(
            "{}: it runs: nothing was given now (without --record-only, add gives them at once)",
            c.name
        ));
    }
    Ok(said)
}

/// `virtpod device add`: one line per node given, then what happens at the next start.
pub fn add(host: &HostPaths, c: &Container, requests: Vec<Request>) -> Result<Vec<String>> {
    let t = target(c)?;
    // What the container was created with (its annotations, `--device`) is neither made again
    // nor recorded: recorded, a remove would take it back.
    let from_annotations = annotation_nodes(c, host)?;
    let mut said = Vec::new();
    let requests: Vec<Request> = requests
        .into_iter()
        .filter(|r| {
            let nodes = discover::resolve(r, host)
                .map(|f| f.nodes)
                .unwrap_or_default();
            let all = |given: &dyn Fn(&Node) -> bool| !nodes.is_empty() && nodes.iter().all(given);
            let by = if all(&|n| from_annotations.contains(&n.rel)) {
                "the container's annotations"
            } else if all(&|n| from_annotations.contains(&n.rel) || c.devices.contains(&n.rel)) {
                "the container's --device"
            } else {
                return true;
            };
            said.push(format!(
                "{}: {}: given by {by} already; nothing to add",
                c.name, r.annotation
            ));
            false
        })
        .collect();
    if requests.is_empty() {
        return Ok(said);
    }
    let plan = stage::decide(&requests, host, Mode::Nodes, &t.root)?;
    said.extend(give(&t, &plan)?);
    let mut record = added::read(&host.added, &c.record_key()?)?;
    for g in &plan.grants {
        let n = &g.node;
        record.granted(n.class, &n.rel, n.kind.letter(), n.major, n.minor);
    }
    for b in &plan.binds {
        if fs::symlink_metadata(t.root.join(b.dest.trim_start_matches('/'))).is_err() {
            said.push(format!(
                "{}: {} is bound at the container's next start (a running container's mounts are not changed)",
                t.c.name, b.dest
            ));
        }
    }
    for r in &requests {
        record.add(r);
    }
    added::write(&host.added, &record)?;
    if hook_runs_for(c) {
        said.push(match c.annotations.get(added::BY_NAME) {
            Some(name) => format!(
                "{}: recorded under {}={name}; given again at every start of a container with that annotation",
                t.c.name,
                added::BY_NAME
            ),
            None => format!("{}: recorded; given again at every start", t.c.name),
        });
    } else {
        said.push(format!(
            "{}: recorded, but podman runs virtpod's hook only for containers with an io.virtpod.device.* annotation, and this one has none: the devices last until it stops; create it with one (e.g. --annotation io.virtpod.device.kvm=true)",
            t.c.name
        ));
    }
    Ok(said)
}

/// The plan's nodes made in the container and allowed in its cgroup. Nodes first, then the
/// cgroup: a failure on the way takes back what this call made, so nothing is left half given.
fn give(t: &Target, plan: &crate::hook::plan::Plan) -> Result<Vec<String>> {
    let mut said = plan.warnings.clone();
    let mut made = Vec::new();
    let undo = |made: &[&Node]| {
        for n in made {
            let _ = nodes::remove(&t.root, &n.rel);
        }
    };
    for g in &plan.grants {
        let n = &g.node;
        match nodes::make(&t.root, &n.rel, n.kind, n.major, n.minor, g.gid, g.mode) {
            Ok(nodes::Made::Created) => {
                made.push(n);
                said.push(format!(
                    "{}: added {} ({} {}:{}, group {})",
                    t.c.name,
                    n.container_path(),
                    kind_name(n.kind),
                    n.major,
                    n.minor,
                    g.gid
                ));
            }
            Ok(nodes::Made::Existed) => said.push(format!(
                "{}: {} exists in the container already; left as it is, and allowed",
                t.c.name,
                n.container_path()
            )),
            Err(e) => {
                undo(&made);
                return Err(e);
            }
        }
    }
    let rules: Vec<Rule> = plan.grants.iter().map(|g| g.node.rule()).collect();
    if let Err(e) = t.filter.allow(&rules) {
        undo(&made);
        return Err(e);
    }
    // What virtpod does not change (a slice's program, a subgroup's) may deny it still.
    for (g, verdict) in plan.grants.iter().zip(t.filter.in_force(&rules)) {
        if verdict == Some(false) {
            said.push(format!(
                "{}: {} is still denied by a device program virtpod does not change (on a slice above the container, or on the cgroup below it where its process runs); it will not open",
                t.c.name,
                g.node.container_path()
            ));
        }
    }
    Ok(said)
}

/// `virtpod device watch`: USB hotplug for the container until its process is gone. Each line
/// of what happened goes to `say`; a device that cannot be given, or an event that cannot be
/// read, is said and the watch goes on. What an unplug takes back comes from the watcher's own
/// account of what the container was given (the host's USB devices when it started, and each
/// one it gave since), never from the event's numbers: anyone who can write events must not
/// choose what the container loses.
pub fn watch(
    host: &HostPaths,
    c: &Container,
    mut source: watch::Source,
    mut say: impl FnMut(&str),
) -> Result<()> {
    let t = target(c)?;
    say(&format!(
        "{}: watching for USB devices plugged into the host",
        c.name
    ));
    // The annotation gave every USB device of the host at the start.
    let mut given: BTreeMap<String, Node> = usb_request("true")
        .and_then(|r| Ok(discover::resolve(&r, host)?.nodes))
        .unwrap_or_default()
        .into_iter()
        .map(|n| (n.rel.clone(), n))
        .collect();
    loop {
        if !still_there(&t) {
            say(&format!("{}: stopped; the watch ends", c.name));
            return Ok(());
        }
        let events = match source.next(std::time::Duration::from_secs(1)) {
            Ok(events) => events,
            Err(e) => {
                say(&format!(
                    "{}: events lost: {e:#}; the watch goes on",
                    c.name
                ));
                std::thread::sleep(std::time::Duration::from_secs(1));
                continue;
            }
        };
        for e in events {
            if !e.is_usb_device() {
                continue;
            }
            let done = match e.action.as_str() {
                "add" => plug(host, &t, &e).map(|(lines, nodes)| {
                    for n in nodes {
                        given.insert(n.rel.clone(), n);
                    }
                    lines
                }),
                "remove" => unplug(&t, &e, &mut given),
                _ => continue,
            };
            match done {
                Ok(lines) => lines.iter().for_each(|l| say(l)),
                Err(err) => say(&format!("{}: /dev/{}: {err:#}", c.name, e.devname)),
            }
        }
    }
}

/// The container's process still runs in the container's cgroup.
fn still_there(t: &Target) -> bool {
    // The container's cgroup, not the process's own: a systemd in the container moves itself
    // below it (init.scope) after the start.
    cgroup::of_process(t.pid, &t.c.id).is_ok_and(|f| f.dir() == t.filter.dir())
}

/// `usb=VALUE`: a hotplugged device (`bus/usb/BBB/DDD`), or `true` for every one; checked like
/// an annotation.
fn usb_request(value: &str) -> Result<Request> {
    let key = format!("{}usb", request::PREFIXES[0]);
    let value = value.to_string();
    let mut r = request::parse([(&key, &value)])?;
    r.pop()
        .ok_or_else(|| anyhow::anyhow!("{value}: not a USB device node"))
}

fn plug(host: &HostPaths, t: &Target, e: &watch::Event) -> Result<(Vec<String>, Vec<Node>)> {
    let plan = stage::decide(&[usb_request(&e.devname)?], host, Mode::Nodes, &t.root)?;
    let lines = give(t, &plan)?;
    Ok((lines, plan.grants.into_iter().map(|g| g.node).collect()))
}

fn unplug(t: &Target, e: &watch::Event, given: &mut BTreeMap<String, Node>) -> Result<Vec<String>> {
    let Some(node) = given.remove(&e.devname) else {
        return Ok(vec![format!(
            "{}: /dev/{}: not given by this watcher; nothing taken back",
            t.c.name, e.devname
        )]);
    };
    t.filter.deny(&[node.rule()])?;
    let gone = nodes::remove(&t.root, &node.rel)?;
    Ok(vec![format!(
        "{}: {} {}",
        t.c.name,
        if gone { "removed" } else { "had no" },
        node.container_path()
    )])
}

/// `virtpod device remove`: only run-time additions; a device the annotations give stays. The
/// host's grant is taken back (the filter's rule, the record) whatever the container did to its
/// nodes; a node the container changed (a symlink, a file) is left as the container's and
/// named. A stopped container has its record changed alone, so the next start gives nothing.
/// All or nothing: every request is checked before anything changes.
pub fn remove(host: &HostPaths, c: &Container, requests: Vec<Request>) -> Result<Vec<String>> {
    let t = if c.pid > 0 { Some(target(c)?) } else { None };
    let from_annotations = annotation_nodes(c, host)?;
    let mut record = added::read(&host.added, &c.record_key()?)?;
    let mut plan: Vec<(Request, Vec<Node>)> = Vec::new();
    for asked in &requests {
        let r = recorded_part(asked, &record, |rel| from_annotations.contains(rel))?;
        let nodes = nodes_to_take_back(&r, host, &record);
        if let Some(n) = nodes
            .iter()
            .find(|n| from_annotations.contains(&n.rel) || c.devices.contains(&n.rel))
        {
            bail!(
                "{}: {} is given by the container's annotations or --device as well; re-create the container without it (nothing removed)",
                asked.annotation,
                n.container_path()
            );
        }
        plan.push((r, nodes));
    }
    if let Some(t) = &t {
        let rules: Vec<Rule> = plan
            .iter()
            .flat_map(|(_, nodes)| nodes.iter().map(Node::rule))
            .collect();
        t.filter.deny(&rules)?;
    }
    for (r, _) in &plan {
        record.remove(r);
    }
    added::write(&host.added, &record)?;
    let mut said = Vec::new();
    for (r, nodes) in &plan {
        let Some(t) = &t else {
            said.push(format!(
                "{}: {}: taken out of the record; it is not running, so its next start gives nothing",
                c.name, r.annotation
            ));
            continue;
        };
        if nodes.is_empty() {
            said.push(format!(
                "{}: {}: the host no longer has it and the record (an older virtpod's) holds no numbers: taken out of the record; the container keeps its access until it restarts",
                c.name, r.annotation
            ));
        }
        for n in nodes {
            said.push(match nodes::remove(&t.root, &n.rel) {
                Ok(true) => format!("{}: removed {}", c.name, n.container_path()),
                Ok(false) => format!(
                    "{}: {} was gone already; its access is withdrawn",
                    c.name,
                    n.container_path()
                ),
                Err(e) => format!("{}: {e:#}; its access is withdrawn all the same", c.name),
            });
        }
    }
    Ok(said)
}

/// What of `asked` the record holds, as a request: `remove` touches only run-time additions,
/// never a device the container was created with (an annotation, `--device`). `from_annotations`
/// says whether a node path comes from the annotations, for the message.
fn recorded_part(
    asked: &Request,
    record: &added::Record,
    from_annotations: impl Fn(&str) -> bool,
) -> Result<Request> {
    let class = asked.class.name;
    let not_added = |name: &str| {
        let rel = asked
            .class
            .rel_for(name)
            .unwrap_or_else(|| name.to_string());
        if from_annotations(&rel) {
            anyhow::anyhow!(
                "{}: /dev/{rel} comes from the container's annotations, not from `virtpod device add`; re-create the container without it",
                asked.annotation
            )
        } else {
            anyhow::anyhow!(
                "{}: {name} was not added by `virtpod device add` (`virtpod device list` shows what was); nothing removed",
                asked.annotation
            )
        }
    };
    match (record.devices.get(class), &asked.selection) {
        (None, Selection::All) => Err(not_added(class)),
        (None, Selection::Names(names)) => Err(not_added(&names[0])),
        (Some(added::Added::All(_)), Selection::All) => Ok(asked.clone()),
        (Some(added::Added::All(_)), Selection::Names(_)) => bail!(
            "{}: the whole {class} class was added (`{class}`); remove it whole, as `{class}`",
            asked.annotation
        ),
        (Some(added::Added::Names(have)), Selection::All) => Ok(Request {
            selection: Selection::Names(have.clone()),
            ..asked.clone()
        }),
        (Some(added::Added::Names(have)), Selection::Names(names)) => {
            match names.iter().find(|n| !have.contains(n)) {
                Some(n) => Err(not_added(n)),
                None => Ok(asked.clone()),
            }
        }
    }
}

/// The nodes whose access a removal takes back: those the host has for the request now (the
/// hook gave these at the last start) and those the record noted when they were added (the
/// host may no longer have them). Never the container's own node: the container may have put
/// anything there.
fn nodes_to_take_back(r: &Request, host: &HostPaths, record: &added::Record) -> Vec<Node> {
    let mut found = discover::resolve(r, host)
        .map(|f| f.nodes)
        .unwrap_or_default();
    for (rel, g) in record.granted_for(r) {
        let kind = if g.kind == "b" {
            Kind::Block
        } else {
            Kind::Char
        };
        if !found
            .iter()
            .any(|n| &n.rel == rel && (n.kind, n.major, n.minor) == (kind, g.major, g.minor))
        {
            found.push(Node {
                class: r.class.name,
                host: PathBuf::from("/dev").join(rel),
                rel: rel.clone(),
                kind,
                major: g.major,
                minor: g.minor,
                mode: 0,
                gid: 0,
                group: None,
            });
        }
    }
    found
}

/// The nodes (paths under /dev) the container's annotations give on this host.
fn annotation_nodes(c: &Container, host: &HostPaths) -> Result<BTreeSet<String>> {
    Ok(annotation_requests(c)?
        .iter()
        .filter_map(|r| discover::resolve(r, host).ok())
        .flat_map(|f| f.nodes)
        .map(|n| n.rel)
        .collect())
}

fn annotation_requests(c: &Container) -> Result<Vec<Request>> {
    request::parse(c.annotations.iter()).with_context(|| format!("{}'s annotations", c.name))
}

/// One line of `virtpod device list`, as data: where the request comes from, the request, the
/// nodes of it present in the container now (None: not running), and those of them the
/// container's device filter denies now (a run-time addition that `podman update` took back
/// on cgroup v2).
pub struct Listed {
    pub origin: &'static str,
    pub request: Request,
    pub present: Option<Vec<String>>,
    pub denied: Vec<String>,
    /// For a run-time addition: the nodes its record stands for (the host's now, and those
    /// `add` noted), which a running container should have.
    pub expected: Vec<String>,
}

impl Listed {
    /// `ORIGIN REQUEST NODES`, NODES `-` for none; a fourth column when some are denied.
    pub fn line(&self, container: &str) -> String {
        let nodes = match &self.present {
            None => "(not running)".to_string(),
            Some(p) if p.is_empty() => "-".to_string(),
            Some(p) => p.join(","),
        };
        let mut line = format!("{}\t{}\t{nodes}", self.origin, self.request.annotation);
        if !self.denied.is_empty() {
            line.push_str("\tnot in force: ");
            line.push_str(&self.denied_now(container));
        }
        line
    }

    /// What doctor and the list say of a denied run-time addition, and how to give it again.
    pub fn denied_now(&self, container: &str) -> String {
        format!(
            "the container's device filter denies {} now (rebuilt by `podman update`?); give it again with `virtpod device add {container} {}`",
            self.denied.join(","),
            command_line_form(&self.request)
        )
    }
}

/// What the container has: from its annotations, and added at run time.
pub fn entries(host: &HostPaths, c: &Container) -> Result<Vec<Listed>> {
    let pid = c.running_pid().ok();
    let root = pid.map(|p| PathBuf::from(format!("/proc/{p}/root")));
    let filter = pid.and_then(|p| cgroup::of_process(p, &c.id).ok());
    let present = |r: &Request| -> Option<Vec<(String, Rule)>> {
        let root = root.as_ref()?;
        let rels: Vec<String> = match discover::resolve(r, host) {
            Ok(f) => f.nodes.into_iter().map(|n| n.rel).collect(),
            Err(_) => match &r.selection {
                Selection::Names(names) => {
                    names.iter().filter_map(|n| r.class.rel_for(n)).collect()
                }
                Selection::All => Vec::new(),
            },
        };
        Some(
            rels.into_iter()
                .filter_map(|rel| {
                    let (kind, major, minor) = nodes::stat(root, &rel)?;
                    Some((format!("/dev/{rel}"), kind.rule(major, minor)))
                })
                .collect(),
        )
    };
    let paths = |here: &Option<Vec<(String, Rule)>>| {
        here.as_ref()
            .map(|h| h.iter().map(|(p, _)| p.clone()).collect())
    };
    let mut all = Vec::new();
    for r in annotation_requests(c)? {
        let here = present(&r);
        all.push(Listed {
            origin: "annotation",
            present: paths(&here),
            denied: Vec::new(),
            expected: Vec::new(),
            request: r,
        });
    }
    let record = added::read(&host.added, &c.record_key()?)?;
    for r in record.requests()? {
        let here = present(&r);
        // The numbers the host granted, not those of the container's node: the container may
        // have put anything there.
        let granted = nodes_to_take_back(&r, host, &record);
        let rules: Vec<Rule> = granted.iter().map(|n| n.rule()).collect();
        let denied = match &filter {
            Some(f) => granted
                .iter()
                .zip(f.in_force(&rules))
                .filter(|(_, verdict)| *verdict == Some(false))
                .map(|(n, _)| n.container_path())
                .collect(),
            None => Vec::new(),
        };
        all.push(Listed {
            origin: "added",
            present: paths(&here),
            denied,
            expected: granted.iter().map(|n| n.container_path()).collect(),
            request: r,
        });
    }
    Ok(all)
}

/// `virtpod device list`: `ORIGIN REQUEST NODES` lines, NODES being the request's nodes present
/// in the container now (`-` for none). A run-time addition whose device the container's filter
/// denies now (on cgroup v2 `podman update` rebuilds the runtime's filter from podman's list)
/// gets a fourth column that says so and how to give it again.
pub fn list(host: &HostPaths, c: &Container) -> Result<Vec<String>> {
    Ok(entries(host, c)?.iter().map(|e| e.line(&c.name)).collect())
}

/// `virtpod device list --json`: the record (where it is kept, what it holds) beside what the
/// container has now, and where the two differ: a recorded node the running container lacks,
/// one its filter denies.
pub fn list_json(host: &HostPaths, c: &Container) -> Result<serde_json::Value> {
    let key = c.record_key()?;
    let record = added::read(&host.added, &key)?;
    let entries = entries(host, c)?;
    let mut differences = Vec::new();
    for e in entries.iter().filter(|e| e.origin == "added") {
        let Some(present) = &e.present else { continue };
        for node in e.expected.iter().filter(|n| !present.contains(n)) {
            differences.push(format!(
                "{}: recorded, but {node} is not in the container: it comes at the next start, or now with `virtpod device add {} {}`",
                e.request.annotation,
                c.name,
                command_line_form(&e.request)
            ));
        }
        if !e.denied.is_empty() {
            differences.push(format!(
                "{}: {}",
                e.request.annotation,
                e.denied_now(&c.name)
            ));
        }
    }
    let listed: Vec<serde_json::Value> = entries
        .iter()
        .map(|e| {
            serde_json::json!({
                "origin": e.origin,
                "request": e.request.annotation,
                "present": e.present,
                "recorded_nodes": e.expected,
                "denied": e.denied,
            })
        })
        .collect();
    Ok(serde_json::json!({
        "container": c.name,
        "id": c.id,
        "running": c.pid > 0,
        "record": {
            "key": key,
            "file": added::path(&host.added, &key)?,
            "devices": record.annotations().into_iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
            "granted": record.granted,
        },
        "live": listed,
        "differences": differences,
    }))
}

/// The request as `virtpod device add` takes it: `class` or `class=name,name`.
fn command_line_form(r: &Request) -> String {
    match &r.selection {
        Selection::All => r.class.name.to_string(),
        Selection::Names(names) => format!("{}={}", r.class.name, names.join(",")),
    }
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Char => "char",
        Kind::Block => "block",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_requests_use_the_annotations_vocabulary() {
        let args: Vec<String> = ["ttyUSB=ttyUSB7", "audio", "ttyUSB=ttyUSB3"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let r = parse(&args).unwrap();
        assert_eq!(r.len(), 2);
        let tty = r.iter().find(|r| r.class.name == "ttyUSB").unwrap();
        assert_eq!(
            tty.selection,
            Selection::Names(vec!["ttyUSB7".into(), "ttyUSB3".into()])
        );
        for (bad, says) in [
            ("nosuch=1", "unknown device class"),
            ("ttyUSB=../../etc/passwd", "ttyUSB"),
            ("ttyUSB=false", "nothing asked for"),
        ] {
            let e = parse(&[bad.to_string()]).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
