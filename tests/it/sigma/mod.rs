//! Sigma rules: the SigmaHQ corpus (`../shared/sigma` beside the
//! repository, or `PROCWATCH_SIGMA_CORPUS`) loads, and as root a dozen
//! commands shaped like what specific rules describe fire exactly those
//! rules, while look-alike benign commands fire none.
//!
//! The corpus is not part of the repository (its licence forbids copying
//! the rules in). In a git worktree, `../shared/sigma` beside the main
//! checkout also counts. Without it these tests fail with a message saying where
//! they looked, unless `PROCWATCH_NO_SIGMA_CORPUS=1` says to run without
//! it: then they pass without checking anything, which that variable
//! makes explicit.

mod corpus;
mod live;
mod reload;

use std::path::PathBuf;

/// The corpus folder, or `None` when `PROCWATCH_NO_SIGMA_CORPUS=1` and it
/// is absent. Panics when it is absent otherwise.
pub fn corpus() -> Option<PathBuf> {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = match std::env::var_os("PROCWATCH_SIGMA_CORPUS") {
        Some(d) => PathBuf::from(d),
        None => repo.join("../shared/sigma"),
    };
    if dir.join("rules").is_dir() {
        return Some(dir);
    }
    // A git worktree: the corpus beside the main checkout it belongs to.
    if std::env::var_os("PROCWATCH_SIGMA_CORPUS").is_none()
        && let Some(main) = main_checkout(&repo)
        && main.join("../shared/sigma/rules").is_dir()
    {
        return Some(main.join("../shared/sigma"));
    }
    if std::env::var_os("PROCWATCH_NO_SIGMA_CORPUS").is_some_and(|v| v == "1") {
        eprintln!(
            "skipped: no Sigma corpus at {} (PROCWATCH_NO_SIGMA_CORPUS=1)",
            dir.display()
        );
        return None;
    }
    panic!(
        "the SigmaHQ corpus is not at {}: put it there, point PROCWATCH_SIGMA_CORPUS at it, \
         or set PROCWATCH_NO_SIGMA_CORPUS=1 to skip these tests",
        dir.display()
    );
}

/// The main checkout of a git worktree (whose `.git` is a file
/// `gitdir: <main>/.git/worktrees/<name>`); `None` for a plain clone.
fn main_checkout(repo: &std::path::Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(repo.join(".git")).ok()?;
    let gitdir = text.strip_prefix("gitdir:")?.trim();
    let (main, _) = gitdir.rsplit_once("/.git/worktrees/")?;
    Some(PathBuf::from(main))
}
