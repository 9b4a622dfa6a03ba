//! `VIRTPOD_FORWARD`: rules `PORT:GUEST:GUESTPORT`, separated by commas or spaces.

use std::fmt;
use std::net::Ipv4Addr;

/// Where a forwarded connection goes: a guest by its libvirt name, or a fixed address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Guest(String),
    Address(Ipv4Addr),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The port virtpod listens on in the container (publish it: `-p HOSTPORT:PORT`).
    pub listen: u16,
    pub target: Target,
    pub port: u16,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            Target::Guest(g) => write!(f, "{}:{}:{}", self.listen, g, self.port),
            Target::Address(a) => write!(f, "{}:{}:{}", self.listen, a, self.port),
        }
    }
}

const FORMAT: &str = "expected PORT:GUEST:GUESTPORT (e.g. 8080:web:80: the container's port 8080 \
                      to port 80 of the guest named web, or of an IPv4 address), several \
                      separated by commas or spaces";

fn port(text: &str, what: &str, rule: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!(
            "{rule:?}: {what} {text:?} is not a port (1-65535); {FORMAT}"
        )),
    }
}

/// libvirt names may hold almost anything; a forward's guest name is looked up as a file name,
/// so it must be one.
fn guest_name(text: &str, rule: &str) -> Result<String, String> {
    if text.is_empty() || text.len() > 255 || text.starts_with('.') || text.contains('/') {
        return Err(format!(
            "{rule:?}: {text:?} is not a guest name (libvirt's name of a domain, no '/', not starting with '.'); {FORMAT}"
        ));
    }
    Ok(text.to_string())
}

pub fn parse(value: &str) -> Result<Vec<Rule>, String> {
    let mut rules: Vec<Rule> = Vec::new();
    for item in value
        .split([',', ' ', '\t', '\n'])
        .filter(|s| !s.is_empty())
    {
        let parts: Vec<&str> = item.split(':').collect();
        let [listen, target, to] = parts[..] else {
            return Err(format!("{item:?}: {FORMAT}"));
        };
        let listen = port(listen, "the container's port", item)?;
        let port = port(to, "the guest's port", item)?;
        let target = match target.parse::<Ipv4Addr>() {
            Ok(a) => Target::Address(a),
            Err(_) => Target::Guest(guest_name(target, item)?),
        };
        if let Some(other) = rules.iter().find(|r| r.listen == listen) {
            return Err(format!(
                "{item:?}: port {listen} is already forwarded by {other}; each container port forwards to one place"
            ));
        }
        rules.push(Rule {
            listen,
            target,
            port,
        });
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_by_name_and_address() {
        let r = parse("8080:web:80, 2222:192.168.122.10:22").unwrap();
        assert_eq!(
            r,
            vec![
                Rule {
                    listen: 8080,
                    target: Target::Guest("web".into()),
                    port: 80
                },
                Rule {
                    listen: 2222,
                    target: Target::Address(Ipv4Addr::new(192, 168, 122, 10)),
                    port: 22
                },
            ]
        );
        assert_eq!(r[0].to_string(), "8080:web:80");
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn bad_rules_name_the_rule_and_the_format() {
        for (value, says) in [
            ("8080:web", "expected PORT:GUEST:GUESTPORT"),
            ("0:web:80", "the container's port \"0\" is not a port"),
            ("8080:web:http", "the guest's port \"http\" is not a port"),
            ("8080:../etc:80", "is not a guest name"),
            ("8080:.hidden:80", "is not a guest name"),
            (
                "8080:a:80 8080:b:81",
                "port 8080 is already forwarded by 8080:a:80",
            ),
        ] {
            let e = parse(value).unwrap_err();
            assert!(e.contains(says), "{value}: {e}");
        }
    }
}
