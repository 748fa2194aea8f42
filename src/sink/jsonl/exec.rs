//! The exec line: every field of an exec, in the documented order, the
//! same keys on every line (null when unknown).

use crate::event::{ExecEvent, NsInfo, Privileges, WindowsToken};
use crate::sink::escape::{self, join_cmdline, join_cmdline_into};

use super::cache::{RenderCache, time};
use super::encode::{Obj, push_array, push_bytes, push_hex, push_int, push_str};

/// The fields enrichment adds: parent, ancestry, privilege change,
/// hijackable findings, the exe's hash and identity.
fn write_insight(o: &mut Obj, e: &ExecEvent, cache: &mut RenderCache) {
    match &e.parent {
        Some(p) => {
            let memo = &mut cache.parent;
            match (&p.exec_id, memo.as_ref()) {
                (Some(id), Some((key, json))) if id == key => o.raw("parent", json),
                _ => {
                    let mut json = String::new();
                    let mut po = Obj::open(&mut json);
                    po.num("pid", p.pid);
                    po.opt_str("exec_id", p.exec_id.as_deref());
                    po.opt_bytes("exe", p.exe.as_deref());
                    write_argv(&mut po, "argv", p.argv.as_deref());
                    po.opt_str("cmdline", p.argv.as_deref().map(join_cmdline).as_deref());
                    po.opt_str("user", p.user.as_deref());
                    po.opt_num("euid", p.euid);
                    po.close();
                    o.raw("parent", &json);
                    *memo = p.exec_id.clone().map(|id| (id, json));
                }
            }
        }
        None => o.null("parent"),
    }
    push_array(o.key("ancestors"), &e.ancestors, |buf, a| match &a.exe {
        Some(exe) => push_bytes(buf, exe),
        None => buf.push_str("null"),
    });
    o.opt_str("exe_sha256", e.exe_sha256.as_deref());
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
    match e.pre_exec {
        Some(pre) => {
            let mut po = Obj::open(o.key("pre_exec"));
            po.num("uid", pre.uid);
            po.num("euid", pre.euid);
            // A hex mask, like caps_raw: usually the same set as after the
            // exec, and 40 names again would add ~800 bytes to every line.
            let buf = po.key("caps_effective");
            buf.push('"');
            push_hex(buf, pre.caps_effective, 16);
            buf.push('"');
            po.close();
        }
        None => o.null("pre_exec"),
    }
    match &e.privilege_change {
        Some(c) => {
            let mut co = Obj::open(o.key("privilege_change"));
            co.str("cause", c.cause.as_str());
            co.num("from_euid", c.from_euid);
            co.num("to_euid", c.to_euid);
            co.raw("gained_caps", cache.names(c.gained_caps));
            co.opt_bytes("launcher", c.launcher.as_deref());
            co.close();
        }
        None => o.null("privilege_change"),
    }
    if e.hijackable.is_empty() {
        o.null("hijackable");
    } else {
        push_array(o.key("hijackable"), &e.hijackable, |buf, h| {
            let mut ho = Obj::open(buf);
            ho.bytes("path", &h.path);
            ho.str("role", h.role.as_str());
            ho.bytes("writable", &h.writable);
            push_array(ho.key("writers"), &h.writers, |w, who| push_str(w, who));
            ho.close();
        });
    }
}

/// Where the exec ran: namespaces, pid and user namespace, cgroup and the
/// exe's mount. Always the same keys; each null when unknown.
fn write_ns(o: &mut Obj, ns: &NsInfo) {
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
    o.opt_num("ns_pid", ns.ns_pid);
    o.opt_num("pidns_level", ns.pidns_level);
    o.opt_bool("in_host_userns", ns.user_ns.map(|u| u.is_host()));
    // The owner only means something for a user namespace other than the
    // host's (the initial one has no owner).
    o.opt_num(
        "userns_owner_uid",
        ns.user_ns.filter(|u| !u.is_host()).map(|u| u.owner_uid),
    );
    o.opt_num("userns_level", ns.user_ns.map(|u| u.level));
    if ns.cgroup_id.is_some() || ns.cgroup_path.is_some() {
        let mut co = Obj::open(o.key("cgroup"));
        co.opt_num("id", ns.cgroup_id);
        co.opt_bytes("path", ns.cgroup_path.as_deref());
        co.close();
    } else {
        o.null("cgroup");
    }
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
    o.opt_num("exe_mnt_id", ns.exe_mnt_id);
    o.opt_bool("exe_other_mnt_ns", ns.exe_other_mnt_ns);
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

/// Writes a byte-string array (argv), or null.
fn write_argv(o: &mut Obj, key: &'static str, argv: Option<&[Vec<u8>]>) {
    match argv {
        Some(argv) => push_array(o.key(key), argv, |buf, a| push_bytes(buf, a)),
        None => o.null(key),
    }
}

/// The Linux privilege keys, written as null when there are none.
const LINUX_PRIVILEGE_KEYS: [&str; 15] = [
    "uid",
    "euid",
    "suid",
    "fsuid",
    "gid",
    "egid",
    "sgid",
    "fsgid",
    "login_uid",
    "session_id",
    "caps",
    "caps_raw",
    "secureexec",
    "file",
    "privilege_raised",
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

/// Writes one exec line (without the newline) into `out`.
pub(super) fn write_exec(out: &mut String, e: &ExecEvent, cache: &mut RenderCache) {
    let mut o = Obj::open(out);
    o.str("event", "exec");
    time(&mut o, "time", e.time, &mut cache.time);
    o.num("pid", e.pid);
    o.opt_num("tid", e.tid);
    o.opt_num("exec_tid", e.exec_tid);
    o.opt_num("ppid", e.ppid);
    o.str("exec_id", &e.exec_id);
    match e.process_start {
        Some(t) => time(&mut o, "process_start", t, &mut cache.time),
        None => o.null("process_start"),
    }
    o.opt_bytes("exe", e.exe.as_deref());
    o.bool("exe_truncated", e.exe_truncated);
    o.opt_bytes("filename", e.filename.as_deref());
    o.opt_bytes("interpreter", e.interpreter.as_deref());
    write_argv(&mut o, "argv", e.argv.as_deref());
    o.opt_bytes("command_line", e.command_line.as_deref());
    match (&e.argv, &e.command_line) {
        (Some(argv), _) => {
            cache.cmdline.clear();
            join_cmdline_into(&mut cache.cmdline, argv);
            o.str("cmdline", &cache.cmdline);
        }
        (None, Some(line)) => o.str("cmdline", &escape::display_bytes(line)),
        (None, None) => o.null("cmdline"),
    }
    o.bool("argv_truncated", e.argv_truncated);
    o.opt_num("argv_size", e.argv_size);
    o.opt_bytes("cwd", e.cwd.as_deref());
    o.opt_bytes("comm", e.comm.as_deref());
    o.opt_str("user", e.user.as_deref());
    o.opt_str("group", e.group.as_deref());
    o.opt_str("login_user", e.login_user.as_deref());
    push_array(o.key("incomplete"), &e.incomplete, |buf, inc| {
        push_str(buf, inc.field)
    });
    let mut reasons = Obj::open(o.key("incomplete_reasons"));
    for inc in &e.incomplete {
        reasons.str(inc.field, &inc.reason);
    }
    reasons.close();
    write_insight(&mut o, e, cache);
    write_ns(&mut o, &e.ns);
    match &e.privileges {
        Some(Privileges::Linux {
            creds,
            caps,
            secureexec,
            file,
            raised,
        }) => {
            o.num("uid", creds.uid);
            o.num("euid", creds.euid);
            o.num("suid", creds.suid);
            o.num("fsuid", creds.fsuid);
            o.num("gid", creds.gid);
            o.num("egid", creds.egid);
            o.num("sgid", creds.sgid);
            o.num("fsgid", creds.fsgid);
            o.opt_num("login_uid", creds.login_uid);
            o.opt_num("session_id", creds.session_id);
            let sets = [
                ("effective", caps.effective),
                ("permitted", caps.permitted),
                ("inheritable", caps.inheritable),
                ("ambient", caps.ambient),
            ];
            let mut c = Obj::open(o.key("caps"));
            for (name, mask) in sets {
                c.raw(name, cache.names(mask));
            }
            c.close();
            // Raw masks as fixed-width hex, like /proc/<pid>/status.
            let mut c = Obj::open(o.key("caps_raw"));
            for (name, mask) in sets {
                let buf = c.key(name);
                buf.push('"');
                push_hex(buf, mask, 16);
                buf.push('"');
            }
            c.close();
            o.opt_bool("secureexec", *secureexec);
            match file {
                // Permission and set-id bits only (the file type is always
                // "regular" for an exec), as a zero-padded octal string like
                // `stat -c %a` with a leading 0.
                Some(f) => {
                    let mut fo = Obj::open(o.key("file"));
                    let buf = fo.key("mode");
                    let m = f.mode & 0o7777;
                    buf.push_str("\"0");
                    for shift in [9, 6, 3, 0] {
                        buf.push(char::from(b'0' + ((m >> shift) & 7) as u8));
                    }
                    buf.push('"');
                    fo.num("uid", f.uid);
                    fo.num("gid", f.gid);
                    fo.close();
                }
                None => o.null("file"),
            }
            o.opt_str("privilege_raised", raised.map(|r| r.as_str()));
        }
        // Windows: the Linux fields are null, the token has its own object.
        // The source could not read them (or Windows, whose token has its
        // own object below): every Linux privilege field is null.
        Some(Privileges::Windows(_)) | None => {
            for key in LINUX_PRIVILEGE_KEYS {
                o.null(key);
            }
        }
    }
    // Every exec line has the same keys: `token` is null off Windows.
    match &e.privileges {
        Some(Privileges::Windows(token)) => write_token(Obj::open(o.key("token")), token),
        _ => o.null("token"),
    }
    push_array(o.key("detections"), &e.detections, |buf, d| {
        let mut d_o = Obj::open(buf);
        d_o.opt_str("id", d.id.as_deref());
        d_o.str("title", &d.title);
        d_o.opt_str("level", d.level.map(|l| l.as_str()));
        push_array(d_o.key("tags"), &d.tags, |b, t| push_str(b, t));
        d_o.opt_str("status", d.status.as_deref());
        d_o.close();
    });
    o.close();
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
