//! Replays every committed fuzz input — `fuzz/seeds/<target>/*` and
//! `fuzz/regressions/<target>/*` — through the targets' entry points, so CI
//! covers the corpus and every past finding with stable Rust, without the
//! fuzzer.

use authgate_fuzzing::TARGETS;
use std::path::{Path, PathBuf};

fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz")
        .join(kind)
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_seed_and_regression_input_passes_its_target() {
    let mut seeds = 0;
    for (target, run) in TARGETS {
        let target_seeds = inputs("seeds", target);
        assert!(
            target_seeds.len() >= 3,
            "fuzz/seeds/{target} has {} seeds",
            target_seeds.len()
        );
        seeds += target_seeds.len();
        for file in target_seeds.iter().chain(&inputs("regressions", target)) {
            let data = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            eprintln!("{target}: {}", file.display());
            run(&data);
        }
    }
    assert!(seeds >= 15);
}

#[test]
fn every_seed_directory_is_a_target() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds");
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let name = entry.unwrap_or_else(|e| panic!("{e}")).file_name();
        assert!(
            TARGETS.iter().any(|(t, _)| name == *t),
            "fuzz/seeds/{name:?} names no target"
        );
    }
}
