//! An MQTT broker in this process, for `linegate demo` on a machine without mosquitto: the
//! `mqtt5` crate's broker, on a free loopback port, keeping sessions and retained messages in
//! memory. It serves what the agent and the panels rely on — MQTT 5 and 3.1.1 on one port,
//! persistent sessions with their expiry, QoS 1 redelivered on resume, retained messages and
//! retained wills — which `tests/broker.rs` proves against it. Stopped when dropped.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use mqtt5::broker::config::{BrokerConfig, StorageBackend, StorageConfig};
use mqtt5::broker::server::BrokerShutdownHandle;
use mqtt5::broker::MqttBroker;

pub struct EmbeddedBroker {
    pub port: u16,
    shutdown: BrokerShutdownHandle,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl EmbeddedBroker {
    /// Starts the broker on a port the OS picks, on loopback only; must be called inside a tokio
    /// runtime, which then runs it.
    pub async fn start() -> io::Result<EmbeddedBroker> {
        let loopback: SocketAddr = ([127, 0, 0, 1], 0).into();
        // In memory: the crate's default is a file store under ./mqtt_storage, which would
        // litter the user's working directory. Persistence on means sessions outlive a
        // connection (not the process), as the agent's 7-day session expects.
        let storage = StorageConfig {
            backend: StorageBackend::Memory,
            enable_persistence: true,
            // Like the shipped mosquitto config: a QoS 1 display subscribing late to thousands
            // of retained MOs gets them all.
            max_queued_messages_per_client: 20_000,
            ..StorageConfig::default()
        };
        let config = BrokerConfig::default()
            .with_bind_address(loopback)
            .with_storage(storage)
            // $SYS every 10 s would be the only traffic of an idle demo.
            .with_sys_topics_enabled(false)
            // The retained messages a subscription matches go into one lane per client and QoS,
            // whole, before any is sent; the rest are dropped unseen. 10,000 by default, which a
            // line of 10,000 MOs fills: room for what `linegate watch` keeps (50,000 MOs and its
            // lines). A bound, not an allocation.
            .with_client_channel_capacity(60_000)
            // The agent's and panels' payloads are small; a hostile 256 MiB one is refused.
            .with_max_packet_size(1024 * 1024);
        let mut broker = MqttBroker::with_config(config).await.map_err(io::Error::other)?;
        let port = broker
            .local_addr()
            .ok_or_else(|| io::Error::other("the embedded broker has no listener"))?
            .port();
        let shutdown = broker.shutdown_handle();
        let mut ready = broker.ready_receiver();
        let task = tokio::spawn(async move {
            if let Err(e) = broker.run().await {
                eprintln!("embedded MQTT broker stopped: {e}");
            }
        });
        tokio::time::timeout(Duration::from_secs(10), ready.wait_for(|r| *r))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the embedded broker did not start"))?
            .map_err(|_| io::Error::other("the embedded broker stopped while starting"))?;
        Ok(EmbeddedBroker {
            port,
            shutdown,
            task: Some(task),
        })
    }

    /// Stops it and waits until it has closed its connections.
    pub async fn stop(mut self) {
        self.shutdown.shutdown();
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        self.shutdown.shutdown();
        // Aborting run() stops its accept loops and connections too (since mqtt5 0.46.4).
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
