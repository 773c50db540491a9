//! What makes two sign-ins come from the same device, for new-device notifications: a
//! trusted device's id, or else the user agent's family (browser and operating system,
//! without versions, so an update is not a new device) and the client's network.

use std::net::IpAddr;

/// Browser (or client program) and operating system named by a `User-Agent` header,
/// such as `Firefox on Linux`. Only the two words a person recognises are taken, so a
/// small ordered table serves (the order matters: Edge and Opera also say Chrome, Chrome
/// also says Safari).
pub fn user_agent_family(user_agent: Option<&str>) -> String {
    let Some(ua) = user_agent.map(str::trim).filter(|ua| !ua.is_empty()) else {
        return "unknown".to_owned();
    };
    const BROWSERS: &[(&str, &str)] = &[
        ("Edg/", "Edge"),
        ("EdgA/", "Edge"),
        ("OPR/", "Opera"),
        ("SamsungBrowser/", "Samsung Internet"),
        ("Firefox/", "Firefox"),
        ("FxiOS/", "Firefox"),
        ("CriOS/", "Chrome"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
    ];
    const SYSTEMS: &[(&str, &str)] = &[
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("Macintosh", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ];
    let browser = BROWSERS
        .iter()
        .find(|(token, _)| ua.contains(token))
        .map(|(_, name)| (*name).to_owned())
        // Not a browser: the first product token's name (`curl/8.5` is `curl`).
        .unwrap_or_else(|| {
            ua.split(['/', ' '])
                .next()
                .unwrap_or("unknown")
                .chars()
                .take(40)
                .collect()
        });
    match SYSTEMS.iter().find(|(token, _)| ua.contains(token)) {
        Some((_, system)) => format!("{browser} on {system}"),
        None => browser,
    }
}

/// The key of a device seen without a trusted-device id: its user agent's family and the
/// client's network (IPv4 address, IPv6 /64; see [`super::network`]).
pub fn device_key(user_agent: Option<&str>, ip: &str) -> String {
    let network = match ip.parse::<IpAddr>() {
        Ok(ip) => super::network::throttle_key(&ip.to_string()),
        Err(_) => ip.to_owned(),
    };
    format!("ua:{}|net:{network}", user_agent_family(user_agent))
}

/// The key of a trusted device.
pub fn trusted_device_key(device_id: &str) -> String {
    format!("device:{device_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_ignore_versions() {
        let firefox_a = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
        let firefox_b = "Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0";
        assert_eq!(user_agent_family(Some(firefox_a)), "Firefox on Linux");
        assert_eq!(
            user_agent_family(Some(firefox_a)),
            user_agent_family(Some(firefox_b))
        );
        let edge = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0";
        assert_eq!(user_agent_family(Some(edge)), "Edge on Windows");
        let safari = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
        assert_eq!(user_agent_family(Some(safari)), "Safari on iOS");
        assert_eq!(user_agent_family(Some("curl/8.5.0")), "curl");
        assert_eq!(user_agent_family(None), "unknown");
    }

    #[test]
    fn keys_group_an_ipv6_network() {
        assert_eq!(
            device_key(Some("curl/8"), "2001:db8::1"),
            device_key(Some("curl/9"), "2001:db8::2")
        );
        assert_ne!(
            device_key(Some("curl/8"), "192.0.2.1"),
            device_key(Some("curl/8"), "192.0.2.2")
        );
    }
}
