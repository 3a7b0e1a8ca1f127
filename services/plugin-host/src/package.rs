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
    Ok(validate(&files, Catalog::builtin()))
}
