//! Choosing and attaching the programs of `procwatch.bpf.o`.
//!
//! The object holds variants of the same programs for older kernels; the
//! first variant the running kernel accepts is used:
//! - exec: tp_btf with a `bpf_loop` path walk (5.17+), tp_btf with an
//!   unrolled walk (5.8+), then the same two on the classic tracepoint;
//! - exit: tp_btf with `group_dead` (6.16+), then tp_btf reading
//!   `signal->live`;
//! - pre-exec: `bpf_get_current_task_btf` (5.11+), then probe reads.
//!
//! Only the exec program is required. A warning names every optional
//! program that no variant of could be attached, and what is lost.

use std::path::Path;

use aya::programs::{BtfTracePoint, Program, ProgramError, TracePoint};
use aya::{Btf, Ebpf};

use super::Attach;
use crate::source::AttachError;

/// The oldest kernel the eBPF source runs on: the BPF ring buffer (5.8),
/// with BTF (CONFIG_DEBUG_INFO_BTF) for tp_btf and CO-RE.
pub const MIN_KERNEL: (u32, u32) = (5, 8);

/// What the kernel needs, in words, for messages and the `start` event.
pub const REQUIREMENT: &str = "Linux 5.8 or later with BTF (CONFIG_DEBUG_INFO_BTF)";

/// Where an exec program attaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hook {
    /// `tp_btf/sched_process_exec`: has the linux_binprm.
    Btf,
    /// `tracepoint/sched/sched_process_exec`: no BTF arguments.
    Classic,
}

/// Steps of the walk without bpf_loop: WALK_UNROLLED in path.bpf.h.
const WALK_UNROLLED: u32 = 48;

/// The exec programs in order of preference: (name, hook, uses bpf_loop).
const EXEC_PROGRAMS: [(&str, Hook, bool); 4] = [
    ("exec_btf", Hook::Btf, true),
    ("exec_btf_unrolled", Hook::Btf, false),
    ("exec_tp", Hook::Classic, true),
    ("exec_tp_unrolled", Hook::Classic, false),
];

/// What was attached.
pub struct Attached {
    /// The exec hook, and what was rejected when it is a fallback.
    pub attach: String,
    /// What the chosen exec variant can miss beyond the preferred one.
    pub limit: Option<String>,
    /// Exec fields that stay null because their program was rejected.
    pub unavailable: Vec<&'static str>,
}

/// Attaches an exec program (see the module doc), then the optional fork,
/// exit and pre-exec programs. `legacy` skips every variant made for newer
/// kernels, to test the older ones on a new kernel.
pub fn attach_all(bpf: &mut Ebpf, mode: Attach, legacy: bool) -> Result<Attached, AttachError> {
    let btf = Btf::from_sys_fs().map_err(|e| format!("{e:#}"));
    ensure_tracefs();
    let mut rejected = Vec::new();
    let mut chosen = None;
    for (name, hook, looped) in EXEC_PROGRAMS {
        if (mode == Attach::Tracepoint && hook == Hook::Btf) || (legacy && looped) {
            continue;
        }
        let res = match hook {
            Hook::Btf => btf
                .as_ref()
                .map_err(Clone::clone)
                .and_then(|btf| attach_btf(bpf, btf, name, "sched_process_exec")),
            Hook::Classic => attach_classic(bpf, name, "sched", "sched_process_exec"),
        };
        match res {
            Ok(()) => {
                chosen = Some((hook, looped));
                break;
            }
            Err(e) => rejected.push(format!("{name}: {e}")),
        }
    }
    let Some((hook, looped)) = chosen else {
        return Err(AttachError {
            what: format!(
                "Linux {} accepted no exec program ({})",
                kernel_release(),
                rejected.join("; ")
            ),
            hint: format!("procwatch's eBPF source needs {REQUIREMENT}"),
        });
    };
    let mut attach = match hook {
        Hook::Btf => "tp_btf/sched_process_exec".to_string(),
        Hook::Classic => "tracepoint/sched/sched_process_exec".to_string(),
    };
    // The preferred hook's variants rejected: name them where the hook is
    // a fallback; a variant of the same hook is the limit below.
    let (same_hook, other_hook): (Vec<_>, Vec<_>) = rejected
        .into_iter()
        .partition(|r| hook == Hook::Btf || (hook == Hook::Classic && r.starts_with("exec_tp")));
    if !other_hook.is_empty() {
        attach = format!("{attach} (rejected: {})", other_hook.join("; "));
    }
    let limit = (!looped).then(|| {
        let why = if legacy {
            "forced by --debug-ebpf-legacy".to_string()
        } else {
            format!("bpf_loop unavailable: {}", same_hook.join("; "))
        };
        format!(
            "paths (exe, cwd) deeper than {WALK_UNROLLED} components or mount crossings lose \
             their leading ones and are flagged truncated ({why})"
        )
    });

    let mut unavailable = Vec::new();
    match &btf {
        Ok(btf) => attach_process_table(bpf, btf, legacy),
        Err(e) => eprintln!(
            "procwatch: warning: cannot attach fork_btf or exit_btf (no kernel BTF: {e}): \
             {FORK_LOSS}; {EXIT_LOSS}"
        ),
    }
    if let Err(e) = attach_pre_exec(bpf, legacy) {
        eprintln!("{}", pre_exec_warning(&e));
        unavailable.push("pre_exec");
    }
    Ok(Attached {
        attach,
        limit,
        unavailable,
    })
}

const FORK_LOSS: &str = "an exec's parent is then looked up at the exec rather than kept \
                         from the fork, so parent and ancestors are null when the parent \
                         only forked, and show the parent's newer program if it exec'd again";
const EXIT_LOSS: &str = "--exits reports nothing, and exited processes stay in the process \
                         table until its periodic /proc sweep";

/// The fork and exit programs, which keep the process table current.
fn attach_process_table(bpf: &mut Ebpf, btf: &Btf, legacy: bool) {
    if let Err(e) = attach_btf(bpf, btf, "fork_btf", "sched_process_fork") {
        eprintln!("{}", fork_warning(&e));
    }
    let mut rejected = Vec::new();
    for name in ["exit_btf", "exit_btf_live"] {
        if legacy && name == "exit_btf" {
            continue;
        }
        match attach_btf(bpf, btf, name, "sched_process_exit") {
            Ok(()) => return,
            Err(e) => rejected.push(format!("{name}: {e}")),
        }
    }
    eprintln!("{}", exit_warning(&rejected));
}

/// The warnings name the program (every variant tried) and its hook, why
/// the kernel refused it, and exactly what is lost without it.
fn fork_warning(err: &str) -> String {
    format!(
        "procwatch: warning: cannot attach fork_btf (tp_btf/sched_process_fork: {err}): \
         {FORK_LOSS}"
    )
}

fn exit_warning(rejected: &[String]) -> String {
    format!(
        "procwatch: warning: cannot attach exit_btf or exit_btf_live \
         (tp_btf/sched_process_exit: {}): {EXIT_LOSS}",
        rejected.join("; ")
    )
}

fn pre_exec_warning(err: &str) -> String {
    format!(
        "procwatch: warning: cannot attach pre_execve(at) or pre_execve(at)_probe \
         (syscalls/sys_enter_execve(at): {err}): pre_exec is null and privilege_change is \
         judged against the calling program's own exec only"
    )
}

/// Credentials as execve is entered, for privilege changes made by a
/// launcher after its own exec: both syscalls, from one variant.
fn attach_pre_exec(bpf: &mut Ebpf, legacy: bool) -> Result<(), String> {
    let mut rejected = Vec::new();
    for suffix in ["", "_probe"] {
        if legacy && suffix.is_empty() {
            continue;
        }
        let execve = format!("pre_execve{suffix}");
        let execveat = format!("pre_execveat{suffix}");
        let res = attach_classic(bpf, &execve, "syscalls", "sys_enter_execve")
            .and_then(|()| attach_classic(bpf, &execveat, "syscalls", "sys_enter_execveat"));
        match res {
            Ok(()) => return Ok(()),
            Err(e) => {
                // Half a pair would miss one of the two syscalls.
                for name in [&execve, &execveat] {
                    if let Ok(p) = program::<TracePoint>(bpf, name) {
                        let _ = p.unload();
                    }
                }
                rejected.push(format!("{execve}: {e}"));
            }
        }
    }
    Err(rejected.join("; "))
}

fn attach_classic(
    bpf: &mut Ebpf,
    name: &str,
    category: &str,
    tracepoint: &str,
) -> Result<(), String> {
    let prog: &mut TracePoint = program(bpf, name)?;
    prog.load().map_err(|e| brief(&e))?;
    prog.attach(category, tracepoint)
        .map_err(|e| format!("{e:#}"))?;
    Ok(())
}

fn attach_btf(bpf: &mut Ebpf, btf: &Btf, name: &str, tracepoint: &str) -> Result<(), String> {
    let prog: &mut BtfTracePoint = program(bpf, name)?;
    prog.load(tracepoint, btf).map_err(|e| brief(&e))?;
    prog.attach().map_err(|e| format!("{e:#}"))?;
    Ok(())
}

/// A load error without the verifier's instruction dump: the error, then
/// the log's last line that says why (the dump can be megabytes).
fn brief(err: &ProgramError) -> String {
    let text = format!("{err:#}");
    let Some((head, log)) = text.split_once("Verifier output:") else {
        return text;
    };
    let why = log
        .lines()
        .map(str::trim)
        .rfind(|l| {
            !l.is_empty()
                && !l.starts_with("processed ")
                && !l.starts_with("verification time")
                && !l.starts_with("stack depth")
                && l != &")"
        })
        .unwrap_or("");
    format!("{}: {why}", head.trim_end().trim_end_matches('.'))
}

/// The object's program `name` as the program type `T`.
fn program<'a, T>(bpf: &'a mut Ebpf, name: &str) -> Result<&'a mut T, String>
where
    &'a mut T: TryFrom<&'a mut Program, Error = ProgramError>,
{
    bpf.program_mut(name)
        .ok_or_else(|| format!("no {name} program"))?
        .try_into()
        .map_err(|e: ProgramError| e.to_string())
}

/// Classic tracepoints are found by id under tracefs; mount it if nobody has.
fn ensure_tracefs() {
    let dir = Path::new("/sys/kernel/tracing");
    if dir.join("events").exists() || !dir.exists() {
        return;
    }
    let (src, target, fstype) = (c"tracefs", c"/sys/kernel/tracing", c"tracefs");
    // SAFETY: all pointers are valid NUL-terminated strings; a failure only
    // means the attach below reports a clear error.
    unsafe {
        libc::mount(
            src.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
}

/// Checks the kernel before touching bpf(2), for clearer errors: its
/// version, then its BTF.
pub fn preflight() -> Result<(), AttachError> {
    check_kernel(
        &kernel_release(),
        Path::new("/sys/kernel/btf/vmlinux").exists(),
    )
}

/// [`preflight`] for a kernel `release` that has BTF or not.
fn check_kernel(release: &str, has_btf: bool) -> Result<(), AttachError> {
    if let Some(v) = parse_version(release)
        && v < MIN_KERNEL
    {
        return Err(AttachError {
            what: format!(
                "Linux {release} has no BPF ring buffer (added in 5.8), which the eBPF source needs"
            ),
            hint: format!("the eBPF source needs {REQUIREMENT}; use --source netlink or procfs"),
        });
    }
    if !has_btf {
        return Err(AttachError {
            what: format!(
                "Linux {release} has no BTF (/sys/kernel/btf/vmlinux is missing), which the eBPF source needs"
            ),
            hint: format!(
                "the eBPF source needs {REQUIREMENT} (most distributions since 2021); use --source netlink or procfs"
            ),
        });
    }
    Ok(())
}

/// The running kernel's release (`uname -r`), or "unknown".
pub fn kernel_release() -> String {
    // SAFETY: uname fills a zeroed struct; the release is NUL-terminated.
    unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut u) != 0 {
            return "unknown".into();
        }
        std::ffi::CStr::from_ptr(u.release.as_ptr())
            .to_string_lossy()
            .into_owned()
    }
}

/// (major, minor) of a release such as "6.1.0-27-cloud-amd64".
fn parse_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_from_distribution_releases() {
        assert_eq!(parse_version("6.1.0-27-cloud-amd64"), Some((6, 1)));
        assert_eq!(parse_version("5.10.0-33-amd64"), Some((5, 10)));
        assert_eq!(parse_version("7.3.1+deb13-amd64"), Some((7, 3)));
        assert_eq!(parse_version("4.19.0"), Some((4, 19)));
        assert_eq!(parse_version("garbage"), None);
        assert!(parse_version("5.7.19").unwrap() < MIN_KERNEL);
        assert!(parse_version("5.10.0").unwrap() >= MIN_KERNEL);
    }

    #[test]
    fn each_warning_names_its_program_and_only_its_own_loss() {
        let exit = exit_warning(&[
            "exit_btf: func 'sched_process_exit' doesn't have 2-th argument".into(),
        ]);
        assert!(exit.starts_with("procwatch: warning: cannot attach exit_btf or exit_btf_live (tp_btf/sched_process_exit: exit_btf: func"), "{exit}");
        assert!(exit.ends_with(&format!("): {EXIT_LOSS}")), "{exit}");
        assert!(!exit.contains("fork") && !exit.contains("parent"), "{exit}");
        let fork = fork_warning("EINVAL");
        assert!(
            fork.starts_with(
                "procwatch: warning: cannot attach fork_btf (tp_btf/sched_process_fork: EINVAL): "
            ),
            "{fork}"
        );
        assert!(!fork.contains("exit"), "{fork}");
        let pre = pre_exec_warning("EINVAL");
        assert!(pre.contains("pre_exec is null"), "{pre}");
        assert!(!pre.contains("exit") && !pre.contains("fork"), "{pre}");
    }

    #[test]
    fn an_old_or_btf_less_kernel_is_named_with_what_it_lacks() {
        let old = check_kernel("5.4.0-216-generic", true).unwrap_err();
        assert_eq!(
            old.what,
            "Linux 5.4.0-216-generic has no BPF ring buffer (added in 5.8), which the eBPF source needs"
        );
        assert!(
            old.hint.contains("Linux 5.8 or later with BTF"),
            "{}",
            old.hint
        );
        let no_btf = check_kernel("5.10.0-46-cloud-amd64", false).unwrap_err();
        assert_eq!(
            no_btf.what,
            "Linux 5.10.0-46-cloud-amd64 has no BTF (/sys/kernel/btf/vmlinux is missing), which the eBPF source needs"
        );
        assert!(check_kernel("5.8.0", true).is_ok());
        assert!(check_kernel("7.3.4+deb13-cloud-amd64", true).is_ok());
    }
}
