//! `tessera token create|revoke`.

use std::process::ExitCode;

use anyhow::Context;
use tessera_api::auth::{Scope, create_token, revoke_token};

use crate::cli::TokenCommand;
use crate::{database, roles};

/// Runs a token command.
pub async fn run(cmd: TokenCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        TokenCommand::Create { name, scope, data } => {
            let scope = Scope::parse(&scope).context("--scope must be read, control or admin")?;
            let pool = database::connect(&roles::database_url(&data)?).await?;
            database::migrate(&pool).await?;
            let token = create_token(&pool, &name, scope).await?;
            println!("{}", token.secret);
            eprintln!(
                "created token {} ({name}, scope {}); the secret above is shown only once",
                token.id,
                scope.as_str()
            );
            Ok(ExitCode::SUCCESS)
        }
        TokenCommand::Revoke { id, data } => {
            let pool = database::connect(&roles::database_url(&data)?).await?;
            let revoked = revoke_token(&pool, &id).await?;
            if revoked == 0 {
                eprintln!("no active token with id or name `{id}`");
                return Ok(ExitCode::FAILURE);
            }
            eprintln!("revoked {revoked} token(s)");
            Ok(ExitCode::SUCCESS)
        }
    }
}
