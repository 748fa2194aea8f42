//! The exec document: an ECS process `start` event.
//!
//! ECS fields carry what ECS has a field for; the rest, and the exact
//! bytes of strings that are not UTF-8, go under `procwatch`. An unknown
//! value is null, and its field is named in `procwatch.incomplete`.

use std::borrow::Cow;

use crate::event::{ExecEvent, Privileges, WindowsToken};
use crate::linux::caps::cap_names;
use crate::linux::id_hash::IdMap;
use crate::sink::describe::cmdline_of;
use crate::sink::jsonl::encode::{Obj, push_array, push_hex, push_str};
use crate::sink::jsonl::exec::write_pre_exec;

use super::{Host, head, raw_obj, time};

/// A byte string as the lossy UTF-8 of an ECS keyword field.
fn lossy(b: Option<&[u8]>) -> Option<Cow<'_, str>> {
    b.map(String::from_utf8_lossy)
}

/// The last path component: `process.name` (ECS: the program name).
/// `windows`: the path is a Windows one, where `\\` separates too.
fn base_name(path: &[u8], windows: bool) -> &[u8] {
    let sep = |c: &u8| *c == b'/' || (windows && *c == b'\\');
    match path.iter().rposition(sep) {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

/// Capability masks rendered as arrays of their names (`CAP_SYS_ADMIN`),
/// as Elastic Defend and Auditbeat fill `process.thread.capabilities.*`.
/// Kept by mask: root's full set is on nearly every exec, and rendering
/// its 40 names twice a line was most of the cost of a document.
#[derive(Default)]
pub(super) struct CapNames(IdMap<u64, String>);

impl CapNames {
    const MAX: usize = 256;

    fn push(&mut self, out: &mut String, mask: u64) {
        if self.0.len() >= Self::MAX && !self.0.contains_key(&mask) {
            self.0.clear();
        }
        out.push_str(self.0.entry(mask).or_insert_with(|| {
            let mut json = String::new();
            push_array(&mut json, cap_names(mask), |buf, n| push_str(buf, &n));
            json
        }));
    }
}

/// An id as ECS types it: a keyword string.
fn id_obj(o: &mut Obj, key: &'static str, id: Option<u32>, name: Option<&str>) {
    let mut u = Obj::open(o.key(key));
    u.opt_str("id", id.map(|i| i.to_string()).as_deref());
    if let Some(n) = name {
        u.str("name", n);
    }
    u.close();
}

/// Writes one exec document (without the newline) into `out`.
pub(super) fn write_exec(out: &mut String, e: &ExecEvent, host: &Host, names: &mut CapNames) {
    let mut o = Obj::open(out);
    head(&mut o, e.time, "event", Some("start"), "exec", host);
    let creds = e.linux_creds();
    let exe = e.exe.as_deref();
    let windows = matches!(e.privileges, Some(Privileges::Windows(_)));
    let name = exe.map(|x| base_name(x, windows)).or(e.comm.as_deref());
    let mut p = Obj::open(o.key("process"));
    p.num("pid", e.pid);
    p.str("entity_id", &e.exec_id);
    p.opt_str("executable", lossy(exe).as_deref());
    p.opt_str("name", lossy(name).as_deref());
    match &e.argv {
        Some(argv) => {
            push_array(p.key("args"), argv, |buf, a| {
                push_str(buf, &String::from_utf8_lossy(a))
            });
            p.num("args_count", argv.len());
        }
        None => {
            p.null("args");
            p.null("args_count");
        }
    }
    p.opt_str("command_line", cmdline_of(e).as_deref());
    p.opt_str("working_directory", lossy(e.cwd.as_deref()).as_deref());
    match e.process_start {
        Some(t) => time(&mut p, "start", t),
        None => p.null("start"),
    }
    let mut pp = Obj::open(p.key("parent"));
    pp.opt_num("pid", e.ppid);
    let parent = e.parent.as_ref();
    pp.opt_str("entity_id", parent.and_then(|p| p.exec_id.as_deref()));
    pp.opt_str(
        "executable",
        lossy(parent.and_then(|p| p.exe.as_deref())).as_deref(),
    );
    pp.close();
    let user = e.user.as_deref();
    match &e.privileges {
        Some(Privileges::Windows(t)) => {
            id_obj(&mut p, "user", None, user);
            let mut ext = Obj::open(p.key("Ext"));
            write_token(&mut ext, t);
            ext.close();
        }
        _ => {
            id_obj(&mut p, "user", creds.map(|c| c.euid), user);
            id_obj(&mut p, "real_user", creds.map(|c| c.uid), None);
            id_obj(&mut p, "saved_user", creds.map(|c| c.suid), None);
            id_obj(&mut p, "group", creds.map(|c| c.egid), e.group.as_deref());
            id_obj(&mut p, "real_group", creds.map(|c| c.gid), None);
            id_obj(&mut p, "saved_group", creds.map(|c| c.sgid), None);
            let mut th = Obj::open(p.key("thread"));
            let mut c = Obj::open(th.key("capabilities"));
            match e.linux_caps() {
                Some(sets) => {
                    names.push(c.key("effective"), sets.effective);
                    names.push(c.key("permitted"), sets.permitted);
                }
                None => {
                    c.null("effective");
                    c.null("permitted");
                }
            }
            c.close();
            th.close();
        }
    }
    let mut h = Obj::open(p.key("hash"));
    h.opt_str("sha256", e.exe_sha256.as_deref());
    h.close();
    p.close();
    // The top-level user: who the event is about (the effective user).
    let mut u = Obj::open(o.key("user"));
    match &e.privileges {
        Some(Privileges::Windows(t)) => u.opt_str("id", t.user_sid.as_deref()),
        _ => u.opt_str("id", creds.map(|c| c.euid.to_string()).as_deref()),
    }
    u.opt_str("name", user);
    u.close();
    if let Some(c) = &e.ns.container {
        let mut co = Obj::open(o.key("container"));
        co.str("id", &c.id);
        co.str("runtime", c.runtime);
        co.close();
    }
    write_procwatch(&mut o, e, names);
    o.close();
}

/// `process.Ext.token`, as Elastic Defend writes a Windows token.
fn write_token(ext: &mut Obj, t: &WindowsToken) {
    let mut to = Obj::open(ext.key("token"));
    to.opt_str(
        "integrity_level_name",
        t.integrity.map(|i| i.name()).as_deref(),
    );
    to.opt_str("elevation_type", t.elevation.map(|e| e.as_str()));
    to.opt_str("sid", t.user_sid.as_deref());
    match &t.privileges {
        Some(list) => push_array(to.key("privileges"), list, |buf, p| {
            let mut po = Obj::open(buf);
            po.str("name", &p.name);
            po.bool("enabled", p.enabled());
            po.close();
        }),
        None => to.null("privileges"),
    }
    to.close();
}

/// `procwatch.*`: procwatch's findings and the fields ECS has no place for.
fn write_procwatch(o: &mut Obj, e: &ExecEvent, names: &mut CapNames) {
    let mut w = Obj::open(o.key("procwatch"));
    w.opt_num("tid", e.tid);
    w.opt_num("exec_tid", e.exec_tid);
    w.opt_str("filename", lossy(e.filename.as_deref()).as_deref());
    w.opt_str("interpreter", lossy(e.interpreter.as_deref()).as_deref());
    w.opt_str("comm", lossy(e.comm.as_deref()).as_deref());
    w.bool("exe_truncated", e.exe_truncated);
    w.bool("argv_truncated", e.argv_truncated);
    w.opt_num("argv_size", e.argv_size);
    w.opt_str("login_user", e.login_user.as_deref());
    match &e.privileges {
        Some(Privileges::Linux {
            creds,
            caps,
            secureexec,
            raised,
            ..
        }) => {
            w.opt_num("login_uid", creds.login_uid);
            w.opt_num("session_id", creds.session_id);
            w.num("fsuid", creds.fsuid);
            w.num("fsgid", creds.fsgid);
            w.opt_bool("secureexec", *secureexec);
            w.opt_str("privilege_raised", raised.map(|r| r.as_str()));
            let mut c = Obj::open(w.key("caps_raw"));
            for (k, v) in [
                ("effective", caps.effective),
                ("permitted", caps.permitted),
                ("inheritable", caps.inheritable),
                ("ambient", caps.ambient),
            ] {
                let buf = c.key(k);
                buf.push('"');
                push_hex(buf, v, 16);
                buf.push('"');
            }
            c.close();
            names.push(w.key("caps_inheritable"), caps.inheritable);
            names.push(w.key("caps_ambient"), caps.ambient);
        }
        Some(Privileges::Windows(t)) => {
            w.opt_num("session_id", t.session_id);
            w.opt_num("integrity_rid", t.integrity.map(|i| i.rid()));
        }
        None => {}
    }
    match &e.privilege_change {
        Some(c) => {
            let mut co = Obj::open(w.key("privilege_change"));
            co.str("cause", c.cause.as_str());
            co.num("from_euid", c.from_euid);
            co.num("to_euid", c.to_euid);
            names.push(co.key("gained_caps"), c.gained_caps);
            co.opt_str("launcher", lossy(c.launcher.as_deref()).as_deref());
            co.close();
        }
        None => w.null("privilege_change"),
    }
    // Always an array (empty when nothing is hijackable or it was not
    // judged; `incomplete` names `hijackable` then).
    push_array(w.key("hijackable"), &e.hijackable, |buf, h| {
        let mut ho = Obj::open(buf);
        ho.str("path", &String::from_utf8_lossy(&h.path));
        ho.str("role", h.role.as_str());
        ho.str("writable", &String::from_utf8_lossy(&h.writable));
        push_array(ho.key("writers"), &h.writers, |b, who| push_str(b, who));
        ho.close();
    });
    write_pre_exec(&mut w, e.pre_exec);
    if let Some(c) = &e.ns.container {
        let mut co = Obj::open(w.key("container"));
        co.opt_num("delegated_uid", c.delegated_uid);
        co.bool("nested", c.nested);
        co.close();
    }
    push_array(w.key("incomplete"), &e.incomplete, |buf, inc| {
        push_str(buf, inc.field)
    });
    push_array(w.key("incomplete_reasons"), &e.incomplete, |buf, inc| {
        let mut r = Obj::open(buf);
        r.str("field", inc.field);
        r.str("reason", &inc.reason);
        r.close();
    });
    let parent_exe = e.parent.as_ref().and_then(|p| p.exe.as_deref());
    let launcher = e
        .privilege_change
        .as_ref()
        .and_then(|c| c.launcher.as_deref());
    raw_obj(
        &mut w,
        &[
            ("executable", e.exe.as_deref()),
            ("working_directory", e.cwd.as_deref()),
            ("filename", e.filename.as_deref()),
            ("interpreter", e.interpreter.as_deref()),
            ("comm", e.comm.as_deref()),
            ("parent_executable", parent_exe),
            ("launcher", launcher),
        ],
        e.argv.as_deref().unwrap_or_default(),
        &e.hijackable,
    );
    w.close();
}
