//! USB hotplug for a running container (`io.virtpod.device.usb=hotplug`): the kernel's uevents
//! on the host, each USB device plugged in given to the container (node with the image's
//! group, devices cgroup rule), each one unplugged taken out again. The poststart stage starts
//! this for such a container and poststop stops it; it also ends by itself when the container's
//! process is gone.
//!
//! `Event` and `parse` are pure; `Source` reads the kernel's netlink socket, or a file of
//! events (`KEY=VALUE` lines, a blank line after each event, as `udevadm monitor --property`
//! prints them) for tests and for replaying.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};

/// What one uevent says, of what hotplug needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub action: String,
    pub subsystem: String,
    pub devtype: String,
    /// Relative to /dev: `bus/usb/001/005`.
    pub devname: String,
    pub major: u64,
    pub minor: u64,
}

impl Event {
    /// A whole USB device (not one of its interfaces), with a node.
    pub fn is_usb_device(&self) -> bool {
        self.subsystem == "usb" && self.devtype == "usb_device" && !self.devname.is_empty()
    }
}

/// An event from its `KEY=VALUE` fields (the kernel's header line `add@/devices/…` is skipped).
pub fn parse<'a>(fields: impl IntoIterator<Item = &'a str>) -> Option<Event> {
    let kv: BTreeMap<&str, &str> = fields
        .into_iter()
        .filter_map(|f| f.split_once('='))
        .collect();
    let get = |k: &str| kv.get(k).map(|v| v.to_string()).unwrap_or_default();
    Some(Event {
        action: kv.get("ACTION")?.to_string(),
        subsystem: get("SUBSYSTEM"),
        devtype: get("DEVTYPE"),
        devname: get("DEVNAME"),
        major: kv.get("MAJOR").and_then(|v| v.parse().ok()).unwrap_or(0),
        minor: kv.get("MINOR").and_then(|v| v.parse().ok()).unwrap_or(0),
    })
}

/// Where events come from.
pub enum Source {
    /// The kernel's uevents (NETLINK_KOBJECT_UEVENT, group 1); only the kernel's are taken.
    Kernel(OwnedFd),
    /// A file that grows: events appended to it are read as they come.
    File { file: File, pending: String },
}

impl Source {
    pub fn kernel() -> Result<Source> {
        use nix::sys::socket::{
            bind, socket, AddressFamily, NetlinkAddr, SockFlag, SockProtocol, SockType,
        };
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkKObjectUEvent,
        )
        .context("opening the kernel's uevent socket")?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 1))
            .context("listening to the kernel's uevents")?;
        Ok(Source::Kernel(fd))
    }

    pub fn file(path: &Path) -> Result<Source> {
        let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        Ok(Source::File {
            file,
            pending: String::new(),
        })
    }

    /// The events that arrived within about `wait`.
    pub fn next(&mut self, wait: Duration) -> Result<Vec<Event>> {
        match self {
            Source::Kernel(fd) => {
                use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
                use nix::sys::socket::{recvfrom, NetlinkAddr};
                let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
                let ms = PollTimeout::try_from(wait.as_millis() as i32).unwrap_or(PollTimeout::MAX);
                if poll(&mut fds, ms)? == 0 {
                    return Ok(Vec::new());
                }
                let mut buf = vec![0u8; 16 * 1024];
                let (n, from) = recvfrom::<NetlinkAddr>(fd.as_raw_fd(), &mut buf)?;
                // Anyone may send to this group; only port 0 is the kernel.
                if from.is_none_or(|a| a.pid() != 0) {
                    return Ok(Vec::new());
                }
                let text = String::from_utf8_lossy(&buf[..n]);
                Ok(parse(text.split('\0')).into_iter().collect())
            }
            Source::File { file, pending } => {
                std::thread::sleep(wait.min(Duration::from_millis(200)));
                // Bytes, not text: one bad byte must not end the watch.
                let mut bytes = Vec::new();
                file.read_to_end(&mut bytes)?;
                let more = String::from_utf8_lossy(&bytes);
                if more.is_empty() {
                    // A file truncated under us starts again from its start.
                    let len = file.metadata()?.len();
                    if file.stream_position()? > len {
                        file.seek(SeekFrom::Start(0))?;
                    }
                }
                pending.push_str(&more);
                let mut events = Vec::new();
                while let Some(end) = pending.find("\n\n") {
                    let block: String = pending.drain(..end + 2).collect();
                    events.extend(parse(block.lines()));
                }
                Ok(events)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kernel_uevent_is_read_and_only_whole_usb_devices_count() {
        let raw = "add@/devices/pci0000:00/0000:00:14.0/usb1/1-2\0ACTION=add\0DEVPATH=/devices/pci0000:00/0000:00:14.0/usb1/1-2\0SUBSYSTEM=usb\0MAJOR=189\0MINOR=4\0DEVNAME=bus/usb/001/005\0DEVTYPE=usb_device\0PRODUCT=1d6b/2/606\0";
        let e = parse(raw.split('\0')).unwrap();
        assert_eq!(
            (e.action.as_str(), e.devname.as_str(), e.major, e.minor),
            ("add", "bus/usb/001/005", 189, 4)
        );
        assert!(e.is_usb_device());
        let interface = raw.replace("DEVTYPE=usb_device", "DEVTYPE=usb_interface");
        assert!(!parse(interface.split('\0')).unwrap().is_usb_device());
        assert!(parse(["SUBSYSTEM=usb"]).is_none(), "no action, no event");
    }

    #[test]
    fn a_growing_file_gives_each_event_once_it_is_complete() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events");
        std::fs::write(&path, "").unwrap();
        let mut src = Source::file(&path).unwrap();
        assert!(src.next(Duration::ZERO).unwrap().is_empty());
        use std::io::Write;
        let mut w = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        write!(
            w,
            "ACTION=add\nSUBSYSTEM=usb\nDEVTYPE=usb_device\nDEVNAME=bus/usb/001/005\n"
        )
        .unwrap();
        assert!(
            src.next(Duration::ZERO).unwrap().is_empty(),
            "not complete yet"
        );
        write!(w, "MAJOR=189\nMINOR=4\n\nACTION=remove\n\n").unwrap();
        let got = src.next(Duration::ZERO).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].minor, got[1].action.as_str()), (4, "remove"));
    }
}
