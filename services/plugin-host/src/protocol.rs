//! The host side of the plugin protocol (`schemas/protocol.md`): JSON-RPC 2.0, one object per
//! line on stdio, with bounded line length and per-call timeouts.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value as Json, json};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt};
use tokio::process::{ChildStdin, ChildStdout};
use tokio::sync::{Mutex, mpsc, oneshot};

/// The protocol version this host speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// Why a call to the plugin failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The plugin did not answer in time.
    #[error("`{0}` timed out")]
    Timeout(String),
    /// The plugin answered with an error.
    #[error("plugin error {code}: {message}")]
    Rpc {
        /// JSON-RPC error code.
        code: i64,
        /// Its message.
        message: String,
    },
    /// The plugin's stdio is closed (it exited).
    #[error("plugin connection closed")]
    Closed,
}

/// A notification or a protocol violation read from the plugin.
#[derive(Debug)]
pub enum Incoming {
    /// An `observe` notification.
    Observe(ObserveParams),
    /// A `log` notification.
    Log {
        /// Level given by the plugin.
        level: String,
        /// Message (truncated).
        message: String,
    },
    /// A line that breaks the protocol, and why.
    Violation(String),
}

/// Params of `observe`.
#[derive(Debug, Clone, Deserialize)]
pub struct ObserveParams {
    /// Device id within the plugin.
    pub external_id: String,
    /// Full name of the contract record type.
    pub record: String,
    /// The record as JSON.
    pub payload: Json,
    /// When observed; the host's clock when absent.
    pub observed_at_ms: Option<i64>,
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<Json, CallError>>>>>;

/// A connection to one plugin process.
pub struct Connection {
    stdin: Mutex<ChildStdin>,
    pending: Pending,
    next_id: AtomicU64,
    timeout: Duration,
    overflow: Arc<AtomicU64>,
}

impl Connection {
    /// Wires up a plugin's stdio. Notifications and violations go to `incoming`; when that channel
    /// is full the plugin is flooding and the message is dropped and counted (see
    /// [`Connection::take_overflow`]).
    pub fn new(
        stdin: ChildStdin,
        stdout: ChildStdout,
        max_line: usize,
        timeout: Duration,
        incoming: mpsc::Sender<Incoming>,
    ) -> Self {
        let pending: Pending = Arc::default();
        let overflow = Arc::new(AtomicU64::new(0));
        let reader = tokio::io::BufReader::new(stdout);
        tokio::spawn(read_loop(reader, max_line, pending.clone(), incoming, overflow.clone()));
        Self { stdin: Mutex::new(stdin), pending, next_id: AtomicU64::new(1), timeout, overflow }
    }

    /// Messages dropped unread since the last call because the plugin wrote faster than the host
    /// processes its output.
    pub fn take_overflow(&self) -> u64 {
        self.overflow.swap(0, Ordering::Relaxed)
    }

    /// Sends a request and waits for its answer within the call timeout.
    pub async fn call(&self, method: &str, params: Json) -> Result<Json, CallError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().await.insert(id, tx);
        let mut line = serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .map_err(|_| CallError::Closed)?;
        line.push(b'\n');
        {
            let mut stdin = self.stdin.lock().await;
            let written = tokio::time::timeout(self.timeout, async {
                stdin.write_all(&line).await?;
                stdin.flush().await
            })
            .await;
            match written {
                Ok(Ok(())) => {}
                Ok(Err(_)) => {
                    self.pending.lock().await.remove(&id);
                    return Err(CallError::Closed);
                }
                Err(_) => {
                    self.pending.lock().await.remove(&id);
                    return Err(CallError::Timeout(method.to_owned()));
                }
            }
        }
        match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(CallError::Closed),
            Err(_) => {
                self.pending.lock().await.remove(&id);
                Err(CallError::Timeout(method.to_owned()))
            }
        }
    }
}

/// Reads one line of at most `max` bytes. Returns `Ok(None)` at end of stream and
/// `Ok(Some(Err(len)))` for an over-long line, which is skipped up to its newline.
async fn read_line_limited<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Option<Result<(), usize>>> {
    buf.clear();
    let mut total = 0usize;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(if total == 0 {
                None
            } else if total > max {
                Some(Err(total))
            } else {
                Some(Ok(()))
            });
        }
        let (chunk, consumed, found_newline) = match available.iter().position(|b| *b == b'\n') {
            Some(i) => (&available[..i], i + 1, true),
            None => (available, available.len(), false),
        };
        total += chunk.len();
        if total <= max {
            buf.extend_from_slice(chunk);
        }
        reader.consume(consumed);
        if found_newline {
            return Ok(Some(if total > max { Err(total) } else { Ok(()) }));
        }
    }
}

#[derive(Deserialize)]
struct Message {
    id: Option<u64>,
    method: Option<String>,
    #[serde(default)]
    params: Json,
    result: Option<Json>,
    error: Option<RpcErrorBody>,
}

#[derive(Deserialize)]
struct RpcErrorBody {
    code: i64,
    #[serde(default)]
    message: String,
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max { text.to_owned() } else { format!("{}…", &text[..text.floor_char_boundary(max)]) }
}

async fn read_loop<R: AsyncBufRead + Unpin>(
    mut reader: R,
    max_line: usize,
    pending: Pending,
    incoming: mpsc::Sender<Incoming>,
    overflow: Arc<AtomicU64>,
) {
    let mut buf = Vec::with_capacity(4096);
    let deliver = |msg: Incoming| {
        if let Err(mpsc::error::TrySendError::Full(_)) = incoming.try_send(msg) {
            // Flooding: dropped here rather than buffered without bound; the supervisor counts it.
            overflow.fetch_add(1, Ordering::Relaxed);
        }
    };
    loop {
        match read_line_limited(&mut reader, &mut buf, max_line).await {
            Ok(None) | Err(_) => break,
            Ok(Some(Err(len))) => {
                deliver(Incoming::Violation(format!("line of {len} bytes exceeds the limit of {max_line}")))
            }
            Ok(Some(Ok(()))) => {
                if buf.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let message: Message = match serde_json::from_slice(&buf) {
                    Ok(m) => m,
                    Err(e) => {
                        deliver(Incoming::Violation(format!("not a JSON-RPC message: {e}")));
                        continue;
                    }
                };
                match (message.id, message.method.as_deref()) {
                    (Some(id), None) => {
                        let result = match (message.result, message.error) {
                            (_, Some(err)) => {
                                Err(CallError::Rpc { code: err.code, message: truncate(&err.message, 1024) })
                            }
                            (Some(result), None) => Ok(result),
                            (None, None) => Ok(Json::Null),
                        };
                        match pending.lock().await.remove(&id) {
                            Some(tx) => {
                                let _ = tx.send(result);
                            }
                            None => deliver(Incoming::Violation(format!("response to unknown request id {id}"))),
                        }
                    }
                    (None, Some("observe")) => match serde_json::from_value::<ObserveParams>(message.params) {
                        Ok(params) => deliver(Incoming::Observe(params)),
                        Err(e) => deliver(Incoming::Violation(format!("invalid observe params: {e}"))),
                    },
                    (None, Some("log")) => {
                        let level = message.params.get("level").and_then(Json::as_str).unwrap_or("info").to_owned();
                        let text = message.params.get("message").and_then(Json::as_str).unwrap_or("");
                        deliver(Incoming::Log { level, message: truncate(text, 2048) });
                    }
                    (_, Some(method)) => {
                        deliver(Incoming::Violation(format!("unknown method `{}`", truncate(method, 64))))
                    }
                    (None, None) => deliver(Incoming::Violation("message has neither id nor method".into())),
                }
            }
        }
    }
    // Fail every outstanding call: the plugin is gone.
    pending.lock().await.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn long_lines_are_skipped_and_reported() {
        let data = format!("{}\nshort\n", "x".repeat(100));
        let mut reader = tokio::io::BufReader::with_capacity(16, data.as_bytes());
        let mut buf = Vec::new();
        assert_eq!(read_line_limited(&mut reader, &mut buf, 10).await.unwrap(), Some(Err(100)));
        assert_eq!(read_line_limited(&mut reader, &mut buf, 10).await.unwrap(), Some(Ok(())));
        assert_eq!(buf, b"short");
        assert_eq!(read_line_limited(&mut reader, &mut buf, 10).await.unwrap(), None);
    }
}
