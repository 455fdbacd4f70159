//! Host facts the agent reports in `Enroll` and `Hello`: hostname, addresses, OS, arch (and,
//! set by the session, how tasks are contained).

use shoal_types::HostFacts;
use std::net::IpAddr;

/// The host's name; `SHOAL_AGENT_HOSTNAME` overrides it (several agents on one machine, as in
/// dev mode and the test sandbox, need distinct identities).
fn hostname() -> String {
    if let Some(name) = std::env::var("SHOAL_AGENT_HOSTNAME")
        .ok()
        .filter(|h| !h.trim().is_empty())
    {
        return name.trim().to_owned();
    }
    nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Gathers the facts of this host. Never fails: a fact that cannot be read is left empty.
pub fn gather() -> HostFacts {
    let (os, os_version) = std::fs::read_to_string("/etc/os-release")
        .map(|text| parse_os_release(&text))
        .unwrap_or_default();
    HostFacts {
        hostname: hostname(),
        ips: match ip_override() {
            Some(ip) => vec![ip.to_string()],
            None => addresses(),
        },
        os: if os.is_empty() {
            std::env::consts::OS.to_owned()
        } else {
            os
        },
        os_version,
        arch: std::env::consts::ARCH.to_owned(),
        agent_version: env!("CARGO_PKG_VERSION").to_owned(),
        // Known to the task manager, which the session sets it from.
        containment: None,
    }
}

/// `SHOAL_AGENT_IP`: the one address to report instead of the interfaces' (several agents on
/// one machine, as in dev mode, need distinct addresses to be targeted by IP).
fn ip_override() -> Option<IpAddr> {
    std::env::var("SHOAL_AGENT_IP").ok()?.trim().parse().ok()
}

/// Non-loopback, non-link-local addresses of the host's interfaces, IPv4 first, deduplicated.
pub fn addresses() -> Vec<String> {
    let Ok(ifaddrs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    let mut ips: Vec<IpAddr> = Vec::new();
    for ifa in ifaddrs {
        let Some(addr) = ifa.address else { continue };
        let ip = if let Some(v4) = addr.as_sockaddr_in() {
            IpAddr::V4(v4.ip())
        } else if let Some(v6) = addr.as_sockaddr_in6() {
            IpAddr::V6(v6.ip())
        } else {
            continue;
        };
        if is_reportable(&ip) && !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    // Stable: IPv4 before IPv6, interface order kept within each family.
    ips.sort_by_key(|ip| ip.is_ipv6());
    ips.into_iter().map(|ip| ip.to_string()).collect()
}

/// Moves `ip` (the address the agent reaches the server from) to the front of `ips`, adding it
/// when it is reportable and missing.
pub fn prefer(ips: &mut Vec<String>, ip: IpAddr) {
    if !is_reportable(&ip) || ip_override().is_some() {
        return;
    }
    let ip = ip.to_string();
    ips.retain(|i| *i != ip);
    ips.insert(0, ip);
}

fn is_reportable(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !v4.is_loopback() && !v4.is_unspecified() && !v4.is_link_local(),
        IpAddr::V6(v6) => !v6.is_loopback() && !v6.is_unspecified() && !v6.is_unicast_link_local(),
    }
}

/// `(NAME, VERSION_ID)` from an os-release file (`VERSION` if there is no `VERSION_ID`).
pub fn parse_os_release(text: &str) -> (String, String) {
    let mut name = String::new();
    let mut version_id = String::new();
    let mut version = String::new();
    for line in text.lines() {
        let Some((key, value)) = line.trim().split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches('"').trim_matches('\'').to_owned();
        match key {
            "NAME" => name = value,
            "VERSION_ID" => version_id = value,
            "VERSION" => version = value,
            _ => {}
        }
    }
    (
        name,
        if version_id.is_empty() {
            version
        } else {
            version_id
        },
    )
}

#[cfg(test)]
mod tests {
    // Pins the facts: os-release parsing (quoted and bare values, VERSION fallback), that
    // gathered facts carry hostname, arch and version, and that no loopback address is reported.
    use super::*;

    #[test]
    fn parses_os_release() {
        let text = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\n\
                    VERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nID=debian\n";
        assert_eq!(
            parse_os_release(text),
            ("Debian GNU/Linux".into(), "12".into())
        );
        assert_eq!(
            parse_os_release("NAME=Arch\nVERSION='rolling'\n"),
            ("Arch".into(), "rolling".into())
        );
        assert_eq!(
            parse_os_release("garbage\n"),
            (String::new(), String::new())
        );
    }

    #[test]
    fn prefers_the_address_used_to_reach_the_server() {
        let mut ips = vec!["10.0.0.1".to_owned(), "192.168.1.5".to_owned()];
        prefer(&mut ips, "192.168.1.5".parse().expect("ip"));
        assert_eq!(ips, ["192.168.1.5", "10.0.0.1"]);
        prefer(&mut ips, "127.0.0.1".parse().expect("ip"));
        assert_eq!(ips, ["192.168.1.5", "10.0.0.1"]);
        prefer(&mut ips, "172.16.0.9".parse().expect("ip"));
        assert_eq!(ips, ["172.16.0.9", "192.168.1.5", "10.0.0.1"]);
    }

    #[test]
    fn gathers_facts() {
        let facts = gather();
        assert!(!facts.hostname.is_empty());
        assert_eq!(facts.arch, std::env::consts::ARCH);
        assert_eq!(facts.agent_version, env!("CARGO_PKG_VERSION"));
        assert!(!facts.os.is_empty());
        for ip in &facts.ips {
            let ip: IpAddr = ip.parse().expect("ip");
            assert!(!ip.is_loopback(), "{ip}");
        }
    }
}
