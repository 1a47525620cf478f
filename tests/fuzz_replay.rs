//! Replays every committed fuzz input (the minimized corpora in
//! `fuzz/corpus/<target>/` and the crash reproducers in
//! `fuzz/regressions/<target>/`) through the fuzz targets' own checks, on
//! the stable toolchain under plain `cargo test`. The check code is included
//! by path, so it exists once; it also installs the counting allocator, so
//! the allocation bounds are asserted here too. CI runs only this; fuzzing
//! itself is `make fuzz` (nightly, cargo-fuzz).

#[path = "../fuzz/src/checks.rs"]
mod checks;
#[path = "../fuzz/src/object_checks.rs"]
mod object_checks;

use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// A fuzz target's check: panics on a contract violation.
type Check = fn(&[u8]);

/// Every fuzz target (fuzz/fuzz_targets/<name>.rs) and its check.
const TARGETS: &[(&str, Check)] = &[
    ("codec_zstd_decode", checks::codec_zstd_decode),
    ("codec_gzip_decode", checks::codec_gzip_decode),
    ("codec_raw_decode", checks::codec_raw_decode),
    ("frame_parse", checks::frame_parse),
    ("index_decode", checks::index_decode),
    ("object_decode", object_checks::object_decode),
    ("object_range", object_checks::object_range),
    ("column_decompress", checks::column_decompress),
    ("codec_roundtrip", checks::codec_roundtrip),
    ("frame_roundtrip", checks::frame_roundtrip),
    ("index_roundtrip", checks::index_roundtrip),
    ("object_roundtrip", object_checks::object_roundtrip),
    ("column_roundtrip", checks::column_roundtrip),
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("readable directory").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_target_has_a_corpus_and_every_corpus_a_target() {
    for (name, _) in TARGETS {
        let target = fuzz_dir().join("fuzz_targets").join(format!("{name}.rs"));
        assert!(target.is_file(), "{} is missing", target.display());
        let corpus = fuzz_dir().join("corpus").join(name);
        assert!(!files(&corpus).is_empty(), "{} is empty", corpus.display());
    }
    for dir in ["corpus", "regressions"] {
        for entry in fs::read_dir(fuzz_dir().join(dir)).into_iter().flatten() {
            let entry = entry.unwrap();
            if !entry.path().is_dir() {
                continue; // a README
            }
            let name = entry.file_name().into_string().unwrap();
            assert!(
                TARGETS.iter().any(|(t, _)| *t == name),
                "fuzz/{dir}/{name} belongs to no target listed here"
            );
        }
    }
}

/// One test for all inputs: the allocation accounting is process-wide, so
/// checks must not run concurrently with each other.
#[test]
fn replay_corpora_and_regressions() {
    let mut failures = Vec::new();
    let mut count = 0;
    for (name, check) in TARGETS {
        for dir in ["corpus", "regressions"] {
            for path in files(&fuzz_dir().join(dir).join(name)) {
                let data = fs::read(&path).expect("readable input");
                let label: &'static str = Box::leak(path.display().to_string().into_boxed_str());
                checks::set_label(label);
                if catch_unwind(AssertUnwindSafe(|| check(&data))).is_err() {
                    failures.push(label);
                }
                count += 1;
            }
        }
    }
    eprintln!("replayed {count} fuzz inputs");
    assert!(
        count > 0,
        "no fuzz inputs found under {}",
        fuzz_dir().display()
    );
    assert!(
        failures.is_empty(),
        "{} of {count} fuzz inputs fail (panic messages above):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
