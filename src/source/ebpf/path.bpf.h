// SPDX-License-Identifier: MIT OR GPL-2.0
/* The exe and cwd path walk of procwatch.bpf.c: read_path() writes the
 * absolute path of a struct path, walked dentry by dentry across mounts the
 * way the kernel's d_path does, since bpf_d_path is not available at
 * sched_process_exec. Included once, after READ() is defined. */
#ifndef PATH_BPF_H
#define PATH_BPF_H

/* State of one path walk.
 *
 * In a tp_btf program the walk starts with BTF pointers (`dentry`,
 * `mnt_root`) and plain loads. A struct mount can only be had with
 * container_of from its vfsmount, which the verifier refuses on a BTF
 * pointer, so mounts are plain addresses read with probe reads; once the walk
 * crosses into a parent mount the dentries come from there too, and the walk
 * goes on with probe reads (`raw`). The classic tracepoint walks raw from the
 * start. Most paths never cross a mount before the namespace root.
 *
 * The two kinds of step run in two separate bpf_loop calls, never one
 * callback that switches on a mode flag: verifiers before 6.8 check a
 * callback once, with the state of its first call, and would prove such a
 * flag always 0 and delete the raw half (6.1 does). */
struct walk {
	struct dentry *dentry;   /* BTF pointer, first loop */
	struct dentry *mnt_root; /* BTF pointer, first loop */
	unsigned long raw;       /* the dentry's address, second loop */
	unsigned long raw_root;  /* the mount root's address, second loop */
	unsigned long mnt;       /* the struct mount's address */
	char *buf;     /* pathbuf.buf, for the bpf_loop callbacks: only in a copy
			* on the stack (a pointer stored in a map value reads
			* back as a plain number) */
	__u32 pos;     /* the path is buf[pos..PATH_CAP) */
	__u32 flags;   /* 1: truncated, 2: pseudo (internal mount) */
	__u32 crossed; /* the first loop stopped at a mount it crossed */
};

#define WALK_TRUNC 1
#define WALK_PSEUDO 2

/* Paths are built right to left in `buf`, like the kernel's d_path. The
 * unrolled walk keeps its state in `w`, here rather than on the stack: the
 * verifier does not track what a map value holds, so every iteration starts
 * from the same verifier state and is pruned, where a stack copy would carry
 * a different range of `pos` down every branch and exceed its 1M steps. */
struct pathbuf {
	struct walk w;
	char buf[PATH_CAP + 256];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pathbuf);
} pathscratch SEC(".maps");

/* Components (and mount crossings) of the walk without bpf_loop (kernels
 * before 5.17). A deeper path keeps its last ones and is flagged truncated. */
#define WALK_UNROLLED 48

/* Prepend "/<name>" of one dentry. Returns 1 to stop the walk. */
static __always_inline long prepend_name(struct walk *w, char *buf, const unsigned char *name,
					 __u32 len)
{
	if (len > 255)
		len = 255;
	/* Keep pos >= 1 so a path never exceeds PATH_CAP - 1 bytes. */
	if (w->pos < len + 2) {
		w->flags |= WALK_TRUNC;
		return 1;
	}
	w->pos -= len;
	bpf_probe_read_kernel(buf + (w->pos & (PATH_CAP - 1)), len & 255, name);
	w->pos -= 1;
	buf[w->pos & (PATH_CAP - 1)] = '/';
	return 0;
}

/* At the root of a mount: continue at its mount point in the parent mount
 * (returns 0, `crossed` set), or stop at the root of the mount namespace. */
static __always_inline long cross_mount(struct walk *w)
{
	struct mount *mnt = (struct mount *)w->mnt;
	struct mount *up = BPF_CORE_READ(mnt, mnt_parent);

	if (up == mnt)
		return 1;
	w->raw = (unsigned long)BPF_CORE_READ(mnt, mnt_mountpoint);
	w->mnt = (unsigned long)up;
	w->raw_root = (unsigned long)BPF_CORE_READ(up, mnt.mnt_root);
	w->crossed = 1;
	return 0;
}

/* One step up the tree with probe reads. */
static __always_inline long walk_step_raw(struct walk *w, char *buf)
{
	struct dentry *d = (struct dentry *)w->raw;
	struct dentry *parent = BPF_CORE_READ(d, d_parent);

	if (w->raw == w->raw_root)
		return cross_mount(w);
	if (d == parent) {
		/* A root that is not a mount root: a pseudo file such as a memfd,
		 * which lives on an internal, unattached mount. */
		prepend_name(w, buf, BPF_CORE_READ(d, d_name.name), BPF_CORE_READ(d, d_name.len));
		w->flags |= WALK_PSEUDO;
		return 1;
	}
	if (prepend_name(w, buf, BPF_CORE_READ(d, d_name.name), BPF_CORE_READ(d, d_name.len)))
		return 1;
	w->raw = (unsigned long)parent;
	return 0;
}

/* One step up the first mount with plain loads (tp_btf). Stops at its root:
 * the rest of the walk, if any, is the raw loop's. */
static long walk_step_btf(__u64 index, void *ctx)
{
	struct walk *w = ctx;
	struct dentry *d = w->dentry;
	struct dentry *parent = d->d_parent;

	if (d == w->mnt_root) {
		cross_mount(w);
		return 1;
	}
	if (d == parent) {
		prepend_name(w, w->buf, d->d_name.name, d->d_name.len);
		w->flags |= WALK_PSEUDO;
		return 1;
	}
	if (prepend_name(w, w->buf, d->d_name.name, d->d_name.len))
		return 1;
	w->dentry = parent;
	return 0;
}

static long walk_step_probe(__u64 index, void *ctx)
{
	struct walk *w = ctx;

	return walk_step_raw(w, w->buf);
}

/* Writes the absolute path of `path` to dst; returns its length. With
 * `looped` false the walk needs no bpf_loop (5.17): it is unrolled, with
 * probe reads only, and at most WALK_UNROLLED steps long. */
static __always_inline __u32 read_path(char *dst, const struct path *path, __u32 *flags,
				       __u32 trunc_flag, __u32 pseudo_flag, const bool btf,
				       const bool looped)
{
	__u32 zero = 0;
	struct pathbuf *pb = bpf_map_lookup_elem(&pathscratch, &zero);
	struct walk stack_w = {};

	if (!pb)
		return 0;
	struct walk *w = looped ? &stack_w : &pb->w;
	struct dentry *dentry = READ(btf, path, dentry);
	struct vfsmount *vmnt = READ(btf, path, mnt);
	if (!dentry || !vmnt)
		return 0;
	/* The address only: see struct walk. */
	w->mnt = (unsigned long)vmnt - bpf_core_field_offset(struct mount, mnt);
	w->pos = PATH_CAP;
	w->flags = 0;
	if (btf && looped) {
		w->buf = pb->buf;
		w->dentry = dentry;
		w->mnt_root = vmnt->mnt_root;
		w->crossed = 0;
		/* A path of PATH_CAP bytes has at most PATH_CAP / 2 components. */
		bpf_loop(PATH_CAP, walk_step_btf, w, 0);
	} else {
		w->raw = (unsigned long)dentry;
		w->raw_root = (unsigned long)READ(btf, vmnt, mnt_root);
		w->crossed = 1;
	}
	if (w->crossed) {
		if (looped) {
			w->buf = pb->buf;
			bpf_loop(PATH_CAP, walk_step_probe, w, 0);
		} else {
			long done = 0;
#pragma unroll
			for (int i = 0; i < WALK_UNROLLED && !done; i++)
				done = walk_step_raw(w, pb->buf);
			if (!done)
				w->flags |= WALK_TRUNC;
		}
	}
	if (w->flags & WALK_TRUNC)
		*flags |= trunc_flag;
	if (w->flags & WALK_PSEUDO)
		*flags |= pseudo_flag;
	__u32 pos = w->pos;
	if (pos >= PATH_CAP) {
		/* The root directory itself. */
		pos = PATH_CAP - 1;
		pb->buf[PATH_CAP - 1] = '/';
	}
	__u32 len = PATH_CAP - pos;
	if (len > PATH_CAP - 1)
		len = PATH_CAP - 1;
	bpf_probe_read_kernel(dst, len, pb->buf + (pos & (PATH_CAP - 1)));
	return len;
}

#endif
