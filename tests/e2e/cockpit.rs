//! The built-in web console (`VIRTPOD_COCKPIT=1`), driven the way a user drives it: headless
//! Chromium (Debian's chromium + chromedriver, WebDriver over HTTP) opens the published port,
//! logs in through Cockpit's login page (a wrong password is refused first), opens Virtual
//! machines, sees the test guest Running, shuts it down and runs it again from the page, while
//! host virsh agrees. The screenshot it saves is printed.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::*;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The key of an element reference in WebDriver's JSON.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// One HTTP/1.1 request to chromedriver on 127.0.0.1: (status, JSON body). chromedriver keeps
/// the connection open whatever the request says, so the body is read by its length.
fn http(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> std::io::Result<(u16, Value)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    let complete = |raw: &[u8]| -> Option<usize> {
        let text = String::from_utf8_lossy(raw);
        let end = text.find("\r\n\r\n")?;
        let head = text[..end].to_ascii_lowercase();
        let body = &raw[end + 4..];
        if head.contains("transfer-encoding: chunked") {
            return body.ends_with(b"0\r\n\r\n").then_some(end);
        }
        let len = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok())?;
        (body.len() >= len).then_some(end)
    };
    while complete(&raw).is_none() {
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&raw);
    let (head, mut rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let dechunked;
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = String::new();
        let mut r = rest;
        while let Some((size, after)) = r.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 || after.len() < n {
                break;
            }
            out.push_str(&after[..n]);
            r = after[n..].trim_start_matches("\r\n");
        }
        dechunked = out;
        rest = &dechunked;
    }
    Ok((status, serde_json::from_str(rest).unwrap_or(Value::Null)))
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a' + 26) as u32,
            b'0'..=b'9' => (c - b'0' + 52) as u32,
            b'+' => 62,
            _ => 63,
        }
    };
    let clean: Vec<u8> = s.bytes().filter(|c| !b"=\r\n ".contains(c)).collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= val(c) << (18 - 6 * i);
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..chunk.len() - 1]);
    }
    out
}

/// chromedriver and one Chromium session; both end on drop.
struct Browser {
    driver: Child,
    port: u16,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start() -> Browser {
        for tool in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(tool).exists(),
                "{tool} is missing: run tests/prepare (it installs Debian's chromium and chromium-driver)"
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting chromedriver");
        let profile = tempfile::tempdir().unwrap();
        let mut b = Browser {
            driver,
            port,
            session: String::new(),
            _profile: profile,
        };
        wait_for("chromedriver to answer", Duration::from_secs(30), || {
            http(port, "GET", "/status", None).is_ok_and(|(s, _)| s == 200)
        });
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1400,1000",
            &format!("--user-data-dir={}", b._profile.path().display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            // cockpit-ws's certificate is the self-signed one the appliance made.
            "acceptInsecureCerts": true,
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
        }}});
        let (status, v) = http(port, "POST", "/session", Some(&caps)).unwrap();
        assert_eq!(status, 200, "chromedriver refused the session: {v}");
        b.session = v["value"]["sessionId"].as_str().unwrap().to_string();
        b
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let path = format!("/session/{}{path}", self.session);
        http(self.port, method, &path, body.as_ref())
            .unwrap_or_else(|e| panic!("chromedriver {method} {path}: {e}"))
    }

    fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, v) = self.call(method, path, body);
        assert_eq!(status, 200, "{method} {path}: {v}");
        v["value"].clone()
    }

    fn go(&self, url: &str) {
        self.ok("POST", "/url", Some(json!({ "url": url })));
    }

    /// The first element matching a CSS selector (or an XPath starting with `/`), if any.
    fn find(&self, selector: &str) -> Option<String> {
        let using = if selector.starts_with('/') {
            "xpath"
        } else {
            "css selector"
        };
        let (status, v) = self.call(
            "POST",
            "/element",
            Some(json!({"using": using, "value": selector})),
        );
        (status == 200)
            .then(|| v["value"][ELEMENT].as_str().map(str::to_string))
            .flatten()
    }

    fn displayed(&self, el: &str) -> bool {
        let (s, v) = self.call("GET", &format!("/element/{el}/displayed"), None);
        s == 200 && v["value"] == json!(true)
    }

    fn text(&self, el: &str) -> String {
        let (s, v) = self.call("GET", &format!("/element/{el}/text"), None);
        if s == 200 {
            v["value"].as_str().unwrap_or_default().to_string()
        } else {
            String::new()
        }
    }

    fn click(&self, el: &str) {
        self.ok("POST", &format!("/element/{el}/click"), Some(json!({})));
    }

    fn type_into(&self, el: &str, text: &str) {
        self.ok("POST", &format!("/element/{el}/clear"), Some(json!({})));
        self.ok(
            "POST",
            &format!("/element/{el}/value"),
            Some(json!({ "text": text })),
        );
    }

    /// Into an iframe element, or back to the top document with None.
    fn frame(&self, el: Option<&str>) {
        let id = el.map_or(Value::Null, |e| json!({ ELEMENT: e }));
        self.ok("POST", "/frame", Some(json!({ "id": id })));
    }

    fn screenshot(&self, path: &Path) {
        let b64 = self.ok("GET", "/screenshot", None);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, base64_decode(b64.as_str().unwrap())).unwrap();
    }

    /// Polls until `check` returns Some, running `each` before every poll (a button to dismiss,
    /// say); on timeout saves a screenshot and fails with what the page showed.
    fn wait<T>(
        &self,
        what: &str,
        limit: Duration,
        mut each: impl FnMut(&Browser),
        mut check: impl FnMut(&Browser) -> Option<T>,
    ) -> T {
        let start = Instant::now();
        loop {
            each(self);
            if let Some(t) = check(self) {
                return t;
            }
            if start.elapsed() > limit {
                let shot = e2e_dir().join("cockpit-failure.png");
                self.screenshot(&shot);
                let body = self.find("body").map(|b| self.text(&b)).unwrap_or_default();
                panic!(
                    "timed out after {limit:?} waiting for {what}; screenshot {}; page text:\n{body}",
                    shot.display()
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Waits for a visible element whose text contains `text`.
    fn wait_text(&self, selector: &str, text: &str, limit: Duration, each: impl FnMut(&Browser)) {
        self.wait(&format!("{selector} to show {text:?}"), limit, each, |b| {
            b.find(selector)
                .filter(|e| b.displayed(e) && b.text(e).contains(text))
        });
    }

    fn wait_visible(&self, selector: &str, limit: Duration) -> String {
        self.wait(
            &format!("{selector} to be visible"),
            limit,
            |_| {},
            |b| b.find(selector).filter(|e| b.displayed(e)),
        )
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = http(
                self.port,
                "DELETE",
                &format!("/session/{}", self.session),
                None,
            );
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// These build machines have no vmx/svm: the Machines page first says hardware virtualization
/// is disabled, with a button to go on anyway, which a user here would press.
fn dismiss_hw_virtualization_notice(b: &Browser) {
    if let Some(btn) = b.find("#ignore-hw-virtualization-disabled-btn") {
        if b.displayed(&btn) {
            println!(
                "the page says hardware virtualization is disabled (no vmx/svm here): ignoring"
            );
            b.click(&btn);
        }
    }
}

#[test]
fn cockpit_machines_logs_in_and_shuts_down_and_runs_the_guest() {
    require_prepared();
    let started = Instant::now();
    let password = format!("pw {} horse", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("creds");
    std::fs::write(&creds, format!("# user:password\nadmin:{password}\n")).unwrap();
    let secret = Secret::create("cockpit", &creds);
    let secret = &secret.0;
    let setting = format!("VIRTPOD_COCKPIT_CREDENTIALS=/run/secrets/{secret}");
    let vols = Volumes::new("cockpit");
    let app = Appliance::start(
        &vols,
        Opts {
            podman: &[
                "--secret",
                secret,
                "-e",
                "VIRTPOD_COCKPIT=1",
                "-e",
                &setting,
                "-p",
                "127.0.0.1::9090",
            ],
            ..Opts::default()
        },
    );
    app.wait_ready();
    let guest = "cpguest";
    app.boot_guest(guest);
    let published = podman_ok(&["port", &app.name, "9090/tcp"]);
    let url = format!("https://{}/", published.trim());
    println!(
        "cockpit at {url} (appliance ready after {:?})",
        started.elapsed()
    );

    let b = Browser::start();
    // cockpit-ws starts after libvirt answers: reload until the login page is there.
    b.wait(
        "Cockpit's login page",
        Duration::from_secs(60),
        |b| b.go(&url),
        |b| b.find("#login-user-input").filter(|e| b.displayed(e)),
    );
    let login = |user: &str, pass: &str| {
        let u = b.wait_visible("#login-user-input", Duration::from_secs(30));
        b.type_into(&u, user);
        let p = b.wait_visible("#login-password-input", Duration::from_secs(5));
        b.type_into(&p, pass);
        let button = b.wait_visible("#login-button", Duration::from_secs(5));
        b.click(&button);
    };

    login("admin", "not the password");
    b.wait_text(
        "#login-error-message",
        "Wrong user name or password",
        Duration::from_secs(30),
        |_| {},
    );
    let title = b.find("#login-error-title").map(|e| b.text(&e));
    assert_eq!(title.as_deref(), Some("Authentication failed"));

    login("admin", &password);
    let nav = b.wait_visible(
        "//a[contains(@class, 'pf-v6-c-nav__link') and contains(., 'Virtual machines')]",
        Duration::from_secs(60),
    );
    b.click(&nav);
    let frame = b.wait_visible(
        "iframe[name='cockpit1:localhost/machines']",
        Duration::from_secs(30),
    );
    b.frame(Some(&frame));
    let state = format!("#vm-{guest}-system-state");
    b.wait_text(
        &state,
        "Running",
        Duration::from_secs(90),
        dismiss_hw_virtualization_notice,
    );
    let row = b
        .find(&format!("tr[data-row-id='vm-{guest}-system']"))
        .expect("the guest's row");
    assert!(b.text(&row).contains(guest), "row: {}", b.text(&row));
    assert_eq!(app.domstate(guest), "running");

    let shutdown = b.wait_visible(
        &format!("#vm-{guest}-system-shutdown-button"),
        Duration::from_secs(30),
    );
    b.click(&shutdown);
    let off = b.wait_visible(
        &format!(".pf-v6-c-modal-box__footer #vm-{guest}-system-off"),
        Duration::from_secs(30),
    );
    b.click(&off);
    b.wait_text(
        &state,
        "Shut off",
        Duration::from_secs(90),
        dismiss_hw_virtualization_notice,
    );
    assert!(
        app.console(guest).contains(GUEST_POWER_BUTTON),
        "the guest did not see the power button:\n{}",
        app.console(guest)
    );
    assert_eq!(app.domstate(guest), "shut off", "host virsh disagrees");

    let run = b.wait_visible(&format!("#vm-{guest}-system-run"), Duration::from_secs(30));
    b.click(&run);
    b.wait_text(
        &state,
        "Running",
        Duration::from_secs(90),
        dismiss_hw_virtualization_notice,
    );
    assert_eq!(app.domstate(guest), "running", "host virsh disagrees");
    app.wait_console(guest, GUEST_BOOTED, 2);

    b.frame(None);
    let shot: PathBuf = e2e_dir().join("cockpit-machines.png");
    b.screenshot(&shot);
    println!(
        "screenshot of the Machines page: {} (test took {:?})",
        shot.display(),
        started.elapsed()
    );
}

#[test]
fn cockpit_settings_are_checked_before_anything_starts() {
    require_prepared();
    for (args, says) in [
        (
            vec!["-e", "VIRTPOD_COCKPIT=yes"],
            "VIRTPOD_COCKPIT=\"yes\": expected 0, 1",
        ),
        (
            vec!["-e", "VIRTPOD_COCKPIT=1"],
            "set VIRTPOD_COCKPIT_CREDENTIALS=/run/secrets/NAME too",
        ),
        (
            vec![
                "-e",
                "VIRTPOD_COCKPIT=1",
                "-e",
                "VIRTPOD_COCKPIT_CREDENTIALS=/run/secrets/none",
            ],
            "VIRTPOD_COCKPIT_CREDENTIALS=/run/secrets/none: cannot read it",
        ),
    ] {
        let mut argv = vec!["run", "--rm", "--no-healthcheck"];
        argv.extend(&args);
        argv.push(image());
        let out = podman(&argv);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(text(&out).contains(says), "{args:?}: {}", text(&out));
    }
}

/// The route for the host's own Cockpit: it logs in over SSH with a key and runs the
/// appliance's cockpit-bridge, whose Machines page calls libvirt-dbus on the appliance's bus.
/// Here host `ssh` does what Cockpit's SSH transport does: key login as root, cockpit-bridge
/// finds the machines package, and org.libvirt answers with the guest; a login without the key
/// is refused.
#[test]
fn cockpit_route_over_ssh_reaches_libvirt_dbus_with_the_key() {
    require_prepared();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("id_ed25519");
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "virtpod-test", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen (openssh-client)");
    assert!(st.success());
    let secret = Secret::create("ssh-keys", &dir.path().join("id_ed25519.pub"));
    let secret = &secret.0;
    let setting = format!("VIRTPOD_SSH_AUTHORIZED_KEYS=/run/secrets/{secret}");
    let vols = Volumes::new("cockpit-ssh");
    let app = Appliance::start(
        &vols,
        Opts {
            podman: &["--secret", secret, "-e", &setting, "-p", "127.0.0.1::22"],
            ..Opts::default()
        },
    );
    app.wait_ready();
    let guest = "sshguest";
    app.boot_guest(guest);
    let published = podman_ok(&["port", &app.name, "22/tcp"]);
    let port = published.trim().rsplit(':').next().unwrap().to_string();
    let known = dir.path().join("known_hosts");
    let ssh = |with_key: bool, command: &str| {
        let mut c = Command::new("ssh");
        c.args([
            "-p",
            &port,
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=accept-new",
        ])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", known.display()))
        .args(["-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=10"]);
        if with_key {
            c.arg("-i").arg(&key);
        } else {
            c.args(["-o", "PubkeyAuthentication=no"]);
        }
        c.args(["root@127.0.0.1", command])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    wait_for("sshd to accept the key", Duration::from_secs(60), || {
        ssh(true, "true").status.success()
    });
    let out = ssh(true, "cockpit-bridge --packages");
    assert!(
        out.status.success() && text(&out).contains("machines"),
        "{}",
        text(&out)
    );
    let uuid = app.virsh_ok(&["domuuid", guest]).trim().replace('-', "_");
    let out = ssh(
        true,
        "dbus-send --system --print-reply --dest=org.libvirt /org/libvirt/QEMU org.libvirt.Connect.ListDomains uint32:0",
    );
    assert!(
        out.status.success() && text(&out).contains(&uuid),
        "org.libvirt over ssh: {}",
        text(&out)
    );
    let out = ssh(false, "true");
    assert!(!out.status.success(), "logged in without the key");
    assert!(
        text(&out).contains("Permission denied (publickey)"),
        "{}",
        text(&out)
    );
}

/// One password login at Cockpit's `/cockpit/login` (HTTP Basic, as the login page's script
/// sends it), from the host's address `from` when given: the HTTP status, 0 when curl got none.
fn cockpit_login(url: &str, from: Option<&str>, user: &str, password: &str) -> u16 {
    let mut c = Command::new("curl");
    c.args([
        "-sk",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--max-time",
        "60",
    ]);
    if let Some(addr) = from {
        c.args(["--interface", addr]);
    }
    let out = c
        .arg("-u")
        .arg(format!("{user}:{password}"))
        .arg(format!("{url}cockpit/login"))
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

/// The cockpit-session processes in the container's PID namespace: one per login whose password
/// is being checked (and one per open session).
fn sessions_in_flight(pid: &str) -> usize {
    let out = Command::new("pgrep")
        .args(["--ns", pid, "--nslist", "pid", "-f", "cockpit-session"])
        .output()
        .expect("pgrep (procps)");
    String::from_utf8_lossy(&out.stdout).lines().count()
}

/// The login page under a password-guessing attack, as issue 27 item 9 found it: a dozen bad
/// logins in flight made the right one fail, guesses ran at 5–10 a second and left no trace.
/// Here an attacker (the host's own address) guesses admin's password, first one at a time,
/// then with 12 in parallel, then with 80 at once; the owner logs in from another address (the
/// bridge's) throughout. What a user sees: each failure in `podman logs` with the attacker's
/// address; after five, the attacker is locked out (the right password from there is refused
/// too); the owner gets in, quickly, while the attack runs; logins in flight stay bounded.
#[test]
fn cockpit_logins_are_throttled_per_user_and_address_and_logged() {
    require_prepared();
    let password = format!("pw {} right", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("creds");
    std::fs::write(&creds, format!("admin:{password}\n")).unwrap();
    let secret = Secret::create("cockpit-throttle", &creds);
    let setting = format!("VIRTPOD_COCKPIT_CREDENTIALS=/run/secrets/{}", secret.0);
    let vols = Volumes::new("cockpit-throttle");
    let app = Appliance::start(
        &vols,
        Opts {
            podman: &[
                "--secret",
                &secret.0,
                "-e",
                "VIRTPOD_COCKPIT=1",
                "-e",
                &setting,
            ],
            ..Opts::default()
        },
    );
    app.wait_ready();
    let ip = podman_ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", &app.name]);
    let url = format!("https://{}:9090/", ip.trim());
    // The owner connects from the host's end of the bridge; the attacker binds the host's address
    // on its default route, so the container sees two clients.
    let route = Command::new("ip")
        .args(["-4", "-o", "route", "get", "1.1.1.1"])
        .output()
        .expect("ip (iproute2)");
    let route = String::from_utf8_lossy(&route.stdout).to_string();
    let attacker = route
        .split_whitespace()
        .skip_while(|w| *w != "src")
        .nth(1)
        .unwrap_or_else(|| panic!("no source address on the host's default route: {route}"))
        .to_string();
    let from = Some(attacker.as_str());
    wait_for("cockpit-ws to answer", Duration::from_secs(60), || {
        cockpit_login(&url, None, "admin", "warming up") == 401
    });
    assert_eq!(cockpit_login(&url, None, "admin", &password), 200);

    // One at a time: each failure is a line with the address; the fifth locks the pair out.
    for n in 1..=5 {
        let started = Instant::now();
        assert_eq!(
            cockpit_login(&url, from, "admin", &format!("guess {n}")),
            401
        );
        assert!(
            started.elapsed() >= Duration::from_millis(1400),
            "a failure answered in {:?}: no delay",
            started.elapsed()
        );
    }
    let logs = app.logs();
    for n in 1..=5 {
        let line = format!("cockpit login as \"admin\" from {attacker} failed: wrong user name or password ({n} in a row)");
        assert!(logs.contains(&line), "no {line:?} in:\n{logs}");
    }
    assert!(
        logs.contains(&format!(
            "({} in a row); locked out from that address for 60 s",
            5
        )),
        "{logs}"
    );
    assert_eq!(
        cockpit_login(&url, from, "admin", &password),
        401,
        "the right password from a locked-out address must be refused too"
    );
    assert!(
        app.logs()
            .contains(&format!("cockpit login as \"admin\" from {attacker} refused without a look at the password: locked out for")),
        "{}",
        app.logs()
    );

    // A dozen guessers in parallel for 10 s, while the owner logs in three times.
    let attack = Instant::now();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let guesses = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let guessers: Vec<_> = (0..12)
        .map(|i| {
            let (stop, guesses, url, attacker) =
                (stop.clone(), guesses.clone(), url.clone(), attacker.clone());
            std::thread::spawn(move || {
                let mut codes = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    codes.push(cockpit_login(
                        &url,
                        Some(&attacker),
                        "admin",
                        &format!("p{i}"),
                    ));
                    guesses.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                codes
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(3));
    for _ in 0..3 {
        let started = Instant::now();
        let code = cockpit_login(&url, None, "admin", &password);
        println!(
            "owner's login during the attack: HTTP {code} in {:?}",
            started.elapsed()
        );
        assert_eq!(
            code, 200,
            "the right password from another address, during the attack"
        );
        assert!(started.elapsed() < Duration::from_secs(20));
    }
    std::thread::sleep(Duration::from_secs(10).saturating_sub(attack.elapsed()));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let codes: Vec<u16> = guessers
        .into_iter()
        .flat_map(|g| g.join().unwrap())
        .collect();
    let seconds = attack.elapsed().as_secs_f64();
    println!(
        "{} guesses by 12 guessers in {seconds:.1} s ({:.1}/s), answers {:?}",
        codes.len(),
        codes.len() as f64 / seconds,
        codes.iter().collect::<std::collections::BTreeSet<_>>()
    );
    assert!(codes.iter().all(|c| *c == 401), "{codes:?}");
    // Each refused try waits as long as a wrong password: ~2 s each, 12 at a time.
    assert!(
        (codes.len() as f64) / seconds < 12.0,
        "{} guesses in {seconds:.1} s",
        codes.len()
    );
    // Not one password was checked for the attacker in its lockout: no new failure line.
    assert!(!app.logs().contains(&format!(
        "from {attacker} failed: wrong user name or password (6 in a row)"
    )));

    // 80 at once: the logins whose password is being checked stay at most 60.
    let pid = app.state("Pid");
    let most = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (most, done, pid) = (most.clone(), done.clone(), pid.clone());
        std::thread::spawn(move || {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                most.fetch_max(
                    sessions_in_flight(&pid),
                    std::sync::atomic::Ordering::Relaxed,
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let burst: Vec<_> = (0..80)
        .map(|i| {
            let (url, attacker) = (url.clone(), attacker.clone());
            std::thread::spawn(move || {
                cockpit_login(&url, Some(&attacker), "admin", &format!("b{i}"))
            })
        })
        .collect();
    let codes: Vec<u16> = burst.into_iter().map(|b| b.join().unwrap()).collect();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    watcher.join().unwrap();
    let most = most.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "80 logins at once: at most {most} cockpit-session processes; answers {:?}",
        codes
            .iter()
            .fold(std::collections::BTreeMap::new(), |mut m, c| {
                *m.entry(*c).or_insert(0) += 1;
                m
            })
    );
    // The owner's three sessions may still be open beside the 60.
    assert!(most <= 63, "{most} cockpit-session processes at once");
    assert!(codes.iter().all(|c| *c != 200), "{codes:?}");
    assert_eq!(
        cockpit_login(&url, None, "admin", &password),
        200,
        "after the burst"
    );
    let logs = app.logs();
    assert!(
        logs.contains("cockpit login as \"admin\" from "),
        "the owner's logins are logged too:\n{logs}"
    );
}
