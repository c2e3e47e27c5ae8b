//! The rule packs a service uses: the bundled ones (`crates/domain/packs/*.toml`), with
//! the operator's files from `deadlines.packs_dir` over them (a file whose `name` is a
//! bundled pack's replaces it; others add packs).

use std::path::Path;

use rightsdesk_domain::deadlines::Packs;

use crate::config::DeadlinesConfig;

/// The packs for `config`, or every problem with its files.
pub fn load(config: &DeadlinesConfig) -> Result<Packs, Vec<String>> {
    let Some(dir) = &config.packs_dir else {
        return Ok(Packs::bundled());
    };
    let files = read_dir(dir).map_err(|e| vec![e])?;
    Packs::with_overrides(&files)
}

/// The `*.toml` files of `dir`, by name.
fn read_dir(dir: &Path) -> Result<Vec<(String, String)>, String> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| format!("deadlines.packs_dir {}: {e}", dir.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| format!("deadlines.packs_dir {}: {e}", dir.display()))?
            .path();
        if path.extension().is_some_and(|x| x == "toml") {
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            files.push((path.display().to_string(), text));
        }
    }
    files.sort();
    Ok(files)
}
