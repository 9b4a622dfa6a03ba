//! systemd's manager over its private D-Bus socket: the one systemctl uses as root. It exists
//! as soon as PID 1 runs, before the system bus does, so early-boot units can use it.
//!
//! zbus builds and reads the messages; the connection is ours. zbus 5.19's `Connection` panics
//! on the replies systemd 252 sends over this peer-to-peer socket ("Invalid field
//! reconstruction: InvalidName(Invalid unique name)", from its reply routing reading the sender
//! field), so this module speaks the few lines of the protocol itself: the EXTERNAL
//! handshake, one call, its reply. It never reads the sender.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use zbus::message::{Message, Type};
use zbus::zvariant::serialized::{Context as Wire, Data, Format};
use zbus::zvariant::Endian;

pub const PRIVATE_SOCKET: &str = "/run/systemd/private";

/// `SetEnvironment`: every service started from now on gets these `NAME=VALUE` assignments.
pub fn set_environment(socket: &str, assignments: &[String]) -> Result<()> {
    let mut stream = UnixStream::connect(socket).with_context(|| {
        format!("connecting to systemd at {socket} (is systemd PID 1 of this container, and are we root?)")
    })?;
    // PID 1 answers at once or is stuck; a boot must not wait on it for ever.
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    authenticate(&mut stream).with_context(|| format!("authenticating to systemd at {socket}"))?;
    let call = Message::method_call("/org/freedesktop/systemd1", "SetEnvironment")?
        .destination("org.freedesktop.systemd1")?
        .interface("org.freedesktop.systemd1.Manager")?
        .build(&(assignments,))?;
    stream
        .write_all(call.data())
        .with_context(|| format!("sending SetEnvironment to {socket}"))?;
    // A private connection gets no signals it did not ask for: the next reply is ours.
    loop {
        let reply = read_message(&mut stream)
            .with_context(|| format!("reading systemd's answer to SetEnvironment on {socket}"))?;
        match reply.message_type() {
            Type::MethodReturn => return Ok(()),
            Type::Error => {
                let why: String = reply.body().deserialize().unwrap_or_default();
                bail!("systemd refused SetEnvironment: {why}");
            }
            Type::Signal | Type::MethodCall => continue,
        }
    }
}

/// SASL EXTERNAL: the server knows our uid from the socket; we name it, it says OK.
fn authenticate(stream: &mut UnixStream) -> Result<()> {
    let uid = nix::unistd::getuid().as_raw().to_string();
    let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
    stream.write_all(format!("\0AUTH EXTERNAL {hex}\r\n").as_bytes())?;
    let line = read_line(stream)?;
    if !line.starts_with("OK ") {
        bail!("expected OK, got {line:?}");
    }
    stream.write_all(b"BEGIN\r\n")?;
    Ok(())
}

/// One CRLF-terminated line of the handshake, byte by byte so nothing after it is consumed.
fn read_line(stream: &mut UnixStream) -> Result<String> {
    let mut line = Vec::new();
    let mut byte = [0u8];
    while !line.ends_with(b"\r\n") {
        stream.read_exact(&mut byte)?;
        line.push(byte[0]);
        if line.len() > 512 {
            bail!("handshake line longer than 512 bytes");
        }
    }
    Ok(String::from_utf8_lossy(&line[..line.len() - 2]).into_owned())
}

/// One whole message: the fixed 16-byte header says how long the header fields (padded to 8)
/// and the body are.
fn read_message(stream: &mut UnixStream) -> Result<Message> {
    let mut bytes = vec![0u8; 16];
    stream.read_exact(&mut bytes)?;
    let endian = match bytes[0] {
        b'l' => Endian::Little,
        b'B' => Endian::Big,
        other => bail!("not a D-Bus message (endianness byte {other:#x})"),
    };
    let u32_at = |b: &[u8], at: usize| {
        let raw = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        match endian {
            Endian::Little => u32::from_le_bytes(raw),
            Endian::Big => u32::from_be_bytes(raw),
        }
    };
    let body = u32_at(&bytes, 4) as usize;
    let fields = u32_at(&bytes, 12) as usize;
    let header = (16 + fields).next_multiple_of(8);
    // The specification's limit for a whole message.
    if header + body > 128 << 20 {
        bail!("message of {} bytes is over D-Bus's 128 MiB", header + body);
    }
    bytes.resize(header + body, 0);
    stream.read_exact(&mut bytes[16..])?;
    let data = Data::new(bytes, Wire::new(Format::DBus, endian, 0));
    // SAFETY: from_bytes is unsafe only because the bytes may be badly encoded; it checks the
    // encoding and returns an error, and no file descriptors travel on this connection.
    Ok(unsafe { Message::from_bytes(data) }?)
}
