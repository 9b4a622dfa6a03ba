//! `virtpod hooks explain` against real podman: for every case of a corpus (valid and invalid
//! files, both schemas, masking, ordering, each `when` condition), podman runs a container with
//! `--hooks-dir` set to the case's directories, each hook records that it ran, and the record
//! must be what `explain` predicted: same hooks, same order per stage, same refusals.
//!
//! Cases with `podman run` options (`--rm`, `--init`, …) are predicted from virtpod's model of
//! what podman adds to a container (`hooks::podman::PodmanRun`, for the podman installed), whose
//! annotations and `process.args[0]` are handed to `explain` as `--annotation`/`--command`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use virtpod::hooks::podman::{installed_version, PodmanRun, Systemd};

use crate::harness::*;

/// The hook every case points at: it logs "<id> <what it saw>" and, as a precreate hook, passes
/// the config through. runc hands prestart, createRuntime and createContainer hooks a state with
/// status "creating" (run in that order), poststart "created", poststop "stopped".
const RECORDER: &str = r#"#!/bin/sh
input=$(cat)
case "$input" in
  *'"status"'*) kind=$(printf '%s' "$input" | sed -n 's/.*"status" *: *"\([a-z]*\)".*/\1/p') ;;
  *) kind=config; printf '%s' "$input" ;;
esac
echo "$1 $kind" >> "$2"
"#;

struct Case {
    name: &'static str,
    /// (directory index, file name, content); `@ID@` becomes "d<index>/<file>", `@REC@` the
    /// recorder's path, `@LOG@` the log's.
    files: Vec<(usize, &'static str, String)>,
    dirs: usize,
    annotations: Vec<(&'static str, &'static str)>,
    command: &'static str,
    bind_mount: bool,
    /// The last directory is passed to both but not created.
    missing_last_dir: bool,
    /// Extra `podman run` options (`@ROOT@` becomes the case's temporary directory) and the
    /// same options for the model; `None` leaves the prediction to explain's defaults.
    podman: Option<(Vec<&'static str>, PodmanRun)>,
    /// Something the container refers to, made for the case and removed after it.
    needs: Option<Needs>,
}

#[derive(Clone, Copy)]
enum Needs {
    /// A container to take volumes from (`--volumes-from`).
    VolumesFrom,
    /// A pod without infra container to join (`--pod`).
    Pod,
}

fn v1(when: &str, stages: &str) -> String {
    format!(
        r#"{{"version":"1.0.0","hook":{{"path":"@REC@","args":["rec","@ID@","@LOG@"]}},"when":{when},"stages":{stages}}}"#
    )
}

fn always(stages: &str) -> String {
    v1(r#"{"always":true}"#, stages)
}

fn legacy(rest: &str) -> String {
    format!(r#"{{"hook":"@REC@","arguments":["@ID@","@LOG@"],{rest}}}"#)
}

fn case(name: &'static str, files: Vec<(usize, &'static str, String)>) -> Case {
    let dirs = files.iter().map(|f| f.0 + 1).max().unwrap_or(1);
    Case {
        name,
        files,
        dirs,
        annotations: vec![],
        command: "true",
        bind_mount: false,
        missing_last_dir: false,
        podman: None,
        needs: None,
    }
}

impl Case {
    fn annotate(mut self, a: &[(&'static str, &'static str)]) -> Case {
        self.annotations = a.to_vec();
        self
    }
    fn command(mut self, c: &'static str) -> Case {
        self.command = c;
        self
    }
    fn bind(mut self) -> Case {
        self.bind_mount = true;
        self
    }
    fn missing_last_dir(mut self) -> Case {
        self.missing_last_dir = true;
        self
    }
    fn dirs(mut self, n: usize) -> Case {
        self.dirs = n;
        self
    }
    /// Run with these podman options, predicted by the model of them.
    fn podman(mut self, opts: &[&'static str], run: PodmanRun) -> Case {
        self.podman = Some((opts.to_vec(), run));
        self
    }
    /// A plain `podman run`, predicted by the model (not by explain's defaults).
    fn plain(self) -> Case {
        self.podman(&[], PodmanRun::default())
    }
    fn needs(mut self, n: Needs) -> Case {
        self.needs = Some(n);
        self.podman
            .get_or_insert_with(|| (vec![], PodmanRun::default()));
        self
    }
}

/// A hook that runs at precreate when the container has an annotation matching KEY: VALUE
/// (both regexes, JSON-escaped).
fn when_annotation(key: &str, value: &str) -> String {
    v1(
        &format!(r#"{{"annotations":{{"{key}":"{value}"}}}}"#),
        r#"["precreate"]"#,
    )
}

/// podman's init for `--init`: this machine has no catatonit, and any program that accepts
/// `-- true` and exits 0 will do, as the hooks are what is recorded.
const INIT_PATH: &str = "/usr/bin/true";

fn corpus() -> Vec<Case> {
    let pre = r#"["precreate"]"#;
    vec![
        // Stages, alone and together.
        case("always-precreate", vec![(0, "a.json", always(pre))]),
        case("always-poststop", vec![(0, "a.json", always(r#"["poststop"]"#))]),
        case("always-prestart", vec![(0, "a.json", always(r#"["prestart"]"#))]),
        case("create-runtime", vec![(0, "a.json", always(r#"["createRuntime"]"#))]),
        case("create-container", vec![(0, "a.json", always(r#"["createContainer"]"#))]),
        case("poststart", vec![(0, "a.json", always(r#"["poststart"]"#))]),
        case("all-stages", vec![(0, "a.json", always(r#"["precreate","prestart","createRuntime","createContainer","poststart","poststop"]"#))]),
        case("prestart-vs-create-runtime-order", vec![(0, "a.json", always(r#"["createRuntime"]"#)), (0, "b.json", always(r#"["prestart"]"#))]),
        case("no-stage", vec![(0, "a.json", always("[]"))]),
        case("start-container-never-matching", vec![(0, "a.json", v1(r#"{"always":false}"#, r#"["startContainer"]"#))]),
        // when: always, hasBindMounts.
        case("always-false", vec![(0, "a.json", v1(r#"{"always":false}"#, pre))]),
        case("empty-when", vec![(0, "a.json", v1("{}", pre))]),
        case("no-when", vec![(0, "a.json", r#"{"version":"1.0.0","hook":{"path":"@REC@","args":["rec","@ID@","@LOG@"]},"stages":["precreate"]}"#.into())]),
        case("bind-mounts-with-volume", vec![(0, "a.json", v1(r#"{"hasBindMounts":true}"#, pre))]).bind(),
        case("bind-mounts-without", vec![(0, "a.json", v1(r#"{"hasBindMounts":true}"#, pre))]),
        case("bind-mounts-false-with-volume", vec![(0, "a.json", v1(r#"{"hasBindMounts":false}"#, pre))]).bind(),
        // when: annotations.
        case("annotation-match", vec![(0, "a.json", v1(r#"{"annotations":{"^vp\\.dev$":"^true$"}}"#, pre))]).annotate(&[("vp.dev", "true")]),
        case("annotation-value-mismatch", vec![(0, "a.json", v1(r#"{"annotations":{"^vp\\.dev$":"^true$"}}"#, pre))]).annotate(&[("vp.dev", "false")]),
        case("annotation-unanchored", vec![(0, "a.json", v1(r#"{"annotations":{"device":"ru"}}"#, pre))]).annotate(&[("io.virtpod.device.kvm", "true")]),
        case("annotation-both-needed-one-given", vec![(0, "a.json", v1(r#"{"annotations":{"^a$":"1","^b$":"2"}}"#, pre))]).annotate(&[("a", "1")]),
        case("annotation-both-given", vec![(0, "a.json", v1(r#"{"annotations":{"^a$":"1","^b$":"2"}}"#, pre))]).annotate(&[("a", "1"), ("b", "2")]),
        case("annotation-podman-default", vec![(0, "a.json", v1(r#"{"annotations":{"autoremove$":"^FALSE$"}}"#, pre))]),
        case("annotation-pair-must-match-same-entry", vec![(0, "a.json", v1(r#"{"annotations":{"^a$":"^2$"}}"#, pre))]).annotate(&[("a", "1"), ("b", "2")]),
        case("annotation-and-always-false", vec![(0, "a.json", v1(r#"{"always":false,"annotations":{"^a$":"1"}}"#, pre))]).annotate(&[("a", "1")]),
        case("annotation-qm-device", vec![(0, "a.json", v1(r#"{"annotations":{"^org\\.containers\\.qm\\.device\\.":"^true$"}}"#, pre))]).annotate(&[("org.containers.qm.device.ttys", "true")]),
        // when: commands.
        case("command-match", vec![(0, "a.json", v1(r#"{"commands":["^true$"]}"#, pre))]),
        case("command-mismatch", vec![(0, "a.json", v1(r#"{"commands":["^sh$"]}"#, pre))]),
        case("command-unanchored", vec![(0, "a.json", v1(r#"{"commands":["ru"]}"#, pre))]),
        case("command-path", vec![(0, "a.json", v1(r#"{"commands":["^/bin/true$"]}"#, pre))]).command("/bin/true"),
        case("always-and-command-mismatch", vec![(0, "a.json", v1(r#"{"always":true,"commands":["^sh$"]}"#, pre))]),
        case("always-false-and-command-match", vec![(0, "a.json", v1(r#"{"always":false,"commands":["true"]}"#, pre))]),
        case("annotation-miss-command-match", vec![(0, "a.json", v1(r#"{"annotations":{"^x$":"y"},"commands":["true"]}"#, pre))]),
        // Ordering and masking.
        case("order-lowercase", vec![(0, "B.json", always(pre)), (0, "a.json", always(pre)), (0, "c.json", always(pre))]),
        case("order-code-point", vec![(0, "a_b.json", always(pre)), (0, "a.json", always(pre)), (0, "a-b.json", always(pre)), (0, "A1.json", always(pre))]),
        case("order-per-stage", vec![(0, "b.json", always(r#"["precreate","poststop"]"#)), (0, "a.json", always(r#"["poststop"]"#)), (0, "c.json", always(pre))]),
        case("mask-later-dir-wins", vec![(0, "x.json", always(pre)), (1, "x.json", always(pre))]),
        case("mask-by-non-matching", vec![(0, "x.json", always(pre)), (1, "x.json", v1(r#"{"always":false}"#, pre))]),
        case("mask-order-across-dirs", vec![(0, "b.json", always(pre)), (1, "a.json", always(pre)), (0, "c.json", always(pre))]),
        case("mask-three-dirs", vec![(0, "x.json", always(pre)), (1, "x.json", always(pre)), (2, "x.json", always(r#"["poststop"]"#)), (1, "y.json", always(pre))]),
        case("missing-hook-path-does-not-mask", vec![(0, "x.json", always(pre)), (1, "x.json", r#"{"version":"1.0.0","hook":{"path":"/nonexistent/hook"},"when":{"always":true},"stages":["precreate"]}"#.into())]),
        case("missing-directory-ignored", vec![(0, "a.json", always(pre))]).dirs(2).missing_last_dir(),
        case("non-json-ignored", vec![(0, "notes.txt", "not json at all".into()), (0, "a.json", always(pre)), (0, "b.json.bak", "{".into())]),
        case("empty-directory", vec![]).dirs(2),
        // Schema 0.1.0.
        case("legacy-cmds", vec![(0, "a.json", legacy(r#""stages":["prestart"],"cmds":["true"]"#))]),
        case("legacy-stage-and-annotation", vec![(0, "a.json", legacy(r#""stage":["precreate"],"annotation":["^on$"]"#))]).annotate(&[("x", "on")]),
        case("legacy-annotation-miss", vec![(0, "a.json", legacy(r#""stage":["precreate"],"annotations":["^on$"]"#))]).annotate(&[("x", "off")]),
        case("legacy-no-condition", vec![(0, "a.json", legacy(r#""stages":["precreate"]"#))]),
        case("legacy-bind-mounts", vec![(0, "a.json", legacy(r#""stages":["precreate"],"hasbindmounts":true"#))]).bind(),
        case("legacy-any-of", vec![(0, "a.json", legacy(r#""stages":["precreate"],"cmd":["^sh$"],"hasbindmounts":true"#))]).bind(),
        case("legacy-explicit-version", vec![(0, "a.json", legacy(r#""version":"0.1.0","stages":["precreate"],"cmds":["true"]"#))]),
        case("env-and-timeout", vec![(0, "a.json", r#"{"version":"1.0.0","hook":{"path":"@REC@","args":["rec","@ID@","@LOG@"],"env":["A=1"],"timeout":10},"when":{"always":true},"stages":["precreate","poststop"]}"#.into())]),
        // podman's own annotations. Present in every container: the container manager and the
        // stop signal (all versions), the TTY flag, creation time and FALSE for --rm, --init,
        // --privileged and -P (before 4.4).
        case("podman-manager", vec![(0, "a.json", when_annotation(r"^io\\.container\\.manager$", "^libpod$"))]),
        case("podman-stop-signal", vec![(0, "a.json", when_annotation(r"^org\\.opencontainers\\.image\\.stopSignal$", "^15$"))]),
        case("podman-legacy-value", vec![(0, "a.json", legacy(r#""stages":["precreate"],"annotations":["^libpod$"]"#))]),
        case("podman-created", vec![(0, "a.json", when_annotation(r"^io\\.kubernetes\\.cri-o\\.Created$", "^[0-9]{4}-[0-9]{2}-[0-9]{2}T"))]).plain(),
        case("podman-tty-false", vec![(0, "a.json", when_annotation(r"^io\\.kubernetes\\.cri-o\\.TTY$", "^false$"))]).plain(),
        case("podman-false-flags", vec![(0, "a.json", v1(r#"{"annotations":{"privileged$":"^FALSE$","init$":"^FALSE$","publish-all$":"^FALSE$","autoremove$":"^FALSE$"}}"#, pre))]).plain(),
        case("podman-no-rm", vec![(0, "a.json", when_annotation("autoremove$", "^TRUE$"))]).plain(),
        // ... and those that options add or change.
        case("podman-rm", vec![(0, "a.json", when_annotation("autoremove$", "^TRUE$"))]).podman(&["--rm"], PodmanRun { rm: true, ..Default::default() }),
        case("podman-init", vec![(0, "a.json", when_annotation(r"^io\\.podman\\.annotations\\.init$", "^TRUE$"))]).podman(&["--init", "--init-path", INIT_PATH], PodmanRun { init: true, ..Default::default() }),
        case("podman-init-command", vec![(0, "a.json", v1(r#"{"commands":["^/run/podman-init$"]}"#, pre)), (0, "b.json", v1(r#"{"commands":["^true$"]}"#, pre))]).podman(&["--init", "--init-path", INIT_PATH], PodmanRun { init: true, ..Default::default() }),
        case("podman-privileged", vec![(0, "a.json", when_annotation("privileged$", "^TRUE$"))]).podman(&["--privileged"], PodmanRun { privileged: true, ..Default::default() }),
        case("podman-publish-all", vec![(0, "a.json", when_annotation("publish-all$", "^TRUE$"))]).podman(&["-P"], PodmanRun { publish_all: true, ..Default::default() }),
        case("podman-tty", vec![(0, "a.json", when_annotation(r"cri-o\\.TTY$", "^true$"))]).podman(&["-t"], PodmanRun { tty: true, ..Default::default() }),
        case("podman-all-flags", vec![(0, "a.json", v1(r#"{"annotations":{"privileged$":"^TRUE$","init$":"^TRUE$","publish-all$":"^TRUE$","autoremove$":"^TRUE$"}}"#, pre))]).podman(&["--rm", "--init", "--init-path", INIT_PATH, "--privileged", "-P"], PodmanRun { rm: true, init: true, privileged: true, publish_all: true, ..Default::default() }),
        case("podman-stop-signal-option", vec![(0, "a.json", when_annotation("stopSignal$", "^9$"))]).podman(&["--stop-signal", "SIGKILL"], PodmanRun { stop_signal: Some(9), ..Default::default() }),
        case("podman-systemd-always", vec![(0, "a.json", when_annotation("stopSignal$", "^37$"))]).podman(&["--systemd=always"], PodmanRun { systemd: Systemd::Always, ..Default::default() }),
        case("podman-security-opts", vec![
            (0, "a.json", when_annotation(r"^io\\.podman\\.annotations\\.seccomp$", "^unconfined$")),
            (0, "b.json", when_annotation(r"^io\\.podman\\.annotations\\.label$", "^disable$")),
            (0, "c.json", when_annotation(r"^io\\.podman\\.annotations\\.apparmor$", "^unconfined$")),
        ]).podman(&["--security-opt", "seccomp=unconfined", "--security-opt", "label=disable", "--security-opt", "apparmor=unconfined"], PodmanRun { security_opts: vec!["seccomp=unconfined".into(), "label=disable".into(), "apparmor=unconfined".into()], ..Default::default() }),
        case("podman-cidfile", vec![(0, "a.json", when_annotation("cid-file$", "/cid$"))]).podman(&["--cidfile", "@ROOT@/cid"], PodmanRun { cidfile: Some("@ROOT@/cid".into()), ..Default::default() }),
        case("podman-keep-groups", vec![(0, "a.json", when_annotation(r"^run\\.oci\\.keep_original_groups$", "^1$"))]).podman(&["--group-add", "keep-groups"], PodmanRun { keep_groups: true, ..Default::default() }),
        case("podman-volumes-from", vec![(0, "a.json", when_annotation("volumes-from$", "^vp-hooks-src-"))]).needs(Needs::VolumesFrom),
        case("podman-pod", vec![(0, "a.json", when_annotation(r"cri-o\\.SandboxID$", "^[0-9a-f]{64}$")), (0, "b.json", when_annotation(r"cri-o\\.ContainerType$", "^container$"))]).needs(Needs::Pod),
        // Annotations only later podman versions add.
        case("podman-userns", vec![(0, "a.json", when_annotation(r"annotations\\.userns$", "."))]).podman(&["--userns=host"], PodmanRun { userns: Some("host".into()), ..Default::default() }),
        case("podman-stop-timeout", vec![(0, "a.json", when_annotation("TimeoutStopUSec$", "3000000$")), (0, "b.json", when_annotation("KillSignal$", "^15$"))]).podman(&["--stop-timeout", "3"], PodmanRun { stop_timeout: 3, ..Default::default() }),
        // The user's annotation against podman's of the same key.
        case("podman-replaces-user-init", vec![(0, "a.json", when_annotation(r"^io\\.podman\\.annotations\\.init$", "^TRUE$"))]).annotate(&[("io.podman.annotations.init", "TRUE")]).plain(),
        case("podman-replaces-user-stop-signal", vec![(0, "a.json", when_annotation("stopSignal$", "^9$"))]).annotate(&[("org.opencontainers.image.stopSignal", "9")]).plain(),
        case("podman-keeps-user-manager", vec![(0, "a.json", when_annotation(r"^io\\.container\\.manager$", "^libpod$")), (0, "b.json", when_annotation(r"^io\\.container\\.manager$", "^foo$"))]).annotate(&[("io.container.manager", "foo")]).plain(),
        case("podman-keeps-user-tty", vec![(0, "a.json", when_annotation(r"cri-o\\.TTY$", "^maybe$"))]).annotate(&[("io.kubernetes.cri-o.TTY", "maybe")]).plain(),
        case("podman-option-beats-user", vec![(0, "a.json", when_annotation("seccomp$", "^unconfined$"))]).annotate(&[("io.podman.annotations.seccomp", "x")]).podman(&["--security-opt", "seccomp=unconfined"], PodmanRun { security_opts: vec!["seccomp=unconfined".into()], ..Default::default() }),
        // Invalid files: podman refuses every container.
        case("invalid-json", vec![(0, "a.json", "{".into())]),
        case("invalid-version", vec![(0, "a.json", r#"{"version":"2.0.0","hook":{"path":"@REC@"},"when":{"always":true},"stages":["precreate"]}"#.into())]),
        case("invalid-version-type", vec![(0, "a.json", r#"{"version":1,"hook":"@REC@","stages":["precreate"]}"#.into())]),
        case("invalid-no-path", vec![(0, "a.json", r#"{"version":"1.0.0","hook":{},"when":{"always":true},"stages":["precreate"]}"#.into())]),
        // A hook path that does not exist: podman skips the file silently, and ignores the
        // directory's other errors when that is the directory's first error.
        case("missing-path-skipped", vec![(0, "a.json", r#"{"version":"1.0.0","hook":{"path":"/nonexistent/hook"},"when":{"always":true},"stages":["precreate"]}"#.into()), (0, "b.json", always(pre))]),
        case("missing-path-first-hides-invalid", vec![(0, "a.json", r#"{"version":"1.0.0","hook":{"path":"/nonexistent/hook"},"when":{"always":true},"stages":["precreate"]}"#.into()), (0, "b.json", always(r#"["prestrat"]"#)), (0, "c.json", always(pre))]),
        case("invalid-first-then-missing-path", vec![(0, "a.json", always(r#"["prestrat"]"#)), (0, "b.json", r#"{"version":"1.0.0","hook":{"path":"/nonexistent/hook"},"when":{"always":true},"stages":["precreate"]}"#.into())]),
        case("invalid-no-stages", vec![(0, "a.json", r#"{"version":"1.0.0","hook":{"path":"@REC@"},"when":{"always":true}}"#.into())]),
        case("invalid-unknown-stage", vec![(0, "a.json", always(r#"["prestrat"]"#))]),
        case("invalid-annotation-regex", vec![(0, "a.json", v1(r#"{"annotations":{"[":"x"}}"#, pre))]),
        case("invalid-annotation-value-regex", vec![(0, "a.json", v1(r#"{"annotations":{"x":"(a"}}"#, pre))]),
        case("invalid-command-regex", vec![(0, "a.json", v1(r#"{"commands":["*"]}"#, pre))]),
        case("invalid-stages-type", vec![(0, "a.json", r#"{"version":"1.0.0","hook":{"path":"@REC@"},"when":{"always":true},"stages":"precreate"}"#.into())]),
        case("invalid-legacy-both-stages", vec![(0, "a.json", legacy(r#""stages":["precreate"],"stage":["precreate"]"#))]),
        case("invalid-legacy-both-cmds", vec![(0, "a.json", legacy(r#""stages":["precreate"],"cmd":["a"],"cmds":["b"]"#))]),
        case("invalid-legacy-no-hook", vec![(0, "a.json", r#"{"stages":["precreate"]}"#.into())]),
        case("invalid-never-matching", vec![(0, "a.json", v1(r#"{"always":false}"#, r#"["nostage"]"#))]),
        case("invalid-in-masked-dir", vec![(0, "x.json", "{".into()), (1, "x.json", always(pre))]),
        case("invalid-beside-valid", vec![(0, "a.json", always(pre)), (0, "b.json", always(r#"["prestrat"]"#))]),
    ]
}

/// Per stage group, the hook ids in the order they ran (or are predicted to run).
type Runs = BTreeMap<String, Vec<String>>;

fn predicted(explained: &serde_json::Value) -> Runs {
    let mut runs = Runs::new();
    let stages = &explained["stages"];
    // runc runs prestart, then createRuntime, then createContainer hooks, all at "creating".
    for (stage, group) in [
        ("precreate", "config"),
        ("prestart", "creating"),
        ("createRuntime", "creating"),
        ("createContainer", "creating"),
        ("poststart", "created"),
        ("poststop", "stopped"),
    ] {
        for entry in stages[stage].as_array().into_iter().flatten() {
            runs.entry(group.into())
                .or_default()
                .push(entry["args"][1].as_str().unwrap_or("?").to_string());
        }
    }
    runs
}

fn recorded(log: &Path) -> Runs {
    let mut runs = Runs::new();
    for line in std::fs::read_to_string(log).unwrap_or_default().lines() {
        if let Some((id, kind)) = line.split_once(' ') {
            runs.entry(kind.to_string())
                .or_default()
                .push(id.to_string());
        }
    }
    runs
}

/// Runs one case both ways; `Err` describes a disagreement.
fn compare(c: &Case, rec: &Path) -> Result<(), String> {
    let root = tempfile::tempdir().unwrap();
    let log = root.path().join("log");
    let dirs: Vec<PathBuf> = (0..c.dirs)
        .map(|i| root.path().join(format!("d{i}")))
        .collect();
    let created = if c.missing_last_dir {
        &dirs[..dirs.len() - 1]
    } else {
        &dirs[..]
    };
    for d in created {
        std::fs::create_dir(d).unwrap();
    }
    for (i, name, content) in &c.files {
        let text = content
            .replace("@ID@", &format!("d{i}/{name}"))
            .replace("@REC@", rec.to_str().unwrap())
            .replace("@LOG@", log.to_str().unwrap());
        std::fs::write(dirs[*i].join(name), text).unwrap();
    }

    let at_root = |s: &str| s.replace("@ROOT@", root.path().to_str().unwrap());
    let mut opts: Vec<String> = Vec::new();
    let mut model = c.podman.as_ref().map(|(o, run)| {
        opts.extend(o.iter().map(|s| at_root(s)));
        let mut run = run.clone();
        run.version = installed_version().expect("podman --version");
        run.cidfile = run.cidfile.as_deref().map(at_root);
        run
    });
    // What the container refers to: made now, removed after the run.
    let mut cleanup: Vec<Vec<String>> = Vec::new();
    match (c.needs, model.as_mut()) {
        (Some(Needs::VolumesFrom), Some(run)) => {
            let src = unique("hooks-src");
            podman_ok(&[
                "create",
                "--name",
                &src,
                "--network",
                "none",
                BASE_IMAGE,
                "true",
            ]);
            opts.extend(["--volumes-from".into(), src.clone()]);
            run.volumes_from.push(src.clone());
            cleanup.push(vec!["rm".into(), "-f".into(), "-v".into(), src]);
        }
        (Some(Needs::Pod), Some(run)) => {
            let pod = unique("hooks-pod");
            let id = podman_ok(&["pod", "create", "--infra=false", "--name", &pod]);
            opts.extend(["--pod".into(), pod.clone()]);
            run.pod_sandbox_id = Some(id.trim().to_string());
            cleanup.push(vec!["pod".into(), "rm".into(), "-f".into(), pod]);
        }
        _ => {}
    }

    let mut explain = Command::new(env!("CARGO_BIN_EXE_virtpod"));
    explain.args(["hooks", "explain", "--json"]);
    for d in &dirs {
        explain.arg("--hooks-dir").arg(d);
    }
    match &model {
        None => {
            explain.args(["--command", c.command]);
            for (k, v) in &c.annotations {
                explain.arg("--annotation").arg(format!("{k}={v}"));
            }
        }
        Some(run) => {
            let user: BTreeMap<String, String> = c
                .annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let container = run
                .container(c.command, &user, c.bind_mount)
                .map_err(|e| format!("the model refuses the options: {e}"))?;
            explain.arg("--no-default-annotations");
            explain.arg("--command").arg(container.command.unwrap());
            for (k, v) in &container.annotations {
                explain.arg("--annotation").arg(format!("{k}={v}"));
            }
        }
    }
    if c.bind_mount {
        explain.arg("--has-bind-mounts");
    }
    let explained = explain.output().unwrap();
    // A user gives explain the same options as `podman run` (less --init-path, with the pod's
    // id): the answer must be the model's.
    if model.is_some() {
        let mut cli = Command::new(env!("CARGO_BIN_EXE_virtpod"));
        cli.args(["hooks", "explain", "--json", "--command", c.command]);
        for d in &dirs {
            cli.arg("--hooks-dir").arg(d);
        }
        for (k, v) in &c.annotations {
            cli.arg("--annotation").arg(format!("{k}={v}"));
        }
        if c.bind_mount {
            cli.arg("--has-bind-mounts");
        }
        let mut it = opts.iter();
        while let Some(o) = it.next() {
            match o.as_str() {
                "--init-path" => {
                    it.next();
                }
                "--pod" => {
                    it.next();
                    let id = model.as_ref().and_then(|r| r.pod_sandbox_id.clone());
                    cli.arg("--pod").arg(id.unwrap());
                }
                _ => {
                    cli.arg(o);
                }
            }
        }
        let by_flags = cli.output().unwrap();
        if (by_flags.status.success(), &by_flags.stdout)
            != (explained.status.success(), &explained.stdout)
        {
            return Err(format!(
                "explain with podman's flags {opts:?} said {}, the model {}",
                text(&by_flags),
                text(&explained)
            ));
        }
    }

    let name = unique("hooks");
    let mut args: Vec<String> = Vec::new();
    for d in &dirs {
        args.push("--hooks-dir".into());
        args.push(d.display().to_string());
    }
    args.extend([
        "run".into(),
        "--name".into(),
        name.clone(),
        "--network".into(),
        "none".into(),
    ]);
    args.extend(opts);
    for (k, v) in &c.annotations {
        args.push("--annotation".into());
        args.push(format!("{k}={v}"));
    }
    if c.bind_mount {
        args.push("-v".into());
        args.push(format!("{}:/mnt", root.path().display()));
    }
    args.push(BASE_IMAGE.into());
    args.push(c.command.into());
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let ran = podman(&argv);
    podman(&["rm", "-f", "-v", "-t", "0", &name]);
    for cmd in &cleanup {
        let argv: Vec<&str> = cmd.iter().map(String::as_str).collect();
        podman(&argv);
    }

    match (explained.status.success(), ran.status.success()) {
        (true, true) => {
            let json: serde_json::Value =
                serde_json::from_slice(&explained.stdout).map_err(|e| e.to_string())?;
            let (want, got) = (predicted(&json), recorded(&log));
            if want == got {
                Ok(())
            } else {
                Err(format!("explain predicted {want:?}, podman ran {got:?}"))
            }
        }
        (false, false) => {
            // Both refuse; explain names the file and the reason, as podman does.
            let why = String::from_utf8_lossy(&explained.stderr).into_owned();
            let podman_said = text(&ran);
            let file_named = c.files.iter().any(|(_, f, _)| why.contains(f))
                || why.contains("d0")
                || why.contains("d1");
            if !podman_said.contains("setting up OCI Hooks") {
                return Err(format!("podman failed for another reason: {podman_said}"));
            }
            if !file_named {
                return Err(format!("explain's error does not name the file: {why}"));
            }
            // `hooks check` names each broken file on one line, with the rule it breaks.
            let check = Command::new(env!("CARGO_BIN_EXE_virtpod"))
                .args(["hooks", "check"])
                .args(&dirs)
                .output()
                .unwrap();
            let report = String::from_utf8_lossy(&check.stdout).into_owned();
            let invalid: Vec<&str> = report
                .lines()
                .filter(|l| l.contains(": invalid: "))
                .collect();
            if check.status.code() != Some(1) || invalid.is_empty() {
                return Err(format!(
                    "hooks check did not fail with an invalid line:\n{report}"
                ));
            }
            if let Some(line) = invalid.iter().find(|l| {
                !c.files
                    .iter()
                    .any(|(_, f, _)| l.contains(&format!("/{f}: invalid: ")))
            }) {
                return Err(format!("check line does not name its file: {line}"));
            }
            Ok(())
        }
        (true, false) => Err(format!("explain accepted, podman refused: {}", text(&ran))),
        (false, true) => Err(format!(
            "explain refused ({}), podman ran {:?}",
            String::from_utf8_lossy(&explained.stderr).trim(),
            recorded(&log)
        )),
    }
}

#[test]
fn explain_agrees_with_podman_on_the_corpus() {
    require_prepared();
    let tools = tempfile::tempdir().unwrap();
    let rec = tools.path().join("rec");
    std::fs::write(&rec, RECORDER).unwrap();
    Command::new("chmod").arg("755").arg(&rec).status().unwrap();

    let cases = corpus();
    assert!(cases.len() >= 40, "the corpus has {} cases", cases.len());
    let mut disagreements = Vec::new();
    for c in &cases {
        if let Err(e) = compare(c, &rec) {
            disagreements.push(format!("{}: {e}", c.name));
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} of {} cases disagree:\n{}",
        disagreements.len(),
        cases.len(),
        disagreements.join("\n")
    );
    eprintln!("explain agreed with podman on all {} cases", cases.len());
}

/// Files nobody should have to read whole, or wait on: `hooks check` and `doctor` read hook
/// definitions as the hook reads its input (regular files, capped), finish, and name each;
/// doctor's fixes follow the cause (a directory given as the socket, a broken containers.conf).
#[test]
fn hooks_check_and_doctor_finish_on_fifos_endless_and_huge_files_and_name_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    nix::unistd::mkfifo(
        &d.join("x.json"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    std::os::unix::fs::symlink("/dev/zero", d.join("zero.json")).unwrap();
    let big = std::fs::File::create(d.join("big.json")).unwrap();
    big.set_len(2 * 1024 * 1024 * 1024).unwrap(); // sparse: 2 GB that read whole would be read
    let run = |args: &[&str], env: Option<(&str, &str)>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_virtpod"));
        cmd.args(args);
        if let Some((k, v)) = env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let start = std::time::Instant::now();
        while child.try_wait().unwrap().is_none() {
            if start.elapsed() > std::time::Duration::from_secs(30) {
                let _ = child.kill();
                panic!("{args:?} did not finish in 30 s");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let out = child.wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    let d_str = d.display().to_string();
    let report = run(&["hooks", "check", &d_str], None);
    for (file, says) in [
        ("x.json", "is not a regular file"),
        ("zero.json", "is not a regular file"),
        ("big.json", "is larger than"),
    ] {
        assert!(
            report.contains(&format!("/{file}: invalid: cannot read: ")) && report.contains(says),
            "{file}: {report}"
        );
    }
    let doctor = run(&["doctor", "--hooks-dir", &d_str, "--socket", &d_str], None);
    assert!(
        doctor.contains(
            "FAIL  hooks: podman refuses to create any container while a hook file is invalid"
        ),
        "{doctor}"
    );
    assert!(
        doctor.contains(&format!(
            "FAIL  socket: {d_str} is not a socket: a directory"
        )) && doctor.contains("name the appliance's socket file"),
        "{doctor}"
    );
    let broken = d.join("broken.conf");
    std::fs::write(&broken, "[engine\nruntime = ").unwrap();
    let doctor = run(
        &["doctor", "--socket", "/nonexistent/libvirt-sock"],
        Some(("CONTAINERS_CONF", &broken.display().to_string())),
    );
    assert!(
        doctor.contains("FAIL  podman:") && doctor.contains("podman cannot read its configuration"),
        "{doctor}"
    );
    assert!(!doctor.contains("apt-get install podman"), "{doctor}");
}
