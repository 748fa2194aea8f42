// SPDX-License-Identifier: MIT OR GPL-2.0
/* procwatch's kernel half: one record per successful exec, taken at
 * sched_process_exec, when the new credentials are committed, argv sits in
 * the new mm and the new program has not run a single instruction yet.
 *
 * Two entry points share one body:
 *   tp_btf/sched_process_exec      preferred: gives us the linux_binprm
 *   tracepoint/sched/sched_process_exec  fallback: no bprm, so no interp or
 *                                        secureexec; exe comes from mm->exe_file
 * each also built without bpf_loop (the *_unrolled programs) for kernels
 * before 5.17. attach.rs picks, for every program here, the first variant
 * the running kernel accepts. The path walk is in path.bpf.h.
 *
 * Rebuild with ./build.sh (the committed procwatch.bpf.o must match). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "procwatch.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* Wake the reader only when this much is queued; the reader also polls on a
 * short timeout. Per-event wakeups dominate the in-kernel cost otherwise. */
const volatile __u64 wakeup_bytes = 256 * 1024;

struct event {
	struct record_hdr hdr;
	char data[DATA_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 * 1024 * 1024); /* resized by the loader */
} events SEC(".maps");

/* Scratch space: the event is assembled here, then output at its real size. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct event);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct counters);
} counters SEC(".maps");

/* Credentials as execve was entered, so an exec can be compared with what
 * the caller had just before it (setpriv, su and sudo change credentials
 * between fork and exec). A plain array indexed by tid, not a hash: an
 * array slot costs a few instructions where an LRU hash update and delete
 * cost hundreds of nanoseconds. Two threads whose tids share a slot and are
 * both inside execve at once are the only loss (the first gets no pre_*). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PRE_SLOTS);
	__type(key, __u32);
	__type(value, struct pre_creds);
} pre_creds SEC(".maps");

/* This CPU's counters. Never NULL in practice (index 0 of an array). */
static __always_inline struct counters *my_counters(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&counters, &zero);
}

/* An atomic add: cheap on a per-CPU slot, and exact even if a preemptible
 * kernel runs the same program for another task on this CPU mid-update. */
#define count(c, field)                                    \
	do {                                               \
		if (c)                                     \
			__sync_fetch_and_add(&(c)->field, 1); \
	} while (0)

/* READ(btf, p, a, b) is p->a->b. In a tp_btf program (btf true, a constant)
 * p is a BTF pointer: the verifier checks plain loads through it and the
 * pointers read from it, and runs them as guarded loads, much cheaper than
 * a bpf_probe_read_kernel call each. The classic tracepoint has no BTF
 * pointers and keeps the probe reads. The branch not taken is compiled out. */
#define ___direct(...) ___apply(___arrow, ___narg(__VA_ARGS__))(__VA_ARGS__)
#define READ(btf, src, ...) ((btf) ? ___direct(src, __VA_ARGS__) : BPF_CORE_READ(src, __VA_ARGS__))

#include "path.bpf.h"

static __always_inline __u32 read_str(char *dst, __u32 cap, const char *src, __u32 *flags,
				      __u32 trunc_flag)
{
	long n = bpf_probe_read_kernel_str(dst, cap, src);
	if (n <= 0)
		return 0;
	if (n == cap)
		*flags |= trunc_flag; /* may also be an exact fit; rare and harmless */
	return n - 1;
}

/* Multigrain timestamps (6.13+) keep a "ctime was queried" flag in the top
 * bit of i_ctime_nsec; inode_get_ctime_nsec() masks it, and so do we. */
#define I_CTIME_QUERIED (1u << 31)

/* Before 6.11 the times were struct timespec64 fields: i_mtime and i_ctime,
 * renamed __i_ctime in 6.6 and __i_mtime in 6.7 (only inode_get_*time()
 * was to read them). CO-RE matches these flavours by field name, so each
 * kernel keeps exactly the branch whose fields it has. */
struct inode___ts_v1 {
	struct timespec64 i_mtime;
	struct timespec64 i_ctime;
} __attribute__((preserve_access_index));
struct inode___ts_v2 {
	struct timespec64 i_mtime;
	struct timespec64 __i_ctime;
} __attribute__((preserve_access_index));
struct inode___ts_v3 {
	struct timespec64 __i_mtime;
	struct timespec64 __i_ctime;
} __attribute__((preserve_access_index));

#define STAMP_TIMES(btf, i, m, c)                                         \
	do {                                                             \
		h->mtime_sec = READ(btf, i, m.tv_sec);                   \
		h->mtime_nsec = READ(btf, i, m.tv_nsec);                 \
		h->ctime_sec = READ(btf, i, c.tv_sec);                   \
		h->ctime_nsec = READ(btf, i, c.tv_nsec) & ~I_CTIME_QUERIED; \
	} while (0)

/* The inode's size, mtime and ctime, as stat(2) reports them; a kernel
 * with none of the known layouts gives a record without a stamp
 * (F_HAS_STAMP unset). */
static __always_inline void read_stamp(struct record_hdr *h, struct inode *inode, const bool btf)
{
	struct inode___ts_v1 *v1 = (void *)inode;
	struct inode___ts_v2 *v2 = (void *)inode;
	struct inode___ts_v3 *v3 = (void *)inode;

	h->file_size = 0;
	h->mtime_sec = h->ctime_sec = 0;
	h->mtime_nsec = h->ctime_nsec = 0;
	if (bpf_core_field_exists(inode->i_mtime_sec) && bpf_core_field_exists(inode->i_ctime_nsec)) {
		h->mtime_sec = READ(btf, inode, i_mtime_sec);
		h->mtime_nsec = READ(btf, inode, i_mtime_nsec);
		h->ctime_sec = READ(btf, inode, i_ctime_sec);
		h->ctime_nsec = READ(btf, inode, i_ctime_nsec) & ~I_CTIME_QUERIED;
	} else if (bpf_core_field_exists(v3->__i_mtime) && bpf_core_field_exists(v3->__i_ctime)) {
		STAMP_TIMES(btf, v3, __i_mtime, __i_ctime);
	} else if (bpf_core_field_exists(v2->i_mtime) && bpf_core_field_exists(v2->__i_ctime)) {
		STAMP_TIMES(btf, v2, i_mtime, __i_ctime);
	} else if (bpf_core_field_exists(v1->i_mtime) && bpf_core_field_exists(v1->i_ctime)) {
		STAMP_TIMES(btf, v1, i_mtime, i_ctime);
	} else {
		return;
	}
	h->file_size = READ(btf, inode, i_size);
	h->flags |= F_HAS_STAMP;
}

/* The namespaces, pid namespace view and user namespace of the exec'ing
 * task, and its cgroup v2 id. All these fields exist from 5.10 on; the
 * guards keep a kernel that renames one loading, with that group's flag
 * unset (user space then reports the fields null with a reason). */
static __always_inline void read_namespaces(struct record_hdr *h, struct task_struct *task,
					    const struct cred *cred, const bool btf)
{
	h->ns_pid_own = h->ns_pid_children = 0;
	h->ns_mnt = h->ns_net = h->ns_user = h->ns_uts = h->ns_ipc = h->ns_cgroup = 0;
	h->ns_pid = h->pidns_level = 0;
	h->userns_level = h->userns_owner = 0;
	/* At sched_process_exec the current task is the exec'ing one. */
	h->cgroup_id = bpf_get_current_cgroup_id();
	if (!bpf_core_field_exists(((struct ns_common *)0)->inum))
		return;

	struct user_namespace *userns = READ(btf, cred, user_ns);
	if (userns && bpf_core_field_exists(userns->owner)) {
		h->ns_user = READ(btf, userns, ns.inum);
		h->userns_level = READ(btf, userns, level);
		h->userns_owner = READ(btf, userns, owner.val);
		h->flags |= F_HAS_USERNS;
	}

	struct nsproxy *nsp = READ(btf, task, nsproxy);
	if (nsp && bpf_core_field_exists(nsp->cgroup_ns)) {
		h->ns_mnt = READ(btf, nsp, mnt_ns, ns.inum);
		h->ns_net = READ(btf, nsp, net_ns, ns.inum);
		h->ns_uts = READ(btf, nsp, uts_ns, ns.inum);
		h->ns_ipc = READ(btf, nsp, ipc_ns, ns.inum);
		h->ns_cgroup = READ(btf, nsp, cgroup_ns, ns.inum);
		h->ns_pid_children = READ(btf, nsp, pid_ns_for_children, ns.inum);
		if (h->flags & F_HAS_USERNS)
			h->flags |= F_HAS_NS;
	}

	/* task_active_pid_ns(): the namespace of the pid's deepest level. The
	 * entry is at a variable index of a flexible array, which a plain load
	 * cannot reach, so it is probe-read. */
	struct pid *pid = READ(btf, task, thread_pid);
	if (!pid || !bpf_core_field_exists(pid->numbers))
		return;
	__u32 level = READ(btf, pid, level);
	if (level > 32) /* MAX_PID_NS_LEVEL */
		return;
	struct upid up;
	unsigned long at = (unsigned long)pid + bpf_core_field_offset(struct pid, numbers) +
			   level * bpf_core_type_size(struct upid);
	if (bpf_probe_read_kernel(&up, sizeof(up), (void *)at) < 0 || !up.ns)
		return;
	h->ns_pid = up.nr;
	h->pidns_level = level;
	h->ns_pid_own = BPF_CORE_READ(up.ns, ns.inum);
	h->flags |= F_HAS_PIDNS;
}

/* The mount id of the executed file's mount: a struct mount is only had
 * with container_of from its vfsmount, which the verifier refuses on a BTF
 * pointer, so it is probe-read. */
static __always_inline void read_mnt_id(struct record_hdr *h, struct file *file, const bool btf)
{
	struct vfsmount *vmnt = READ(btf, file, f_path.mnt);
	h->exe_mnt_id = 0;
	if (!vmnt || !bpf_core_field_exists(((struct mount *)0)->mnt_id))
		return;
	struct mount *m = (void *)((unsigned long)vmnt - bpf_core_field_offset(struct mount, mnt));
	h->exe_mnt_id = BPF_CORE_READ(m, mnt_id);
	h->flags |= F_HAS_MNT_ID;
}

static __always_inline int handle_exec(struct task_struct *task, __u32 old_pid,
				       struct linux_binprm *bprm, const char *filename,
				       const bool btf, const bool looped)
{
	__u32 zero = 0;
	struct event *ev;
	struct record_hdr *h;
	struct file *file;
	__u32 off = 0, n;

	struct counters *c = my_counters();

	count(c, seen);
	ev = bpf_map_lookup_elem(&scratch, &zero);
	if (!ev) {
		count(c, dropped);
		return 0;
	}
	h = &ev->hdr;
	h->version = RECORD_VERSION;
	h->kind = K_EXEC;
	h->flags = 0;
	h->exec_boot_ns = bpf_ktime_get_boot_ns();
	h->start_boot_ns = READ(btf, task, start_boottime);
	h->pid = READ(btf, task, tgid);
	h->tid = READ(btf, task, pid);
	h->exec_tid = old_pid;
	h->ppid = READ(btf, task, real_parent, tgid);
	h->parent_start_boot_ns = READ(btf, task, real_parent, start_boottime);

	/* The credentials committed by this exec (begin_new_exec). */
	const struct cred *cred = READ(btf, task, cred);
	h->uid = READ(btf, cred, uid.val);
	h->euid = READ(btf, cred, euid.val);
	h->suid = READ(btf, cred, suid.val);
	h->fsuid = READ(btf, cred, fsuid.val);
	h->gid = READ(btf, cred, gid.val);
	h->egid = READ(btf, cred, egid.val);
	h->sgid = READ(btf, cred, sgid.val);
	h->fsgid = READ(btf, cred, fsgid.val);
	/* kernel_cap_t became a single u64 in 6.3; before it was u32[2] with the
	 * same little-endian bytes, so 8 raw bytes read right on both. A plain
	 * load needs the u64 (the verifier checks its size against the type). */
	if (btf && bpf_core_field_exists(cred->cap_effective.val)) {
		h->cap_effective = cred->cap_effective.val;
		h->cap_permitted = cred->cap_permitted.val;
		h->cap_inheritable = cred->cap_inheritable.val;
		h->cap_ambient = cred->cap_ambient.val;
	} else {
		bpf_probe_read_kernel(&h->cap_effective, 8, &cred->cap_effective);
		bpf_probe_read_kernel(&h->cap_permitted, 8, &cred->cap_permitted);
		bpf_probe_read_kernel(&h->cap_inheritable, 8, &cred->cap_inheritable);
		bpf_probe_read_kernel(&h->cap_ambient, 8, &cred->cap_ambient);
	}
	read_namespaces(h, task, cred, btf);
	if (bpf_core_field_exists(task->loginuid)) {
		h->loginuid = READ(btf, task, loginuid.val);
		h->sessionid = READ(btf, task, sessionid);
		h->flags |= F_HAS_AUDIT;
	} else {
		h->loginuid = (__u32)-1;
		h->sessionid = (__u32)-1;
	}
	if (btf)
		__builtin_memcpy(h->comm, task->comm, sizeof(h->comm)); /* NUL-padded */
	else
		bpf_get_current_comm(h->comm, sizeof(h->comm));
	/* The exec runs in the calling task (de_thread keeps its task_struct). */
	__u32 slot = old_pid & (PRE_SLOTS - 1);
	struct pre_creds *pre = bpf_map_lookup_elem(&pre_creds, &slot);
	if (pre && pre->task == bpf_get_current_task() && pre->tid == old_pid) {
		h->pre_uid = pre->uid;
		h->pre_euid = pre->euid;
		h->pre_cap_effective = pre->cap_effective;
		h->flags |= F_HAS_PRE;
		pre->task = 0;
	} else {
		h->pre_uid = h->pre_euid = 0;
		h->pre_cap_effective = 0;
	}

	/* argv: one block from the new mm, present since exec just copied it. */
	struct mm_struct *mm = READ(btf, task, mm);
	__u64 arg_start = READ(btf, mm, arg_start);
	__u64 arg_end = READ(btf, mm, arg_end);
	__u64 size = arg_end > arg_start ? arg_end - arg_start : 0;
	h->argv_size = size;
	n = size > ARGV_MAX ? ARGV_MAX : size;
	if (size > ARGV_MAX)
		h->flags |= F_ARGV_TRUNC;
	if (n && bpf_probe_read_user(ev->data, n, (void *)arg_start) < 0) {
		h->flags |= F_ARGV_FAULT;
		n = 0;
	}
	h->argv_len = n;
	off = n;

	/* filename as the caller passed it. */
	if (off > ARGV_MAX)
		off = ARGV_MAX;
	n = read_str(ev->data + off, PATH_CAP, filename, &h->flags, F_FILENAME_TRUNC);
	h->filename_len = n;
	off += n;

	/* interp: differs from filename only for scripts and binfmt_misc. */
	h->interp_len = 0;
	if (bprm) {
		const char *interp = READ(btf, bprm, interp);
		const char *fname = READ(btf, bprm, filename);
		if (interp && interp != fname) {
			if (off > ARGV_MAX + PATH_CAP)
				off = ARGV_MAX + PATH_CAP;
			n = read_str(ev->data + off, INTERP_CAP, interp, &h->flags, F_FILENAME_TRUNC);
			h->interp_len = n;
			h->flags |= F_HAS_INTERP;
			off += n;
		}
		/* Only tp_btf has a bprm: a plain load of the bitfield. */
		if (BPF_CORE_READ_BITFIELD(bprm, secureexec))
			h->flags |= F_SECUREEXEC;
		file = READ(btf, bprm, file);
	} else {
		h->flags |= F_INTERP_UNKNOWN | F_SECUREEXEC_UNKNOWN;
		file = READ(btf, mm, exe_file);
	}

	/* exe: the file actually run, and its mode and owner. */
	if (off > ARGV_MAX + PATH_CAP + INTERP_CAP)
		off = ARGV_MAX + PATH_CAP + INTERP_CAP;
	if (file) {
		struct inode *inode = READ(btf, file, f_inode);
		h->file_mode = READ(btf, inode, i_mode);
		h->file_ino = READ(btf, inode, i_ino);
		h->file_dev = READ(btf, inode, i_sb, s_dev);
		h->file_uid = READ(btf, inode, i_uid.val);
		h->file_gid = READ(btf, inode, i_gid.val);
		read_stamp(h, inode, btf);
		read_mnt_id(h, file, btf);
		struct dentry *d = READ(btf, file, f_path.dentry);
		if (!READ(btf, d, d_hash.pprev) && READ(btf, d, d_parent) != d)
			h->flags |= F_EXE_UNLINKED;
		n = read_path(ev->data + off, &file->f_path, &h->flags, F_EXE_TRUNC, F_EXE_PSEUDO,
			      btf, looped);
	} else {
		h->file_mode = h->file_uid = h->file_gid = 0;
		h->file_ino = 0;
		h->file_dev = 0;
		h->file_size = 0;
		h->mtime_sec = h->ctime_sec = 0;
		h->mtime_nsec = h->ctime_nsec = 0;
		h->exe_mnt_id = 0;
		h->flags |= F_NO_FILE;
		n = 0;
	}
	h->exe_len = n;
	off += n;

	/* cwd: best effort, like d_path without the locks. */
	if (off > ARGV_MAX + PATH_CAP + INTERP_CAP + PATH_CAP)
		off = ARGV_MAX + PATH_CAP + INTERP_CAP + PATH_CAP;
	struct fs_struct *fs = READ(btf, task, fs);
	if (fs) {
		n = read_path(ev->data + off, &fs->pwd, &h->flags, F_CWD_TRUNC, F_CWD_MISSING,
			      btf, looped);
	} else {
		h->flags |= F_CWD_MISSING;
		n = 0;
	}
	h->cwd_len = n;
	off += n;

	if (h->flags & (F_ARGV_TRUNC | F_FILENAME_TRUNC | F_EXE_TRUNC | F_CWD_TRUNC))
		count(c, truncated);

	__u64 total = sizeof(struct record_hdr) + off;
	if (total > sizeof(struct event))
		total = sizeof(struct event);
	__u64 queued = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	__u64 wake = queued + total >= wakeup_bytes ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
	if (bpf_ringbuf_output(&events, ev, total, wake) < 0)
		count(c, dropped);
	else
		count(c, emitted);
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(exec_btf, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	return handle_exec(p, old_pid, bprm, bprm->filename, true, true);
}

static __always_inline int exec_tp_body(struct trace_event_raw_sched_process_exec *ctx,
					const bool looped)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	unsigned short loc = ctx->__data_loc_filename & 0xFFFF;
	return handle_exec(task, ctx->old_pid, NULL, (const char *)ctx + loc, false, looped);
}

SEC("tracepoint/sched/sched_process_exec")
int exec_tp(struct trace_event_raw_sched_process_exec *ctx)
{
	return exec_tp_body(ctx, true);
}

/* The same two programs for kernels without bpf_loop (before 5.17), which
 * reject any program that calls it: the loader picks these when the ones
 * above do not load. Same records, paths walked unrolled. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(exec_btf_unrolled, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	return handle_exec(p, old_pid, bprm, bprm->filename, true, false);
}

SEC("tracepoint/sched/sched_process_exec")
int exec_tp_unrolled(struct trace_event_raw_sched_process_exec *ctx)
{
	return exec_tp_body(ctx, false);
}

/* Fork and exit records keep the user-space process table current (parent
 * snapshots, exit events). They are small and go through the same ring, so
 * they stay in order with the execs. */
/* Reserves room for a fork or exit record, counting it; NULL if the ring is
 * full (counted as dropped). The record is built in place, then submitted. */
static __always_inline void *reserve_aux(struct counters *c, __u64 size)
{
	count(c, aux_seen);
	void *rec = bpf_ringbuf_reserve(&events, size, 0);
	if (!rec)
		count(c, aux_dropped);
	return rec;
}

static __always_inline void submit_aux(struct counters *c, void *rec, __u64 size)
{
	__u64 queued = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	bpf_ringbuf_submit(rec, queued + size >= wakeup_bytes ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
	count(c, aux_emitted);
}

/* tp_btf programs get BTF-typed arguments: plain loads through them (and
 * through the pointers read from them) are checked by the verifier and run
 * as guarded loads, far cheaper than a bpf_probe_read_kernel call each. */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(fork_btf, struct task_struct *parent, struct task_struct *child)
{
	/* A new thread is not a new process. */
	if (child->pid != child->tgid)
		return 0;
	struct counters *c = my_counters();
	struct fork_record *r = reserve_aux(c, sizeof(*r));
	if (!r)
		return 0;
	r->version = RECORD_VERSION;
	r->kind = K_FORK;
	r->pid = child->tgid;
	r->ppid = parent->tgid;
	r->pad = 0;
	r->time_boot_ns = bpf_ktime_get_boot_ns();
	r->start_boot_ns = child->start_boottime;
	r->parent_start_boot_ns = parent->group_leader->start_boottime;
	submit_aux(c, r, sizeof(*r));
	return 0;
}

static __always_inline int emit_exit(struct task_struct *p)
{
	struct counters *c = my_counters();
	struct exit_record *r = reserve_aux(c, sizeof(*r));
	if (!r)
		return 0;
	r->version = RECORD_VERSION;
	r->kind = K_EXIT;
	r->pid = p->tgid;
	r->ppid = p->real_parent->tgid;
	r->exit_code = p->exit_code;
	r->time_boot_ns = bpf_ktime_get_boot_ns();
	r->start_boot_ns = p->group_leader->start_boottime;
	/* The kernel pads comm with NULs (strscpy_pad): copy all 16 bytes. */
	__builtin_memcpy(r->comm, p->comm, sizeof(r->comm));
	submit_aux(c, r, sizeof(*r));
	return 0;
}

/* 6.16 and later pass group_dead: only the end of the whole process, not of
 * one thread. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(exit_btf, struct task_struct *p, bool group_dead)
{
	if (!group_dead)
		return 0;
	return emit_exit(p);
}

/* Processes of several threads whose exit was already reported, so that
 * exactly one of their threads reports it (see exit_btf_live). Keyed by the
 * signal_struct's address and the process's start time: an address reused
 * by a later process does not match. */
struct exit_key {
	__u64 signal;
	__u64 start_boot_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct exit_key);
	__type(value, __u8);
} exits_reported SEC(".maps");

/* Before 6.16 the tracepoint has no group_dead. do_exit drops signal->live
 * before it fires, so a thread that sees live == 0 is among the last ones;
 * threads exiting at once (exit_group) can all see it. While the process
 * still counts other threads, the first to claim its key reports. A thread
 * is uncounted (nr_threads) only after its own tracepoint ran, so the one
 * that finds itself alone comes after every other thread's: if one of them
 * claimed the key and reported, the key is there and it stays silent. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(exit_btf_live, struct task_struct *p)
{
	struct signal_struct *sig = p->signal;

	if (sig->live.counter != 0)
		return 0;
	struct exit_key key = {
		.signal = (__u64)sig,
		.start_boot_ns = p->group_leader->start_boottime,
	};
	if (sig->nr_threads > 1) {
		__u8 one = 1;
		if (bpf_map_update_elem(&exits_reported, &key, &one, BPF_NOEXIST))
			return 0;
	} else if (bpf_map_lookup_elem(&exits_reported, &key)) {
		bpf_map_delete_elem(&exits_reported, &key);
		return 0;
	}
	return emit_exit(p);
}

/* With `btf` false the task is read with probe reads, for kernels without
 * bpf_get_current_task_btf (before 5.11). */
static __always_inline int remember_creds(const bool btf)
{
	struct task_struct *task = btf ? bpf_get_current_task_btf()
				       : (struct task_struct *)bpf_get_current_task();
	const struct cred *cred = READ(btf, task, cred);
	__u32 tid = READ(btf, task, pid);
	__u32 slot = tid & (PRE_SLOTS - 1);
	struct pre_creds *pc = bpf_map_lookup_elem(&pre_creds, &slot);

	if (!pc)
		return 0;
	pc->task = bpf_get_current_task();
	pc->tid = tid;
	pc->uid = READ(btf, cred, uid.val);
	pc->euid = READ(btf, cred, euid.val);
	if (btf && bpf_core_field_exists(cred->cap_effective.val))
		pc->cap_effective = cred->cap_effective.val;
	else
		bpf_probe_read_kernel(&pc->cap_effective, 8, &cred->cap_effective);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_execve")
int pre_execve(void *ctx)
{
	return remember_creds(true);
}

SEC("tracepoint/syscalls/sys_enter_execveat")
int pre_execveat(void *ctx)
{
	return remember_creds(true);
}

SEC("tracepoint/syscalls/sys_enter_execve")
int pre_execve_probe(void *ctx)
{
	return remember_creds(false);
}

SEC("tracepoint/syscalls/sys_enter_execveat")
int pre_execveat_probe(void *ctx)
{
	return remember_creds(false);
}
