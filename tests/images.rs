//! The appliance's Containerfiles kept in step: every top-level `Containerfile.*` is checked
//! against Containerfile.debian, the reference. The same ENTRYPOINT, CMD, STOPSIGNAL, VOLUMEs and
//! HEALTHCHECK (these are the image's contract with podman, compose, quadlet and the docs); the
//! same files copied into the image, save the exceptions in `COPY_EXCEPTIONS`, each with its
//! reason; a build stage that builds both binaries; and, per distribution, a package for every
//! role the image needs (`ROLES`). No root, no podman: `cargo test --test images`.
//!
//! The Containerfiles are read by a small parser of our own (the instructions they use, see
//! `KNOWN`), and every check is a function over text, so the tests at the end feed broken copies
//! to the same checks and make sure each drift is caught with a message that says what to fix.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The flavour the others are compared with: Containerfile.debian.
const REFERENCE: &str = "debian";

/// The stage the image's binaries are built in (`FROM … AS build`).
const BUILD_STAGE: &str = "build";

/// Files the reference copies into the image that a flavour leaves out: (flavour, destination,
/// why). A flavour that does copy it fails too, so the list never outlives its reason.
const COPY_EXCEPTIONS: &[(&str, &str, &str)] = &[
    (
        "alpine",
        "/etc/systemd/system/",
        "no systemd variant on Alpine: it is an OpenRC distribution and its image runs virtpod init only",
    ),
    (
        "alpine",
        "/usr/local/bin/cockpit-bridge",
        "Alpine does not package Cockpit, so there is no web console to configure",
    ),
    (
        "alpine",
        "/usr/share/virtpod/cockpit/session.conf",
        "Alpine does not package Cockpit, so there is no web console to configure",
    ),
    (
        "alpine",
        "/etc/cockpit/cockpit.conf",
        "Alpine does not package Cockpit, so there is no web console to configure",
    ),
    (
        "alpine",
        "/etc/pam.d/virtpod-cockpit-auth",
        "Alpine does not package Cockpit, so there is no web console login to throttle",
    ),
    (
        "alpine",
        "/etc/dbus-1/system.d/virtpod-libvirt-dbus.conf",
        "Alpine does not package libvirt-dbus, so nothing owns org.libvirt on the bus",
    ),
];

/// The units the systemd variant needs enabled wherever systemd/ is copied into the image.
const SYSTEMD_UNITS: &[&str] = &["virtpod-systemd-env.service", "virtpod-prepare.service"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum In {
    Build,
    Final,
}

/// What a flavour installs for a role: packages its RUNs must name (all of them), or nothing,
/// with the reason.
#[derive(Debug, Clone, Copy)]
enum Cell {
    Named(&'static [&'static str]),
    Absent(&'static str),
}
use Cell::{Absent, Named};

struct Role {
    role: &'static str,
    stage: In,
    cells: &'static [(&'static str, Cell)],
}

const NO_COCKPIT: Cell = Absent("Alpine does not package Cockpit (no web console there)");

/// Role → package per distribution. A cell names the package that brings the role, which is not
/// always the one that holds the file (bookworm's libvirt-daemon-system pulls in virtlogd,
/// virtlockd and, through libvirt-daemon-system-systemd, systemd-sysv).
const ROLES: &[Role] = &[
    Role {
        role: "Rust compiler and cargo",
        stage: In::Build,
        cells: &[
            // Plain rustc is too old on bookworm (1.63) and trixie (1.85): the -web ones are current.
            ("debian", Named(&["rustc-web", "cargo-web"])),
            ("debian-trixie", Named(&["rustc-web", "cargo-web"])),
            ("fedora", Named(&["rust", "cargo"])),
            ("alpine", Named(&["rust", "cargo"])),
        ],
    },
    Role {
        role: "C toolchain and static C library (the host side is linked statically)",
        stage: In::Build,
        cells: &[
            ("debian", Named(&["gcc", "libc6-dev"])),
            ("debian-trixie", Named(&["gcc", "libc6-dev"])),
            ("fedora", Named(&["gcc", "glibc-static"])),
            // Alpine's rust depends on gcc; musl-dev has libc.a.
            ("alpine", Named(&["musl-dev"])),
        ],
    },
    Role {
        role: "libvirt's headers (the virt crate)",
        stage: In::Build,
        cells: &[
            ("debian", Named(&["libvirt-dev"])),
            ("debian-trixie", Named(&["libvirt-dev"])),
            ("fedora", Named(&["libvirt-devel"])),
            ("alpine", Named(&["libvirt-dev"])),
        ],
    },
    Role {
        role: "pkg-config (virt-sys finds libvirt with it)",
        stage: In::Build,
        cells: &[
            ("debian", Named(&["pkg-config"])),
            ("debian-trixie", Named(&["pkg-config"])),
            ("fedora", Named(&["pkgconf-pkg-config"])),
            ("alpine", Named(&["pkgconf"])),
        ],
    },
    Role {
        role: "CA certificates (cargo fetches from crates.io over TLS)",
        stage: In::Build,
        cells: &[
            ("debian", Named(&["ca-certificates"])),
            ("debian-trixie", Named(&["ca-certificates"])),
            ("fedora", Named(&["ca-certificates"])),
            ("alpine", Named(&["ca-certificates"])),
        ],
    },
    Role {
        role: "libvirt daemon with its QEMU driver",
        stage: In::Final,
        cells: &[
            ("debian", Named(&["libvirt-daemon-system"])),
            ("debian-trixie", Named(&["libvirt-daemon-system"])),
            ("fedora", Named(&["libvirt-daemon-driver-qemu"])),
            ("alpine", Named(&["libvirt-daemon", "libvirt-qemu"])),
        ],
    },
    Role {
        role: "libvirt's other drivers (network, storage, secret, nodedev, nwfilter, interface)",
        stage: In::Final,
        cells: &[
            ("debian", Named(&["libvirt-daemon-system"])),
            ("debian-trixie", Named(&["libvirt-daemon-system"])),
            // Modular: init starts every driver daemon, so each must be there.
            (
                "fedora",
                Named(&[
                    "libvirt-daemon-driver-network",
                    "libvirt-daemon-driver-storage-core",
                    "libvirt-daemon-driver-secret",
                    "libvirt-daemon-driver-nodedev",
                    "libvirt-daemon-driver-nwfilter",
                    "libvirt-daemon-driver-interface",
                ]),
            ),
            ("alpine", Named(&["libvirt-common-drivers"])),
        ],
    },
    Role {
        role: "virtproxyd (serves /run/libvirt/libvirt-sock in the modular layout)",
        stage: In::Final,
        cells: &[
            (
                "debian",
                Absent("monolithic: libvirtd serves libvirt-sock itself"),
            ),
            (
                "debian-trixie",
                Absent("monolithic: libvirtd serves libvirt-sock itself"),
            ),
            ("fedora", Named(&["libvirt-daemon-proxy"])),
            (
                "alpine",
                Absent("monolithic: libvirtd serves libvirt-sock itself"),
            ),
        ],
    },
    Role {
        role: "virtlogd (qemu's console and log output)",
        stage: In::Final,
        cells: &[
            ("debian", Named(&["libvirt-daemon-system"])),
            ("debian-trixie", Named(&["libvirt-daemon-system"])),
            ("fedora", Named(&["libvirt-daemon-log"])),
            // In Alpine's libvirt package, which libvirt-client depends on.
            ("alpine", Named(&["libvirt-client"])),
        ],
    },
    Role {
        role: "virtlockd and its lockd plugin",
        stage: In::Final,
        cells: &[
            ("debian", Named(&["libvirt-daemon-system"])),
            // trixie's libvirt-daemon-system only recommends them.
            (
                "debian-trixie",
                Named(&["libvirt-daemon-lock", "libvirt-daemon-plugin-lockd"]),
            ),
            (
                "fedora",
                Named(&["libvirt-daemon-lock", "libvirt-daemon-plugin-lockd"]),
            ),
            ("alpine", Named(&["libvirt-client"])),
        ],
    },
    Role {
        role: "virsh (libvirt-guests, and people inside the container)",
        stage: In::Final,
        cells: &[
            ("debian", Named(&["libvirt-clients"])),
            ("debian-trixie", Named(&["libvirt-clients"])),
            ("fedora", Named(&["libvirt-client"])),
            ("alpine", Named(&["libvirt-client"])),
        ],
    },
    Role {
        role: "qemu system emulator",
        stage: In::Final,
        cells: &[
            ("debian", Named(&["qemu-system-x86"])),
            ("debian-trixie", Named(&["qemu-system-x86"])),
            ("fedora", Named(&["qemu-kvm-core"])),
            ("alpine", Named(&["qemu-system-x86_64"])),
        ],
    },
    Role {
        role: "qemu-img (disk images)",
        stage: In::Final,
        cells: &[
            ("debian", Named(&["qemu-utils"])),
            ("debian-trixie", Named(&["qemu-utils"])),
            ("fedora", Named(&["qemu-img"])),
            ("alpine", Named(&["qemu-img"])),
        ],
    },
    Role {
        role: "system bus (init's dbus service runs /usr/bin/dbus-daemon)",
        stage: In::Final,
        cells: &[
            ("debian", Named(&["dbus"])),
            ("debian-trixie", Named(&["dbus"])),
            // Fedora's default bus is dbus-broker.
            ("fedora", Named(&["dbus-daemon"])),
            ("alpine", Named(&["dbus"])),
        ],
    },
    Role {
        role: "libvirt-dbus (cockpit-machines' way to libvirt)",
        stage: In::Final,
        cells: &[
            ("debian", Named(&["libvirt-dbus"])),
            ("debian-trixie", Named(&["libvirt-dbus"])),
            ("fedora", Named(&["libvirt-dbus"])),
            (
                "alpine",
                Absent("Alpine does not package libvirt-dbus; only the web console needs it"),
            ),
        ],
    },
    Role {
        role: "ps (procps)",
        stage: In::Final,
        cells: &[
            ("debian", Named(&["procps"])),
            ("debian-trixie", Named(&["procps"])),
            ("fedora", Named(&["procps-ng"])),
            ("alpine", Named(&["procps-ng"])),
        ],
    },
    Role {
        role: "saslpasswd2 (VIRTPOD_SASL_CREDENTIALS)",
        stage: In::Final,
        cells: &[
            ("debian", Named(&["sasl2-bin"])),
            ("debian-trixie", Named(&["sasl2-bin"])),
            ("fedora", Named(&["cyrus-sasl"])),
            ("alpine", Named(&["cyrus-sasl"])),
        ],
    },
    Role {
        role: "SASL's SCRAM-SHA-256 mechanism",
        stage: In::Final,
        cells: &[
            ("debian", Named(&["libsasl2-modules"])),
            ("debian-trixie", Named(&["libsasl2-modules"])),
            ("fedora", Named(&["cyrus-sasl-scram"])),
            ("alpine", Named(&["cyrus-sasl-scram"])),
        ],
    },
    Role {
        role: "systemd (PID 1 of the systemd variant)",
        stage: In::Final,
        cells: &[
            ("debian", Named(&["libvirt-daemon-system"])),
            ("debian-trixie", Named(&["systemd-sysv"])),
            ("fedora", Named(&["systemd"])),
            (
                "alpine",
                Absent("no systemd variant on Alpine (an OpenRC distribution)"),
            ),
        ],
    },
    Role {
        role: "Cockpit's web server (VIRTPOD_COCKPIT=1)",
        stage: In::Final,
        cells: &[
            ("debian", Named(&["cockpit-ws"])),
            ("debian-trixie", Named(&["cockpit-ws"])),
            ("fedora", Named(&["cockpit-ws"])),
            ("alpine", NO_COCKPIT),
        ],
    },
    Role {
        role: "cockpit-bridge",
        stage: In::Final,
        cells: &[
            ("debian", Named(&["cockpit-bridge"])),
            ("debian-trixie", Named(&["cockpit-bridge"])),
            ("fedora", Named(&["cockpit-bridge"])),
            ("alpine", NO_COCKPIT),
        ],
    },
    Role {
        role: "Cockpit's login and shell (cockpit-system)",
        stage: In::Final,
        cells: &[
            ("debian", Named(&["cockpit-system"])),
            ("debian-trixie", Named(&["cockpit-system"])),
            ("fedora", Named(&["cockpit-system"])),
            ("alpine", NO_COCKPIT),
        ],
    },
    Role {
        role: "cockpit-machines (the Machines page)",
        stage: In::Final,
        cells: &[
            ("debian", Named(&["cockpit-machines"])),
            ("debian-trixie", Named(&["cockpit-machines"])),
            ("fedora", Named(&["cockpit-machines"])),
            ("alpine", NO_COCKPIT),
        ],
    },
    Role {
        role: "sshd (VIRTPOD_SSH_AUTHORIZED_KEYS)",
        stage: In::Final,
        cells: &[
            ("debian", Named(&["openssh-server"])),
            ("debian-trixie", Named(&["openssh-server"])),
            ("fedora", Named(&["openssh-server"])),
            ("alpine", Named(&["openssh-server"])),
        ],
    },
    Role {
        role: "dnsmasq (DHCP and DNS of libvirt's NAT network `default`)",
        stage: In::Final,
        cells: &[
            ("debian", Named(&["dnsmasq-base"])),
            ("debian-trixie", Named(&["dnsmasq-base"])),
            ("fedora", Named(&["dnsmasq"])),
            ("alpine", Named(&["dnsmasq"])),
        ],
    },
    Role {
        role: "the NAT network's firewall (libvirt's backend: iptables, or nftables on Fedora)",
        stage: In::Final,
        cells: &[
            ("debian", Named(&["iptables"])),
            ("debian-trixie", Named(&["iptables"])),
            ("fedora", Named(&["nftables"])),
            ("alpine", Named(&["iptables"])),
        ],
    },
    Role {
        role: "passt (user-mode interfaces: a rootless guest's network)",
        stage: In::Final,
        cells: &[
            (
                "debian",
                Absent(
                    "bookworm's libvirt 9.0 rejects <backend type='passt'/>: use the trixie image",
                ),
            ),
            ("debian-trixie", Named(&["passt"])),
            ("fedora", Named(&["passt"])),
            ("alpine", Named(&["passt"])),
        ],
    },
];

// ---------------------------------------------------------------------------------------------
// The parser.

/// The instructions the parser knows; any other is an error, so a new one is taught here first
/// rather than skipped.
const KNOWN: &[&str] = &[
    "FROM",
    "RUN",
    "COPY",
    "ADD",
    "VOLUME",
    "HEALTHCHECK",
    "STOPSIGNAL",
    "ENTRYPOINT",
    "CMD",
    "ARG",
    "ENV",
    "WORKDIR",
    "LABEL",
    "USER",
    "EXPOSE",
    "SHELL",
];

#[derive(Debug, Clone)]
struct Instruction {
    /// The line the instruction starts on, for messages.
    line: usize,
    keyword: String,
    /// The rest of the logical line, continuation lines joined with one space.
    args: String,
}

#[derive(Debug)]
struct Stage {
    name: Option<String>,
    base: String,
    line: usize,
    body: Vec<Instruction>,
}

#[derive(Debug)]
struct Containerfile {
    /// The file's name, e.g. `Containerfile.fedora`: every message starts with it.
    file: String,
    stages: Vec<Stage>,
}

impl Containerfile {
    fn final_stage(&self) -> &Stage {
        self.stages.last().expect("parse makes at least one stage")
    }

    fn stage(&self, name: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.name.as_deref() == Some(name))
    }
}

impl Stage {
    fn all<'a>(&'a self, keyword: &'a str) -> impl Iterator<Item = &'a Instruction> + 'a {
        self.body.iter().filter(move |i| i.keyword == keyword)
    }

    /// The one that counts: the last, as podman takes the last ENTRYPOINT, CMD, ….
    fn last(&self, keyword: &str) -> Option<&Instruction> {
        self.body.iter().rfind(|i| i.keyword == keyword)
    }
}

fn parse(file: &str, text: &str) -> Result<Containerfile, String> {
    let mut instructions = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        // Comments and blank lines, inside a continued instruction too (as buildah drops them).
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (part, continued) = match line.strip_suffix('\\') {
            Some(part) => (part.trim(), true),
            None => (line, false),
        };
        match &mut pending {
            Some((_, logical)) => {
                logical.push(' ');
                logical.push_str(part);
            }
            None => pending = Some((index + 1, part.to_string())),
        }
        if !continued {
            let (start, logical) = pending.take().expect("set just above");
            instructions.push(instruction(file, start, &logical)?);
        }
    }
    if let Some((start, _)) = pending {
        return Err(format!(
            "{file}:{start}: the instruction's last line ends with a backslash"
        ));
    }

    let mut stages: Vec<Stage> = Vec::new();
    for i in instructions {
        if i.keyword == "FROM" {
            stages.push(from(file, &i)?);
        } else if let Some(stage) = stages.last_mut() {
            stage.body.push(i);
        } else if i.keyword != "ARG" {
            return Err(format!(
                "{file}:{}: {} before the first FROM (only ARG may come before it)",
                i.line, i.keyword
            ));
        }
    }
    if stages.is_empty() {
        return Err(format!("{file}: no FROM, so no image"));
    }
    Ok(Containerfile {
        file: file.to_string(),
        stages,
    })
}

fn instruction(file: &str, line: usize, logical: &str) -> Result<Instruction, String> {
    let (word, args) = logical
        .split_once(char::is_whitespace)
        .unwrap_or((logical, ""));
    let keyword = word.to_ascii_uppercase();
    if !KNOWN.contains(&keyword.as_str()) {
        return Err(format!(
            "{file}:{line}: unknown instruction {word} (tests/images.rs parses {}; teach it the new one)",
            KNOWN.join(", ")
        ));
    }
    Ok(Instruction {
        line,
        keyword,
        args: args.trim().to_string(),
    })
}

/// `FROM [--platform=…] IMAGE [AS NAME]`.
fn from(file: &str, i: &Instruction) -> Result<Stage, String> {
    let words: Vec<&str> = i
        .args
        .split_whitespace()
        .filter(|w| !w.starts_with("--"))
        .collect();
    let (base, name) = match words.as_slice() {
        [base] => (*base, None),
        [base, as_, name] if as_.eq_ignore_ascii_case("as") => (*base, Some(name.to_string())),
        _ => {
            return Err(format!(
                "{file}:{}: FROM {} is not `FROM IMAGE [AS NAME]`",
                i.line, i.args
            ))
        }
    };
    Ok(Stage {
        name,
        base: base.to_string(),
        line: i.line,
        body: Vec::new(),
    })
}

/// The JSON (exec) form of ENTRYPOINT, CMD, VOLUME and HEALTHCHECK's command.
fn json_array(file: &str, line: usize, what: &str, text: &str) -> Result<Vec<String>, String> {
    serde_json::from_str(text).map_err(|e| {
        format!("{file}:{line}: {what} {text} is not a JSON array of strings ({e}): use the JSON form, as Containerfile.{REFERENCE} does")
    })
}

#[derive(Debug, PartialEq, Eq)]
struct Copy {
    line: usize,
    from: Option<String>,
    sources: Vec<String>,
    dest: String,
}

/// `COPY [--from=X] [--chown=…] SRC… DEST`, or its JSON form.
fn copy(file: &str, i: &Instruction) -> Result<Copy, String> {
    let mut from = None;
    let mut rest = i.args.as_str();
    while let Some(flag) = rest.strip_prefix("--") {
        let (word, tail) = flag.split_once(char::is_whitespace).unwrap_or((flag, ""));
        if let Some(stage) = word.strip_prefix("from=") {
            from = Some(stage.to_string());
        }
        rest = tail.trim_start();
    }
    let mut paths: Vec<String> = if rest.starts_with('[') {
        json_array(file, i.line, "COPY", rest)?
    } else {
        rest.split_whitespace().map(str::to_string).collect()
    };
    if paths.len() < 2 {
        return Err(format!(
            "{file}:{}: COPY {} needs a source and a destination",
            i.line, i.args
        ));
    }
    let dest = paths.pop().expect("two or more");
    Ok(Copy {
        line: i.line,
        from,
        sources: paths,
        dest,
    })
}

/// The shell commands of a RUN: its text split at `&&`, `||`, `;` and `|`.
fn commands(run: &str) -> Vec<&str> {
    let split = regex::Regex::new(r"&&|\|\||;|\|").expect("a valid pattern");
    split.split(run).map(str::trim).collect()
}

/// The packages one shell command installs with apt-get, dnf or apk: the words after `install`
/// (`add` for apk) that are not options, without apt's `/suite` and a `=version`. An option
/// that takes its value as the next word (`apt-get -o X`) is not understood: use `--opt=value`.
fn packages_of(command: &str) -> Vec<String> {
    let words: Vec<&str> = command.split_whitespace().collect();
    let Some(at) = words
        .iter()
        .position(|w| matches!(*w, "apt-get" | "apt" | "dnf" | "microdnf" | "yum" | "apk"))
    else {
        return Vec::new();
    };
    let verb = if words[at] == "apk" { "add" } else { "install" };
    let rest = &words[at + 1..];
    let Some(v) = rest.iter().position(|w| !w.starts_with('-')) else {
        return Vec::new();
    };
    if rest[v] != verb {
        return Vec::new();
    }
    rest[v + 1..]
        .iter()
        .take_while(|w| !w.contains('>') && !w.contains('<'))
        .filter(|w| !w.starts_with('-'))
        .map(|w| {
            let name = w.split('/').next().unwrap_or(w);
            name.split('=').next().unwrap_or(name).to_string()
        })
        .collect()
}

fn installed(stage: &Stage) -> BTreeSet<String> {
    stage
        .all("RUN")
        .flat_map(|run| commands(&run.args).into_iter().flat_map(packages_of))
        .collect()
}

/// `Containerfile.fedora` → `fedora`.
fn flavour(file: &str) -> &str {
    file.strip_prefix("Containerfile.").unwrap_or(file)
}

// ---------------------------------------------------------------------------------------------
// The checks: each returns its findings, one sentence per drift, naming the file.

/// HEALTHCHECK's options and command, `NONE` as no command.
fn healthcheck(file: &str, i: &Instruction) -> Result<(Vec<String>, Vec<String>), String> {
    let mut options = Vec::new();
    let mut rest = i.args.as_str();
    while rest.starts_with("--") {
        let (word, tail) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        options.push(word.to_string());
        rest = tail.trim_start();
    }
    if rest.eq_ignore_ascii_case("NONE") {
        return Ok((options, Vec::new()));
    }
    let Some(command) = rest.strip_prefix("CMD") else {
        return Err(format!(
            "{file}:{}: HEALTHCHECK {} is neither `CMD [...]` nor NONE",
            i.line, i.args
        ));
    };
    Ok((
        options,
        json_array(file, i.line, "HEALTHCHECK CMD", command.trim())?,
    ))
}

/// ENTRYPOINT, CMD, STOPSIGNAL, HEALTHCHECK and VOLUME of the final stage, as the reference has them.
fn check_contract(cf: &Containerfile, reference: &Containerfile) -> Vec<String> {
    let mut findings = Vec::new();
    let (ours, theirs) = (cf.final_stage(), reference.final_stage());
    let file = &cf.file;
    let refname = &reference.file;

    for keyword in ["ENTRYPOINT", "CMD"] {
        let want = theirs
            .last(keyword)
            .map(|i| json_array(refname, i.line, keyword, &i.args));
        let have = ours
            .last(keyword)
            .map(|i| (i.line, json_array(file, i.line, keyword, &i.args)));
        match (want, have) {
            (Some(Ok(want)), Some((line, Ok(have)))) if want != have => findings.push(format!(
                "{file}:{line}: {keyword} {have:?}, but {refname} has {want:?}: the front doors (compose, quadlet, docs) rely on it"
            )),
            (Some(Ok(want)), None) => findings.push(format!(
                "{file}: no {keyword} in the final stage (expected {want:?}, as in {refname})"
            )),
            (_, Some((_, Err(e)))) | (Some(Err(e)), _) => findings.push(e),
            _ => {}
        }
    }

    let signal = |s: &Stage| s.last("STOPSIGNAL").map(|i| (i.line, i.args.clone()));
    match (signal(theirs), signal(ours)) {
        (Some((_, want)), Some((line, have))) if want != have => findings.push(format!(
            "{file}:{line}: STOPSIGNAL {have}, but {refname} has {want}: virtpod init stops the guests on {want}"
        )),
        (Some((_, want)), None) => findings.push(format!(
            "{file}: no STOPSIGNAL in the final stage (expected {want}, as in {refname})"
        )),
        _ => {}
    }

    match (theirs.last("HEALTHCHECK"), ours.last("HEALTHCHECK")) {
        (Some(want), Some(have)) => match (healthcheck(refname, want), healthcheck(file, have)) {
            (Ok((want_opts, want_cmd)), Ok((have_opts, have_cmd))) => {
                if want_cmd != have_cmd {
                    findings.push(format!(
                        "{file}:{}: HEALTHCHECK runs {have_cmd:?}, but {refname} runs {want_cmd:?}",
                        have.line
                    ));
                }
                if want_opts != have_opts {
                    findings.push(format!(
                        "{file}:{}: HEALTHCHECK options {}, but {refname} has {}",
                        have.line,
                        have_opts.join(" "),
                        want_opts.join(" ")
                    ));
                }
            }
            (Err(e), _) | (_, Err(e)) => findings.push(e),
        },
        (Some(want), None) => findings.push(format!(
            "{file}: no HEALTHCHECK in the final stage (expected HEALTHCHECK {}, as in {refname})",
            want.args
        )),
        _ => {}
    }

    let volumes = |cf: &Containerfile, findings: &mut Vec<String>| -> BTreeSet<String> {
        let mut set = BTreeSet::new();
        for i in cf.final_stage().all("VOLUME") {
            match json_array(&cf.file, i.line, "VOLUME", &i.args) {
                Ok(v) => set.extend(v),
                Err(e) => findings.push(e),
            }
        }
        set
    };
    let want = volumes(reference, &mut findings);
    let have = volumes(cf, &mut findings);
    for missing in want.difference(&have) {
        findings.push(format!(
            "{file}: no VOLUME {missing} in the final stage ({refname} has it: state that must outlive the container)"
        ));
    }
    for extra in have.difference(&want) {
        findings.push(format!(
            "{file}: VOLUME {extra}, which {refname} does not have: add it there too, or drop it"
        ));
    }
    findings
}

/// The final stage's COPY destinations, sources and stages, as the reference has them, save
/// `COPY_EXCEPTIONS`.
fn check_copies(cf: &Containerfile, reference: &Containerfile) -> Vec<String> {
    let mut findings = Vec::new();
    let file = &cf.file;
    let refname = &reference.file;
    let copies = |cf: &Containerfile, findings: &mut Vec<String>| -> BTreeMap<String, Copy> {
        let mut map = BTreeMap::new();
        for i in cf.final_stage().all("COPY") {
            match copy(&cf.file, i) {
                Ok(c) => {
                    map.insert(c.dest.clone(), c);
                }
                Err(e) => findings.push(e),
            }
        }
        map
    };
    let want = copies(reference, &mut findings);
    let have = copies(cf, &mut findings);
    let exception = |dest: &str| {
        COPY_EXCEPTIONS
            .iter()
            .find(|(f, d, _)| *f == flavour(file) && *d == dest)
            .map(|(_, _, why)| *why)
    };
    for (dest, w) in &want {
        let shown = describe(w);
        match (have.get(dest), exception(dest)) {
            (None, None) => findings.push(format!(
                "{file}: the final stage copies nothing to {dest} ({refname}:{}: {shown}); copy it, or add an exception with its reason to COPY_EXCEPTIONS in tests/images.rs",
                w.line
            )),
            (Some(h), Some(why)) => findings.push(format!(
                "{file}:{}: copies to {dest}, yet COPY_EXCEPTIONS in tests/images.rs says it does not ({why}): drop the exception",
                h.line
            )),
            (Some(h), None) if (&h.from, &h.sources) != (&w.from, &w.sources) => {
                findings.push(format!(
                    "{file}:{}: {}, but {refname}:{} has {shown}",
                    h.line,
                    describe(h),
                    w.line
                ))
            }
            _ => {}
        }
    }
    for (dest, h) in &have {
        if !want.contains_key(dest) {
            findings.push(format!(
                "{file}:{}: {}, which {refname} does not copy: copy it there too, or drop it",
                h.line,
                describe(h)
            ));
        }
    }
    findings
}

fn describe(c: &Copy) -> String {
    let from = c
        .from
        .as_ref()
        .map(|f| format!("--from={f} "))
        .unwrap_or_default();
    format!("COPY {from}{} {}", c.sources.join(" "), c.dest)
}

/// The build stage: the distribution's own base, the sources, both cargo builds, the two
/// binaries handed to the final stage; COPY --from= naming real stages; the systemd variant's
/// units enabled where systemd/ is copied.
fn check_build(cf: &Containerfile) -> Vec<String> {
    let mut findings = Vec::new();
    let file = &cf.file;
    let last = cf.final_stage();
    let Some(build) = cf.stage(BUILD_STAGE) else {
        return vec![format!(
            "{file}: no `FROM … AS {BUILD_STAGE}` stage: virtpod is built inside the image, as in Containerfile.{REFERENCE}"
        )];
    };
    if build.base != last.base {
        findings.push(format!(
            "{file}:{}: the {BUILD_STAGE} stage is FROM {}, the final stage FROM {}: virtpod links the build stage's libvirt and C library, so both must be the same image",
            build.line, build.base, last.base
        ));
    }
    let sources: BTreeSet<String> = build
        .all("COPY")
        .filter_map(|i| copy(file, i).ok())
        .flat_map(|c| c.sources)
        .collect();
    for needed in ["Cargo.toml", "Cargo.lock", "build.rs", "hooks.d/", "src/"] {
        if !sources.contains(needed) {
            findings.push(format!(
                "{file}: the {BUILD_STAGE} stage does not COPY {needed}, which `cargo build` needs"
            ));
        }
    }

    let runs: Vec<&str> = build.all("RUN").flat_map(|i| commands(&i.args)).collect();
    let cargo: Vec<&str> = runs
        .iter()
        .copied()
        .filter(|c| c.contains("cargo build"))
        .collect();
    let words = |c: &str| -> Vec<String> { c.split_whitespace().map(str::to_string).collect() };
    let has = |c: &str, w: &str| words(c).iter().any(|x| x == w);
    let image = cargo.iter().find(|c| !has(c, "--no-default-features"));
    let host = cargo.iter().find(|c| has(c, "--no-default-features"));
    match image {
        None => findings.push(format!(
            "{file}: the {BUILD_STAGE} stage has no `cargo build` with the default features (the image's own virtpod, linked with libvirt)"
        )),
        Some(c) => findings.extend(cargo_flags(file, c, "the image's build")),
    }
    match host {
        None => findings.push(format!(
            "{file}: the {BUILD_STAGE} stage has no `cargo build --no-default-features` (the host side, /usr/libexec/virtpod/virtpod-host)"
        )),
        Some(c) => {
            findings.extend(cargo_flags(file, c, "the host side's build"));
            if !c.contains("+crt-static") {
                findings.push(format!(
                    "{file}: the host side's `cargo build` is not static: set RUSTFLAGS='-C target-feature=+crt-static' on it, so it runs on any host"
                ));
            }
            let w = words(c);
            match w.iter().position(|x| x == "--target").and_then(|p| w.get(p + 1)) {
                None => findings.push(format!(
                    "{file}: the host side's `cargo build` has no --target TRIPLE: without it RUSTFLAGS' crt-static also reaches proc-macros, which must stay dynamic"
                )),
                Some(triple) => {
                    let built = format!("/{triple}/release/virtpod");
                    if !runs
                        .iter()
                        .any(|r| has(r, "/out/virtpod-host") && r.contains(&built))
                    {
                        findings.push(format!(
                            "{file}: /out/virtpod-host is not the --target {triple} build (no command copies …{built} to /out/virtpod-host)"
                        ));
                    }
                }
            }
        }
    }
    if !runs.iter().any(|r| has(r, "/out/virtpod")) {
        findings.push(format!(
            "{file}: the {BUILD_STAGE} stage puts nothing at /out/virtpod (the image's own binary)"
        ));
    }
    if !runs
        .iter()
        .any(|r| has(r, "/out/virtpod-libvirt") && r.contains("/release/virtpod-libvirt"))
    {
        findings.push(format!(
            "{file}: the {BUILD_STAGE} stage puts no …/release/virtpod-libvirt at /out/virtpod-libvirt (init's libvirt helper; without it init stops at setup)"
        ));
    }

    let names: BTreeSet<&str> = cf.stages.iter().filter_map(|s| s.name.as_deref()).collect();
    for stage in &cf.stages {
        for c in stage.all("COPY").filter_map(|i| copy(file, i).ok()) {
            if let Some(from) = &c.from {
                if !names.contains(from.as_str()) {
                    findings.push(format!(
                        "{file}:{}: COPY --from={from}, but no stage is named {from}",
                        c.line
                    ));
                }
            }
        }
    }

    let copies_units = last
        .all("COPY")
        .filter_map(|i| copy(file, i).ok())
        .any(|c| c.dest == "/etc/systemd/system/");
    if copies_units {
        let enabled = last
            .all("RUN")
            .flat_map(|i| commands(&i.args))
            .any(|c| c.contains("systemctl enable") && SYSTEMD_UNITS.iter().all(|u| has(c, u)));
        if !enabled {
            findings.push(format!(
                "{file}: copies systemd/ but no RUN does `systemctl enable {}`: the systemd variant would start without them",
                SYSTEMD_UNITS.join(" ")
            ));
        }
    }
    findings
}

fn cargo_flags(file: &str, command: &str, what: &str) -> Vec<String> {
    ["--release", "--locked"]
        .iter()
        .filter(|flag| !command.split_whitespace().any(|w| w == **flag))
        .map(|flag| format!("{file}: {what} (`{command}`) lacks {flag}"))
        .collect()
}

/// Every role of `ROLES` has its packages named by a RUN of the right stage.
fn check_packages(cf: &Containerfile) -> Vec<String> {
    let mut findings = Vec::new();
    let file = &cf.file;
    let flavour = flavour(file);
    let build = cf.stage(BUILD_STAGE).map(installed).unwrap_or_default();
    let last = installed(cf.final_stage());
    for role in ROLES {
        let Some((_, cell)) = role.cells.iter().find(|(f, _)| *f == flavour) else {
            findings.push(format!(
                "{file}: ROLES in tests/images.rs has no column for {flavour} (role \"{}\"): add one, naming its package or why it has none",
                role.role
            ));
            continue;
        };
        let (have, stage) = match role.stage {
            In::Build => (&build, format!("the {BUILD_STAGE} stage")),
            In::Final => (&last, "the final stage".to_string()),
        };
        match cell {
            Named(packages) => {
                for p in packages.iter().filter(|p| !have.contains(**p)) {
                    findings.push(format!(
                        "{file}: no package for role \"{}\" (expected {p} in a RUN of {stage})",
                        role.role
                    ));
                }
            }
            Absent(why) if why.trim().is_empty() => findings.push(format!(
                "{file}: ROLES in tests/images.rs leaves role \"{}\" out for {flavour} without saying why",
                role.role
            )),
            Absent(_) => {}
        }
    }
    findings
}

/// The id of each `RUN --mount=type=cache,id=…`.
fn cache_ids(cf: &Containerfile) -> Vec<String> {
    cf.stages
        .iter()
        .flat_map(|s| s.all("RUN"))
        .flat_map(|i| i.args.split_whitespace())
        .filter_map(|w| w.strip_prefix("--mount="))
        .filter(|m| m.split(',').any(|kv| kv == "type=cache"))
        .filter_map(|m| m.split(',').find_map(|kv| kv.strip_prefix("id=")))
        .map(str::to_string)
        .collect()
}

/// All the checks over `(file name, text)` pairs: what `check_dir` runs on the real files and
/// the tests below on broken ones.
fn check_texts(files: &[(String, String)]) -> Vec<String> {
    let mut findings = Vec::new();
    let mut parsed = Vec::new();
    for (name, text) in files {
        match parse(name, text) {
            Ok(cf) => parsed.push(cf),
            Err(e) => findings.push(e),
        }
    }
    let refname = format!("Containerfile.{REFERENCE}");
    let Some(reference) = parsed.iter().find(|cf| cf.file == refname) else {
        findings.push(format!(
            "{refname} is missing (or does not parse): it is the reference the others are checked against"
        ));
        return findings;
    };
    let mut ids: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for cf in &parsed {
        if cf.file != refname {
            findings.extend(check_contract(cf, reference));
            findings.extend(check_copies(cf, reference));
        }
        findings.extend(check_build(cf));
        findings.extend(check_packages(cf));
        for id in cache_ids(cf) {
            ids.entry(id).or_default().push(&cf.file);
        }
    }
    for (id, users) in ids.iter_mut().filter(|(_, users)| users.len() > 1) {
        users.sort();
        findings.push(format!(
            "{} share the build cache id {id}: give each its own, or one distribution's target directory reuses objects built against another's libvirt",
            users.join(" and ")
        ));
    }
    let flavours: BTreeSet<&str> = parsed.iter().map(|cf| flavour(&cf.file)).collect();
    let columns: BTreeSet<&str> = ROLES
        .iter()
        .flat_map(|r| r.cells.iter().map(|(f, _)| *f))
        .collect();
    for gone in columns.difference(&flavours) {
        findings.push(format!(
            "ROLES in tests/images.rs has a column for {gone}, but there is no Containerfile.{gone}: drop the column, or bring the file back"
        ));
    }
    findings
}

/// Every top-level `Containerfile.*` of `dir`.
fn check_dir(dir: &Path) -> Vec<String> {
    let mut files = Vec::new();
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name.starts_with("Containerfile.") && path.is_file() {
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            files.push((name.to_string(), text));
        }
    }
    files.sort();
    check_texts(&files)
}

#[test]
fn every_containerfile_is_in_step_with_the_reference() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let findings = check_dir(root);
    assert!(
        findings.is_empty(),
        "the Containerfiles drifted apart ({} findings):\n  {}",
        findings.len(),
        findings.join("\n  ")
    );
}

// ---------------------------------------------------------------------------------------------
// The checks fail when a Containerfile drifts: broken copies of the real files.

fn repo_file(flavour: &str) -> (String, String) {
    let name = format!("Containerfile.{flavour}");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(&name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    (name, text)
}

fn all_repo_files() -> Vec<(String, String)> {
    ["debian", "debian-trixie", "fedora", "alpine"]
        .iter()
        .map(|f| repo_file(f))
        .collect()
}

/// The findings once `flavour`'s text went through `edit` (which must change it).
fn findings_after(flavour: &str, edit: impl Fn(&str) -> String) -> Vec<String> {
    let mut files = all_repo_files();
    let name = format!("Containerfile.{flavour}");
    let (_, text) = files.iter_mut().find(|(n, _)| *n == name).expect("known");
    let edited = edit(text);
    assert_ne!(&edited, text, "the edit of {name} changed nothing");
    *text = edited;
    check_texts(&files)
}

fn assert_found(findings: &[String], expected: &str) {
    assert!(
        findings.iter().any(|f| f.contains(expected)),
        "no finding contains {expected:?}; the findings:\n  {}",
        findings.join("\n  ")
    );
}

#[test]
fn a_missing_package_names_its_role_and_the_package() {
    let f = findings_after("fedora", |t| t.replace(" qemu-kvm-core", ""));
    assert_found(
        &f,
        "Containerfile.fedora: no package for role \"qemu system emulator\" (expected qemu-kvm-core in a RUN of the final stage)",
    );
    let f = findings_after("alpine", |t| t.replace(" musl-dev", ""));
    assert_found(
        &f,
        "Containerfile.alpine: no package for role \"C toolchain",
    );
    assert_found(&f, "expected musl-dev in a RUN of the build stage");
    // A backports suffix still names the package; removing the package does not.
    let f = findings_after("debian", |t| {
        t.replace("cockpit-machines/bookworm-backports", "")
    });
    assert_found(
        &f,
        "Containerfile.debian: no package for role \"cockpit-machines",
    );
}

#[test]
fn the_image_contract_must_match_the_reference() {
    let f = findings_after("alpine", |t| {
        t.replace(
            "ENTRYPOINT [\"/usr/bin/virtpod\", \"init\"]",
            "ENTRYPOINT [\"/sbin/init\"]",
        )
        .replace("STOPSIGNAL SIGTERM", "STOPSIGNAL SIGINT")
        .replace(", \"/run/libvirt\"]", "]")
        .replace("CMD [\"/usr/bin/virtpod\", \"health\"]", "CMD [\"true\"]")
        .replace("--interval=30s", "--interval=5s")
        .replace("CMD []", "CMD [\"systemd.mask=virtlockd\"]")
    });
    assert_found(&f, "Containerfile.alpine:");
    assert_found(&f, "ENTRYPOINT [\"/sbin/init\"], but Containerfile.debian has [\"/usr/bin/virtpod\", \"init\"]");
    assert_found(
        &f,
        "STOPSIGNAL SIGINT, but Containerfile.debian has SIGTERM",
    );
    assert_found(
        &f,
        "Containerfile.alpine: no VOLUME /run/libvirt in the final stage",
    );
    assert_found(
        &f,
        "HEALTHCHECK runs [\"true\"], but Containerfile.debian runs",
    );
    assert_found(&f, "HEALTHCHECK options --interval=5s");
    assert_found(
        &f,
        "CMD [\"systemd.mask=virtlockd\"], but Containerfile.debian has []",
    );

    let f = findings_after("fedora", |t| t.replace("STOPSIGNAL SIGTERM\n", ""));
    assert_found(
        &f,
        "Containerfile.fedora: no STOPSIGNAL in the final stage (expected SIGTERM",
    );
    let f = findings_after("fedora", |t| t.replace("CMD []", "CMD virtpod"));
    assert_found(&f, "CMD virtpod is not a JSON array of strings");
}

#[test]
fn copies_must_match_the_reference_or_be_an_exception() {
    let f = findings_after("fedora", |t| {
        t.replace("COPY init/ /usr/share/virtpod/init/\n", "")
    });
    assert_found(
        &f,
        "Containerfile.fedora: the final stage copies nothing to /usr/share/virtpod/init/ (Containerfile.debian:",
    );
    assert_found(&f, "add an exception with its reason to COPY_EXCEPTIONS");
    let f = findings_after("fedora", |t| {
        t.replace(
            "COPY --from=build /out/virtpod /usr/bin/virtpod",
            "COPY --from=build /out/virtpod-host /usr/bin/virtpod",
        )
    });
    assert_found(
        &f,
        "COPY --from=build /out/virtpod-host /usr/bin/virtpod, but Containerfile.debian:",
    );
    // An exception whose file is copied after all is stale.
    let f = findings_after("alpine", |t| {
        t.replace(
            "COPY init/ /usr/share/virtpod/init/\n",
            "COPY init/ /usr/share/virtpod/init/\nCOPY systemd/ /etc/systemd/system/\n",
        )
    });
    assert_found(&f, "copies to /etc/systemd/system/, yet COPY_EXCEPTIONS");
    // ... and copying systemd/ without enabling its units is caught as well.
    assert_found(
        &f,
        "copies systemd/ but no RUN does `systemctl enable virtpod-systemd-env.service",
    );
    let f = findings_after("debian-trixie", |t| {
        t.replace("CMD []", "COPY README.md /README.md\nCMD []")
    });
    assert_found(
        &f,
        "COPY README.md /README.md, which Containerfile.debian does not copy",
    );
}

#[test]
fn the_build_stage_must_build_both_binaries() {
    let f = findings_after("fedora", |t| {
        t.replace(
            " \\\n && RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --locked \\\n      --no-default-features --target x86_64-unknown-linux-gnu",
            "",
        )
    });
    assert_found(
        &f,
        "Containerfile.fedora: the build stage has no `cargo build --no-default-features`",
    );
    let f = findings_after("alpine", |t| {
        t.replace("RUSTFLAGS='-C target-feature=+crt-static' ", "")
    });
    assert_found(
        &f,
        "Containerfile.alpine: the host side's `cargo build` is not static",
    );
    let f = findings_after("alpine", |t| {
        t.replace(
            "/cache/target/x86_64-alpine-linux-musl/release/virtpod /out/virtpod-host",
            "/cache/target/release/virtpod /out/virtpod-host",
        )
    });
    assert_found(
        &f,
        "/out/virtpod-host is not the --target x86_64-alpine-linux-musl build",
    );
    let f = findings_after("debian-trixie", |t| t.replacen(" --locked", "", 1));
    assert_found(
        &f,
        "the image's build (`cargo build --release`) lacks --locked",
    );
    let f = findings_after("fedora", |t| {
        t.replacen(
            "FROM registry.fedoraproject.org/fedora:42 AS build",
            "FROM registry.fedoraproject.org/fedora:41 AS build",
            1,
        )
    });
    assert_found(&f, "the build stage is FROM registry.fedoraproject.org/fedora:41, the final stage FROM registry.fedoraproject.org/fedora:42");
    let f = findings_after("alpine", |t| t.replace(" AS build", " AS builder"));
    assert_found(&f, "Containerfile.alpine: no `FROM … AS build` stage");
    let f = findings_after("fedora", |t| t.replace("COPY hooks.d/ hooks.d/\n", ""));
    assert_found(&f, "the build stage does not COPY hooks.d/");
    let f = findings_after("debian", |t| {
        t.replace(
            " \\\n && install -D -m 0755 /cache/target/release/virtpod-libvirt /out/virtpod-libvirt",
            "",
        )
    });
    assert_found(
        &f,
        "Containerfile.debian: the build stage puts no …/release/virtpod-libvirt at /out/virtpod-libvirt",
    );
}

#[test]
fn each_distribution_has_its_own_build_cache() {
    let f = findings_after("alpine", |t| {
        t.replace("id=virtpod-build-alpine-3.23", "id=virtpod-build-fedora-42")
    });
    assert_found(
        &f,
        "Containerfile.alpine and Containerfile.fedora share the build cache id virtpod-build-fedora-42",
    );
}

#[test]
fn a_new_flavour_needs_its_column_in_roles() {
    let mut files = all_repo_files();
    let (_, text) = repo_file("alpine");
    files.push(("Containerfile.alpine-edge".to_string(), text));
    let f = check_texts(&files);
    assert_found(
        &f,
        "Containerfile.alpine-edge: ROLES in tests/images.rs has no column for alpine-edge",
    );
    // And the cache id it shares with alpine is caught too.
    assert_found(&f, "share the build cache id virtpod-build-alpine-3.23");
}

#[test]
fn a_broken_copy_in_a_temp_dir_fails_the_check() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    for (name, text) in all_repo_files() {
        std::fs::write(dir.path().join(name), text).expect("writing a copy");
    }
    assert_eq!(
        check_dir(dir.path()),
        Vec::<String>::new(),
        "the copies as they are"
    );
    let broken = dir.path().join("Containerfile.fedora");
    let text = std::fs::read_to_string(&broken).unwrap();
    std::fs::write(&broken, text.replace("libvirt-daemon-proxy ", "")).unwrap();
    assert_found(
        &check_dir(dir.path()),
        "Containerfile.fedora: no package for role \"virtproxyd",
    );
    std::fs::remove_file(dir.path().join("Containerfile.debian")).unwrap();
    assert_found(&check_dir(dir.path()), "Containerfile.debian is missing");
}

#[test]
fn the_parser_joins_continuations_and_skips_comments() {
    let text = "ARG X=1\n# a comment\nFROM a:1 AS build\nRUN apt-get install -y \\\n    # inside\n      foo/backports \\\n\n      bar=1.2 \\\n && echo done\nFROM a:1\nCOPY [\"x y\", \"/d/\"]\nVOLUME [\"/v\"]\n";
    let cf = parse("Containerfile.t", text).unwrap();
    assert_eq!(cf.stages.len(), 2);
    assert_eq!(cf.stages[0].name.as_deref(), Some("build"));
    let run = &cf.stages[0].body[0];
    assert_eq!((run.line, run.keyword.as_str()), (4, "RUN"));
    assert_eq!(
        run.args,
        "apt-get install -y foo/backports bar=1.2 && echo done"
    );
    assert_eq!(
        installed(&cf.stages[0]),
        BTreeSet::from(["foo".to_string(), "bar".to_string()])
    );
    let c = copy("Containerfile.t", &cf.stages[1].body[0]).unwrap();
    assert_eq!(
        (c.sources, c.dest),
        (vec!["x y".to_string()], "/d/".to_string())
    );

    let e = parse("Containerfile.t", "FROM a\nONBUILD RUN x\n").unwrap_err();
    assert!(
        e.starts_with("Containerfile.t:2: unknown instruction ONBUILD"),
        "{e}"
    );
    let e = parse("Containerfile.t", "FROM a\nRUN x \\\n").unwrap_err();
    assert!(e.contains("ends with a backslash"), "{e}");
    let e = parse("Containerfile.t", "RUN x\nFROM a\n").unwrap_err();
    assert!(e.contains("RUN before the first FROM"), "{e}");
}

#[test]
fn packages_are_read_from_apt_dnf_and_apk() {
    assert_eq!(
        packages_of("DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends a b/bookworm-backports"),
        ["a", "b"]
    );
    assert_eq!(
        packages_of("dnf install -y --setopt=install_weak_deps=False c d"),
        ["c", "d"]
    );
    assert_eq!(packages_of("apk add --no-cache e f"), ["e", "f"]);
    assert!(packages_of("apt-get update").is_empty());
    assert!(packages_of("dnf clean all").is_empty());
    assert_eq!(commands("a && b || c; d | e").len(), 5);
}
