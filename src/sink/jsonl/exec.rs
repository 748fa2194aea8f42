//! The exec line: the fields `--fields` selects (see fields.rs), in the
//! documented order; each with one JSON type on every line (null when
//! unknown). Byte strings are written as strings, their exact bytes in
//! `raw` when they are not UTF-8.

use crate::event::{ExecEvent, ParentInfo, PreExec, Privileges, WindowsToken};
use crate::sink::escape::{self, join_cmdline_into};

use super::cache::{CachedParent, RenderCache, time};
use super::encode::{Obj, Raw, at_index, push_array, push_hex, push_int, push_str, push_text};
use super::fields::{Field, Fields};

/// The parent object: `{pid, exec_id, exe, start}`, and the fields
/// `--fields` adds. Its argv by default only when the parent's own exec
/// line is not in this file, so a log is joined on `exec_id`.
fn render_parent(
    p: &ParentInfo,
    with_argv: bool,
    f: &Fields,
    cache: &mut RenderCache,
) -> CachedParent {
    let mut json = String::new();
    let mut raw = Raw::default();
    let mut po = Obj::open(&mut json);
    po.num("pid", p.pid);
    po.opt_str("exec_id", p.exec_id.as_deref());
    po.opt_text("/parent", "exe", p.exe.as_deref(), &mut raw);
    match p.start {
        Some(t) => time(&mut po, "start", t, &mut cache.time),
        None => po.null("start"),
    }
    if with_argv {
        write_argv(&mut po, "/parent/argv", "argv", p.argv.as_deref(), &mut raw);
    }
    if f.always(Field::ParentUser) {
        po.opt_str("user", p.user.as_deref());
    }
    if f.always(Field::ParentEuid) {
        po.opt_num("euid", p.euid);
    }
    po.close();
    CachedParent {
        exec_id: p.exec_id.clone().unwrap_or_default(),
        pid: p.pid,
        start: p.start,
        with_argv,
        json,
        raw,
    }
}

/// The fields enrichment adds: parent, ancestry, privilege change,
/// hijackable findings, the exe's hash and identity.
fn write_insight(o: &mut Obj, e: &ExecEvent, f: &Fields, cache: &mut RenderCache) {
    if f.always(Field::Parent) {
        match &e.parent {
            Some(p) => {
                let in_log = p
                    .exec_id
                    .as_deref()
                    .is_some_and(|id| cache.logged.contains(id));
                let with_argv = f.show(Field::ParentArgv, !in_log);
                let hit = matches!((&p.exec_id, &cache.parent),
                    (Some(id), Some(c)) if *id == c.exec_id
                        && c.pid == p.pid
                        && c.start == p.start
                        && c.with_argv == with_argv);
                if !hit {
                    let rendered = render_parent(p, with_argv, f, cache);
                    cache.parent = Some(rendered);
                }
                let c = cache.parent.as_ref().expect("rendered above");
                o.raw("parent", &c.json);
                cache.raw.extend(&c.raw);
                if p.exec_id.is_none() {
                    // Nothing to key the memo on.
                    cache.parent = None;
                }
            }
            None => o.null("parent"),
        }
    }
    if f.always(Field::Ancestors) {
        let raw = &mut cache.raw;
        let mut i = 0;
        push_array(o.key("ancestors"), &e.ancestors, |buf, a| {
            match &a.exe {
                Some(exe) => push_text(buf, exe, raw, at_index("/ancestors", i)),
                None => buf.push_str("null"),
            }
            i += 1;
        });
    }
    if f.always(Field::ExeSha256) {
        o.opt_str("exe_sha256", e.exe_sha256.as_deref());
    }
    if f.always(Field::ExeInode) {
        match e.exe_dev_ino {
            Some((dev, ino)) => {
                let mut io = Obj::open(o.key("exe_inode"));
                let buf = io.key("dev");
                buf.push('"');
                push_dev(buf, dev);
                buf.push('"');
                io.num("ino", ino);
                io.close();
            }
            None => o.null("exe_inode"),
        }
    }
    // Before the exec as after it: what `pre_exec` would say is the line's
    // own uid, euid and effective capabilities.
    let pre_differs = match (e.pre_exec, &e.privileges) {
        (
            Some(pre),
            Some(Privileges::Linux {
                creds: c, caps: k, ..
            }),
        ) => pre.uid != c.uid || pre.euid != c.euid || pre.caps_effective != k.effective,
        _ => true,
    };
    if f.show(Field::PreExec, pre_differs) {
        write_pre_exec(o, e.pre_exec);
    }
    if f.show(
        Field::PrivilegeChange,
        e.privilege_change.is_some() || unknown(e, "privilege_change"),
    ) {
        match &e.privilege_change {
            Some(c) => {
                let mut co = Obj::open(o.key("privilege_change"));
                co.str("cause", c.cause.as_str());
                co.num("from_euid", c.from_euid);
                co.num("to_euid", c.to_euid);
                co.raw("gained_caps", cache.names(c.gained_caps));
                co.opt_text(
                    "/privilege_change",
                    "launcher",
                    c.launcher.as_deref(),
                    &mut cache.raw,
                );
                co.close();
            }
            None => o.null("privilege_change"),
        }
    }
    if f.show(
        Field::Hijackable,
        !e.hijackable.is_empty() || unknown(e, "hijackable"),
    ) {
        if e.hijackable.is_empty() {
            o.null("hijackable");
        } else {
            let raw = &mut cache.raw;
            let mut i = 0;
            push_array(o.key("hijackable"), &e.hijackable, |buf, h| {
                let mut ho = Obj::open(buf);
                push_text(ho.key("path"), &h.path, raw, |p| {
                    at_index("/hijackable", i)(p);
                    p.push_str("/path");
                });
                ho.str("role", h.role.as_str());
                push_text(ho.key("writable"), &h.writable, raw, |p| {
                    at_index("/hijackable", i)(p);
                    p.push_str("/writable");
                });
                push_array(ho.key("writers"), &h.writers, |w, who| push_str(w, who));
                ho.close();
                i += 1;
            });
        }
    }
}

/// `pre_exec`: the uid, euid and effective capabilities before the exec,
/// or null when unknown. Shared with the ECS sink, which nests it alike.
pub(crate) fn write_pre_exec(o: &mut Obj, pre: Option<PreExec>) {
    match pre {
        Some(pre) => {
            let mut po = Obj::open(o.key("pre_exec"));
            po.num("uid", pre.uid);
            po.num("euid", pre.euid);
            // A hex mask, like caps_raw: usually the same set as after the
            // exec, and its names again would add ~800 bytes a line.
            let buf = po.key("caps_effective");
            buf.push('"');
            push_hex(buf, pre.caps_effective, 16);
            buf.push('"');
            po.close();
        }
        None => o.null("pre_exec"),
    }
}

/// Whether `field` (its JSON name) is listed in `incomplete`: unknown.
fn unknown(e: &ExecEvent, field: &str) -> bool {
    e.incomplete.iter().any(|i| i.field == field)
}

/// Where the exec ran: namespaces, pid and user namespace, cgroup and the
/// exe's mount. Each null when unknown. The namespace fields are left out
/// by default when the exec is in all of procwatch's own namespaces.
fn write_ns(o: &mut Obj, e: &ExecEvent, f: &Fields, cache: &mut RenderCache) {
    let (ns, raw) = (&e.ns, &mut cache.raw);
    let other = ns.namespaces.is_none() || ns.namespaces != cache.own_ns;
    if f.show(Field::Namespaces, other) {
        match &ns.namespaces {
            Some(n) => {
                let mut no = Obj::open(o.key("namespaces"));
                no.num("pid", n.pid);
                no.num("pid_for_children", n.pid_for_children);
                no.num("mnt", n.mnt);
                no.num("net", n.net);
                no.num("user", n.user);
                no.num("uts", n.uts);
                no.num("ipc", n.ipc);
                no.num("cgroup", n.cgroup);
                no.close();
            }
            None => o.null("namespaces"),
        }
    }
    if f.show(Field::NsPid, other) {
        o.opt_num("ns_pid", ns.ns_pid);
    }
    if f.show(Field::PidnsLevel, other) {
        o.opt_num("pidns_level", ns.pidns_level);
    }
    if f.show(Field::InHostUserns, other) {
        o.opt_bool("in_host_userns", ns.user_ns.map(|u| u.is_host()));
    }
    if f.show(Field::UsernsOwnerUid, other) {
        // The owner only means something for a user namespace other than
        // the host's (the initial one has no owner).
        o.opt_num(
            "userns_owner_uid",
            ns.user_ns.filter(|u| !u.is_host()).map(|u| u.owner_uid),
        );
    }
    if f.show(Field::UsernsLevel, other) {
        o.opt_num("userns_level", ns.user_ns.map(|u| u.level));
    }
    if f.always(Field::Cgroup) {
        if ns.cgroup_id.is_some() || ns.cgroup_path.is_some() {
            let mut co = Obj::open(o.key("cgroup"));
            co.opt_num("id", ns.cgroup_id);
            co.opt_text("/cgroup", "path", ns.cgroup_path.as_deref(), raw);
            co.close();
        } else {
            o.null("cgroup");
        }
    }
    if f.show(
        Field::Container,
        ns.container.is_some() || unknown(e, "container"),
    ) {
        match &ns.container {
            Some(c) => {
                let mut co = Obj::open(o.key("container"));
                co.str("id", &c.id);
                co.str("runtime", c.runtime);
                co.opt_num("delegated_uid", c.delegated_uid);
                co.bool("nested", c.nested);
                co.close();
            }
            None => o.null("container"),
        }
    }
    if f.always(Field::ExeMntId) {
        o.opt_num("exe_mnt_id", ns.exe_mnt_id);
    }
    if f.show(Field::ExeOtherMntNs, other) {
        o.opt_bool("exe_other_mnt_ns", ns.exe_other_mnt_ns);
    }
}

/// `major:minor` of a Linux `dev_t` in glibc's encoding (what `stat(2)`
/// reports); spelled out because libc has no `major` on Windows builds.
fn push_dev(out: &mut String, dev: u64) {
    let major = ((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0x0fff);
    let minor = ((dev >> 12) & 0xffff_ff00) | (dev & 0x00ff);
    push_int(out, major);
    out.push(':');
    push_int(out, minor);
}

/// Writes a byte-string array (argv) of strings, or null; `ptr` is its
/// JSON Pointer (`/argv`), for `raw`.
fn write_argv(
    o: &mut Obj,
    ptr: &'static str,
    key: &'static str,
    argv: Option<&[Vec<u8>]>,
    raw: &mut Raw,
) {
    match argv {
        Some(argv) => {
            let mut i = 0;
            push_array(o.key(key), argv, |buf, a| {
                push_text(buf, a, raw, at_index(ptr, i));
                i += 1;
            });
        }
        None => o.null(key),
    }
}

/// The Linux privilege keys a line carries when the source has no Linux
/// credentials, each null (the set-id ones only when forced on).
const LINUX_PRIVILEGE_KEYS: [(Field, &str); 15] = [
    (Field::Uid, "uid"),
    (Field::Euid, "euid"),
    (Field::Suid, "suid"),
    (Field::Fsuid, "fsuid"),
    (Field::Gid, "gid"),
    (Field::Egid, "egid"),
    (Field::Sgid, "sgid"),
    (Field::Fsgid, "fsgid"),
    (Field::LoginUid, "login_uid"),
    (Field::SessionId, "session_id"),
    (Field::Caps, "caps"),
    (Field::CapsRaw, "caps_raw"),
    (Field::Secureexec, "secureexec"),
    (Field::File, "file"),
    (Field::PrivilegeRaised, "privilege_raised"),
];

/// The `token` object of a Windows exec: every privilege with its four
/// states and raw attributes, integrity, elevation, session and SID. The
/// owner (`DOMAIN\user`) is the top-level `user`. Parts that could not be
/// read are null and listed in `incomplete` as `token.<name>`.
fn write_token(mut t: Obj<'_>, token: &WindowsToken) {
    match &token.privileges {
        Some(list) => push_array(t.key("privileges"), list, |buf, p| {
            let mut po = Obj::open(buf);
            po.str("name", &p.name);
            po.bool("enabled", p.enabled());
            po.bool("enabled_by_default", p.enabled_by_default());
            po.bool("removed", p.removed());
            po.bool("used_for_access", p.used_for_access());
            po.str("attributes", &format!("0x{:08x}", p.attributes));
            po.close();
        }),
        None => t.null("privileges"),
    }
    t.opt_str("integrity", token.integrity.map(|i| i.name()).as_deref());
    t.opt_num("integrity_rid", token.integrity.map(|i| i.rid()));
    t.opt_str("elevation_type", token.elevation.map(|e| e.as_str()));
    t.opt_num("session_id", token.session_id);
    t.opt_str("user_sid", token.user_sid.as_deref());
    t.close();
}

/// The Linux credentials and capabilities: the set-id ids only when they
/// differ from the effective ones (or `--fields` forces them).
fn write_linux_privileges(o: &mut Obj, e: &ExecEvent, f: &Fields, cache: &mut RenderCache) {
    let Some(Privileges::Linux {
        creds,
        caps,
        secureexec,
        file,
        raised,
    }) = &e.privileges
    else {
        // No Linux credentials (a Windows token, or none could be read):
        // every Linux privilege field that is written is null.
        for (field, key) in LINUX_PRIVILEGE_KEYS {
            if f.always(field) {
                o.null(key);
            }
        }
        return;
    };
    let ids = [
        (Field::Uid, "uid", creds.uid, true),
        (Field::Euid, "euid", creds.euid, true),
        (Field::Suid, "suid", creds.suid, creds.suid != creds.euid),
        (
            Field::Fsuid,
            "fsuid",
            creds.fsuid,
            creds.fsuid != creds.euid,
        ),
        (Field::Gid, "gid", creds.gid, true),
        (Field::Egid, "egid", creds.egid, true),
        (Field::Sgid, "sgid", creds.sgid, creds.sgid != creds.egid),
        (
            Field::Fsgid,
            "fsgid",
            creds.fsgid,
            creds.fsgid != creds.egid,
        ),
    ];
    for (field, key, v, differs) in ids {
        if f.show(field, differs) {
            o.num(key, v);
        }
    }
    if f.show(
        Field::LoginUid,
        creds.login_uid.is_some() || unknown(e, "login_uid"),
    ) {
        o.opt_num("login_uid", creds.login_uid);
    }
    if f.show(
        Field::SessionId,
        creds.session_id.is_some() || unknown(e, "session_id"),
    ) {
        o.opt_num("session_id", creds.session_id);
    }
    let sets = [
        ("effective", caps.effective),
        ("permitted", caps.permitted),
        ("inheritable", caps.inheritable),
        ("ambient", caps.ambient),
    ];
    if f.always(Field::Caps) {
        let mut c = Obj::open(o.key("caps"));
        for (name, mask) in sets {
            c.raw(name, cache.names(mask));
        }
        c.close();
    }
    if f.always(Field::CapsRaw) {
        // Raw masks as fixed-width hex, like /proc/<pid>/status.
        let mut c = Obj::open(o.key("caps_raw"));
        for (name, mask) in sets {
            let buf = c.key(name);
            buf.push('"');
            push_hex(buf, mask, 16);
            buf.push('"');
        }
        c.close();
    }
    if f.always(Field::Secureexec) {
        o.opt_bool("secureexec", *secureexec);
    }
    if f.always(Field::File) {
        match file {
            // Permission and set-id bits only (the file type is always
            // "regular" for an exec), as a zero-padded octal string like
            // `stat -c %a` with a leading 0.
            Some(fi) => {
                let mut fo = Obj::open(o.key("file"));
                let buf = fo.key("mode");
                let m = fi.mode & 0o7777;
                buf.push_str("\"0");
                for shift in [9, 6, 3, 0] {
                    buf.push(char::from(b'0' + ((m >> shift) & 7) as u8));
                }
                buf.push('"');
                fo.num("uid", fi.uid);
                fo.num("gid", fi.gid);
                fo.close();
            }
            None => o.null("file"),
        }
    }
    if f.show(
        Field::PrivilegeRaised,
        raised.is_some() || unknown(e, "privilege_raised"),
    ) {
        o.opt_str("privilege_raised", raised.map(|r| r.as_str()));
    }
}

/// Writes one exec line (without the newline) into `out`, and records its
/// exec_id as in the log.
pub(super) fn write_exec(
    out: &mut String,
    e: &ExecEvent,
    host: &str,
    f: &Fields,
    cache: &mut RenderCache,
) {
    cache.raw.clear();
    let mut o = Obj::open(out);
    o.str("event", "exec");
    time(&mut o, "time", e.time, &mut cache.time);
    o.str("host", host);
    o.num("pid", e.pid);
    if f.show(Field::Tid, e.tid != Some(e.pid)) {
        o.opt_num("tid", e.tid);
    }
    if f.show(Field::ExecTid, e.exec_tid != Some(e.pid)) {
        o.opt_num("exec_tid", e.exec_tid);
    }
    if f.always(Field::Ppid) {
        o.opt_num("ppid", e.ppid);
    }
    o.str("exec_id", &e.exec_id);
    if f.always(Field::ProcessStart) {
        match e.process_start {
            Some(t) => time(&mut o, "process_start", t, &mut cache.time),
            None => o.null("process_start"),
        }
    }
    let raw = &mut cache.raw;
    if f.always(Field::Exe) {
        o.opt_text("", "exe", e.exe.as_deref(), raw);
    }
    if f.show(Field::ExeTruncated, e.exe_truncated) {
        o.bool("exe_truncated", e.exe_truncated);
    }
    if f.show(Field::Filename, e.filename != e.exe) {
        o.opt_text("", "filename", e.filename.as_deref(), raw);
    }
    if f.show(
        Field::Interpreter,
        e.interpreter.is_some() || unknown(e, "interpreter"),
    ) {
        o.opt_text("", "interpreter", e.interpreter.as_deref(), raw);
    }
    if f.always(Field::Argv) {
        write_argv(&mut o, "/argv", "argv", e.argv.as_deref(), raw);
    }
    if f.show(Field::CommandLine, e.command_line.is_some()) {
        o.opt_text("", "command_line", e.command_line.as_deref(), raw);
    }
    if f.always(Field::Cmdline) {
        match (&e.argv, &e.command_line) {
            (Some(argv), _) => {
                cache.cmdline.clear();
                join_cmdline_into(&mut cache.cmdline, argv);
                o.str("cmdline", &cache.cmdline);
            }
            (None, Some(line)) => o.str("cmdline", &escape::display_bytes(line)),
            (None, None) => o.null("cmdline"),
        }
    }
    let raw = &mut cache.raw;
    if f.show(Field::ArgvTruncated, e.argv_truncated) {
        o.bool("argv_truncated", e.argv_truncated);
    }
    if f.always(Field::ArgvSize) {
        o.opt_num("argv_size", e.argv_size);
    }
    if f.always(Field::Cwd) {
        o.opt_text("", "cwd", e.cwd.as_deref(), raw);
    }
    if f.always(Field::Comm) {
        o.opt_text("", "comm", e.comm.as_deref(), raw);
    }
    if f.always(Field::User) {
        o.opt_str("user", e.user.as_deref());
    }
    if f.always(Field::Group) {
        o.opt_str("group", e.group.as_deref());
    }
    if f.show(
        Field::LoginUser,
        e.login_user.is_some() || unknown(e, "login_user"),
    ) {
        o.opt_str("login_user", e.login_user.as_deref());
    }
    if f.always(Field::Incomplete) {
        push_array(o.key("incomplete"), &e.incomplete, |buf, inc| {
            push_str(buf, inc.field)
        });
        let mut reasons = Obj::open(o.key("incomplete_reasons"));
        for inc in &e.incomplete {
            reasons.str(inc.field, &inc.reason);
        }
        reasons.close();
    }
    write_insight(&mut o, e, f, cache);
    write_ns(&mut o, e, f, cache);
    write_linux_privileges(&mut o, e, f, cache);
    match &e.privileges {
        Some(Privileges::Windows(token)) if f.show(Field::Token, true) => {
            write_token(Obj::open(o.key("token")), token)
        }
        _ if f.always(Field::Token) => o.null("token"),
        _ => {}
    }
    if f.always(Field::Detections) {
        push_array(o.key("detections"), &e.detections, |buf, d| {
            let mut d_o = Obj::open(buf);
            d_o.opt_str("id", d.id.as_deref());
            d_o.str("title", &d.title);
            d_o.opt_str("level", d.level.map(|l| l.as_str()));
            push_array(d_o.key("tags"), &d.tags, |b, t| push_str(b, t));
            d_o.opt_str("status", d.status.as_deref());
            d_o.close();
        });
    }
    cache.raw.write(&mut o);
    o.close();
    cache.logged.insert(&e.exec_id);
}

#[cfg(all(test, target_os = "linux"))]
mod dev_tests {
    #[test]
    fn dev_name_agrees_with_libc() {
        for (maj, min) in [
            (0, 0),
            (8, 1),
            (259, 3),
            (0xfff, 0xff),
            (0x0001_2345, 0x00ab_cdef),
        ] {
            let dev = libc::makedev(maj, min);
            assert_eq!(
                {
                    let mut s = String::new();
                    super::push_dev(&mut s, dev);
                    s
                },
                format!("{maj}:{min}")
            );
        }
    }
}
