//! Tidy checks: rules of `docs/dev/style.md` that a machine can check, run by `cargo test`.
//!
//! - Every `.rs` file starts with a `//!` module doc that says why it exists.
//! - Dependencies point one way (house style rule 1): `vigil-event` depends on no internal crate,
//!   `vigil-core` only on `vigil-event`, components only on `vigil-core`/`vigil-event`; only the
//!   runtime, the facade and the CLI wire components together.

use std::{
    fs,
    path::{Path, PathBuf},
};

/// The workspace root (the parent of this crate's folder).
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_owned()
}

/// Runs every check and returns all problems found.
pub fn check_all(root: &Path) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    problems.extend(module_docs(root));
    problems.extend(dependency_direction(root));
    if problems.is_empty() { Ok(()) } else { Err(problems) }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if name == "target" || name.to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|it| it == "rs") {
            out.push(path);
        }
    }
}

fn module_docs(root: &Path) -> Vec<String> {
    let mut files = Vec::new();
    for dir in ["crates", "xtask", "examples", "bench", "fuzz"] {
        rust_files(&root.join(dir), &mut files);
    }
    files
        .into_iter()
        .filter(|path| {
            let text = fs::read_to_string(path).unwrap_or_default();
            !text.trim_start().starts_with("//!")
        })
        .map(|path| format!("{} does not start with a `//!` module doc", path.display()))
        .collect()
}

/// Internal crates each crate may depend on (normal dependencies only; tests may use more).
fn allowed_internal(package: &str) -> Option<&'static [&'static str]> {
    const LEAF: &[&str] = &[];
    const CORE: &[&str] = &["vigil-event"];
    const COMPONENT: &[&str] = &["vigil-event", "vigil-core"];
    Some(match package {
        "vigil-event" => LEAF,
        "vigil-core" => CORE,
        "vigil-runtime" => COMPONENT,
        // Detectors read lines with the built-in parsers and jails load fail2ban filter files
        // (issue 7); both are leaf libraries over vigil-event.
        "vigil-detect" => {
            &["vigil-event", "vigil-core", "vigil-parse", "vigil-f2b", "vigil-enrich"]
        }
        // The facade and the CLI wire everything together.
        "vigil" | "vigil-cli" | "xtask" | "vigil-test-support" => return None,
        // The enrichment tracers read the host collectors' sockets and processes (issue 6), and
        // re-export the traceback joiner of the parsers' leaf library.
        "vigil-enrich" => &["vigil-event", "vigil-core", "vigil-collect", "vigil-parse"],
        // Every other crate is a component crate.
        _ => COMPONENT,
    })
}

fn dependency_direction(root: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let Ok(entries) = fs::read_dir(root.join("crates")) else {
        return vec!["no crates/ folder".to_owned()];
    };
    for entry in entries.flatten() {
        let manifest_path = entry.path().join("Cargo.toml");
        let Ok(text) = fs::read_to_string(&manifest_path) else { continue };
        let manifest: toml::Table = match toml::from_str(&text) {
            Ok(it) => it,
            Err(err) => {
                problems.push(format!("{}: {err}", manifest_path.display()));
                continue;
            }
        };
        let package = manifest
            .get("package")
            .and_then(|it| it.get("name"))
            .and_then(|it| it.as_str())
            .unwrap_or_default()
            .to_owned();
        let Some(allowed) = allowed_internal(&package) else { continue };
        let deps = manifest.get("dependencies").and_then(|it| it.as_table());
        for name in deps.into_iter().flat_map(|it| it.keys()) {
            let internal = name.starts_with("vigil");
            if internal && !allowed.contains(&name.as_str()) {
                problems.push(format!(
                    "{package} depends on {name}: dependencies must point event <- core <- \
                     components; only the runtime, the facade and the CLI wire components"
                ));
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rust_file_has_a_module_doc() {
        let problems = module_docs(&project_root());
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    #[test]
    fn dependencies_point_one_way() {
        let problems = dependency_direction(&project_root());
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    #[test]
    fn the_checks_catch_what_they_claim_to() {
        let dir = std::env::temp_dir().join(format!("vigil-tidy-{}", std::process::id()));
        let krate = dir.join("crates/detect");
        fs::create_dir_all(krate.join("src")).unwrap();
        fs::write(krate.join("src/lib.rs"), "fn main() {}\n").unwrap();
        fs::write(
            krate.join("Cargo.toml"),
            "[package]\nname = \"vigil-detect\"\n[dependencies]\nvigil-runtime = \"1\"\n",
        )
        .unwrap();
        assert_eq!(module_docs(&dir).len(), 1);
        assert_eq!(dependency_direction(&dir).len(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }
}
