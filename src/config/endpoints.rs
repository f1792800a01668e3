//! The Microsoft endpoints from the settings: token authority, Graph and ARM, with
//! national-cloud defaults derived from the Graph domain. The result is the client's own
//! [`Endpoints`], whose token scopes follow from them.

use std::net::IpAddr;

use url::{Host, Url};

use super::{ConfigError, Settings};
use crate::azure::Endpoints;

/// A national cloud: its Graph hosts, authority and ARM endpoint (graph-delta.md section 8).
struct Cloud {
    graph_hosts: &'static [&'static str],
    authority: &'static str,
    arm: &'static str,
}

/// The global service first: [`is_national_cloud`] relies on it.
const CLOUDS: &[Cloud] = &[
    Cloud {
        graph_hosts: &["graph.microsoft.com", "canary.graph.microsoft.com"],
        authority: "https://login.microsoftonline.com",
        arm: "https://management.azure.com",
    },
    Cloud {
        // US Government L4 (GCC High) and L5 (DoD) share the authority and ARM endpoint.
        graph_hosts: &["graph.microsoft.us", "dod-graph.microsoft.us"],
        authority: "https://login.microsoftonline.us",
        arm: "https://management.usgovcloudapi.net",
    },
    Cloud {
        // China (21Vianet): Entra's national-cloud page names login.partner.microsoftonline.cn;
        // the older login.chinacloudapi.cn is an alias of it.
        graph_hosts: &["microsoftgraph.chinacloudapi.cn"],
        authority: "https://login.partner.microsoftonline.cn",
        arm: "https://management.chinacloudapi.cn",
    },
];

/// Every Graph host whose cloud the worker knows.
pub fn known_graph_hosts() -> Vec<&'static str> {
    CLOUDS
        .iter()
        .flat_map(|c| c.graph_hosts.iter().copied())
        .collect()
}

pub fn from_settings(settings: &Settings) -> Result<Endpoints, ConfigError> {
    let graph = settings.parse_with("graph-domain", graph_root)?;
    let cloud = graph
        .host_str()
        .and_then(|host| CLOUDS.iter().find(|c| c.graph_hosts.contains(&host)));
    // The emulator (or a test double) on loopback serves all three APIs on one origin.
    let derived = |pick: fn(&Cloud) -> &'static str| -> Option<Url> {
        match cloud {
            Some(c) => Url::parse(pick(c)).ok(),
            None if is_loopback(&graph) => Some(graph.clone()),
            None => None,
        }
    };
    let unknown_cloud = || {
        settings.error(
            "graph-domain",
            format!(
                "'{}' is not a known cloud's Graph host ({}); for another host set \
                     --authority-host and --arm-endpoint too",
                graph.host_str().unwrap_or_default(),
                known_graph_hosts().join(", ")
            ),
        )
    };
    let authority_host = match settings.parse_opt_with("authority-host", endpoint_url)? {
        Some(url) => url,
        None => derived(|c| c.authority).ok_or_else(unknown_cloud)?,
    };
    let arm = match settings.parse_opt_with("arm-endpoint", endpoint_url)? {
        Some(url) => url,
        None => derived(|c| c.arm).ok_or_else(unknown_cloud)?,
    };
    Ok(Endpoints {
        authority_host,
        graph,
        arm,
    })
}

/// Whether Graph is a national cloud's (US Government, China), where some APIs of the
/// global service do not exist. A Graph host of no known cloud (a proxy, the emulator)
/// counts as global.
pub fn is_national_cloud(endpoints: &Endpoints) -> bool {
    let host = endpoints.graph.host_str().unwrap_or_default();
    CLOUDS
        .iter()
        .skip(1)
        .any(|cloud| cloud.graph_hosts.contains(&host))
}

/// `graph.microsoft.com`, `127.0.0.1:8443` or `https://graph.microsoft.us`: the Graph root.
fn graph_root(value: &str) -> Result<Url, String> {
    let url = if value.contains("://") {
        endpoint_url(value)?
    } else {
        let url = Url::parse(&format!("https://{value}"))
            .map_err(|e| format!("'{value}' is not a host, host:port or https URL: {e}"))?;
        if url.path() != "/" || url.query().is_some() {
            return Err(format!(
                "'{value}' is not a host, host:port or https URL (it has a path)"
            ));
        }
        url
    };
    if url.path() != "/" {
        return Err(format!(
            "'{value}' has a path; give the Graph root without /v1.0"
        ));
    }
    Ok(url)
}

/// An absolute https URL, or plain http on a loopback address only.
fn endpoint_url(value: &str) -> Result<Url, String> {
    let url = Url::parse(value).map_err(|e| format!("'{value}' is not a URL: {e}"))?;
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(format!(
            "'{value}' must be a plain URL without query or credentials"
        ));
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(format!(
            "'{value}' uses plain http, which is only allowed for loopback addresses; use https"
        )),
        other => Err(format!("'{value}' has scheme '{other}'; use https")),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_on_loopback() {
        assert!(endpoint_url("http://127.0.0.1:8080").is_ok());
        assert!(endpoint_url("http://[::1]:8080").is_ok());
        assert!(endpoint_url("http://localhost:8080").is_ok());
        assert!(endpoint_url("http://graph.microsoft.com").is_err());
        assert!(endpoint_url("ftp://127.0.0.1").is_err());
        assert!(endpoint_url("https://user:pw@login.microsoftonline.com").is_err());
    }

    #[test]
    fn graph_domain_forms() {
        let root = |v| graph_root(v).map(|u| u.to_string());
        assert_eq!(
            root("graph.microsoft.us"),
            Ok("https://graph.microsoft.us/".into())
        );
        assert_eq!(root("127.0.0.1:8443"), Ok("https://127.0.0.1:8443/".into()));
        assert_eq!(
            root("https://127.0.0.1:8443/"),
            Ok("https://127.0.0.1:8443/".into())
        );
        assert!(root("graph.microsoft.com/v1.0").is_err());
        assert!(root("https://graph.microsoft.com/v1.0").is_err());
        assert!(root("http://graph.microsoft.com").is_err());
    }

    fn endpoints_from(toml: &str) -> Result<Endpoints, ConfigError> {
        let dir = tempfile::tempdir().map_err(|e| ConfigError {
            key: "test".into(),
            problem: e.to_string(),
        })?;
        let path = dir.path().join("c.toml");
        std::fs::write(&path, toml).map_err(|e| ConfigError {
            key: "test".into(),
            problem: e.to_string(),
        })?;
        from_settings(&Settings::from_file(&path, "--config")?)
    }

    #[test]
    fn only_the_us_government_and_china_clouds_are_national() {
        let national = |domain: &str| {
            endpoints_from(&format!("graph-domain = \"{domain}\"\n")).map(|e| is_national_cloud(&e))
        };
        assert_eq!(national("graph.microsoft.com"), Ok(false));
        assert_eq!(national("127.0.0.1:8443"), Ok(false));
        assert_eq!(national("graph.microsoft.us"), Ok(true));
        assert_eq!(national("dod-graph.microsoft.us"), Ok(true));
        assert_eq!(national("microsoftgraph.chinacloudapi.cn"), Ok(true));
    }

    #[test]
    fn loopback_graph_serves_every_api() {
        let e = endpoints_from("graph-domain = \"127.0.0.1:8443\"\n");
        let e = e.map(|e| {
            (
                e.authority_host.to_string(),
                e.arm.to_string(),
                e.graph_scope(),
            )
        });
        assert_eq!(
            e,
            Ok((
                "https://127.0.0.1:8443/".into(),
                "https://127.0.0.1:8443/".into(),
                "https://127.0.0.1:8443/.default".into()
            ))
        );
    }

    #[test]
    fn unknown_host_with_explicit_endpoints_is_accepted() {
        let e = endpoints_from(
            "graph-domain = \"graph.example.com\"\nauthority-host = \"https://login.example.com\"\n\
             arm-endpoint = \"https://arm.example.com\"\n",
        );
        assert_eq!(
            e.map(|e| e.arm_scope()),
            Ok("https://arm.example.com/.default".to_string())
        );
        let e = endpoints_from("graph-domain = \"graph.example.com\"\n");
        assert!(e.is_err_and(|e| e.key.starts_with("graph-domain (in ")));
    }
}
