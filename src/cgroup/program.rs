//! cgroup v2 device programs as data: eBPF instructions, the allow blocks virtpod puts in front
//! of the program a runtime (or systemd) attached, and a small evaluator that says what a
//! program answers for a device.
//!
//! A grant keeps the attached program's own policy exactly: the new program is "our blocks, then
//! the old program's instructions unchanged". A block allows its device, or denies it: a device
//! taken back that the old program allows by itself (the hook put it in the container's spec
//! at the last start) needs a deny in front. Prepending moves no jump target (eBPF
//! jumps are relative), and each block leaves r1 (the context) as it found it, so the old
//! program runs as before for every device we do not allow. Our blocks have one fixed shape, so
//! they can be read back from an attached program: what virtpod granted lives in the kernel,
//! not in a file that could disagree with it.

use std::fmt;

/// The name virtpod gives the programs it loads (the kernel keeps 15 bytes).
pub const NAME: &str = "virtpod_dev";

/// One eBPF instruction, as the kernel's `struct bpf_insn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    pub dst: u8,
    pub src: u8,
    pub off: i16,
    pub imm: i32,
}

impl Insn {
    const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            dst,
            src,
            off,
            imm,
        }
    }

    pub fn to_bytes(self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0] = self.code;
        b[1] = (self.src << 4) | (self.dst & 0x0f);
        b[2..4].copy_from_slice(&self.off.to_le_bytes());
        b[4..8].copy_from_slice(&self.imm.to_le_bytes());
        b
    }

    pub fn from_bytes(b: &[u8]) -> Insn {
        Insn {
            code: b[0],
            dst: b[1] & 0x0f,
            src: b[1] >> 4,
            off: i16::from_le_bytes([b[2], b[3]]),
            imm: i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }
}

/// The instructions as the kernel takes them.
pub fn to_bytes(insns: &[Insn]) -> Vec<u8> {
    insns.iter().flat_map(|i| i.to_bytes()).collect()
}

/// The instructions in a buffer the kernel filled (8 bytes each).
pub fn from_bytes(b: &[u8]) -> Vec<Insn> {
    b.chunks_exact(8).map(Insn::from_bytes).collect()
}

// Opcodes (linux/bpf.h, linux/bpf_common.h).
const CLASS_LD: u8 = 0x00;
const CLASS_LDX: u8 = 0x01;
const CLASS_ST: u8 = 0x02;
const CLASS_STX: u8 = 0x03;
const CLASS_ALU: u8 = 0x04;
const CLASS_JMP: u8 = 0x05;
const CLASS_JMP32: u8 = 0x06;
const CLASS_ALU64: u8 = 0x07;
const MODE_MEM: u8 = 0x60;
const SIZE_W: u8 = 0x00;
const SRC_X: u8 = 0x08;
const JA: u8 = 0x00;
const JEQ: u8 = 0x10;
const JGT: u8 = 0x20;
const JGE: u8 = 0x30;
const JSET: u8 = 0x40;
const JNE: u8 = 0x50;
const JSGT: u8 = 0x60;
const JSGE: u8 = 0x70;
const CALL: u8 = 0x80;
const EXIT: u8 = 0x90;
const JLT: u8 = 0xa0;
const JLE: u8 = 0xb0;
const JSLT: u8 = 0xc0;
const JSLE: u8 = 0xd0;
const ADD: u8 = 0x00;
const SUB: u8 = 0x10;
const MUL: u8 = 0x20;
const OR: u8 = 0x40;
const AND: u8 = 0x50;
const LSH: u8 = 0x60;
const RSH: u8 = 0x70;
const XOR: u8 = 0xa0;
const MOV: u8 = 0xb0;
const ARSH: u8 = 0xc0;

const LDX_W: u8 = CLASS_LDX | MODE_MEM | SIZE_W;
const AND64_K: u8 = CLASS_ALU64 | AND;
const JNE_K: u8 = CLASS_JMP | JNE;
const MOV64_K: u8 = CLASS_ALU64 | MOV;
const EXIT_OP: u8 = CLASS_JMP | EXIT;

/// Device types as the kernel's context gives them (BPF_DEVCG_DEV_BLOCK, _CHAR).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Type {
    Block = 1,
    Char = 2,
}

/// "Allow this device, any access": what a grant adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rule {
    pub kind: Type,
    pub major: u32,
    pub minor: u32,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let letter = match self.kind {
            Type::Block => 'b',
            Type::Char => 'c',
        };
        write!(f, "{letter} {}:{}", self.major, self.minor)
    }
}

const BLOCK_LEN: usize = 9;

/// One block: if the device is `rule`'s, return `allow`; else fall through to the next block.
/// r2..r4 are scratch here and every program initialises them before use (the verifier sees
/// to it), so clobbering them changes nothing for the program that follows.
fn block(rule: Rule, allow: bool) -> [Insn; BLOCK_LEN] {
    [
        Insn::new(LDX_W, 2, 1, 0, 0),                // r2 = ctx->access_type
        Insn::new(AND64_K, 2, 0, 0, 0xffff),         // r2 &= 0xffff (the type)
        Insn::new(JNE_K, 2, 0, 6, rule.kind as i32), // not this type: next block
        Insn::new(LDX_W, 3, 1, 4, 0),                // r3 = ctx->major
        Insn::new(JNE_K, 3, 0, 4, rule.major as i32),
        Insn::new(LDX_W, 4, 1, 8, 0), // r4 = ctx->minor
        Insn::new(JNE_K, 4, 0, 2, rule.minor as i32),
        Insn::new(MOV64_K, 0, 0, 0, allow as i32),
        Insn::new(EXIT_OP, 0, 0, 0, 0),
    ]
}

/// A device and whether our block allows (true) or denies (false) it.
pub type Grant = (Rule, bool);

/// `grants` decided in front of `rest`.
pub fn with_grants(grants: &[Grant], rest: &[Insn]) -> Vec<Insn> {
    let mut out: Vec<Insn> = grants.iter().flat_map(|(r, a)| block(*r, *a)).collect();
    out.extend_from_slice(rest);
    out
}

/// The grants of our blocks at the start of `insns` and the program after them.
pub fn split_grants(insns: &[Insn]) -> (Vec<Grant>, &[Insn]) {
    let mut rules = Vec::new();
    let mut rest = insns;
    while rest.len() >= BLOCK_LEN {
        let kind = match rest[2].imm {
            1 => Type::Block,
            2 => Type::Char,
            _ => break,
        };
        let rule = Rule {
            kind,
            major: rest[4].imm as u32,
            minor: rest[6].imm as u32,
        };
        let allow = rest[7].imm == 1;
        if rest[..BLOCK_LEN] != block(rule, allow) {
            break;
        }
        rules.push((rule, allow));
        rest = &rest[BLOCK_LEN..];
    }
    (rules, rest)
}

/// Why a program cannot be carried into a new one.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the kernel does not show its instructions (net.core.bpf_jit_harden=2 and kernel.kptr_restrict hide them)")]
    Empty,
    #[error("instruction {0} uses register {1}, which only the kernel's own rewriting does (constant blinding: net.core.bpf_jit_harden=2)")]
    Register(usize, u8),
    #[error("instruction {0} is a zero-extension the verifier inserted for this architecture's JIT; virtpod carries programs on x86-64 and arm64 only")]
    ZeroExtension(usize),
    #[error("instruction {0} ({1:#04x}) calls a helper or loads a map or constant: the program depends on more than its instructions")]
    Outside(usize, u8),
    #[error("instruction {0} ({1:#04x}) is not one a device filter needs")]
    Unknown(usize, u8),
    #[error("instruction {0} jumps outside the program")]
    Jump(usize),
}

/// Checks that `insns` are self-contained: context loads, arithmetic, jumps inside the program,
/// exit. No helper calls, map references or 64-bit constants (libvirt's map-based program has
/// them), which could not be loaded again from the instructions alone.
pub fn check(insns: &[Insn]) -> Result<(), Refused> {
    if insns.is_empty() {
        return Err(Refused::Empty);
    }
    for (i, x) in insns.iter().enumerate() {
        if x.dst > 10 || x.src > 10 {
            return Err(Refused::Register(i, x.dst.max(x.src)));
        }
        // BPF_ZEXT_REG: mov32 rX, rX with imm 1, a verifier-only form the kernel refuses to load.
        if x.code == CLASS_ALU | MOV | SRC_X && x.dst == x.src && x.imm == 1 {
            return Err(Refused::ZeroExtension(i));
        }
        match x.code & 0x07 {
            CLASS_LD => return Err(Refused::Outside(i, x.code)),
            CLASS_LDX if x.code & 0xe0 == MODE_MEM => {}
            CLASS_ST | CLASS_STX if x.code & 0xe0 == MODE_MEM => {}
            // `off` set: signed division or a sign-extending move, which nothing here needs.
            CLASS_ALU | CLASS_ALU64 if x.off == 0 => {}
            // gotol keeps its target in imm.
            CLASS_JMP32 if x.code & 0xf0 == JA => return Err(Refused::Unknown(i, x.code)),
            CLASS_JMP | CLASS_JMP32 => match x.code & 0xf0 {
                CALL => return Err(Refused::Outside(i, x.code)),
                EXIT => {}
                _ => {
                    let to = i as i64 + 1 + x.off as i64;
                    if to < 0 || to >= insns.len() as i64 {
                        return Err(Refused::Jump(i));
                    }
                }
            },
            _ => return Err(Refused::Unknown(i, x.code)),
        }
    }
    Ok(())
}

/// Access bits of the context (BPF_DEVCG_ACC_*).
pub const ACC_MKNOD: u32 = 1;
pub const ACC_READ: u32 = 2;
pub const ACC_WRITE: u32 = 4;

/// What `insns` answer for `access` to `rule`'s device: Some(true) allow, Some(false) deny,
/// None when the program does something this evaluator does not follow (stack stores,
/// division, …). Enough for the runtimes' and systemd's filters and ours; `device list` uses it
/// to tell a grant that is in force from one a runtime has taken back.
pub fn allows(insns: &[Insn], rule: Rule, access: u32) -> Option<bool> {
    let ctx = [(access << 16) | rule.kind as u32, rule.major, rule.minor];
    let mut r = [0u64; 11];
    let mut pc = 0usize;
    for _ in 0..100_000 {
        let x = insns.get(pc)?;
        let (d, s) = (x.dst as usize, x.src as usize);
        if d > 10 || s > 10 {
            return None;
        }
        let class = x.code & 0x07;
        pc += 1;
        match class {
            CLASS_LDX => {
                // Only 32-bit loads from the context in r1 are followed.
                if x.code != LDX_W || s != 1 || x.off % 4 != 0 {
                    return None;
                }
                r[d] = *ctx.get(usize::try_from(x.off / 4).ok()?)? as u64;
            }
            CLASS_ALU | CLASS_ALU64 => {
                if x.off != 0 {
                    return None;
                }
                let wide = class == CLASS_ALU64;
                let v = if x.code & SRC_X != 0 {
                    r[s]
                } else if wide {
                    x.imm as i64 as u64
                } else {
                    x.imm as u32 as u64
                };
                let a = r[d];
                let out = match x.code & 0xf0 {
                    ADD => a.wrapping_add(v),
                    SUB => a.wrapping_sub(v),
                    MUL => a.wrapping_mul(v),
                    OR => a | v,
                    AND => a & v,
                    LSH => a.wrapping_shl(v as u32 & if wide { 63 } else { 31 }),
                    RSH if wide => a.wrapping_shr(v as u32 & 63),
                    RSH => ((a as u32) >> (v as u32 & 31)) as u64,
                    ARSH if wide => ((a as i64) >> (v & 63)) as u64,
                    ARSH => ((a as i32) >> (v & 31)) as u32 as u64,
                    XOR => a ^ v,
                    MOV => v,
                    _ => return None,
                };
                r[d] = if wide { out } else { out as u32 as u64 };
            }
            CLASS_JMP | CLASS_JMP32 => {
                let op = x.code & 0xf0;
                if op == EXIT {
                    return Some(r[0] as u32 != 0);
                }
                if op == JA {
                    if class == CLASS_JMP32 {
                        return None;
                    }
                    pc = jump(pc, x.off)?;
                    continue;
                }
                let v = if x.code & SRC_X != 0 {
                    r[s]
                } else {
                    x.imm as i64 as u64
                };
                let (a, b) = if class == CLASS_JMP32 {
                    (r[d] as u32 as u64, v as u32 as u64)
                } else {
                    (r[d], v)
                };
                let (sa, sb) = if class == CLASS_JMP32 {
                    (a as u32 as i32 as i64, b as u32 as i32 as i64)
                } else {
                    (a as i64, b as i64)
                };
                let taken = match op {
                    JEQ => a == b,
                    JNE => a != b,
                    JGT => a > b,
                    JGE => a >= b,
                    JLT => a < b,
                    JLE => a <= b,
                    JSET => a & b != 0,
                    JSGT => sa > sb,
                    JSGE => sa >= sb,
                    JSLT => sa < sb,
                    JSLE => sa <= sb,
                    _ => return None,
                };
                if taken {
                    pc = jump(pc, x.off)?;
                }
            }
            _ => return None,
        }
    }
    None
}

fn jump(pc: usize, off: i16) -> Option<usize> {
    usize::try_from(pc as i64 + off as i64).ok()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A runtime's kind of filter, for tests: allow `allowed` (any access), then deny. Shaped
    /// like runc's: the context loaded once into r2..r5, one block per rule, a default verdict.
    pub(crate) fn filter(allowed: &[Rule]) -> Vec<Insn> {
        let mut p = vec![
            Insn::new(LDX_W, 2, 1, 0, 0),
            Insn::new(AND64_K, 2, 0, 0, 0xffff),
            Insn::new(LDX_W, 3, 1, 0, 0),
            Insn::new(CLASS_ALU64 | RSH, 3, 0, 0, 16),
            Insn::new(LDX_W, 4, 1, 4, 0),
            Insn::new(LDX_W, 5, 1, 8, 0),
        ];
        for r in allowed {
            p.extend([
                Insn::new(JNE_K, 2, 0, 4, r.kind as i32),
                Insn::new(JNE_K, 4, 0, 3, r.major as i32),
                Insn::new(JNE_K, 5, 0, 2, r.minor as i32),
                Insn::new(MOV64_K, 0, 0, 0, 1),
                Insn::new(EXIT_OP, 0, 0, 0, 0),
            ]);
        }
        p.extend([
            Insn::new(MOV64_K, 0, 0, 0, 0),
            Insn::new(EXIT_OP, 0, 0, 0, 0),
        ]);
        p
    }

    pub(crate) fn c(major: u32, minor: u32) -> Rule {
        Rule {
            kind: Type::Char,
            major,
            minor,
        }
    }

    const RW: u32 = ACC_READ | ACC_WRITE;

    #[test]
    fn a_grant_allows_its_device_and_keeps_the_old_program_for_every_other() {
        let null = c(1, 3);
        let old = filter(&[null]);
        check(&old).unwrap();
        assert_eq!(allows(&old, null, RW), Some(true));
        assert_eq!(allows(&old, c(188, 7), RW), Some(false));

        let tty = c(188, 7);
        let new = with_grants(&[(tty, true)], &old);
        check(&new).unwrap();
        assert_eq!(allows(&new, tty, RW), Some(true));
        assert_eq!(allows(&new, null, RW), Some(true));
        for other in [c(188, 8), c(189, 7), c(1, 5)] {
            assert_eq!(allows(&new, other, RW), Some(false), "{other}");
        }
        let block = Rule {
            kind: Type::Block,
            ..tty
        };
        assert_eq!(allows(&new, block, RW), Some(false));

        // A deny in front takes back what the old program allows.
        let taken = with_grants(&[(null, false)], &old);
        assert_eq!(allows(&taken, null, RW), Some(false));
    }

    #[test]
    fn grants_read_back_from_the_program_and_come_off_whole() {
        let old = filter(&[c(1, 3)]);
        let rules = [(c(188, 7), true), (c(189, 4), false)];
        let new = with_grants(&rules, &old);
        let (back, rest) = split_grants(&new);
        assert_eq!(back, rules);
        assert_eq!(rest, &old[..]);
        // A program of someone else's reads as no grants, whatever its first instructions.
        let (none, rest) = split_grants(&old);
        assert!(none.is_empty());
        assert_eq!(rest, &old[..]);
    }

    #[test]
    fn instructions_round_trip_through_the_kernels_layout() {
        let p = with_grants(&[(c(10, 232), true)], &filter(&[c(1, 3)]));
        assert_eq!(from_bytes(&to_bytes(&p)), p);
        // r2 = *(u32 *)(r1 + 0): code 0x61, dst 2, src 1.
        assert_eq!(p[0].to_bytes(), [0x61, 0x12, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn programs_that_need_more_than_their_instructions_are_refused() {
        let mut call = filter(&[]);
        call.insert(0, Insn::new(CLASS_JMP | CALL, 0, 0, 0, 1));
        assert_eq!(check(&call), Err(Refused::Outside(0, 0x85)));
        let mut map = filter(&[]);
        map.insert(0, Insn::new(0x18, 1, 1, 0, 5));
        assert!(matches!(check(&map), Err(Refused::Outside(0, 0x18))));
        let mut far = filter(&[]);
        far[0] = Insn::new(CLASS_JMP | JA, 0, 0, 100, 0);
        assert_eq!(check(&far), Err(Refused::Jump(0)));
        assert_eq!(check(&[]), Err(Refused::Empty));
        let mut blinded = filter(&[]);
        blinded[0].dst = 11;
        assert_eq!(check(&blinded), Err(Refused::Register(0, 11)));
        let mut zext = filter(&[]);
        zext.insert(1, Insn::new(CLASS_ALU | MOV | SRC_X, 2, 2, 0, 1));
        assert_eq!(check(&zext), Err(Refused::ZeroExtension(1)));
    }
}
