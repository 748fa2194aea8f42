//! Reading `--rules` paths: files and directories (recursively, `*.yml`
//! and `*.yaml`), every file either loaded or listed with the reason.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::engine::Engine;
use super::fields::Platform;
use super::rule::{self, ReadError, RuleDoc};
use crate::event::{RulesSummary, SkippedRule};

/// Rule files larger than this are not read (SigmaHQ's largest is ~10 KiB).
const MAX_FILE: u64 = 1 << 20;

/// A rule set as read from the `--rules` paths.
#[derive(Debug)]
pub struct RuleSet {
    pub engine: Engine,
    /// `rules_loaded` and `rules_skipped`.
    pub summary: RulesSummary,
    /// Files that are not valid YAML or not a Sigma rule: each also in
    /// `summary.skipped`, and an error with `--rules-strict`.
    pub malformed: Vec<SkippedRule>,
}

/// Reads every rule under `paths` and compiles those for `p`. `Err` when
/// a path given cannot be read at all.
pub fn load(paths: &[PathBuf], p: Platform) -> Result<RuleSet, String> {
    let mut docs = Vec::new();
    let mut skipped = Vec::new();
    let mut malformed = Vec::new();
    for (file, res) in read_files(paths, Some(p.product()))? {
        match res {
            Ok(doc) if doc.product.as_deref() == Some(p.product()) => docs.push((file, doc)),
            Ok(doc) => skipped.push(SkippedRule {
                file,
                reason: format!(
                    "logsource product {} is not {}",
                    doc.product.as_deref().unwrap_or("(none)"),
                    p.product()
                ),
            }),
            Err(ReadError::Skipped(reason)) => skipped.push(SkippedRule { file, reason }),
            Err(ReadError::Malformed(reason)) => {
                let s = SkippedRule {
                    file,
                    reason: format!("malformed: {reason}"),
                };
                malformed.push(s.clone());
                skipped.push(s);
            }
        }
    }
    let (engine, unbound) = Engine::compile(docs, p);
    skipped.extend(
        unbound
            .into_iter()
            .map(|(file, reason)| SkippedRule { file, reason }),
    );
    Ok(RuleSet {
        summary: RulesSummary {
            loaded: engine.len(),
            skipped,
        },
        engine,
        malformed,
    })
}

/// Rule files, each with its path and its model or why it has none.
pub type Parsed = Vec<(String, Result<RuleDoc, ReadError>)>;

/// Every rule file under `paths`, parsed whatever its product (for tests
/// of another platform's rules): each with its path and the model or why
/// it has none.
pub fn read_all(paths: &[PathBuf]) -> Result<Parsed, String> {
    read_files(paths, None)
}

fn read_files(paths: &[PathBuf], product: Option<&str>) -> Result<Parsed, String> {
    let mut files = Vec::new();
    for path in paths {
        let meta = fs::metadata(path).map_err(|e| format!("--rules {}: {e}", path.display()))?;
        if meta.is_dir() {
            walk(path, &mut files).map_err(|e| format!("--rules {}: {e}", path.display()))?;
        } else {
            files.push((path.clone(), None));
        }
    }
    Ok(files
        .into_iter()
        .map(|(f, why)| {
            let name = f.display().to_string();
            let res = match why {
                Some(why) => Err(ReadError::Skipped(why)),
                None => read(&f).and_then(|text| rule::parse(&text, product)),
            };
            (name, res)
        })
        .collect())
}

/// The rule files under `dir`, sorted; symbolic links and special files
/// come with the reason they are not read (a rules directory a user can
/// write to must not make procwatch open a FIFO or leave the tree).
fn walk(dir: &Path, out: &mut Vec<(PathBuf, Option<String>)>) -> std::io::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let ty = e.file_type()?;
        if ty.is_dir() {
            walk(&path, out)?;
            continue;
        }
        let is_rule = path.extension().is_some_and(|x| x == "yml" || x == "yaml");
        if !is_rule {
            continue;
        }
        let why = (!ty.is_file()).then(|| {
            if ty.is_symlink() {
                "a symbolic link (not followed inside a rules directory)".to_string()
            } else {
                "not a regular file".to_string()
            }
        });
        out.push((path, why));
    }
    Ok(())
}

/// Reads one rule file: a regular file, not through a symlink at its last
/// component, at most [`MAX_FILE`] bytes, UTF-8.
fn read(path: &Path) -> Result<String, ReadError> {
    let mut opts = fs::OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    let f = opts
        .open(path)
        .map_err(|e| ReadError::Malformed(format!("cannot open: {e}")))?;
    let meta = f
        .metadata()
        .map_err(|e| ReadError::Malformed(format!("cannot stat: {e}")))?;
    if !meta.is_file() {
        return Err(ReadError::Skipped("not a regular file".into()));
    }
    if meta.len() > MAX_FILE {
        return Err(ReadError::Skipped(format!("larger than {MAX_FILE} bytes")));
    }
    let mut text = String::new();
    f.take(MAX_FILE)
        .read_to_string(&mut text)
        .map_err(|e| ReadError::Malformed(format!("cannot read as UTF-8: {e}")))?;
    Ok(text)
}
