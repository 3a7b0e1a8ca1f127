//! A plugin's stderr: forwarded to the host's log (rate-limited, truncated), with the last lines
//! kept so that a failure can say what the plugin printed before it died (a traceback, a
//! `MemoryError`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::io::AsyncBufReadExt;
use tokio::task::JoinHandle;

use crate::quota::TokenBucket;

/// Lines of stderr remembered.
const TAIL_LINES: usize = 3;
/// Longest line kept or forwarded.
const MAX_LINE: usize = 2048;

/// The last lines a plugin wrote to stderr.
#[derive(Debug, Clone, Default)]
pub struct Tail(Arc<Mutex<VecDeque<String>>>);

impl Tail {
    /// The remembered lines joined, at most `max` bytes; `None` when the plugin printed nothing.
    pub fn summary(&self, max: usize) -> Option<String> {
        let lines = self.0.lock().ok()?;
        if lines.is_empty() {
            return None;
        }
        let joined = lines.iter().map(String::as_str).collect::<Vec<_>>().join(" | ");
        Some(truncate(&joined, max))
    }

    fn push(&self, line: String) {
        if let Ok(mut lines) = self.0.lock() {
            if lines.len() == TAIL_LINES {
                lines.pop_front();
            }
            lines.push_back(line);
        }
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max { text.to_owned() } else { format!("{}…", &text[..text.floor_char_boundary(max)]) }
}

/// Reads the plugin's stderr until it closes.
pub fn forward(stderr: tokio::process::ChildStderr, plugin: String) -> (Tail, JoinHandle<()>) {
    let tail = Tail::default();
    let kept = tail.clone();
    let task = tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        let mut budget = TokenBucket::new(20);
        while let Ok(Some(line)) = lines.next_line().await {
            let line = truncate(line.trim_end(), MAX_LINE);
            if line.is_empty() {
                continue;
            }
            if budget.try_take() {
                tracing::info!(target: "plugin", %plugin, "stderr: {line}");
            }
            kept.push(line);
        }
    });
    (tail, task)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_lines() {
        let tail = Tail::default();
        assert_eq!(tail.summary(100), None);
        for line in ["Traceback", "  File x", "  line 3", "MemoryError"] {
            tail.push(line.into());
        }
        assert_eq!(tail.summary(100).as_deref(), Some("  File x |   line 3 | MemoryError"));
        assert_eq!(tail.summary(4).as_deref(), Some("  Fi…"));
    }
}
