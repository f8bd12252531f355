//! The code's shape, checked: the GUI (`src/app`) reaches Candle only through the engine,
//! the engine never draws, and the app's modules import one another without a circle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The `.rs` files of a folder, by module name, without their test modules.
fn sources(dir: &str) -> BTreeMap<String, String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap().to_string();
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            out.insert(name, code);
        }
    }
    out
}

#[test]
fn the_app_uses_candle_only_through_the_engine() {
    for (name, code) in sources("src/app") {
        for candle in ["candle_core", "candle_nn"] {
            assert!(!code.contains(candle), "src/app/{name}.rs uses {candle}");
        }
    }
}

#[test]
fn the_engine_never_draws() {
    for dir in [
        "src/data",
        "src/model",
        "src/method",
        "src/analysis",
        "src/train",
        "src/tasks",
    ] {
        if !Path::new(env!("CARGO_MANIFEST_DIR")).join(dir).is_dir() {
            continue;
        }
        for (name, code) in sources(dir) {
            for gui in ["egui::", "egui_plot", "eframe::", "crate::app"] {
                assert!(!code.contains(gui), "{dir}/{name}.rs uses {gui}");
            }
        }
    }
}

#[test]
fn the_app_modules_import_each_other_without_a_circle() {
    let files = sources("src/app");
    let mut uses: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, code) in &files {
        let mut deps = BTreeSet::new();
        for prefix in ["super::", "crate::app::"] {
            for (i, _) in code.match_indices(prefix) {
                let rest = &code[i + prefix.len()..];
                let module: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_' || c.is_ascii_digit())
                    .collect();
                if module != *name && files.contains_key(&module) && module != "mod" {
                    deps.insert(module);
                }
            }
        }
        uses.insert(name.clone(), deps);
    }
    // Depth-first search for a path back to where it started.
    fn path_back(
        uses: &BTreeMap<String, BTreeSet<String>>,
        start: &str,
        at: &str,
        seen: &mut BTreeSet<String>,
        path: &mut Vec<String>,
    ) -> bool {
        for next in &uses[at] {
            if next == start {
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if path_back(uses, start, next, seen, path) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    for start in uses.keys() {
        let mut path = vec![start.clone()];
        let found = path_back(&uses, start, start, &mut BTreeSet::new(), &mut path);
        assert!(!found, "import circle: {} → {start}", path.join(" → "));
    }
}

/// The code of every `.rs` file below `dir` (recursively), without test modules and
/// comment lines.
fn code_below(dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            code_below(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap();
            let code: String = code
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            out.push((path.display().to_string(), code));
        }
    }
}

#[test]
fn the_engine_layers_import_one_way() {
    // data ← model ← method ← train ← tasks ← run ← {app, cli}; `analysis`, `device` and
    // `metric` are leaves beside them, and import none of the layers.
    let layers = [
        "data", "model", "method", "train", "tasks", "run", "app", "cli",
    ];
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut checked = 0;
    for (rank, layer) in layers.iter().enumerate().take(6) {
        let mut files = Vec::new();
        code_below(&root.join(layer), &mut files);
        for (file, code) in files {
            checked += 1;
            for higher in &layers[rank + 1..] {
                assert!(
                    !code.contains(&format!("crate::{higher}::"))
                        && !code.contains(&format!("crate::{higher};")),
                    "{file} ({layer}) imports crate::{higher}, a layer above it"
                );
            }
        }
    }
    for leaf in ["analysis", "device.rs", "metric.rs"] {
        let path = root.join(leaf);
        let mut files = Vec::new();
        if path.is_dir() {
            code_below(&path, &mut files);
        } else {
            let code = std::fs::read_to_string(&path).unwrap();
            files.push((path.display().to_string(), code));
        }
        for (file, code) in files {
            let code = code.split("#[cfg(test)]").next().unwrap().to_string();
            for layer in layers {
                assert!(
                    !code.contains(&format!("crate::{layer}::")),
                    "{file} imports crate::{layer}: it should stand beside the layers"
                );
            }
        }
    }
    assert!(checked > 40, "only {checked} files checked");
}
