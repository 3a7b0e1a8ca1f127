//! PostgreSQL's own change notification, the path every subscription update takes: the delay from
//! `pg_notify` on one connection to delivery on a listening one, measured on the database under
//! test while the pipeline runs, at a light 100 notifications per second.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::task::JoinHandle;

use crate::stats::{Summary, now_micros};

const CHANNEL: &str = "tessera_bench_probe";
const PERIOD: Duration = Duration::from_millis(10);

/// A running measurement; `finish` stops it and summarizes.
pub struct NotifyProbe {
    sender: JoinHandle<()>,
    listener: JoinHandle<Vec<i64>>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl NotifyProbe {
    /// Starts listening and notifying.
    pub async fn start(pool: &PgPool) -> anyhow::Result<Self> {
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen(CHANNEL).await?;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut until = stopped.clone();
        let listener = tokio::spawn(async move {
            let mut samples = Vec::new();
            loop {
                tokio::select! {
                    _ = until.changed() => return samples,
                    n = listener.recv() => match n {
                        Ok(n) => {
                            let received = now_micros();
                            if let Ok(sent) = n.payload().parse::<i64>() {
                                samples.push(received - sent);
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "notify baseline: listener failed");
                            return samples;
                        }
                    }
                }
            }
        });
        let pool = pool.clone();
        let mut until = stopped;
        let sender = tokio::spawn(async move {
            let mut tick = tokio::time::interval(PERIOD);
            loop {
                tokio::select! {
                    _ = until.changed() => return,
                    _ = tick.tick() => {
                        let sent = now_micros().to_string();
                        if let Err(e) = sqlx::query("SELECT pg_notify($1, $2)").bind(CHANNEL).bind(sent).execute(&pool).await {
                            tracing::warn!(error = %e, "notify baseline: pg_notify failed");
                        }
                    }
                }
            }
        });
        Ok(Self { sender, listener, stop })
    }

    /// Stops and summarizes the delays seen.
    pub async fn finish(self) -> Summary {
        let _ = self.stop.send(true);
        let _ = self.sender.await;
        Summary::of_micros(self.listener.await.unwrap_or_default())
    }
}
