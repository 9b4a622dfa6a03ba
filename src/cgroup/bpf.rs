//! The bpf(2) calls a device grant needs, made directly (as runc, crun, LXC and systemd do):
//! no libbpf, no clang, nothing to link. Each call fills a zeroed `union bpf_attr` of the size
//! the kernel headers give; the full size matters for BPF_PROG_QUERY, which kernels 6.17 to 7.1
//! write 8 bytes past the fields asked for (research/cgroup-v2.md §1.1).
//!
//! Programs are attached with plain BPF_PROG_ATTACH, never a bpf_link: a link's attachment ends
//! with the process that holds it, and the runtimes could not detach ours at the next update.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::program::{self, Insn};

const PROG_LOAD: i64 = 5;
const PROG_ATTACH: i64 = 8;
const PROG_DETACH: i64 = 9;
const PROG_GET_FD_BY_ID: i64 = 13;
const OBJ_GET_INFO_BY_FD: i64 = 15;
const PROG_QUERY: i64 = 16;

const PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const CGROUP_DEVICE: u32 = 6;
pub const F_ALLOW_MULTI: u32 = 2;
const F_REPLACE: u32 = 4;

/// `union bpf_attr`, zeroed, with the fields each command uses written at their offsets.
#[repr(C, align(8))]
struct Attr([u8; 144]);

impl Attr {
    fn new() -> Attr {
        Attr([0; 144])
    }
    fn u32(&mut self, at: usize, v: u32) -> &mut Attr {
        self.0[at..at + 4].copy_from_slice(&v.to_ne_bytes());
        self
    }
    fn u64(&mut self, at: usize, v: u64) -> &mut Attr {
        self.0[at..at + 8].copy_from_slice(&v.to_ne_bytes());
        self
    }
    fn get_u32(&self, at: usize) -> u32 {
        u32::from_ne_bytes(self.0[at..at + 4].try_into().unwrap())
    }
    fn call(&mut self, cmd: i64) -> io::Result<i64> {
        // SAFETY: the attr is as large as the kernel's union and zeroed beyond the fields
        // written; every pointer in it points into a buffer that outlives the call.
        let r = unsafe {
            nix::libc::syscall(
                nix::libc::SYS_bpf,
                cmd,
                self.0.as_mut_ptr(),
                self.0.len() as u32,
            )
        };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(r)
        }
    }
    fn call_fd(&mut self, cmd: i64) -> io::Result<OwnedFd> {
        let fd = self.call(cmd)? as i32;
        // SAFETY: bpf(2) returned a new descriptor (O_CLOEXEC) that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

/// Loads a device program named `name`. A refusal carries the verifier's log.
pub fn load(insns: &[Insn], name: &str) -> io::Result<OwnedFd> {
    let code = program::to_bytes(insns);
    let license = b"Apache-2.0\0";
    let mut attr = Attr::new();
    attr.u32(0, PROG_TYPE_CGROUP_DEVICE)
        .u32(4, insns.len() as u32)
        .u64(8, code.as_ptr() as u64)
        .u64(16, license.as_ptr() as u64);
    let n = name.len().min(15);
    attr.0[48..48 + n].copy_from_slice(&name.as_bytes()[..n]);
    match attr.call_fd(PROG_LOAD) {
        Ok(fd) => Ok(fd),
        Err(e)
            if e.raw_os_error() == Some(nix::libc::EACCES)
                || e.raw_os_error() == Some(nix::libc::EINVAL) =>
        {
            // Again with the verifier's log, to say why.
            let mut log = vec![0u8; 64 * 1024];
            attr.u32(24, 1)
                .u32(28, log.len() as u32)
                .u64(32, log.as_mut_ptr() as u64);
            let again = attr.call_fd(PROG_LOAD);
            let text = String::from_utf8_lossy(
                &log[..log.iter().position(|b| *b == 0).unwrap_or(log.len())],
            )
            .trim()
            .lines()
            .rev()
            .take(4)
            .collect::<Vec<_>>()
            .join(" / ");
            match again {
                Ok(fd) => Ok(fd),
                Err(_) => Err(io::Error::new(
                    e.kind(),
                    format!("{e}; the kernel's verifier says: {text}"),
                )),
            }
        }
        Err(e) => Err(e),
    }
}

/// The ids of the device programs attached to the cgroup itself (not inherited).
pub fn attached(cgroup: &impl AsRawFd) -> io::Result<Vec<u32>> {
    query(cgroup, 0)
}

/// The ids of every device program that decides for a process in the cgroup: its own and its
/// ancestors' (BPF_F_QUERY_EFFECTIVE).
pub fn effective(cgroup: &impl AsRawFd) -> io::Result<Vec<u32>> {
    query(cgroup, 1)
}

fn query(cgroup: &impl AsRawFd, flags: u32) -> io::Result<Vec<u32>> {
    let mut ids = vec![0u32; 64];
    loop {
        let mut attr = Attr::new();
        attr.u32(0, cgroup.as_raw_fd() as u32)
            .u32(4, CGROUP_DEVICE)
            .u32(8, flags)
            .u64(16, ids.as_mut_ptr() as u64)
            .u32(24, ids.len() as u32);
        match attr.call(PROG_QUERY) {
            Ok(_) => {
                ids.truncate(attr.get_u32(24) as usize);
                return Ok(ids);
            }
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOSPC) => {
                ids = vec![0u32; attr.get_u32(24) as usize + 16];
            }
            Err(e) => return Err(e),
        }
    }
}

/// An open descriptor of the program with this id.
pub fn by_id(id: u32) -> io::Result<OwnedFd> {
    Attr::new().u32(0, id).call_fd(PROG_GET_FD_BY_ID)
}

/// What the kernel tells about a loaded program.
pub struct Info {
    pub name: String,
    /// The instructions as the verifier left them ("xlated"); empty when the kernel hides them.
    pub insns: Vec<Insn>,
    pub maps: u32,
}

const INFO_LEN: usize = 80;

fn info_call(prog: &impl AsRawFd, buf: &mut [u8; INFO_LEN]) -> io::Result<()> {
    let mut attr = Attr::new();
    attr.u32(0, prog.as_raw_fd() as u32)
        .u32(4, INFO_LEN as u32)
        .u64(8, buf.as_mut_ptr() as u64);
    attr.call(OBJ_GET_INFO_BY_FD).map(|_| ())
}

pub fn info(prog: &impl AsRawFd) -> io::Result<Info> {
    // struct bpf_prog_info: xlated_prog_len at 20, xlated_prog_insns at 32, nr_map_ids at 52,
    // name at 64.
    let mut buf = [0u8; INFO_LEN];
    info_call(prog, &mut buf)?;
    let len = u32::from_ne_bytes(buf[20..24].try_into().unwrap()) as usize;
    let mut code = vec![0u8; len];
    let mut buf = [0u8; INFO_LEN];
    buf[20..24].copy_from_slice(&(len as u32).to_ne_bytes());
    buf[32..40].copy_from_slice(&(code.as_mut_ptr() as u64).to_ne_bytes());
    info_call(prog, &mut buf)?;
    // A kernel that may not show them (net.core.bpf_jit_harden=2 with kernel.kptr_restrict)
    // still gives the length, but no pointer and nothing copied.
    let hidden = buf[32..40].iter().all(|b| *b == 0);
    let got = if hidden {
        0
    } else {
        (u32::from_ne_bytes(buf[20..24].try_into().unwrap()) as usize).min(len)
    };
    let name = &buf[64..80];
    Ok(Info {
        name: String::from_utf8_lossy(&name[..name.iter().position(|b| *b == 0).unwrap_or(16)])
            .into_owned(),
        insns: program::from_bytes(&code[..got]),
        maps: u32::from_ne_bytes(buf[52..56].try_into().unwrap()),
    })
}

/// Swaps `old` for `new` on the cgroup in one step (Linux 5.6+): no moment with neither, none
/// with both. ENOENT: `old` is no longer attached there (someone replaced it meanwhile).
pub fn replace(cgroup: &impl AsRawFd, new: &impl AsRawFd, old: &impl AsRawFd) -> io::Result<()> {
    Attr::new()
        .u32(0, cgroup.as_raw_fd() as u32)
        .u32(4, new.as_raw_fd() as u32)
        .u32(8, CGROUP_DEVICE)
        .u32(12, F_ALLOW_MULTI | F_REPLACE)
        .u32(16, old.as_raw_fd() as u32)
        .call(PROG_ATTACH)
        .map(|_| ())
}

/// Attaches `prog` beside the programs already there (as the runtimes do).
pub fn attach(cgroup: &impl AsRawFd, prog: &impl AsRawFd) -> io::Result<()> {
    Attr::new()
        .u32(0, cgroup.as_raw_fd() as u32)
        .u32(4, prog.as_raw_fd() as u32)
        .u32(8, CGROUP_DEVICE)
        .u32(12, F_ALLOW_MULTI)
        .call(PROG_ATTACH)
        .map(|_| ())
}

pub fn detach(cgroup: &impl AsRawFd, prog: &impl AsRawFd) -> io::Result<()> {
    Attr::new()
        .u32(0, cgroup.as_raw_fd() as u32)
        .u32(4, prog.as_raw_fd() as u32)
        .u32(8, CGROUP_DEVICE)
        .call(PROG_DETACH)
        .map(|_| ())
}
