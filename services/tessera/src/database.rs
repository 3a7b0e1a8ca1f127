//! Connecting to PostgreSQL and applying the migrations under `migrations/`.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use anyhow::Context;
use sqlx::PgPool;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use sqlx::postgres::PgPoolOptions;

/// The migrations, compiled in so that the binary carries its schema.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "auth", include_str!("../../../migrations/0001_auth.sql")),
    (2, "actions", include_str!("../../../migrations/0002_actions.sql")),
];

/// Connects, retrying for up to a minute while the server starts.
pub async fn connect(url: &str) -> anyhow::Result<PgPool> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match PgPoolOptions::new().max_connections(16).acquire_timeout(Duration::from_secs(10)).connect(url).await {
            Ok(pool) => return Ok(pool),
            Err(e) if Instant::now() < deadline => {
                tracing::debug!(error = %e, "PostgreSQL not ready yet");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => return Err(e).context("cannot connect to PostgreSQL"),
        }
    }
}

/// The compiled-in migrations as a source for sqlx's migrator.
#[derive(Debug)]
struct Embedded;

impl<'s> MigrationSource<'s> for Embedded {
    fn resolve(self) -> futures::future::BoxFuture<'s, Result<Vec<Migration>, sqlx::error::BoxDynError>> {
        let migrations = MIGRATIONS
            .iter()
            .map(|(version, description, sql)| {
                Migration::new(*version, Cow::Borrowed(*description), MigrationType::Simple, Cow::Borrowed(*sql), false)
            })
            .collect();
        Box::pin(async move { Ok(migrations) })
    }
}

/// Applies pending migrations.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    let migrator = Migrator::new(Embedded).await.context("cannot load migrations")?;
    migrator.run(pool).await.context("cannot apply database migrations")?;
    Ok(())
}
