//! Guests' networks (docs/networking.md): libvirt's `default` NAT network through the README's
//! front door, a guest's lease, its way out, and the way in from the host by VIRTPOD_FORWARD.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use crate::front_door::{appliance_up_command, HostSide, ProjectNetwork};
use crate::harness::*;

const DEFAULT_NIC: &str =
    "<interface type='network'><source network='default'/><model type='virtio'/></interface>";
/// What the test's own web server on the host answers (the guest's way out).
const HOST_PAGE: &str = "VIRTPOD-HOST-HTTP";
/// What the test guest's web server answers (tests/guest/init).
const GUEST_PAGE: &str = "VIRTPOD-GUEST-HTTP";

/// libvirtd's error lines at every start in a container, each explained (and its fix or why it
/// is harmless) in docs/troubleshooting.md; by the function libvirt names in the line.
const EXPLAINED: &[&str] = &[
    // No system bus: no firewalld or machined in the container.
    "virGDBusGetSystemBus",
    // No SMBIOS for libvirt's host sysinfo: /sys/firmware is masked, no /dev/mem.
    "udevGetDMIData",
    "dmidecode",
];

/// The host's first address (`hostname -I`), where a rootless container's traffic reaches it.
fn host_address() -> String {
    let out = std::process::Command::new("hostname")
        .arg("-I")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let first = text
        .split_whitespace()
        .find(|a| a.parse::<std::net::Ipv4Addr>().is_ok());
    first
        .expect("the host has an IPv4 address (hostname -I)")
        .to_string()
}

/// The host's default gateway (`ip -4 route show default`).
fn default_gateway() -> String {
    let out = std::process::Command::new("ip")
        .args(["-4", "route", "show", "default"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut words = text.split_whitespace();
    words.find(|w| *w == "via");
    words
        .next()
        .expect("the host has a default route")
        .to_string()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A web server on the host that answers every request with HOST_PAGE; its port.
fn host_web_server() -> u16 {
    let listener = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut buf = [0u8; 1024];
            let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = conn.read(&mut buf);
            let _ = write!(
                conn,
                "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{HOST_PAGE}\n",
                HOST_PAGE.len() + 1
            );
        }
    });
    port
}

/// `GET /` on the host's own port; the whole answer, or the error.
fn http_get(port: u16) -> String {
    let attempt = || -> std::io::Result<String> {
        let mut s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        s.write_all(b"GET / HTTP/1.0\r\nHost: test\r\n\r\n")?;
        let mut answer = String::new();
        s.read_to_string(&mut answer)?;
        Ok(answer)
    };
    attempt().unwrap_or_else(|e| format!("error: {e}"))
}

#[test]
fn appliance_up_gives_guests_the_default_network_and_forwards_a_host_port_to_one() {
    require_prepared();
    let vols = Volumes::new("net");
    let _network = ProjectNetwork(vols.prefix.clone());
    let app = Appliance {
        name: vols.prefix.clone(),
        vols: &vols,
        uri_extra: String::new(),
    };
    let host = HostSide::new();
    let port = free_port();
    let out = appliance_up_command(&vols, &host)
        .env("VIRTPOD_FORWARD", format!("{port}:web:80"))
        .output()
        .unwrap();
    let said = text(&out);
    assert!(out.status.success(), "./appliance-up failed: {said}");
    assert!(said.contains(&format!("{port}:web:80")), "{said}");

    // libvirt's default network is up, and starts with libvirt.
    let info = app.virsh_ok(&["net-info", "default"]);
    let field = |name: &str| {
        info.lines()
            .find(|l| l.starts_with(name))
            .map(|l| l[name.len()..].trim().to_string())
            .unwrap_or_default()
    };
    assert_eq!(field("Active:"), "yes", "{info}");
    assert_eq!(field("Autostart:"), "yes", "{info}");
    assert_eq!(field("Bridge:"), "virbr0", "{info}");
    // libvirtd's start-up log: no error line that docs/troubleshooting.md does not explain.
    let doc = std::fs::read_to_string(repo().join("docs/troubleshooting.md")).unwrap();
    for e in EXPLAINED {
        assert!(
            doc.contains(e),
            "docs/troubleshooting.md does not explain {e}"
        );
    }
    let log = app.logs();
    let unexplained: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(": error :"))
        .filter(|l| !EXPLAINED.iter().any(|e| l.contains(e)))
        .collect();
    assert!(
        unexplained.is_empty(),
        "unexplained errors at start:\n{}",
        unexplained.join("\n")
    );
    // Only /proc/sys/net became writable; the rest stays read-only.
    let sysctl = app.exec(
        "echo 1 > /proc/sys/net/ipv4/ip_forward && echo net-ok; echo 1 > /proc/sys/vm/drop_caches 2>&1 || echo vm-refused",
    );
    let sysctl = text(&sysctl);
    assert!(
        sysctl.contains("net-ok") && sysctl.contains("vm-refused"),
        "{sysctl}"
    );

    // A guest on it gets a lease libvirt lists, and reaches the host through the NAT.
    let gateway = podman_ok(&[
        "inspect",
        &app.name,
        "--format",
        "{{range .NetworkSettings.Networks}}{{.Gateway}}{{end}}",
    ]);
    let gateway = gateway.trim();
    assert!(!gateway.is_empty(), "no gateway for {}", app.name);
    let host_port = host_web_server();
    app.define_networked_guest(
        "web",
        DEFAULT_NIC,
        &format!("virtpod.fetch=http://{gateway}:{host_port}/"),
    );
    app.virsh_ok(&["start", "web"]);
    let address = app.wait_lease("web");
    assert!(address.starts_with("192.168.122."), "{address}");
    let leases = app.virsh_ok(&["net-dhcp-leases", "default"]);
    assert!(leases.contains(&format!("{address}/24")), "{leases}");
    app.wait_console("web", &format!("VIRTPOD-GUEST-FETCHED {HOST_PAGE}"), 1);

    // The host's port reaches the guest's web server (VIRTPOD_FORWARD).
    let mut last = String::new();
    wait_for(
        &format!("the guest's page on the host's port {port}"),
        Duration::from_secs(60),
        || {
            last = http_get(port);
            last.contains(GUEST_PAGE)
        },
    );
    assert!(last.starts_with("HTTP/1."), "{last}");

    // A host bridge is not in the container's own namespace: libvirt's own words for it
    // (docs/troubleshooting.md, item 7; host network is the way to a bridge).
    app.define_networked_guest(
        "bridged",
        "<interface type='bridge'><source bridge='br0'/><model type='virtio'/></interface>",
        "",
    );
    let started = app.virsh(&["start", "bridged"]);
    let why = text(&started);
    assert!(!started.status.success(), "{why}");
    assert!(why.contains("Cannot get interface MTU on 'br0'"), "{why}");
}

/// The trixie image: bookworm's libvirt 9.0 refuses `<backend type='passt'/>`.
const PASST_IMAGE: &str = "localhost/virtpod:debian-trixie";
/// Another user than modes.rs's, so the two rootless tests never share a pause process.
const PASST_UID: u32 = 61235;

/// Rootless: a guest gets a network without privileges, by passt (a user-mode interface), and
/// the host reaches it through the port passt forwards in the container, which rootless podman
/// publishes. The user's containers get their own network from slirp4netns (/dev/net/tun as a
/// stock Debian has it, see tests/as-rootless-user). The guest fetches the test's web server at
/// the host's own address (passt maps the gateway's address to the container's loopback).
#[test]
fn rootless_guest_gets_a_network_by_passt_and_the_host_reaches_it() {
    rootless_passt_guest("private");
}

/// Rootless with the host's network (`--network host`): no tap and no bridge can be made there
/// without privileges, but passt needs neither; its forwarded port is the host's own.
#[test]
fn rootless_host_network_guest_gets_a_network_by_passt() {
    rootless_passt_guest("host");
}

/// The rootless passt story with the container on its own slirp4netns network ("private", the
/// port published by podman) or on the host's ("host", passt's port is the host's).
fn rootless_passt_guest(network: &str) {
    require_prepared();
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    std::fs::set_permissions(t, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let archive = t.join("image.tar");
    podman_ok(&["save", "-q", "-o", archive.to_str().unwrap(), PASST_IMAGE]);
    for f in ["vmlinuz", "initrd.img"] {
        std::fs::copy(e2e_dir().join("guest").join(f), t.join(f)).unwrap();
    }
    for f in ["image.tar", "vmlinuz", "initrd.img"] {
        std::fs::set_permissions(
            t.join(f),
            std::os::unix::fs::PermissionsExt::from_mode(0o644),
        )
        .unwrap();
    }
    let port = free_port();
    let host_port = host_web_server();
    // Where the guest finds the host: on the host's network passt hands the guest the host's own
    // address, and maps the gateway's address to the host's loopback; on slirp4netns the
    // gateway is the container's loopback, and the host's address is the way.
    let fetch_from = match network {
        "host" => default_gateway(),
        _ => host_address(),
    };
    let nic = format!(
        "<interface type='user'><backend type='passt'/><portForward proto='tcp'>\
         <range start='{port}' to='80'/></portForward><model type='virtio'/></interface>"
    );
    let xml = guest_xml("p", "qemu")
        .replace(
            "quiet</cmdline>",
            &format!("quiet virtpod.net virtpod.fetch=http://{fetch_from}:{host_port}/</cmdline>"),
        )
        .replace("<devices>", &format!("<devices>\n    {nic}"));
    std::fs::write(t.join("p.xml"), xml).unwrap();

    let script = format!(
        r#"set -eu
mkdir -p ~/.config/containers "$XDG_RUNTIME_DIR/virtpod"
printf '[storage]\ndriver = "overlay"\n' > ~/.config/containers/storage.conf
podman load -q -i {t}/image.tar >/dev/null
sock="$XDG_RUNTIME_DIR/virtpod"
podman run -d --name virtpod {network_args} \
    -v virtpod-lib:/var/lib/libvirt -v virtpod-etc:/etc/libvirt -v virtpod-log:/var/log/libvirt \
    -v "$sock:/run/libvirt" {PASST_IMAGE} >/dev/null
uri="qemu+unix:///system?socket=$sock/libvirt-sock"
i=0; until virsh -c "$uri" version >/dev/null 2>&1; do
    i=$((i+1)); [ $i -lt 600 ] || {{ podman logs virtpod; exit 1; }}; sleep 0.1; done
podman cp {t}/vmlinuz virtpod:/var/lib/libvirt/images/vmlinuz
podman cp {t}/initrd.img virtpod:/var/lib/libvirt/images/initrd.img
virsh -c "$uri" define {t}/p.xml >/dev/null
virsh -c "$uri" start p
log() {{ podman exec virtpod cat /var/log/libvirt/qemu/p-serial.log 2>/dev/null; }}
i=0; until log | grep -q 'VIRTPOD-GUEST-FETCHED'; do
    i=$((i+1)); [ $i -lt 120 ] || {{ echo "no fetch"; log; podman logs virtpod; exit 1; }}; sleep 1; done
log | grep VIRTPOD-GUEST
i=0; until page=$(timeout 10 bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port} && printf "GET / HTTP/1.0\r\n\r\n" >&3 && cat <&3') \
        && echo "$page" | grep -q {GUEST_PAGE}; do
    i=$((i+1)); [ $i -lt 30 ] || {{ echo "no page from the host's port {port}"; podman logs virtpod; exit 1; }}; sleep 2; done
echo "host got: $(echo "$page" | tail -n 1)"
podman rm -f -t 0 virtpod >/dev/null
podman volume rm -f virtpod-lib virtpod-etc virtpod-log >/dev/null
"#,
        t = t.display(),
        network_args = match network {
            "host" => "--network host".to_string(),
            _ => format!("-p {port}:{port}"),
        },
    );
    let uid = if network == "host" {
        PASST_UID + 1
    } else {
        PASST_UID
    };
    let out = std::process::Command::new(repo().join("tests/as-rootless-user"))
        .arg(uid.to_string())
        .arg(t.join("user"))
        .env("CONTAINERS_CONF", repo().join("tests/containers.conf"))
        .env("AS_ROOTLESS_TUN", "open")
        .args(["sh", "-c", &script])
        .output()
        .unwrap();
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("Domain 'p' started"), "{said}");
    assert!(said.contains(GUEST_LEASE), "{said}");
    assert!(
        said.contains(&format!("VIRTPOD-GUEST-FETCHED {HOST_PAGE}")),
        "{said}"
    );
    assert!(said.contains(&format!("host got: {GUEST_PAGE}")), "{said}");
}

/// A network namespace of the test's own standing in for a host's LAN: a bridge with a DHCP
/// server (dnsmasq from the appliance image, in a container of its own on that namespace) and a
/// veth pair whose one end is in the bridge. Removed on drop; the host's interfaces are never
/// touched.
struct Lan {
    ns: String,
    dhcp: String,
}

const LAN_BRIDGE: &str = "vpbr0";
const LAN_VETH: &str = "vpveth0";

impl Lan {
    fn new() -> Lan {
        let ns = unique("lan");
        let dhcp = format!("{ns}-dhcp");
        let ip = |args: &str| {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("ip -n {ns} {args}"))
                .output()
                .unwrap();
            assert!(out.status.success(), "ip -n {ns} {args}: {}", text(&out));
        };
        let out = std::process::Command::new("ip")
            .args(["netns", "add", &ns])
            .output()
            .unwrap();
        assert!(out.status.success(), "ip netns add {ns}: {}", text(&out));
        let lan = Lan {
            ns: ns.clone(),
            dhcp: dhcp.clone(),
        };
        ip("link set lo up");
        ip(&format!("link add {LAN_BRIDGE} type bridge"));
        ip(&format!("addr add 192.168.77.1/24 dev {LAN_BRIDGE}"));
        ip(&format!("link set {LAN_BRIDGE} up"));
        ip(&format!("link add {LAN_VETH} type veth peer name vpveth1"));
        ip(&format!("link set vpveth1 master {LAN_BRIDGE}"));
        ip("link set vpveth1 up");
        ip(&format!("link set {LAN_VETH} up"));
        podman_ok(&[
            "run",
            "-d",
            "--name",
            &dhcp,
            "--no-healthcheck",
            "--network",
            &format!("ns:/run/netns/{ns}"),
            "--cap-add",
            "NET_ADMIN,NET_RAW",
            "--entrypoint",
            "/usr/sbin/dnsmasq",
            image(),
            "--no-daemon",
            "--conf-file=/dev/null",
            "--user=root",
            "--leasefile-ro",
            &format!("--interface={LAN_BRIDGE}"),
            "--bind-interfaces",
            "--dhcp-range=192.168.77.50,192.168.77.99,12h",
            "--log-dhcp",
        ]);
        lan
    }

    fn netns(&self) -> String {
        format!("ns:/run/netns/{}", self.ns)
    }

    fn dhcp_log(&self) -> String {
        text(&podman(&["logs", &self.dhcp]))
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        // -v: the image's VOLUMEs gave it anonymous volumes.
        podman(&["rm", "-f", "-v", "-t", "0", &self.dhcp]);
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.ns])
            .output();
    }
}

/// Host network with guests on the LAN: the appliance in the "host's" network namespace (here
/// the test's own, standing in for it) with NET_ADMIN and /dev/net/tun. A guest with
/// `type='bridge'` on the existing bridge gets its lease from the LAN's DHCP server; one with
/// `type='direct'` (macvtap) on the veth shows what a container cannot do (docs/networking.md).
#[test]
fn host_network_bridge_gives_the_guest_a_lease_from_the_lan() {
    require_prepared();
    let lan = Lan::new();
    let vols = Volumes::new("lan");
    let netns = lan.netns();
    let app = Appliance::start(
        &vols,
        Opts {
            podman: &[
                "--network",
                &netns,
                "--cap-add",
                "NET_ADMIN",
                "--device",
                "/dev/net/tun",
            ],
            ..Default::default()
        },
    );
    app.wait_ready();
    app.define_networked_guest(
        "onbridge",
        &format!("<interface type='bridge'><source bridge='{LAN_BRIDGE}'/><model type='virtio'/></interface>"),
        "",
    );
    app.virsh_ok(&["start", "onbridge"]);
    let address = app.wait_lease("onbridge");
    assert!(address.starts_with("192.168.77."), "{address}");
    let said = lan.dhcp_log();
    assert!(
        said.contains(&format!("DHCPACK({LAN_BRIDGE}) {address}")),
        "{said}"
    );

    // macvtap: libvirt makes the device, then opens its character node /dev/tapN, which the
    // kernel's devtmpfs creates on the host only: the container's /dev never has it. Unsupported
    // in a container (docs/networking.md); this shows the failure a user meets.
    app.define_networked_guest(
        "direct",
        &format!("<interface type='direct'><source dev='{LAN_VETH}' mode='bridge'/><model type='virtio'/></interface>"),
        "",
    );
    let started = app.virsh(&["start", "direct"]);
    let why = text(&started);
    assert!(!started.status.success(), "macvtap started: {why}");
    assert!(
        why.contains("cannot open macvtap tap device /dev/tap"),
        "{why}"
    );
}

/// VIRTPOD_FORWARD against a flood (hardening, round two): 1,300 connections held open through
/// one forwarded port once took two threads each, hit the container's pids limit ("Cannot
/// fork" for `podman exec`), and killed that port's listener for good while health said ok.
/// Now each port holds at most 256 connections and closes the rest with a line; exec and
/// health keep working, and the port forwards again once the flood is over.
#[test]
fn a_flood_of_connections_never_takes_a_forwarded_port_down() {
    require_prepared();
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, hard.min(16384), hard).unwrap();
    // The far end, on the host: accepts every connection and holds it.
    let listener = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    {
        let held = held.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                held.lock().unwrap().push(conn);
            }
        });
    }
    let gateway = podman_ok(&[
        "network",
        "inspect",
        "podman",
        "--format",
        "{{range .Subnets}}{{.Gateway}}{{end}}",
    ]);
    let forward = format!("VIRTPOD_FORWARD=8080:{}:{port}", gateway.trim());
    let vols = Volumes::new("fwd-flood");
    let app = Appliance::start(
        &vols,
        Opts {
            podman: &["-e", &forward],
            ..Opts::default()
        },
    );
    app.wait_ready();
    let ip = podman_ok(&[
        "inspect",
        "--format",
        "{{.NetworkSettings.IPAddress}}",
        &app.name,
    ]);
    let to: std::net::SocketAddr = format!("{}:8080", ip.trim()).parse().unwrap();
    let mut clients = Vec::new();
    for _ in 0..1300 {
        if let Ok(c) = TcpStream::connect_timeout(&to, Duration::from_secs(5)) {
            clients.push(c);
        }
    }
    wait_for(
        "the forward to hold its limit",
        Duration::from_secs(30),
        || held.lock().unwrap().len() >= 256,
    );
    std::thread::sleep(Duration::from_secs(2));
    let through = held.lock().unwrap().len();
    assert!(
        through <= 256 + 8,
        "{through} connections went through one port"
    );
    let (ok, health) = app.health();
    assert!(ok, "podman exec and health during the flood: {health}");
    assert!(
        app.logs()
            .contains("256 connections are open on this port already"),
        "{}",
        app.logs()
    );

    // Over: the far end lets go, and a new connection is forwarded again.
    drop(clients);
    held.lock().unwrap().clear();
    std::thread::sleep(Duration::from_secs(2));
    let mut c = TcpStream::connect_timeout(&to, Duration::from_secs(5)).unwrap();
    c.write_all(b"after").unwrap();
    wait_for(
        "a connection after the flood",
        Duration::from_secs(15),
        || held.lock().unwrap().len() == 1,
    );
    let mut got = [0u8; 5];
    let mut far = held.lock().unwrap().remove(0);
    far.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    far.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"after");
    let (ok, health) = app.health();
    assert!(ok, "{health}");
}
