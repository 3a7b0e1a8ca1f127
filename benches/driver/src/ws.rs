//! A lean graphql-transport-ws client: one WebSocket, one subscription. Buffers are kept small
//! so that one process can hold thousands of them.

use std::time::Duration;

use anyhow::{Context, bail};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::stats::now_micros;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// How long the handshake and `connection_ack` may take on a loaded machine.
const ACK_LIMIT: Duration = Duration::from_secs(60);

/// One delivered `next` message.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Wall-clock time it arrived, microseconds since the Unix epoch (taken before parsing).
    pub received_us: i64,
    /// The payload's `data`.
    pub data: Value,
}

/// An open subscription.
pub struct Subscription {
    socket: Socket,
}

impl Subscription {
    /// Connects to `url`, authenticates with `token` and subscribes to `query`.
    pub async fn open(url: &str, token: &str, query: &str, variables: Value) -> anyhow::Result<Self> {
        let mut request = url.into_client_request()?;
        request.headers_mut().insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse()?);
        // 4 KiB instead of 128 KiB read buffers: the messages are small and there may be 10,000 of us.
        let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
        let (mut socket, _) =
            tokio::time::timeout(ACK_LIMIT, tokio_tungstenite::connect_async_with_config(request, Some(config), true))
                .await
                .context("WebSocket handshake timed out")??;
        let init = json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}});
        socket.send(Message::text(init.to_string())).await?;
        let ack = tokio::time::timeout(ACK_LIMIT, next_json(&mut socket)).await.context("no connection_ack")??;
        if ack["type"] != "connection_ack" {
            bail!("expected connection_ack, got {ack}");
        }
        let subscribe = json!({"id": "1", "type": "subscribe", "payload": {"query": query, "variables": variables}});
        socket.send(Message::text(subscribe.to_string())).await?;
        Ok(Self { socket })
    }

    /// The next `next` message; `None` when the server completed the subscription or closed.
    pub async fn next(&mut self) -> anyhow::Result<Option<Delivery>> {
        loop {
            let Some(message) = self.socket.next().await else { return Ok(None) };
            let received_us = now_micros();
            let text = match message? {
                Message::Text(text) => text,
                Message::Close(_) => return Ok(None),
                _ => continue,
            };
            let value: Value = serde_json::from_str(&text)?;
            match value["type"].as_str() {
                Some("next") => return Ok(Some(Delivery { received_us, data: value["payload"]["data"].clone() })),
                Some("ping") => self.socket.send(Message::text(json!({"type": "pong"}).to_string())).await?,
                Some("complete") => return Ok(None),
                Some("error") => bail!("subscription error: {}", value["payload"]),
                _ => {}
            }
        }
    }
}

async fn next_json(socket: &mut Socket) -> anyhow::Result<Value> {
    loop {
        match socket.next().await.context("WebSocket closed")?? {
            Message::Text(text) => return Ok(serde_json::from_str(&text)?),
            Message::Close(frame) => bail!("WebSocket closed: {frame:?}"),
            _ => continue,
        }
    }
}

/// The `stateChanged` subscription of one device's temperature, as the probes use it.
pub const STATE_CHANGED: &str = "subscription($d: String!) { stateChanged(deviceId: $d, capability: \"temperature\") \
    { deviceId state { offset observedAt } } }";

/// One `stateChanged` delivery reduced to what latency needs.
#[derive(Debug, Clone, PartialEq)]
pub struct StateSample {
    /// Device.
    pub device: String,
    /// Offset of the event that set the value (identifies the update).
    pub offset: i64,
    /// Emission time stamped by the plugin, microseconds since the Unix epoch.
    pub observed_us: i64,
    /// Arrival time, microseconds since the Unix epoch.
    pub received_us: i64,
}

impl StateSample {
    /// Reads a `stateChanged` delivery; `None` if it lacks a field.
    pub fn parse(delivery: &Delivery) -> Option<Self> {
        let changed = &delivery.data["stateChanged"];
        let observed = changed["state"]["observedAt"].as_str()?;
        let observed = chrono::DateTime::parse_from_rfc3339(observed).ok()?;
        Some(Self {
            device: changed["deviceId"].as_str()?.to_owned(),
            offset: changed["state"]["offset"].as_i64()?,
            observed_us: observed.timestamp_micros(),
            received_us: delivery.received_us,
        })
    }

    /// Emission-to-delivery latency in microseconds.
    pub fn latency_us(&self) -> i64 {
        self.received_us - self.observed_us
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_state_changed_delivery() {
        let delivery = Delivery {
            received_us: 1_700_000_000_250_000,
            data: json!({"stateChanged": {"deviceId": "loadgen:lg-3",
                "state": {"offset": 42, "observedAt": "2023-11-14T22:13:20.200+00:00"}}}),
        };
        let sample = StateSample::parse(&delivery).unwrap();
        assert_eq!(sample.device, "loadgen:lg-3");
        assert_eq!(sample.offset, 42);
        assert_eq!(sample.latency_us(), 50_000);
        let broken = Delivery { received_us: 0, data: json!({"stateChanged": {"deviceId": "x"}}) };
        assert_eq!(StateSample::parse(&broken), None);
    }
}
