//! The image's groups, read from /etc/group under the container's root.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

/// name → gid from the image at `root`. The files are read without following a symlink at
/// etc/ or etc/group: an image could point them at a host file.
pub fn read(root: &Path) -> Result<HashMap<String, u32>, String> {
    for p in [root.join("etc"), root.join("etc/group")] {
        match fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(format!("{} is a symlink; not read", p.display()))
            }
            Ok(_) => {}
            Err(e) => return Err(format!("{}: {e}", p.display())),
        }
    }
    let text = fs::read_to_string(root.join("etc/group"))
        .map_err(|e| format!("{}: {e}", root.join("etc/group").display()))?;
    Ok(parse(&text))
}

pub fn parse(text: &str) -> HashMap<String, u32> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let gid = f.nth(1)?.parse().ok()?;
            Some((name.to_string(), gid))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_group_lines() {
        let g = super::parse("root:x:0:\nkvm:x:104:libvirt-qemu\n# c\nbad line\ntty:x:5:\n");
        assert_eq!(g.get("kvm"), Some(&104));
        assert_eq!(g.get("tty"), Some(&5));
        assert_eq!(g.len(), 3);
    }

    #[test]
    fn refuses_a_symlinked_group_file() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("etc")).unwrap();
        std::os::unix::fs::symlink("/etc/group", t.path().join("etc/group")).unwrap();
        assert!(super::read(t.path()).unwrap_err().contains("is a symlink"));
    }
}
