//! Reading a plugin package from disk and validating it.

use std::path::Path;

use tessera_model::Catalog;
use tessera_model::Violation;
use tessera_model::package::{Package, PackageFiles, validate};

use crate::HostError;

fn read_optional(path: &Path) -> Result<Option<String>, HostError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(HostError::Package { path: path.display().to_string(), source }),
    }
}

/// Largest package file read; anything bigger is refused rather than loaded.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Reads the files of a package directory.
pub fn read_files(dir: &Path) -> Result<PackageFiles, HostError> {
    let io = |path: &Path, source| HostError::Package { path: path.display().to_string(), source };
    let mut contracts = Vec::new();
    let contract_dir = dir.join("contract");
    match std::fs::read_dir(&contract_dir) {
        Ok(entries) => {
            for entry in entries {
                let entry = entry.map_err(|e| io(&contract_dir, e))?;
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "avsc") {
                    let size = entry.metadata().map_err(|e| io(&path, e))?.len();
                    if size > MAX_FILE_BYTES {
                        return Err(io(&path, std::io::Error::other("file larger than 1 MiB")));
                    }
                    let text = std::fs::read_to_string(&path).map_err(|e| io(&path, e))?;
                    let name = format!("contract/{}", entry.file_name().to_string_lossy());
                    contracts.push((name, text));
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(&contract_dir, e)),
    }
    contracts.sort();
    Ok(PackageFiles {
        manifest: read_optional(&dir.join("plugin.toml"))?,
        contracts,
        mapping: read_optional(&dir.join("mapping.toml"))?,
        actions: read_optional(&dir.join("actions.toml"))?,
        ui: read_optional(&dir.join("ui.toml"))?,
    })
}

/// Reads and validates a package: the package, or every violation found.
pub fn load(dir: &Path) -> Result<Result<Package, Vec<Violation>>, HostError> {
    let files = read_files(dir)?;
    let result = validate(&files, Catalog::builtin());
    // The static checks are pure; whether the entrypoint exists needs the package on disk.
    let entrypoint = files
        .manifest
        .as_deref()
        .and_then(|text| toml::from_str::<tessera_model::manifest::Manifest>(text).ok())
        .map(|m| m.entrypoint)
        .unwrap_or_default();
    let missing = check_entrypoint(dir, &entrypoint);
    Ok(match result {
        Ok(_) if !missing.is_empty() => Err(missing),
        Ok(package) => Ok(package),
        Err(mut violations) => {
            violations.extend(missing);
            Err(violations)
        }
    })
}

/// Every file the entrypoint names inside the package must exist: the program when it is a
/// relative path, and each argument that is a relative path (a script); a program without a `/`
/// must be on the plugins' search path.
fn check_entrypoint(dir: &Path, entrypoint: &[String]) -> Vec<Violation> {
    let mut out = Vec::new();
    let Some((program, args)) = entrypoint.split_first() else { return out };
    if program.trim().is_empty() {
        return out;
    }
    if !program.contains('/') && crate::sandbox::find_on_path(program).is_none() {
        out.push(
            Violation::new(
                "manifest.entrypoint_not_found",
                "plugin.toml:entrypoint[0]",
                format!("`{program}` is not on the plugins' search path {}", crate::sandbox::PLUGIN_PATH),
            )
            .hint("install it, or name a program inside the package with a relative path"),
        );
    }
    let files = std::iter::once((0, program)).filter(|(_, p)| p.contains('/'));
    let scripts =
        args.iter().enumerate().map(|(i, a)| (i + 1, a)).filter(|(_, a)| a.contains('/') && !a.starts_with('-'));
    for (index, path) in files.chain(scripts) {
        let relative = Path::new(path);
        let inside = relative.is_relative() && !relative.components().any(|c| c == std::path::Component::ParentDir);
        if !inside {
            out.push(
                Violation::new(
                    "manifest.entrypoint_outside_package",
                    format!("plugin.toml:entrypoint[{index}]"),
                    format!("`{path}` is not a path inside the package"),
                )
                .hint("entrypoint files are relative to the package directory and stay inside it"),
            );
        } else if !dir.join(relative).is_file() {
            out.push(
                Violation::new(
                    "manifest.entrypoint_not_found",
                    format!("plugin.toml:entrypoint[{index}]"),
                    format!("`{path}` does not exist in the package"),
                )
                .hint("a compiled plugin ships its binary inside the package: build it first"),
            );
        }
    }
    out
}
