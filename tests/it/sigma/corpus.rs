//! The whole corpus: every Linux rule loads or is listed with a reason,
//! at least 118 of the 124 load; every Windows rule parses; loading the
//! whole corpus for Linux lists every Windows rule as skipped.

use std::collections::BTreeMap;
use std::path::PathBuf;

use procwatch::detect::{self, Platform, ReadError};

use super::corpus;

/// `rules*/<os>/` of the corpus.
fn folders(root: &std::path::Path, os: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().path().join(os))
        .filter(|p| p.is_dir())
        .collect();
    out.sort();
    out
}

#[test]
fn sigma_linux_rules_load_or_say_why() {
    let Some(root) = corpus() else { return };
    let set = detect::load(&folders(&root, "linux"), Platform::Linux).unwrap();
    let s = &set.summary;
    let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &s.skipped {
        assert!(!r.reason.is_empty() && r.file.ends_with(".yml"), "{r:?}");
        *reasons.entry(&r.reason).or_default() += 1;
    }
    eprintln!(
        "Linux corpus: {} loaded, {} skipped, {} prefiltered: {reasons:#?}",
        s.loaded,
        s.skipped.len(),
        set.engine.prefiltered()
    );
    assert_eq!(
        s.loaded + s.skipped.len(),
        124,
        "every rule file is counted once"
    );
    assert!(set.malformed.is_empty(), "{:?}", set.malformed);
    assert!(s.loaded >= 118, "only {} of 124 Linux rules load", s.loaded);
}

#[test]
fn sigma_windows_rules_all_parse() {
    let Some(root) = corpus() else { return };
    let files = detect::read_all(&folders(&root, "windows")).unwrap();
    assert_eq!(files.len(), 1242);
    let failed: Vec<_> = files
        .iter()
        .filter_map(|(f, r)| match r {
            Ok(doc) if doc.product.as_deref() == Some("windows") => None,
            Ok(_) => Some((f, "product is not windows".to_string())),
            Err(ReadError::Skipped(why) | ReadError::Malformed(why)) => Some((f, why.clone())),
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{} did not parse: {failed:#?}",
        failed.len()
    );
    // Bound to the Windows fields: those naming fields procwatch's
    // Windows sources do not fill, or a placeholder it has no value for,
    // are skipped, each with the field or placeholder named.
    let set = detect::load(&folders(&root, "windows"), Platform::Windows).unwrap();
    let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &set.summary.skipped {
        assert!(
            r.reason.starts_with("field ") || r.reason.starts_with("expand: "),
            "{r:?}"
        );
        *reasons.entry(&r.reason).or_default() += 1;
    }
    eprintln!(
        "Windows corpus: {} loaded for Windows, {} skipped: {reasons:#?}",
        set.summary.loaded,
        set.summary.skipped.len()
    );
    assert_eq!(set.summary.loaded + set.summary.skipped.len(), 1242);
}

#[test]
fn sigma_whole_corpus_on_linux_skips_windows_rules_by_product() {
    let Some(root) = corpus() else { return };
    let set = detect::load(std::slice::from_ref(&root), Platform::Linux).unwrap();
    let s = &set.summary;
    let by_product = s
        .skipped
        .iter()
        .filter(|r| r.reason == "logsource product windows is not linux")
        .count();
    assert_eq!(by_product, 1242);
    assert_eq!(s.loaded + s.skipped.len(), 124 + 1242);
}
