//! `tessera plugin check DIR [--format json]`.

use std::process::ExitCode;

use serde_json::json;

use crate::cli::{OutputFormat, PluginCommand};

/// Runs a plugin command.
pub async fn run(cmd: PluginCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PluginCommand::Check { dir, format } => {
            let result = tessera_plugin_host::package::load(&dir)?;
            let (ok, violations, id) = match &result {
                Ok(pkg) => (true, Vec::new(), Some(pkg.manifest.id.clone())),
                Err(v) => (false, v.clone(), None),
            };
            match format {
                OutputFormat::Json => {
                    println!("{}", json!({"package": dir, "plugin_id": id, "accepted": ok, "violations": violations}));
                }
                OutputFormat::Text if ok => {
                    println!("{}: accepted (plugin `{}`)", dir.display(), id.unwrap_or_default())
                }
                OutputFormat::Text => {
                    println!("{}: rejected with {} violation(s)", dir.display(), violations.len());
                    for v in &violations {
                        println!("  {v}");
                    }
                }
            }
            Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
    }
}
