// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Files: what each workload opens, execs, creates and removes, by absolute path.
 *
 * Without kprobes, fentry or BPF LSM (this kernel refuses them) the only place a path can be
 * taken after the kernel resolved it is the syscall's exit: the returned fd's struct file is
 * read from the task's fd table, and its (mount, dentry) walked up to the task's root,
 * crossing mounts. Name-based calls (unlink, mkdir, rename) keep their arguments at entry and,
 * when the call succeeded, join the directory's resolved path with the name as passed.
 *
 * Volume: one record per (cgroup, object, access) and dedup window; repeats in the window
 * only bump a counter in an LRU map that the collector reads. A million reads of one file
 * cost one record and a map update each, and skip the path walk.
 */
#include "common.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by the loader: after this long a repeated access is recorded again (fresh task). */
const volatile __u64 dedup_window_ns = 60ULL * 1000 * 1000 * 1000;

/* Kernel constants that BTF does not carry (macros); stable for these purposes since 4.19. */
#define EBF_AT_FDCWD -100
#define EBF_AT_REMOVEDIR 0x200
#define EBF_AT_BASE 7
#define EBF_S_IFMT 00170000
#define EBF_S_IFDIR 0040000
#define EBF_S_IFREG 0100000
#define EBF_FMODE_READ 0x1
#define EBF_FMODE_WRITE 0x2
#define EBF_FMODE_PATH (1U << 14)
#define EBF_FMODE_CREATED (1U << 20)
#define EBF_O_TRUNC 01000
/* enum ebf_file_access has this many bits. */
#define EBF_FILE_ACCESS_KINDS 6
/* Pairs of the saved auxiliary vector searched for AT_BASE (it is the 9th on x86_64). */
#define EBF_AUXV_PAIRS 24

/*
 * LRU: the map bounds memory whatever a workload does; an evicted entry loses at most the
 * repeats counted since the collector's last read, and its next access is a new record.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct ebf_file_key);
	__type(value, struct ebf_file_seen);
} file_seen SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ebf_file_event_v1);
} file_scratch SEC(".maps");

/*
 * One path walk: its position, the dentries met (leaf first) and the name a name-based call
 * passed. It lives in a map value, not on the stack: the verifier does not track values it
 * reads from a map, so a bpf_loop callback's state is the same on every step and is verified
 * once, where a counter on the stack made each step a new state.
 */
struct file_walk {
	struct dentry *dentry;
	struct vfsmount *vfsmnt;
	struct dentry *root_dentry;
	struct vfsmount *root_mnt;
	__u32 n;
	__u32 off;
	__u32 complete;
	__u32 truncated;
	struct dentry *dentries[EBF_FILE_PATH_DEPTH];
	__u8 name[EBF_FILE_NAME_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct file_walk);
} walk_scratch SEC(".maps");

/*
 * Threads inside an open whose flags asked for O_TRUNC, from the syscall's entry to its exit.
 * The exit cannot tell: the kernel clears O_TRUNC from f_flags once the open is done (and the
 * exit tracepoint has no arguments). Only truncating opens are stored, so the common open pays
 * one lookup of an almost empty map at its exit; the exit deletes the entry whatever the result.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);
	__type(value, __u8);
} open_truncating SEC(".maps");

/* A name-based call between its entry and its exit, per thread. */
struct name_call {
	__s64 dfd[2];
	__u64 name[2]; /* user pointers; name[1] only for rename; ftruncate: none (dfd[0] is its fd) */
	__u32 op;      /* enum ebf_file_op */
	__u32 _pad0;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);
	__type(value, struct name_call);
} name_calls SEC(".maps");

static __always_inline struct mount *mount__of(struct vfsmount *vfsmnt)
{
	return (struct mount *)((void *)vfsmnt - bpf_core_field_offset(struct mount, mnt));
}

/* pipefs, sockfs, anon inodes, memfd: kernel-internal mounts have no namespace and no path. */
static __always_inline bool mount__is_internal(struct vfsmount *vfsmnt)
{
	unsigned long ns = (unsigned long)BPF_CORE_READ(mount__of(vfsmnt), mnt_ns);

	return ns < 4096 || ns > (unsigned long)-4096;
}

/*
 * An offset into path[] the verifier can bound: without the barrier clang proves the mask
 * redundant after the caller's length check and drops it, and the verifier (which tracks
 * less) refuses the access.
 */
static __always_inline __u32 path__at(__u32 off)
{
	barrier_var(off);
	return off & EBF_FILE_PATH_MASK;
}

/* One step up: from a dentry to its parent, or from a mount's root to where it is mounted. */
static long walk__step(__u32 i, void *unused)
{
	struct dentry *dentry, *parent;
	struct vfsmount *vfsmnt;
	struct file_walk *c;
	__u32 zero = 0;

	c = bpf_map_lookup_elem(&walk_scratch, &zero);
	if (!c)
		return 1;
	dentry = c->dentry;
	vfsmnt = c->vfsmnt;
	if (!dentry || (dentry == c->root_dentry && vfsmnt == c->root_mnt)) {
		c->complete = 1;
		return 1;
	}
	if (dentry == BPF_CORE_READ(vfsmnt, mnt_root)) {
		struct mount *mnt = mount__of(vfsmnt);
		struct mount *up = BPF_CORE_READ(mnt, mnt_parent);

		/* The namespace's root mount is its own parent. */
		if (up == mnt) {
			c->complete = 1;
			return 1;
		}
		c->dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
		c->vfsmnt = &up->mnt;
		return 0;
	}
	parent = BPF_CORE_READ(dentry, d_parent);
	if (parent == dentry) {
		c->complete = 1;
		return 1;
	}
	if (c->n >= EBF_FILE_PATH_DEPTH)
		return 1;
	c->dentries[c->n & (EBF_FILE_PATH_DEPTH - 1)] = dentry;
	c->n++;
	c->dentry = parent;
	return 0;
}

/* Appends "/" and the NUL-terminated kernel string at `name` to e->path. */
static __always_inline void path__append(struct ebf_file_event_v1 *e, struct file_walk *c,
					 const void *name)
{
	__u32 off = c->off;
	long r;

	if (off >= EBF_FILE_PATH_MASK) {
		c->truncated = 1;
		return;
	}
	e->path[path__at(off)] = '/';
	off++;
	r = bpf_probe_read_kernel_str(&e->path[path__at(off)], EBF_FILE_NAME_LEN, name);
	if (r > 0)
		off += r - 1;
	if (r == EBF_FILE_NAME_LEN)
		c->truncated = 1;
	c->off = off;
}

/* Copies the walked names, root first. */
static long walk__copy(__u32 i, void *unused)
{
	struct ebf_file_event_v1 *e;
	struct file_walk *c;
	struct dentry *d;
	__u32 zero = 0;

	e = bpf_map_lookup_elem(&file_scratch, &zero);
	c = bpf_map_lookup_elem(&walk_scratch, &zero);
	if (!e || !c || i >= c->n)
		return 1;
	d = c->dentries[(c->n - 1 - i) & (EBF_FILE_PATH_DEPTH - 1)];
	path__append(e, c, BPF_CORE_READ(d, d_name.name));
	return c->truncated != 0;
}

/*
 * Writes the path of (vfsmnt, dentry) as the task sees it (relative to its root) into
 * e->path; with `join`, appends "/" and the name in w->name. Returns the bytes written, NUL
 * excluded; sets EBF_FILE_PATH_TRUNCATED in e->flags when the walk or the buffer ran out.
 * bpf_loop (5.17+) keeps the verifier's work independent of the depth.
 */
static __always_inline __u32 path__write(struct ebf_file_event_v1 *e, struct file_walk *w,
					 struct task_struct *task, struct vfsmount *vfsmnt,
					 struct dentry *dentry, bool join)
{
	__u32 off;

	w->dentry = dentry;
	w->vfsmnt = vfsmnt;
	w->root_dentry = BPF_CORE_READ(task, fs, root.dentry);
	w->root_mnt = BPF_CORE_READ(task, fs, root.mnt);
	w->n = 0;
	w->off = 0;
	w->complete = 0;
	w->truncated = 0;
	/* Mount crossings take a step each: a few more than the depth. */
	bpf_loop(EBF_FILE_PATH_DEPTH + 8, walk__step, NULL, 0);
	bpf_loop(EBF_FILE_PATH_DEPTH, walk__copy, NULL, 0);
	if (join)
		path__append(e, w, w->name);
	if (!w->complete || w->truncated)
		e->flags |= EBF_FILE_PATH_TRUNCATED;
	off = w->off;
	if (off == 0) {
		e->path[0] = '/';
		off = 1;
	}
	e->path[off & (EBF_FILE_PATH_CAP - 1)] = 0;
	return off;
}

/*
 * Counts one access of `key`; true when it opens a new window and so needs a record.
 * The record is emitted by the caller, which then calls seen__start.
 */
static __always_inline bool seen__repeat(struct ebf_file_key *key, __u64 now)
{
	struct ebf_file_seen *seen = bpf_map_lookup_elem(&file_seen, key);

	if (!seen || now - seen->window_start_ns >= dedup_window_ns)
		return false;
	__sync_fetch_and_add(&seen->repeats, 1);
	seen->last_ns = now;
	return true;
}

static __always_inline void seen__start(struct ebf_file_key *key, __u64 now)
{
	struct ebf_file_seen fresh = { .window_start_ns = now, .last_ns = now };
	struct ebf_file_seen *seen = bpf_map_lookup_elem(&file_seen, key);

	if (seen) {
		/* A new window of a known key: its repeat total goes on (the collector diffs it). */
		seen->window_start_ns = now;
		seen->last_ns = now;
		return;
	}
	if (bpf_map_update_elem(&file_seen, key, &fresh, BPF_NOEXIST) &&
	    !bpf_map_lookup_elem(&file_seen, key))
		drops__count(EBF_DROP_MAP_FULL);
}

/*
 * Records each access kind in `accesses` that is new in its window; the path is walked once,
 * for the first of them. `name` set: the path is the directory (vfsmnt, dentry) joined with
 * w->name.
 */
static __always_inline void file__record(void *ctx, struct task_struct *task, __u32 accesses,
					 __u8 op, __u32 flags, struct vfsmount *vfsmnt,
					 struct dentry *dentry, struct ebf_file_key *key,
					 struct file_walk *w, bool join)
{
	struct ebf_file_event_v1 *e;
	__u32 zero = 0, i, len, size, fresh = 0;
	__u64 now = bpf_ktime_get_boot_ns();

	for (i = 0; i < EBF_FILE_ACCESS_KINDS; i++) {
		__u32 access = 1U << i;

		if (!(accesses & access))
			continue;
		key->access = access;
		if (!seen__repeat(key, now))
			fresh |= access;
	}
	if (!fresh)
		return;
	e = bpf_map_lookup_elem(&file_scratch, &zero);
	if (!e)
		return;
	e->flags = flags;
	len = path__write(e, w, task, vfsmnt, dentry, join);
	task__fill(&e->task, task, key->cgroup_id);
	size = __builtin_offsetof(struct ebf_file_event_v1, path) + ((len + 1) & (EBF_FILE_PATH_CAP - 1));
	for (i = 0; i < EBF_FILE_ACCESS_KINDS; i++) {
		__u32 access = 1U << i;

		if (!(fresh & access))
			continue;
		key->access = access;
		e->key = *key;
		e->access = access;
		e->op = op;
		e->path_size = len + 1;
		header__fill(&e->header, EBF_EVENT_FILE, 1, size);
		e->header.timestamp_ns = now;
		output__emit(ctx, e, size);
		seen__start(key, now);
	}
}

static __always_inline void file__opened(void *ctx, struct task_struct *task, struct file *f,
					 __u32 accesses, __u8 op)
{
	struct vfsmount *vfsmnt = BPF_CORE_READ(f, f_path.mnt);
	struct dentry *dentry = BPF_CORE_READ(f, f_path.dentry);
	struct ebf_file_key key = {};
	struct file_walk *w;
	__u32 zero = 0, flags = 0;

	if (!vfsmnt || !dentry || mount__is_internal(vfsmnt))
		return;
	w = bpf_map_lookup_elem(&walk_scratch, &zero);
	if (!w)
		return;
	if ((BPF_CORE_READ(f, f_inode, i_mode) & EBF_S_IFMT) == EBF_S_IFDIR)
		flags |= EBF_FILE_DIRECTORY;
	key.cgroup_id = task__cgroup_id(task);
	key.object = (__u64)dentry;
	key.parent = (__u64)vfsmnt;
	key.ino = BPF_CORE_READ(f, f_inode, i_ino);
	file__record(ctx, task, accesses, op, flags, vfsmnt, dentry, &key, w, false);
}

/* The struct file behind `fd` in the current task's table, or NULL. */
static __always_inline struct file *fd__file(struct task_struct *task, long fd)
{
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *f = NULL;

	if (fd < 0 || fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	bpf_core_read(&f, sizeof(f), &fds[fd]);
	return f;
}

static __always_inline int on_open_enter(__u64 flags)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u8 one = 1;

	if (!(flags & EBF_O_TRUNC) || current__is_self())
		return 0;
	if (bpf_map_update_elem(&open_truncating, &id, &one, BPF_ANY))
		drops__count(EBF_DROP_MAP_FULL);
	return 0;
}

/* `truncating`: creat, whose every call truncates; otherwise the entry said so or not. */
static __always_inline int on_open_exit(void *ctx, long ret, bool truncating)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct task_struct *task;
	struct file *f;
	__u32 mode, accesses = 0;

	if (!truncating && bpf_map_lookup_elem(&open_truncating, &id)) {
		truncating = true;
		bpf_map_delete_elem(&open_truncating, &id);
	}
	if (ret < 0 || current__is_self())
		return 0;
	task = bpf_get_current_task_btf();
	f = fd__file(task, ret);
	if (!f)
		return 0;
	mode = BPF_CORE_READ(f, f_mode);
	/* O_PATH opens grant no access to the file's contents (Landlock does not check them). */
	if (mode & EBF_FMODE_PATH)
		return 0;
	if (mode & EBF_FMODE_READ)
		accesses |= EBF_FILE_READ;
	if (mode & EBF_FMODE_WRITE)
		accesses |= EBF_FILE_WRITE;
	if (mode & EBF_FMODE_CREATED)
		accesses |= EBF_FILE_CREATE;
	/* O_TRUNC on a directory or a device does nothing the kernel checks as a truncate. */
	if (truncating && (BPF_CORE_READ(f, f_inode, i_mode) & EBF_S_IFMT) == EBF_S_IFREG)
		accesses |= EBF_FILE_TRUNCATE;
	file__opened(ctx, task, f, accesses, EBF_FILE_OP_OPEN);
	return 0;
}

SEC("tp/syscalls/sys_enter_openat")
int handle_sys_enter_openat(struct trace_event_raw_sys_enter *ctx)
{
	return on_open_enter(ctx->args[2]);
}

SEC("tp/syscalls/sys_enter_open")
int handle_sys_enter_open(struct trace_event_raw_sys_enter *ctx)
{
	return on_open_enter(ctx->args[1]);
}

/* openat2's flags are the first member of the struct open_how it points to, in user memory. */
SEC("tp/syscalls/sys_enter_openat2")
int handle_sys_enter_openat2(struct trace_event_raw_sys_enter *ctx)
{
	__u64 flags = 0;

	/* Unreadable (a bad pointer fails the call too): counted, the open is not marked. */
	if (bpf_probe_read_user(&flags, sizeof(flags), (void *)ctx->args[2])) {
		drops__count(EBF_DROP_READ_FAILED);
		return 0;
	}
	return on_open_enter(flags);
}

SEC("tp/syscalls/sys_exit_openat")
int handle_sys_exit_openat(struct trace_event_raw_sys_exit *ctx)
{
	return on_open_exit(ctx, ctx->ret, false);
}

SEC("tp/syscalls/sys_exit_open")
int handle_sys_exit_open(struct trace_event_raw_sys_exit *ctx)
{
	return on_open_exit(ctx, ctx->ret, false);
}

SEC("tp/syscalls/sys_exit_openat2")
int handle_sys_exit_openat2(struct trace_event_raw_sys_exit *ctx)
{
	return on_open_exit(ctx, ctx->ret, false);
}

/* creat(path, mode) is open(path, O_CREAT | O_WRONLY | O_TRUNC, mode). */
SEC("tp/syscalls/sys_exit_creat")
int handle_sys_exit_creat(struct trace_event_raw_sys_exit *ctx)
{
	return on_open_exit(ctx, ctx->ret, true);
}

/* Stores the file of the vma that contains an address (bpf_find_vma's callback). */
static long vma__file(struct task_struct *task, struct vm_area_struct *vma, void *data)
{
	*(struct file **)data = BPF_CORE_READ(vma, vm_file);
	return 0;
}

/*
 * The exec'd binary (the interpreter of a #! script), and its program interpreter (ld.so),
 * which the kernel opens itself for exec: no open syscall shows it. Its load address is
 * AT_BASE in the auxiliary vector the exec just built.
 */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(handle_sched_process_exec, struct task_struct *task, pid_t old_pid,
	     struct linux_binprm *bprm)
{
	struct file *interp = NULL;
	struct mm_struct *mm;
	__u64 pair[2], base = 0;
	__u32 i;

	if (current__is_self())
		return 0;
	file__opened(ctx, task, BPF_CORE_READ(bprm, file), EBF_FILE_EXEC, EBF_FILE_OP_EXEC);

	mm = BPF_CORE_READ(task, mm);
	for (i = 0; i < EBF_AUXV_PAIRS; i++) {
		if (bpf_core_read(&pair, sizeof(pair), &mm->saved_auxv[i * 2]))
			break;
		if (pair[0] == 0)
			break;
		if (pair[0] == EBF_AT_BASE) {
			base = pair[1];
			break;
		}
	}
	/* A static binary has no interpreter (AT_BASE 0). */
	if (!base)
		return 0;
	if (bpf_find_vma(task, base, vma__file, &interp, 0) || !interp) {
		drops__count(EBF_DROP_READ_FAILED);
		return 0;
	}
	file__opened(ctx, task, interp, EBF_FILE_EXEC, EBF_FILE_OP_EXEC);
	return 0;
}

static __always_inline int name__enter(__s64 dfd, __u64 name, __s64 dfd2, __u64 name2, __u32 op)
{
	struct name_call c = { .dfd = { dfd, dfd2 }, .name = { name, name2 }, .op = op };
	__u64 id = bpf_get_current_pid_tgid();

	if (current__is_self())
		return 0;
	if (bpf_map_update_elem(&name_calls, &id, &c, BPF_ANY))
		drops__count(EBF_DROP_MAP_FULL);
	return 0;
}

struct hash_ctx {
	__u64 h;
};

static long hash__step(__u32 i, struct hash_ctx *c)
{
	struct file_walk *w;
	__u32 zero = 0;
	__u8 ch;

	w = bpf_map_lookup_elem(&walk_scratch, &zero);
	if (!w)
		return 1;
	ch = w->name[i & (EBF_FILE_NAME_LEN - 1)];
	if (!ch)
		return 1;
	c->h = (c->h ^ ch) * 0x100000001b3ULL;
	return 0;
}

/* FNV-1a of the name in the walk scratch: names the object of a name-based call. */
static __always_inline __u64 name__hash(void)
{
	struct hash_ctx c = { .h = 0xcbf29ce484222325ULL };

	bpf_loop(EBF_FILE_NAME_LEN, hash__step, &c, 0);
	return c.h;
}

static __always_inline void name__record(void *ctx, struct task_struct *task, __s64 dfd,
					 __u64 uname, __u32 access, __u8 op, __u32 flags)
{
	struct ebf_file_key key = {};
	struct vfsmount *vfsmnt;
	struct dentry *dentry;
	struct file_walk *w;
	__u32 zero = 0;

	w = bpf_map_lookup_elem(&walk_scratch, &zero);
	if (!w)
		return;
	if (bpf_probe_read_user_str(w->name, sizeof(w->name), (void *)uname) <= 0) {
		drops__count(EBF_DROP_READ_FAILED);
		return;
	}
	if (w->name[0] == '/') {
		/* Absolute: the task's root, then the name as passed. */
		vfsmnt = BPF_CORE_READ(task, fs, root.mnt);
		dentry = BPF_CORE_READ(task, fs, root.dentry);
	} else if (dfd == EBF_AT_FDCWD) {
		vfsmnt = BPF_CORE_READ(task, fs, pwd.mnt);
		dentry = BPF_CORE_READ(task, fs, pwd.dentry);
	} else {
		struct file *f = fd__file(task, dfd);

		if (!f)
			return;
		vfsmnt = BPF_CORE_READ(f, f_path.mnt);
		dentry = BPF_CORE_READ(f, f_path.dentry);
	}
	key.cgroup_id = task__cgroup_id(task);
	key.object = name__hash();
	key.parent = (__u64)dentry;
	file__record(ctx, task, access, op, flags | EBF_FILE_PATH_JOINED, vfsmnt, dentry, &key, w,
		     true);
}

static __always_inline int name__exit(void *ctx, long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct task_struct *task;
	struct name_call *p, c;

	p = bpf_map_lookup_elem(&name_calls, &id);
	if (!p)
		return 0;
	c = *p;
	bpf_map_delete_elem(&name_calls, &id);
	if (ret != 0)
		return 0;
	task = bpf_get_current_task_btf();
	switch (c.op) {
	case EBF_FILE_OP_UNLINK:
		name__record(ctx, task, c.dfd[0], c.name[0], EBF_FILE_REMOVE, c.op, 0);
		break;
	case EBF_FILE_OP_RMDIR:
		name__record(ctx, task, c.dfd[0], c.name[0], EBF_FILE_REMOVE, c.op,
			     EBF_FILE_DIRECTORY);
		break;
	case EBF_FILE_OP_MKDIR:
		name__record(ctx, task, c.dfd[0], c.name[0], EBF_FILE_CREATE, c.op,
			     EBF_FILE_DIRECTORY);
		break;
	case EBF_FILE_OP_RENAME:
		name__record(ctx, task, c.dfd[0], c.name[0], EBF_FILE_REMOVE, c.op, 0);
		name__record(ctx, task, c.dfd[1], c.name[1], EBF_FILE_CREATE, c.op, 0);
		break;
	case EBF_FILE_OP_TRUNCATE:
		if (c.name[0]) {
			name__record(ctx, task, c.dfd[0], c.name[0], EBF_FILE_TRUNCATE, c.op, 0);
		} else {
			/* ftruncate: the fd's file, resolved as an open's result is. */
			struct file *f = fd__file(task, c.dfd[0]);

			if (f)
				file__opened(ctx, task, f, EBF_FILE_TRUNCATE, c.op);
		}
		break;
	}
	return 0;
}

SEC("tp/syscalls/sys_enter_unlink")
int handle_sys_enter_unlink(struct trace_event_raw_sys_enter *ctx)
{
	return name__enter(EBF_AT_FDCWD, ctx->args[0], 0, 0, EBF_FILE_OP_UNLINK);
}

SEC("tp/syscalls/sys_enter_unlinkat")
int handle_sys_enter_unlinkat(struct trace_event_raw_sys_enter *ctx)
{
	return name__enter((int)ctx->args[0], ctx->args[1], 0, 0,
			   ctx->args[2] & EBF_AT_REMOVEDIR ? EBF_FILE_OP_RMDIR : EBF_FILE_OP_UNLINK);
}

SEC("tp/syscalls/sys_enter_rmdir")
int handle_sys_enter_rmdir(struct trace_event_raw_sys_enter *ctx)
{
	return name__enter(EBF_AT_FDCWD, ctx->args[0], 0, 0, EBF_FILE_OP_RMDIR);
}

SEC("tp/syscalls/sys_enter_mkdir")
int handle_sys_enter_mkdir(struct trace_event_raw_sys_enter *ctx)
{
	return name__enter(EBF_AT_FDCWD, ctx->args[0], 0, 0, EBF_FILE_OP_MKDIR);
}

SEC("tp/syscalls/sys_enter_mkdirat")
int handle_sys_enter_mkdirat(struct trace_event_raw_sys_enter *ctx)
{
	return name__enter((int)ctx->args[0], ctx->args[1], 0, 0, EBF_FILE_OP_MKDIR);
}

SEC("tp/syscalls/sys_enter_rename")
int handle_sys_enter_rename(struct trace_event_raw_sys_enter *ctx)
{
	return name__enter(EBF_AT_FDCWD, ctx->args[0], EBF_AT_FDCWD, ctx->args[1],
			   EBF_FILE_OP_RENAME);
}

SEC("tp/syscalls/sys_enter_renameat")
int handle_sys_enter_renameat(struct trace_event_raw_sys_enter *ctx)
{
	return name__enter((int)ctx->args[0], ctx->args[1], (int)ctx->args[2], ctx->args[3],
			   EBF_FILE_OP_RENAME);
}

SEC("tp/syscalls/sys_enter_renameat2")
int handle_sys_enter_renameat2(struct trace_event_raw_sys_enter *ctx)
{
	return name__enter((int)ctx->args[0], ctx->args[1], (int)ctx->args[2], ctx->args[3],
			   EBF_FILE_OP_RENAME);
}

SEC("tp/syscalls/sys_enter_truncate")
int handle_sys_enter_truncate(struct trace_event_raw_sys_enter *ctx)
{
	return name__enter(EBF_AT_FDCWD, ctx->args[0], 0, 0, EBF_FILE_OP_TRUNCATE);
}

/* The fd is resolved at the exit, once the truncate succeeded: no name to keep. */
SEC("tp/syscalls/sys_enter_ftruncate")
int handle_sys_enter_ftruncate(struct trace_event_raw_sys_enter *ctx)
{
	return name__enter((int)ctx->args[0], 0, 0, 0, EBF_FILE_OP_TRUNCATE);
}

/* One exit program serves every name-based call: the entry stored which one it was. */
SEC("tp/syscalls/sys_exit_unlink")
int handle_sys_exit_unlink(struct trace_event_raw_sys_exit *ctx)
{
	return name__exit(ctx, ctx->ret);
}

SEC("tp/syscalls/sys_exit_unlinkat")
int handle_sys_exit_unlinkat(struct trace_event_raw_sys_exit *ctx)
{
	return name__exit(ctx, ctx->ret);
}

SEC("tp/syscalls/sys_exit_rmdir")
int handle_sys_exit_rmdir(struct trace_event_raw_sys_exit *ctx)
{
	return name__exit(ctx, ctx->ret);
}

SEC("tp/syscalls/sys_exit_mkdir")
int handle_sys_exit_mkdir(struct trace_event_raw_sys_exit *ctx)
{
	return name__exit(ctx, ctx->ret);
}

SEC("tp/syscalls/sys_exit_mkdirat")
int handle_sys_exit_mkdirat(struct trace_event_raw_sys_exit *ctx)
{
	return name__exit(ctx, ctx->ret);
}

SEC("tp/syscalls/sys_exit_rename")
int handle_sys_exit_rename(struct trace_event_raw_sys_exit *ctx)
{
	return name__exit(ctx, ctx->ret);
}

SEC("tp/syscalls/sys_exit_renameat")
int handle_sys_exit_renameat(struct trace_event_raw_sys_exit *ctx)
{
	return name__exit(ctx, ctx->ret);
}

SEC("tp/syscalls/sys_exit_renameat2")
int handle_sys_exit_renameat2(struct trace_event_raw_sys_exit *ctx)
{
	return name__exit(ctx, ctx->ret);
}

SEC("tp/syscalls/sys_exit_truncate")
int handle_sys_exit_truncate(struct trace_event_raw_sys_exit *ctx)
{
	return name__exit(ctx, ctx->ret);
}

SEC("tp/syscalls/sys_exit_ftruncate")
int handle_sys_exit_ftruncate(struct trace_event_raw_sys_exit *ctx)
{
	return name__exit(ctx, ctx->ret);
}

/* For bench/file only (not attached by the collector): the same hook doing nothing. */
SEC("tp/syscalls/sys_exit_openat")
int bench_empty_exit_openat(struct trace_event_raw_sys_exit *ctx)
{
	return 0;
}
