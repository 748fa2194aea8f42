/* The record layout shared by the BPF program (procwatch.bpf.c) and the Rust
 * decoder (record.rs, through the mirror structs of abi.rs). Change both
 * together, and bump RECORD_VERSION. Every size and field offset is asserted
 * below and in abi.rs, and a unit test of abi.rs checks that the two lists
 * agree, so a change made on one side only fails a build or that test.
 *
 * Every record starts with a u16 version and a u16 kind. An exec record is
 * `struct record_hdr` followed by `data`, which holds, in this order and
 * without separators: argv (NUL-separated, as in the process's memory),
 * filename, interp, exe, cwd. Each length is in the header. Fork and exit
 * records are the fixed-size structs below. */
#ifndef PROCWATCH_H
#define PROCWATCH_H

#define RECORD_VERSION 4

/* record kinds (the second u16 of every record) */
#define K_EXEC 1
#define K_FORK 2
#define K_EXIT 3

/* Capture limits: argv up to 16 KiB; the paths use PATH_MAX. */
#define ARGV_MAX 16384
#define PATH_CAP 4096   /* a path is at most PATH_CAP - 1 bytes */
#define INTERP_CAP 512  /* `#!` lines are limited to 256 bytes by the kernel */
#define DATA_MAX (ARGV_MAX + PATH_CAP + INTERP_CAP + PATH_CAP + PATH_CAP)

/* record_hdr.flags */
#define F_ARGV_TRUNC (1u << 0)     /* argv longer than ARGV_MAX */
#define F_ARGV_FAULT (1u << 1)     /* argv could not be read */
#define F_FILENAME_TRUNC (1u << 2)
#define F_HAS_INTERP (1u << 3)     /* interp differs from filename: a script */
#define F_INTERP_UNKNOWN (1u << 4) /* classic tracepoint: no bprm */
#define F_EXE_TRUNC (1u << 5)      /* exe lost leading components */
#define F_EXE_PSEUDO (1u << 6)     /* exe is on an internal mount (memfd) */
#define F_EXE_UNLINKED (1u << 7)   /* exe was deleted */
#define F_CWD_TRUNC (1u << 8)
#define F_CWD_MISSING (1u << 9)
#define F_SECUREEXEC (1u << 10)    /* bprm->secureexec */
#define F_SECUREEXEC_UNKNOWN (1u << 11)
#define F_HAS_AUDIT (1u << 12)     /* loginuid/sessionid are valid */
#define F_NO_FILE (1u << 13)       /* no file: mode/uid/gid are zero */
#define F_HAS_PRE (1u << 14)       /* pre_* hold the credentials before the exec */
#define F_HAS_STAMP (1u << 15)     /* file_size and the m/ctime fields are valid */
#define F_HAS_NS (1u << 16)        /* ns_* inode numbers are valid */
#define F_HAS_PIDNS (1u << 17)     /* ns_pid, pidns_level and ns_pid_own are valid */
#define F_HAS_USERNS (1u << 18)    /* userns_level and userns_owner are valid */
#define F_HAS_MNT_ID (1u << 19)    /* exe_mnt_id is valid */

/* The value of the per-CPU counters map's only entry: the reader gets every
 * counter of every CPU with one lookup. Invariants: seen == emitted + dropped
 * for execs, and aux_seen == aux_emitted + aux_dropped for forks and exits. */
struct counters {
	__u64 seen;
	__u64 emitted;
	__u64 dropped;
	__u64 truncated;
	__u64 aux_seen;
	__u64 aux_emitted;
	__u64 aux_dropped;
};

struct record_hdr {
	__u16 version;
	__u16 kind;
	__u32 flags;
	__u64 exec_boot_ns;  /* bpf_ktime_get_boot_ns() at the exec */
	__u64 start_boot_ns; /* task->start_boottime: the process's fork time */
	__u64 argv_size;     /* arg_end - arg_start: full size, even if truncated */
	__u64 cap_effective;
	__u64 cap_permitted;
	__u64 cap_inheritable;
	__u64 cap_ambient;
	__u32 pid;      /* tgid */
	__u32 tid;      /* pid of the thread after exec */
	__u32 exec_tid; /* the thread that called execve (old_pid) */
	__u32 ppid;     /* real_parent->tgid */
	__u32 uid, euid, suid, fsuid;
	__u32 gid, egid, sgid, fsgid;
	__u32 loginuid, sessionid;
	__u32 file_mode, file_uid, file_gid;
	__u16 argv_len, filename_len, interp_len, exe_len, cwd_len, pad;
	char comm[16];
	__u64 file_ino;
	__u32 file_dev;   /* kernel encoding: major << 20 | minor */
	__u32 pad2;
	__u64 parent_start_boot_ns; /* real_parent->start_boottime */
	/* Credentials of the calling thread as execve was entered (F_HAS_PRE). */
	__u32 pre_uid, pre_euid;
	__u64 pre_cap_effective;
	/* The executed inode's i_size and times (F_HAS_STAMP): seconds and
	 * nanoseconds since the epoch, as stat(2) reports them. */
	__u64 file_size;
	__s64 mtime_sec, ctime_sec;
	__u32 mtime_nsec, ctime_nsec;
	/* Namespace inode numbers at the exec (F_HAS_NS), as
	 * readlink(/proc/PID/ns/NAME) shows them: ns_pid_own is the task's own
	 * pid namespace, ns_pid_children the one its children get. */
	__u32 ns_pid_own, ns_pid_children;
	__u32 ns_mnt, ns_net, ns_user, ns_uts, ns_ipc, ns_cgroup;
	/* The pid in the task's own pid namespace and that namespace's depth
	 * (0: the initial one) (F_HAS_PIDNS). */
	__u32 ns_pid, pidns_level;
	/* The credentials' user namespace: depth (0: the initial one) and
	 * owner's uid as the host sees it (F_HAS_USERNS). */
	__u32 userns_level, userns_owner;
	__u64 cgroup_id;  /* cgroup v2 id (inode of its directory); 0: unknown */
	__u32 exe_mnt_id; /* the executed file's mount (F_HAS_MNT_ID) */
	__u32 pad3;
};

/* The pre_creds array: sys_enter_execve(at) fills slot tid % PRE_SLOTS and
 * the exec of that thread uses it. `task` and `tid` say whose it is: a slot
 * taken over by another thread, or left by a failed execve, does not match. */
#define PRE_SLOTS 16384
struct pre_creds {
	__u64 task; /* the calling task_struct's address; 0 once used */
	__u32 tid;
	__u32 uid, euid;
	__u32 pad;
	__u64 cap_effective;
};

/* A new process (not a new thread): emitted at sched_process_fork. */
struct fork_record {
	__u16 version;
	__u16 kind;
	__u32 pid;     /* child tgid */
	__u32 ppid;    /* the forking process's tgid */
	__u32 pad;
	__u64 time_boot_ns;
	__u64 start_boot_ns;        /* the child's */
	__u64 parent_start_boot_ns; /* the forking process's */
};

/* A process ended (its last thread): emitted at sched_process_exit. */
struct exit_record {
	__u16 version;
	__u16 kind;
	__u32 pid;
	__u32 ppid;
	__u32 exit_code; /* wait status: code << 8, or signal | 0x80 for a core */
	__u64 time_boot_ns;
	__u64 start_boot_ns;
	char comm[16];
};

/* The start of every record. */
struct record_prefix {
	__u16 version;
	__u16 kind;
};

/* The layout contract with abi.rs: one line per field, in the form its unit
 * test reads. A size or offset that changes fails here; change the struct,
 * this list and abi.rs together. */
#define PW_SIZE(s, n) _Static_assert(sizeof(struct s) == n, "struct " #s ": size changed, update abi.rs")
#define PW_OFFSET(s, f, n) \
	_Static_assert(__builtin_offsetof(struct s, f) == n, "struct " #s ": " #f " moved, update abi.rs")

PW_SIZE(record_prefix, 4);
PW_OFFSET(record_prefix, version, 0);
PW_OFFSET(record_prefix, kind, 2);

PW_SIZE(counters, 56);
PW_OFFSET(counters, seen, 0);
PW_OFFSET(counters, emitted, 8);
PW_OFFSET(counters, dropped, 16);
PW_OFFSET(counters, truncated, 24);
PW_OFFSET(counters, aux_seen, 32);
PW_OFFSET(counters, aux_emitted, 40);
PW_OFFSET(counters, aux_dropped, 48);

PW_SIZE(record_hdr, 296);
PW_OFFSET(record_hdr, version, 0);
PW_OFFSET(record_hdr, kind, 2);
PW_OFFSET(record_hdr, flags, 4);
PW_OFFSET(record_hdr, exec_boot_ns, 8);
PW_OFFSET(record_hdr, start_boot_ns, 16);
PW_OFFSET(record_hdr, argv_size, 24);
PW_OFFSET(record_hdr, cap_effective, 32);
PW_OFFSET(record_hdr, cap_permitted, 40);
PW_OFFSET(record_hdr, cap_inheritable, 48);
PW_OFFSET(record_hdr, cap_ambient, 56);
PW_OFFSET(record_hdr, pid, 64);
PW_OFFSET(record_hdr, tid, 68);
PW_OFFSET(record_hdr, exec_tid, 72);
PW_OFFSET(record_hdr, ppid, 76);
PW_OFFSET(record_hdr, uid, 80);
PW_OFFSET(record_hdr, euid, 84);
PW_OFFSET(record_hdr, suid, 88);
PW_OFFSET(record_hdr, fsuid, 92);
PW_OFFSET(record_hdr, gid, 96);
PW_OFFSET(record_hdr, egid, 100);
PW_OFFSET(record_hdr, sgid, 104);
PW_OFFSET(record_hdr, fsgid, 108);
PW_OFFSET(record_hdr, loginuid, 112);
PW_OFFSET(record_hdr, sessionid, 116);
PW_OFFSET(record_hdr, file_mode, 120);
PW_OFFSET(record_hdr, file_uid, 124);
PW_OFFSET(record_hdr, file_gid, 128);
PW_OFFSET(record_hdr, argv_len, 132);
PW_OFFSET(record_hdr, filename_len, 134);
PW_OFFSET(record_hdr, interp_len, 136);
PW_OFFSET(record_hdr, exe_len, 138);
PW_OFFSET(record_hdr, cwd_len, 140);
PW_OFFSET(record_hdr, pad, 142);
PW_OFFSET(record_hdr, comm, 144);
PW_OFFSET(record_hdr, file_ino, 160);
PW_OFFSET(record_hdr, file_dev, 168);
PW_OFFSET(record_hdr, pad2, 172);
PW_OFFSET(record_hdr, parent_start_boot_ns, 176);
PW_OFFSET(record_hdr, pre_uid, 184);
PW_OFFSET(record_hdr, pre_euid, 188);
PW_OFFSET(record_hdr, pre_cap_effective, 192);
PW_OFFSET(record_hdr, file_size, 200);
PW_OFFSET(record_hdr, mtime_sec, 208);
PW_OFFSET(record_hdr, ctime_sec, 216);
PW_OFFSET(record_hdr, mtime_nsec, 224);
PW_OFFSET(record_hdr, ctime_nsec, 228);
PW_OFFSET(record_hdr, ns_pid_own, 232);
PW_OFFSET(record_hdr, ns_pid_children, 236);
PW_OFFSET(record_hdr, ns_mnt, 240);
PW_OFFSET(record_hdr, ns_net, 244);
PW_OFFSET(record_hdr, ns_user, 248);
PW_OFFSET(record_hdr, ns_uts, 252);
PW_OFFSET(record_hdr, ns_ipc, 256);
PW_OFFSET(record_hdr, ns_cgroup, 260);
PW_OFFSET(record_hdr, ns_pid, 264);
PW_OFFSET(record_hdr, pidns_level, 268);
PW_OFFSET(record_hdr, userns_level, 272);
PW_OFFSET(record_hdr, userns_owner, 276);
PW_OFFSET(record_hdr, cgroup_id, 280);
PW_OFFSET(record_hdr, exe_mnt_id, 288);
PW_OFFSET(record_hdr, pad3, 292);

PW_SIZE(pre_creds, 32);
PW_OFFSET(pre_creds, task, 0);
PW_OFFSET(pre_creds, tid, 8);
PW_OFFSET(pre_creds, uid, 12);
PW_OFFSET(pre_creds, euid, 16);
PW_OFFSET(pre_creds, pad, 20);
PW_OFFSET(pre_creds, cap_effective, 24);

PW_SIZE(fork_record, 40);
PW_OFFSET(fork_record, version, 0);
PW_OFFSET(fork_record, kind, 2);
PW_OFFSET(fork_record, pid, 4);
PW_OFFSET(fork_record, ppid, 8);
PW_OFFSET(fork_record, pad, 12);
PW_OFFSET(fork_record, time_boot_ns, 16);
PW_OFFSET(fork_record, start_boot_ns, 24);
PW_OFFSET(fork_record, parent_start_boot_ns, 32);

PW_SIZE(exit_record, 48);
PW_OFFSET(exit_record, version, 0);
PW_OFFSET(exit_record, kind, 2);
PW_OFFSET(exit_record, pid, 4);
PW_OFFSET(exit_record, ppid, 8);
PW_OFFSET(exit_record, exit_code, 12);
PW_OFFSET(exit_record, time_boot_ns, 16);
PW_OFFSET(exit_record, start_boot_ns, 24);
PW_OFFSET(exit_record, comm, 32);

#undef PW_SIZE
#undef PW_OFFSET

#endif
