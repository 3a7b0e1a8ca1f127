//! GraphQL over WebSocket (graphql-transport-ws, and the legacy graphql-ws): authentication in
//! `connection_init`, and the bounds every connection lives within.
//!
//! - A connection must send `connection_init` with a valid token within [`INIT_TIMEOUT`]; its
//!   token is checked again every [`RECHECK`], and the connection is closed with 4403 once the
//!   token is revoked.
//! - At most [`MAX_SUBSCRIPTIONS`] operations run at once per connection; more are answered with
//!   an `error` message for that id.
//! - Outgoing messages pass through a queue of [`OUTGOING_BUFFER`] messages. When a client reads
//!   slowly the queue fills and async-graphql stops polling the subscription streams, so nothing
//!   accumulates here: change subscriptions skip what they missed in the bounded broadcast
//!   (counted in `tessera_api_subscriber_lagged_total`), replays simply read the log later. A
//!   client that accepts no message for [`SEND_TIMEOUT`] is disconnected.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_graphql::Data;
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::channel::mpsc;
use futures::stream::SplitSink;
use futures::{SinkExt, StreamExt};
use serde_json::json;

use super::TesseraSchema;
use crate::AppState;
use crate::auth::authenticate;

/// Time allowed between the upgrade and an accepted `connection_init`.
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a connection's token is checked again.
pub const RECHECK: Duration = Duration::from_secs(2);
/// Operations running at once on one connection.
pub const MAX_SUBSCRIPTIONS: usize = 16;
/// Outgoing messages queued per connection.
pub const OUTGOING_BUFFER: usize = 32;
/// Longest a client may take to accept one message.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// What one connection knows about itself.
#[derive(Default)]
struct Session {
    /// The token secret accepted in `connection_init`.
    secret: Mutex<Option<String>>,
    /// Ids of the operations running.
    active: Mutex<HashSet<String>>,
}

impl Session {
    fn secret(&self) -> Option<String> {
        self.secret.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn active(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.active.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The `type` and `id` of a protocol message.
#[derive(serde::Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    id: Option<String>,
}

fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame { code, reason: reason.into() }))
}

/// The token in a `connection_init` payload: `{"Authorization": "Bearer <token>"}` or `{"token": ...}`.
fn secret_of(payload: &serde_json::Value) -> Option<String> {
    payload
        .get("Authorization")
        .or_else(|| payload.get("authorization"))
        .and_then(|v| v.as_str())
        .map(|v| v.trim_start_matches("Bearer ").trim().to_owned())
        .or_else(|| payload.get("token").and_then(|v| v.as_str()).map(str::to_owned))
}

/// Serves one upgraded connection until it ends, is revoked, or stalls.
pub async fn serve(socket: WebSocket, schema: TesseraSchema, protocol: GraphQLProtocol, legacy: bool, state: AppState) {
    let session = Arc::new(Session::default());
    let (sink, stream) = socket.split();
    let (out, queue) = mpsc::channel::<Message>(OUTGOING_BUFFER);

    // Incoming: enforce the per-connection operation limit before async-graphql sees a message.
    let guard = (session.clone(), out.clone());
    let incoming = stream.filter_map(move |message| {
        let (session, mut out) = guard.clone();
        async move {
            let Ok(Message::Text(text)) = &message else { return Some(message) };
            let Ok(envelope) = serde_json::from_str::<Envelope>(text.as_str()) else { return Some(message) };
            let Some(id) = envelope.id else { return Some(message) };
            match envelope.kind.as_str() {
                "subscribe" | "start" => {
                    let mut active = session.active();
                    if !active.contains(&id) && active.len() >= MAX_SUBSCRIPTIONS {
                        drop(active);
                        metrics::counter!("tessera_api_ws_operations_refused_total").increment(1);
                        let error = format!("at most {MAX_SUBSCRIPTIONS} operations may run at once per connection");
                        let payload = if legacy { json!({"message": error}) } else { json!([{"message": error}]) };
                        let reply = json!({"id": id, "type": "error", "payload": payload}).to_string();
                        // A client too slow to take the refusal learns from the missing reply.
                        let _ = out.try_send(Message::Text(reply.into()));
                        return None;
                    }
                    active.insert(id);
                }
                "complete" | "stop" => {
                    session.active().remove(&id);
                }
                _ => {}
            }
            Some(message)
        }
    });

    let init_state = state.clone();
    let init_session = session.clone();
    let graphql = GraphQLWebSocket::new_with_pair(out, incoming, schema, protocol)
        .on_connection_init(move |payload| async move {
            let secret = secret_of(&payload).ok_or_else(|| {
                async_graphql::Error::new(
                    "unauthorized: send {\"Authorization\": \"Bearer <token>\"} in connection_init",
                )
            })?;
            let principal = authenticate(&init_state.pool, &secret)
                .await
                .map_err(|e| async_graphql::Error::new(e.to_string()))?
                .ok_or_else(|| async_graphql::Error::new("unauthorized: unknown or revoked token"))?;
            *init_session.secret.lock().unwrap_or_else(PoisonError::into_inner) = Some(secret);
            let mut data = Data::default();
            data.insert(principal);
            Ok(data)
        })
        .serve();

    metrics::gauge!("tessera_api_ws_connections").increment(1.0);
    let forwarder = forward(sink, queue, session, state);
    tokio::pin!(forwarder);
    tokio::select! {
        // The protocol ended (the client left or broke it): deliver what is queued, then close.
        _ = graphql => { let _ = tokio::time::timeout(Duration::from_secs(5), &mut forwarder).await; }
        // The forwarder closed the connection (revoked, stalled, no init).
        _ = &mut forwarder => {}
    }
    metrics::gauge!("tessera_api_ws_connections").decrement(1.0);
}

/// Sends queued messages to the client and watches the connection's token.
async fn forward(
    mut sink: SplitSink<WebSocket, Message>,
    mut queue: mpsc::Receiver<Message>,
    session: Arc<Session>,
    state: AppState,
) {
    let opened = Instant::now();
    let mut recheck = tokio::time::interval(RECHECK);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            message = queue.next() => {
                let Some(message) = message else {
                    let _ = sink.close().await;
                    return;
                };
                if let Message::Text(text) = &message
                    && (text.starts_with("{\"type\":\"complete\"") || text.starts_with("{\"type\":\"error\""))
                    && let Ok(Envelope { id: Some(id), .. }) = serde_json::from_str::<Envelope>(text.as_str())
                {
                    session.active().remove(&id);
                }
                match tokio::time::timeout(SEND_TIMEOUT, sink.send(message)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return,
                    Err(_) => {
                        metrics::counter!("tessera_api_ws_closed_total", "reason" => "stalled").increment(1);
                        tracing::info!("closing a WebSocket whose client stopped reading");
                        return;
                    }
                }
            }
            _ = recheck.tick() => {
                match session.secret() {
                    None if opened.elapsed() > INIT_TIMEOUT => {
                        metrics::counter!("tessera_api_ws_closed_total", "reason" => "no_init").increment(1);
                        let _ = sink.send(close(4408, "connection initialisation timeout")).await;
                        return;
                    }
                    None => {}
                    Some(secret) => {
                        if let Ok(None) = authenticate(&state.pool, &secret).await {
                            metrics::counter!("tessera_api_ws_closed_total", "reason" => "revoked").increment(1);
                            let _ = tokio::time::timeout(Duration::from_secs(5), sink.send(close(4403, "token revoked"))).await;
                            return;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_read_from_either_payload_shape() {
        assert_eq!(secret_of(&json!({"Authorization": "Bearer tsr_1"})).as_deref(), Some("tsr_1"));
        assert_eq!(secret_of(&json!({"authorization": "Bearer  tsr_2 "})).as_deref(), Some("tsr_2"));
        assert_eq!(secret_of(&json!({"token": "tsr_3"})).as_deref(), Some("tsr_3"));
        assert_eq!(secret_of(&json!({})), None);
    }
}
