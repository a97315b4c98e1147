//! The client's options: what the agent asks of the broker when it connects.

use rumqttc::v5::mqttbytes::v5::LastWill;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::MqttOptions;
use rumqttc::{NetworkOptions, TlsConfiguration, Transport};

use super::topics::Topic;
use super::{payload, Identity, MAX_PACKET, RECEIVE_MAXIMUM};
use crate::config::{ConfigError, MqttConfig};

/// How long the broker keeps our session (and the commands queued for us) while we are away.
const SESSION_EXPIRY_SECS: u32 = 7 * 24 * 3600;
/// Our own cap on publishes awaiting a PUBACK (rumqttc preallocates a slot for each).
pub(super) const OUTGOING_INFLIGHT: u16 = 100;

/// The client options: persistent session with manual acks (a command is acknowledged only
/// once applied), a retained last will on the status topic, TCP_NODELAY, TLS when configured.
pub(crate) fn build(config: &MqttConfig, identity: &Identity) -> Result<MqttOptions, ConfigError> {
    let mut options = MqttOptions::new(config.client_id(), config.host.clone(), config.port);
    options
        .set_keep_alive(config.keep_alive)
        .set_clean_start(false)
        .set_session_expiry_interval(Some(SESSION_EXPIRY_SECS))
        .set_manual_acks(true)
        .set_receive_maximum(Some(RECEIVE_MAXIMUM))
        // rumqttc preallocates a slot per possible inflight publish: 65,535 by default, 14 MB.
        // The broker's receive maximum is far lower anyway (mosquitto: 20).
        .set_outgoing_inflight_upper_limit(OUTGOING_INFLIGHT)
        // Generous on purpose: a payload over `max_payload` must reach the command layer to
        // be refused with a reply. Beyond this the broker drops it (the limit goes to the
        // broker in CONNECT), rather than the client dropping the connection in a loop.
        .set_max_packet_size(Some(MAX_PACKET.max(config.max_payload as u32 + 4096)))
        .set_last_will(LastWill::new(
            Topic::Status.build(&identity.prefix),
            payload::lost(identity).to_string(),
            QoS::AtLeastOnce,
            true,
            None,
        ));
    connection(&mut options, config, login(config)?, Whose::Agent)?;
    Ok(options)
}

/// Whose connection it is: the agent's own (and its command-line tools') presents `[mqtt]`'s
/// client certificate, when there is one; another account's never does — a broker that takes
/// the certificate as the user name would otherwise treat a display or a station as the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Whose {
    Agent,
    Other,
}

/// The `[mqtt]` login, when there is one.
fn login(config: &MqttConfig) -> Result<Option<(String, String)>, ConfigError> {
    Ok(match &config.username {
        Some(user) => Some((user.clone(), config.password()?.unwrap_or_default())),
        None => None,
    })
}

/// The options of a short-lived client of the command line — `linegate watch` (role `watch`),
/// `linegate send` (`send`): on the agent's broker and login, with a client id of its own, no
/// session and no will. `send` needs none: after a reconnect it subscribes and sends again,
/// and the agent answers a repeated request_id with its first reply.
pub(crate) fn sessionless(config: &MqttConfig, role: &str) -> Result<MqttOptions, ConfigError> {
    let mut options = sessionless_options(config, role);
    connection(&mut options, config, login(config)?, Whose::Agent)?;
    Ok(options)
}

/// Like [`sessionless`], logged in as another account (`linegate web`: a display's, a
/// station's) or as nobody, and without the agent's client certificate.
pub(crate) fn sessionless_as(
    config: &MqttConfig,
    role: &str,
    login: Option<(String, String)>,
) -> Result<MqttOptions, ConfigError> {
    let mut options = sessionless_options(config, role);
    connection(&mut options, config, login, Whose::Other)?;
    Ok(options)
}

fn sessionless_options(config: &MqttConfig, role: &str) -> MqttOptions {
    let id = format!("{}-{role}-{:08x}", config.client_id(), unique() as u32);
    let mut options = MqttOptions::new(id, config.host.clone(), config.port);
    options
        .set_keep_alive(config.keep_alive)
        .set_clean_start(true)
        // It publishes little or nothing; rumqttc's default preallocates 65,535 slots (14 MB).
        .set_outgoing_inflight_upper_limit(8)
        .set_max_packet_size(Some(MAX_PACKET));
    options
}

/// A number no other process picks: the PID alone repeats (in containers it is often 1), and
/// a request_id or client id shared with another `send` would take its reply or its session.
pub(crate) fn unique() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    // std's per-process random keys, and the clock.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    hasher.finish()
}

/// What every connection of ours shares: TCP_NODELAY, a connect timeout, the login and TLS.
fn connection(
    options: &mut MqttOptions,
    config: &MqttConfig,
    login: Option<(String, String)>,
    whose: Whose,
) -> Result<(), ConfigError> {
    let mut network = NetworkOptions::new();
    // Nagle plus the broker's delayed ACK costs 40-90 ms per request/reply on loopback.
    network.set_tcp_nodelay(true);
    // An unreachable host (a cable out) must not hold up the next attempt: the link is back
    // within 2 s of the broker's return.
    network.set_connection_timeout(5);
    options.set_network_options(network);
    if let Some((user, password)) = login {
        options.set_credentials(user, password);
    }
    if let Some(ca_file) = &config.ca_file {
        let read = |key: &str, path: &std::path::Path| {
            std::fs::read(path).map_err(|e| ConfigError {
                key: key.into(),
                message: format!("{}: {e}", path.display()),
            })
        };
        let ca = read("mqtt.ca_file", ca_file)?;
        let client_auth = match (&config.client_cert_file, &config.client_key_file, whose) {
            (Some(cert), Some(key), Whose::Agent) => {
                Some((read("mqtt.client_cert_file", cert)?, read("mqtt.client_key_file", key)?))
            }
            _ => None,
        };
        // rumqttc builds its rustls config from the process-wide provider: ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        options.set_transport(Transport::Tls(TlsConfiguration::Simple {
            ca,
            alpn: None,
            client_auth,
        }));
    }
    Ok(())
}
