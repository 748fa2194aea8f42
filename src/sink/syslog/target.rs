//! `--syslog URL`: where messages go, and how they are framed there.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// One syslog destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `unix:///dev/log`: a local socket, datagram (one message per
    /// datagram) or, when the socket is a stream one, one message per line.
    Unix(PathBuf),
    /// `udp://host:port`: one message per datagram (RFC 5426).
    Udp(HostPort),
    /// `tcp://host:port`: octet-counted frames (RFC 6587).
    Tcp(HostPort),
    /// `tls://host:port`: octet-counted frames over TLS (RFC 5425).
    Tls(HostPort),
}

/// A host name or IP address (IPv6 without its brackets) and a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl HostPort {
    /// `(host, port)` for `ToSocketAddrs`.
    pub fn addr(&self) -> (&str, u16) {
        (&self.host, self.port)
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Unix(p) => write!(f, "unix://{}", p.display()),
            Target::Udp(a) => write!(f, "udp://{a}"),
            Target::Tcp(a) => write!(f, "tcp://{a}"),
            Target::Tls(a) => write!(f, "tls://{a}"),
        }
    }
}

impl Target {
    /// Whether this destination needs a TLS configuration.
    pub fn is_tls(&self) -> bool {
        matches!(self, Target::Tls(_))
    }
}

const USAGE: &str = "expected unix:///PATH, udp://HOST:PORT, tcp://HOST:PORT or tls://HOST:PORT";

impl FromStr for Target {
    type Err = String;

    fn from_str(url: &str) -> Result<Self, String> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| format!("{url:?}: {USAGE}"))?;
        if scheme == "unix" {
            if cfg!(not(unix)) {
                return Err(format!("{url:?}: unix sockets exist only on Unix"));
            }
            if !rest.starts_with('/') {
                return Err(format!("{url:?}: the socket path must be absolute"));
            }
            return Ok(Target::Unix(PathBuf::from(rest)));
        }
        let (host, port) = match rest.strip_prefix('[') {
            Some(v6) => v6
                .split_once("]:")
                .ok_or_else(|| format!("{url:?}: {USAGE}"))?,
            None => rest
                .rsplit_once(':')
                .filter(|(h, _)| !h.contains(':'))
                .ok_or_else(|| format!("{url:?}: {USAGE} (an IPv6 address goes in [])"))?,
        };
        let port: u16 = port
            .parse()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| format!("{url:?}: bad port {port:?}"))?;
        if host.is_empty() || host.contains(['/', '@', '?', '#']) {
            return Err(format!("{url:?}: bad host {host:?}"));
        }
        let hp = HostPort {
            host: host.to_owned(),
            port,
        };
        match scheme {
            "udp" => Ok(Target::Udp(hp)),
            "tcp" => Ok(Target::Tcp(hp)),
            "tls" => Ok(Target::Tls(hp)),
            _ => Err(format!("{url:?}: unknown scheme {scheme:?}: {USAGE}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_scheme_and_prints_it_back() {
        for url in [
            "udp://127.0.0.1:514",
            "tcp://logs.example:601",
            "tls://[::1]:6514",
        ] {
            let t: Target = url.parse().unwrap();
            assert_eq!(t.to_string(), url);
        }
        let t: Target = "tls://[::1]:6514".parse().unwrap();
        assert_eq!(
            t,
            Target::Tls(HostPort {
                host: "::1".into(),
                port: 6514
            })
        );
        #[cfg(unix)]
        assert_eq!(
            "unix:///dev/log".parse::<Target>(),
            Ok(Target::Unix("/dev/log".into()))
        );
    }

    #[test]
    fn refuses_what_is_not_a_destination() {
        for bad in [
            "/dev/log",
            "unix://dev/log",
            "tcp://host",
            "tcp://host:0",
            "tcp://host:70000",
            "tcp://:514",
            "tcp://::1:514",
            "http://host:80",
            "tcp://user@host:514",
        ] {
            assert!(bad.parse::<Target>().is_err(), "{bad}");
        }
    }
}
