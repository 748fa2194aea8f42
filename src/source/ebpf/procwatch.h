/* The record layout shared by the BPF program (procwatch.bpf.c) and the Rust
 * parser (record.rs). Change both together, and bump RECORD_VERSION.
 *
 * Every record starts with a u16 version and a u16 kind. An exec record is
 * `struct record_hdr` followed by `data`, which holds, in this order and
 * without separators: argv (NUL-separated, as in the process's memory),
 * filename, interp, exe, cwd. Each length is in the header. Fork and exit
 * records are the fixed-size structs below. */
#ifndef PROCWATCH_H
#define PROCWATCH_H

#define RECORD_VERSION 3

/* record kinds (the second u16 of every record) */
#define K_EXEC 1
#define K_FORK 2
#define K_EXIT 3

/* Capture limits. ARGV_MAX is the 16 KiB; the paths use PATH_MAX. */
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

/* record.rs decodes these layouts by offset: keep them in step. */
_Static_assert(sizeof(struct record_hdr) == 232, "record_hdr layout changed: update record.rs");
_Static_assert(__builtin_offsetof(struct record_hdr, file_size) == 200, "record_hdr layout changed: update record.rs");
_Static_assert(sizeof(struct counters) == 56, "counters layout changed: update loader.rs");
_Static_assert(sizeof(struct fork_record) == 40, "fork_record layout changed: update record.rs");
_Static_assert(sizeof(struct exit_record) == 48, "exit_record layout changed: update record.rs");

#endif
