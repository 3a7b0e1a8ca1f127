//! `tessera`: the one binary. It parses arguments and composes the roles; the roles live in their
//! own crates under `services/`.

mod cli;
mod database;
mod plugin_cmd;
mod replay;
mod role_http;
mod roles;
mod serve;
mod telemetry;
mod tokens;

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    telemetry::init_tracing(cli.log_format);
    let result = match cli.command {
        cli::Command::Serve(args) => serve::serve(args).await,
        cli::Command::Run(args) => roles::run_role(args).await,
        cli::Command::Plugin(cmd) => plugin_cmd::run(cmd).await,
        cli::Command::Replay(args) => replay::replay(args).await,
        cli::Command::Projector(cmd) => roles::projector_command(cmd).await,
        cli::Command::Token(cmd) => tokens::run(cmd).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
