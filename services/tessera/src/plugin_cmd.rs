//! `tessera plugin check DIR [--format json] [--previous DIR]`, `tessera plugin test DIR` and
//! `tessera plugin new NAME`.

mod scaffold;
mod trial;

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use serde_json::json;
use tessera_model::Violation;
use tessera_model::package::check_compatibility;

use crate::cli::{OutputFormat, PluginCommand};

/// Runs a plugin command.
pub async fn run(cmd: PluginCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PluginCommand::Check { dir, format, previous } => check(&dir, format, previous.as_deref()),
        PluginCommand::Test { dir, seconds, config, format } => {
            let config =
                config.map(|text| serde_json::from_str(&text).context("--config is not a JSON object")).transpose()?;
            let options = trial::Options { dir, observe_for: Duration::from_secs(seconds), config };
            let report = trial::run(options).await?;
            match format {
                OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
                OutputFormat::Text => print_report(&report),
            }
            Ok(if report.violations.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        PluginCommand::New { name, dir } => {
            let dir = scaffold::scaffold(&name, dir)?;
            println!("created plugin package `{name}` in {}", dir.display());
            println!("next: tessera plugin check {0} && tessera plugin test {0}", dir.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The violations of the package in `dir`, including those against its previous version.
fn check_violations(dir: &Path, previous: Option<&Path>) -> anyhow::Result<(Option<String>, Vec<Violation>)> {
    let package = match tessera_plugin_host::package::load(dir)? {
        Ok(package) => package,
        Err(violations) => return Ok((None, violations)),
    };
    let mut violations = Vec::new();
    if let Some(previous) = previous {
        let old = match tessera_plugin_host::package::load(previous)? {
            Ok(old) => old,
            Err(v) => anyhow::bail!(
                "the previous version in {} is itself rejected: {} violation(s)",
                previous.display(),
                v.len()
            ),
        };
        if old.manifest.id != package.manifest.id {
            violations.push(Violation::new(
                "manifest.id_changed",
                "plugin.toml:id",
                format!("the previous version is plugin `{}`, this one `{}`", old.manifest.id, package.manifest.id),
            ));
        }
        violations.extend(check_compatibility(&old.contract, &package.contract, &package.contract_paths));
    }
    Ok((Some(package.manifest.id), violations))
}

fn check(dir: &Path, format: OutputFormat, previous: Option<&Path>) -> anyhow::Result<ExitCode> {
    let (id, violations) = check_violations(dir, previous)?;
    let ok = violations.is_empty();
    match format {
        OutputFormat::Json => {
            println!("{}", json!({"package": dir, "plugin_id": id, "accepted": ok, "violations": violations}));
        }
        OutputFormat::Text if ok => println!("{}: accepted (plugin `{}`)", dir.display(), id.unwrap_or_default()),
        OutputFormat::Text => {
            println!("{}: rejected with {} violation(s)", dir.display(), violations.len());
            for v in &violations {
                println!("  {v}");
            }
        }
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn print_report(report: &trial::Report) {
    let id = report.plugin_id.as_deref().unwrap_or("?");
    println!("plugin `{id}`: {} observation(s) accepted", report.observations);
    if !report.lifecycle.is_empty() {
        println!("lifecycle: {}", report.lifecycle.join(" → "));
    }
    println!("devices ({}):", report.devices.len());
    for d in &report.devices {
        let online = match d.online {
            Some(true) => "online",
            Some(false) => "offline",
            None => "availability unknown",
        };
        println!("  {} \"{}\" ({}, {online})", d.id, d.metadata.name, d.metadata.device_class);
        let states: Vec<String> = d.states.iter().map(|(k, v)| format!("{k} = {v}")).collect();
        println!("    capabilities: {}", states.join(", "));
        println!("    actions: {}", d.metadata.actions.join(", "));
        println!("    ui: {}", serde_json::to_string(&d.ui).unwrap_or_default());
    }
    println!("dry-run actions ({}):", report.actions.len());
    for a in &report.actions {
        println!("  {} {} {} → {}: {}", a.device_id, a.action, a.params, a.outcome, a.detail.as_deref().unwrap_or(""));
    }
    if report.violations.is_empty() {
        println!("violations: none");
    } else {
        println!("violations ({}):", report.violations.len());
        for v in &report.violations {
            let times = if v.count > 1 { format!(" (×{})", v.count) } else { String::new() };
            println!("  [{}] {} {}: {}{times}", v.stage, v.code, v.path, v.message);
        }
    }
}
