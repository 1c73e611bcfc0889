/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What every ebbflow BPF object shares: the output channel (a ring buffer: every object needs
 * 5.11+ for bpf_get_current_task_btf, so ring buffers, 5.8+, are always there), the per-CPU
 * drop counters, and filling struct ebf_task.
 * Each object includes this once and so gets maps of its own.
 */
#ifndef EBBFLOW_COMMON_BPF_H
#define EBBFLOW_COMMON_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "events.h"

/* Set by the loader before load. */
const volatile __u32 self_tgid = 0; /* the collector: its own activity is not captured */
/*
 * Ring buffer wake-ups are batched: a record is written without waking the reader until this
 * many bytes wait in the ring; the reader also polls with a bounded timeout (100 ms), so a
 * quiet ring's records are late by at most that. A wake-up per record costs the writer an
 * irq_work and the reader an epoll round trip: at exec-storm rates that was most of the
 * overhead. 0: wake on every record (libbpf's default behaviour).
 */
const volatile __u32 wakeup_bytes = 0;

/* The loader sizes it (max_entries) before load; 0 here keeps the object loadable as is. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, EBF_DROP_REASON_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

static __always_inline void drops__count(enum ebf_drop_reason reason)
{
	__u32 key = reason;
	__u64 *n = bpf_map_lookup_elem(&drops, &key);

	if (n)
		*n += 1; /* per-CPU slot: no other writer while this program runs on this CPU */
}

static __always_inline void header__fill(struct ebf_event_header *h, enum ebf_event_type type,
					 __u16 version, __u32 size)
{
	h->type = type;
	h->version = version;
	h->size = size;
	h->timestamp_ns = bpf_ktime_get_boot_ns();
}

static __always_inline __u64 output__wakeup_flags(void)
{
	if (!wakeup_bytes)
		return 0;
	return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes ? BPF_RB_FORCE_WAKEUP :
										BPF_RB_NO_WAKEUP;
}

/*
 * Copies a finished record out. The size is a run-time value bounded by the caller; a full
 * buffer is counted, never silent. `ctx` is unused since perf buffers (which needed it) left.
 */
static __always_inline void output__emit(void *ctx, void *record, __u64 size)
{
	if (bpf_ringbuf_output(&events, record, size, output__wakeup_flags()))
		drops__count(EBF_DROP_BUFFER_FULL);
}

static __always_inline __u32 task__pidns_ino(struct task_struct *task)
{
	unsigned int level = BPF_CORE_READ(task, thread_pid, level);
	struct upid upid;

	/* numbers[] is a flexible array indexed by the pid's nesting level. */
	if (bpf_core_read(&upid, sizeof(upid), &task->thread_pid->numbers[level & 31]))
		return 0;
	return BPF_CORE_READ(upid.ns, ns.inum);
}

/*
 * A task's comm (from a BTF task pointer) into a record: its bytes up to the last, which is
 * NUL, as bpf_probe_read_kernel_str leaves it.
 */
#define comm__copy(dst, src)                                      \
	do {                                                       \
		int __i;                                           \
		for (__i = 0; __i < EBF_COMM_LEN - 1; __i++)       \
			(dst)[__i] = (src)[__i];                   \
		(dst)[EBF_COMM_LEN - 1] = 0;                       \
	} while (0)

/*
 * `task` is a BTF pointer (a tp_btf argument or bpf_get_current_task_btf()), so its fields
 * and the pointers they hold are read with plain loads, which the verifier turns into
 * fault-safe ones (a fault reads 0), instead of a bpf_probe_read_kernel call per hop: every
 * exec, exit and fork record fills one of these.
 */
static __always_inline void task__fill(struct ebf_task *out, struct task_struct *task,
				       __u64 cgroup_id)
{
	const struct cred *cred = task->cred;

	out->cgroup_id = cgroup_id;
	out->pid = task->pid;
	out->tgid = task->tgid;
	out->ppid = task->real_parent->tgid;
	out->uid = cred->uid.val;
	out->gid = cred->gid.val;
	out->pidns_ino = task__pidns_ino(task);
	out->mntns_ino = task->nsproxy->mnt_ns->ns.inum;
	out->_pad0 = 0;
	comm__copy(out->comm, task->comm);
}

/* The cgroup v2 id of a task, read from the task itself (works for a task that is not current). */
static __always_inline __u64 task__cgroup_id(struct task_struct *task)
{
	return BPF_CORE_READ(task, cgroups, dfl_cgrp, kn, id);
}

/*
 * The current task's cgroup v2 id, read through its BTF pointer: the same value as
 * bpf_get_current_cgroup_id(), for about half the cost (~22 ns against ~45 ns per call
 * measured with bpf_stats on the sys_enter hook), which matters on a per-syscall path.
 * bpf_get_current_task_btf() needs 5.11+.
 */
static __always_inline __u64 current__cgroup_id(void)
{
	struct task_struct *task = bpf_get_current_task_btf();

	return task->cgroups->dfl_cgrp->kn->id;
}

static __always_inline bool current__is_self(void)
{
	return self_tgid && (bpf_get_current_pid_tgid() >> 32) == self_tgid;
}

#endif /* EBBFLOW_COMMON_BPF_H */
