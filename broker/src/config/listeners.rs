//! Kafka's listener properties: `listeners`, `advertised.listeners`, `listener.security.protocol.map`,
//! `controller.listener.names` and `inter.broker.listener.name`, resolved into the listeners this node serves.
//!
//! Owns the parsing of `NAME://host:port` lists and the checks Kafka makes between these keys and
//! `process.roles`. Never binds a socket; host names other than IP literals and `localhost` are resolved once,
//! here, because a listener must bind one address.

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs},
};

use super::{cluster::ProcessRoles, ConfigError};

/// Kafka's `inter.broker.listener.name` default.
pub const DEFAULT_INTER_BROKER_LISTENER: &str = "PLAINTEXT";

/// A listener's `security.protocol`, as `listener.security.protocol.map` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    fn parse(value: &str) -> Option<Self> {
        Some(match value.trim().to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Self::Plaintext,
            "SSL" => Self::Ssl,
            "SASL_PLAINTEXT" => Self::SaslPlaintext,
            "SASL_SSL" => Self::SaslSsl,
            _ => return None,
        })
    }

    /// Kafka's name of the protocol.
    pub fn name(self) -> &'static str {
        match self {
            Self::Plaintext => "PLAINTEXT",
            Self::Ssl => "SSL",
            Self::SaslPlaintext => "SASL_PLAINTEXT",
            Self::SaslSsl => "SASL_SSL",
        }
    }
}

/// One Kafka (client or inter-broker) listener: where it binds and what clients are told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerConfig {
    /// Listener name, upper case as Kafka normalises it (`PLAINTEXT`, `INTERNAL`).
    pub name: String,
    pub bind: SocketAddr,
    /// Host clients are told to connect to (Metadata, DescribeCluster).
    pub advertised_host: String,
    /// Advertised port; 0 until a listener bound to port 0 has its real port.
    pub advertised_port: i32,
    pub security_protocol: SecurityProtocol,
}

/// The controller listener of a node with the controller role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ControllerListener {
    pub name: String,
    pub bind: SocketAddr,
    /// Its `advertised.listeners` entry, else its bind host (the host name for every interface) and port.
    pub advertised: (String, u16),
}

/// Everything the listener keys resolve to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ResolvedListeners {
    /// Non-controller listeners, the primary (inter-broker) one first, then the others in `listeners` order.
    /// Empty on a controller-only node.
    pub client: Vec<ListenerConfig>,
    /// Set only when the node has the controller role.
    pub controller: Option<ControllerListener>,
    pub controller_listener_names: Vec<String>,
    pub inter_broker_listener_name: String,
}

/// One `NAME://host:port` entry; an empty host means every interface.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Endpoint {
    name: String,
    host: String,
    port: u16,
}

fn invalid(key: &str, value: &str, reason: &'static str) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.to_owned(),
        value: value.to_owned(),
        reason,
    }
}

/// Parses `host:port` (IPv6 in brackets), returning the host without brackets.
pub(super) fn parse_host_port(text: &str) -> Option<(String, u16)> {
    let (host, port) = text.trim().rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let host = match host.strip_prefix('[') {
        Some(inner) => inner.strip_suffix(']')?,
        None if host.contains(':') => return None,
        None => host,
    };
    Some((host.to_owned(), port))
}

/// Parses a `listeners`-style list. An entry without `NAME://` is taken as `PLAINTEXT://`, as older Tributary
/// files wrote it.
fn parse_endpoints(key: &str, value: &str) -> Result<Vec<Endpoint>, ConfigError> {
    let mut endpoints: Vec<Endpoint> = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, address) = match entry.split_once("://") {
            Some((name, address)) => (name.trim().to_ascii_uppercase(), address),
            None => (DEFAULT_INTER_BROKER_LISTENER.to_owned(), entry),
        };
        let valid_name =
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_name {
            return Err(invalid(
                key,
                value,
                "listener names are letters, digits and _",
            ));
        }
        let (host, port) = parse_host_port(address)
            .ok_or_else(|| invalid(key, value, "expected NAME://host:port entries"))?;
        if endpoints.iter().any(|e| e.name == name) {
            return Err(ConfigError::DuplicateListener {
                key: key.to_owned(),
                name,
            });
        }
        endpoints.push(Endpoint { name, host, port });
    }
    Ok(endpoints)
}

fn parse_names(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(|n| n.trim().to_ascii_uppercase())
        .filter(|n| !n.is_empty())
        .collect()
}

/// Kafka's default `listener.security.protocol.map`, plus PLAINTEXT for each controller listener name (Kafka
/// does the same when the map is not set).
fn protocol_map(
    props: &BTreeMap<String, String>,
    controller_names: &[String],
) -> Result<BTreeMap<String, SecurityProtocol>, ConfigError> {
    const KEY: &str = "listener.security.protocol.map";
    let Some(value) = props.get(KEY).map(|v| v.trim()) else {
        let mut map: BTreeMap<String, SecurityProtocol> = [
            SecurityProtocol::Plaintext,
            SecurityProtocol::Ssl,
            SecurityProtocol::SaslPlaintext,
            SecurityProtocol::SaslSsl,
        ]
        .into_iter()
        .map(|p| (p.name().to_owned(), p))
        .collect();
        for name in controller_names {
            map.entry(name.clone())
                .or_insert(SecurityProtocol::Plaintext);
        }
        return Ok(map);
    };
    let mut map = BTreeMap::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, protocol) = entry
            .split_once(':')
            .ok_or_else(|| invalid(KEY, value, "expected NAME:PROTOCOL entries"))?;
        let protocol = SecurityProtocol::parse(protocol).ok_or_else(|| {
            invalid(
                KEY,
                value,
                "protocols are PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
            )
        })?;
        map.insert(name.trim().to_ascii_uppercase(), protocol);
    }
    Ok(map)
}

/// The address a listener binds: an empty host is every interface (IPv4, as Kafka's `0.0.0.0`).
fn bind_address(endpoint: &Endpoint, listeners_value: &str) -> Result<SocketAddr, ConfigError> {
    let host = endpoint.host.as_str();
    if host.is_empty() {
        return Ok((Ipv4Addr::UNSPECIFIED, endpoint.port).into());
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok((ip, endpoint.port).into());
    }
    if host.eq_ignore_ascii_case("localhost") {
        return Ok((Ipv4Addr::LOCALHOST, endpoint.port).into());
    }
    let resolved = (host, endpoint.port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next());
    resolved.ok_or_else(|| ConfigError::UnresolvableListenerHost {
        value: listeners_value.to_owned(),
        host: host.to_owned(),
    })
}

/// The host advertised for a listener that binds `host` and has no `advertised.listeners` entry: the host
/// itself, or for every interface the machine's host name, as Kafka does.
fn default_advertised_host(host: &str) -> String {
    let wildcard = host.is_empty() || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_unspecified());
    if !wildcard {
        return host.to_owned();
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Resolves the listener keys. `current` is the listener used when `listeners` is absent (the dev default or
/// an earlier setting); `roles` is None in single-node mode, where the cross-key checks of KRaft do not apply.
pub(super) fn resolve(
    props: &BTreeMap<String, String>,
    current: &ListenerConfig,
    roles: Option<ProcessRoles>,
) -> Result<ResolvedListeners, ConfigError> {
    let listeners_value = props.get("listeners").map(|v| v.trim().to_owned());
    let endpoints = match &listeners_value {
        Some(value) => {
            let endpoints = parse_endpoints("listeners", value)?;
            if endpoints.is_empty() {
                return Err(invalid(
                    "listeners",
                    value,
                    "at least one listener is needed",
                ));
            }
            endpoints
        }
        None => vec![Endpoint {
            name: current.name.clone(),
            host: current.bind.ip().to_string(),
            port: current.bind.port(),
        }],
    };
    let listeners_text = listeners_value.unwrap_or_default();
    for (i, a) in endpoints.iter().enumerate() {
        if let Some(b) = endpoints[..i]
            .iter()
            .find(|b| a.port != 0 && b.port == a.port)
        {
            return Err(ConfigError::ListenerPortClash {
                first: b.name.clone(),
                second: a.name.clone(),
                port: a.port,
            });
        }
    }

    let controller_listener_names = props
        .get("controller.listener.names")
        .map(|v| parse_names(v))
        .unwrap_or_default();
    let advertised = match props.get("advertised.listeners").map(|v| v.trim()) {
        Some(value) => {
            let advertised = parse_endpoints("advertised.listeners", value)?;
            for entry in &advertised {
                if !endpoints.iter().any(|e| e.name == entry.name) {
                    return Err(ConfigError::AdvertisedListenerNotInListeners {
                        name: entry.name.clone(),
                    });
                }
                let wildcard = entry
                    .host
                    .parse::<IpAddr>()
                    .is_ok_and(|ip| ip.is_unspecified());
                if wildcard {
                    return Err(invalid(
                        "advertised.listeners",
                        value,
                        "0.0.0.0 and :: cannot be advertised; name a host clients can reach",
                    ));
                }
            }
            advertised
        }
        None => Vec::new(),
    };

    let is_controller_name = |name: &str| controller_listener_names.iter().any(|n| n == name);
    let inter_broker_listener_name = props
        .get("inter.broker.listener.name")
        .map(|v| v.trim().to_ascii_uppercase())
        .filter(|v| !v.is_empty());
    let inter_broker_set = inter_broker_listener_name.is_some();
    let inter_broker_listener_name =
        inter_broker_listener_name.unwrap_or_else(|| DEFAULT_INTER_BROKER_LISTENER.to_owned());

    if let Some(roles) = roles {
        check_roles(
            roles,
            &endpoints,
            &advertised,
            &controller_listener_names,
            &inter_broker_listener_name,
        )?;
    }

    let protocols = protocol_map(props, &controller_listener_names)?;
    let mut protocol_of = BTreeMap::new();
    for endpoint in &endpoints {
        let protocol =
            *protocols
                .get(&endpoint.name)
                .ok_or_else(|| ConfigError::ListenerWithoutProtocol {
                    name: endpoint.name.clone(),
                })?;
        if protocol != SecurityProtocol::Plaintext {
            return Err(ConfigError::UnsupportedSecurityProtocol {
                name: endpoint.name.clone(),
                protocol: protocol.name(),
            });
        }
        protocol_of.insert(endpoint.name.clone(), protocol);
    }

    let mut client = Vec::new();
    let mut controller = None;
    for endpoint in &endpoints {
        let bind = bind_address(endpoint, &listeners_text)?;
        let advertised_entry = advertised.iter().find(|a| a.name == endpoint.name);
        if is_controller_name(&endpoint.name) {
            // Only the first controller listener is served, and only by a node with the controller role.
            let first = controller_listener_names.first() == Some(&endpoint.name);
            if first && roles.is_some_and(ProcessRoles::is_controller) {
                let advertised = match advertised_entry {
                    Some(a) if !a.host.is_empty() => (a.host.clone(), a.port),
                    Some(a) => (default_advertised_host(&endpoint.host), a.port),
                    None => (default_advertised_host(&endpoint.host), endpoint.port),
                };
                controller = Some(ControllerListener {
                    name: endpoint.name.clone(),
                    bind,
                    advertised,
                });
            }
            continue;
        }
        let (advertised_host, advertised_port) = match advertised_entry {
            Some(a) if !a.host.is_empty() => (a.host.clone(), a.port),
            Some(a) => (default_advertised_host(&endpoint.host), a.port),
            None => (default_advertised_host(&endpoint.host), endpoint.port),
        };
        client.push(ListenerConfig {
            name: endpoint.name.clone(),
            bind,
            advertised_host,
            advertised_port: i32::from(advertised_port),
            security_protocol: protocol_of
                .get(&endpoint.name)
                .copied()
                .unwrap_or(SecurityProtocol::Plaintext),
        });
    }
    // The inter-broker listener goes first: it is the one `listen` and `advertised_host` describe.
    if let Some(i) = client
        .iter()
        .position(|l| l.name == inter_broker_listener_name)
    {
        let primary = client.remove(i);
        client.insert(0, primary);
    } else if inter_broker_set && roles.is_none() && !client.is_empty() {
        return Err(ConfigError::InterBrokerListenerMissing {
            name: inter_broker_listener_name,
        });
    }
    Ok(ResolvedListeners {
        client,
        controller,
        controller_listener_names,
        inter_broker_listener_name,
    })
}

/// KRaft's checks between `process.roles` and the listener keys.
fn check_roles(
    roles: ProcessRoles,
    endpoints: &[Endpoint],
    advertised: &[Endpoint],
    controller_names: &[String],
    inter_broker: &str,
) -> Result<(), ConfigError> {
    let is_controller_name = |name: &str| controller_names.iter().any(|n| n == name);
    let Some(first_controller) = controller_names.first() else {
        return Err(ConfigError::ControllerListenerNamesMissing {
            roles: roles.as_str(),
        });
    };
    if roles.is_controller() && !endpoints.iter().any(|e| &e.name == first_controller) {
        return Err(ConfigError::ControllerListenerNotInListeners {
            name: first_controller.clone(),
        });
    }
    match roles {
        ProcessRoles::Controller => {
            if let Some(other) = endpoints.iter().find(|e| !is_controller_name(&e.name)) {
                return Err(ConfigError::ControllerOnlyListener {
                    name: other.name.clone(),
                });
            }
        }
        ProcessRoles::Broker => {
            if let Some(e) = endpoints.iter().find(|e| is_controller_name(&e.name)) {
                return Err(ConfigError::BrokerOnlyControllerListener {
                    name: e.name.clone(),
                });
            }
        }
        ProcessRoles::BrokerAndController => {}
    }
    if roles.is_broker() {
        if !endpoints.iter().any(|e| !is_controller_name(&e.name)) {
            return Err(ConfigError::NoBrokerListener);
        }
        if is_controller_name(inter_broker) {
            return Err(ConfigError::InterBrokerIsControllerListener {
                name: inter_broker.to_owned(),
            });
        }
        if !endpoints.iter().any(|e| e.name == inter_broker) {
            return Err(ConfigError::InterBrokerListenerMissing {
                name: inter_broker.to_owned(),
            });
        }
        // A broker-only node never listens on a controller listener, so it cannot advertise one.
        if !roles.is_controller() {
            if let Some(a) = advertised.iter().find(|a| is_controller_name(&a.name)) {
                return Err(ConfigError::AdvertisedControllerListener {
                    name: a.name.clone(),
                });
            }
        }
    }
    Ok(())
}
