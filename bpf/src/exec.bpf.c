// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Process lifecycle: exec (with argv), fork (for ancestry), exit (with code and duration).
 * Tracepoints through tp_btf (5.5+): typed task pointers, read with plain loads (the verifier
 * makes them fault-safe), no bpf_probe_read_kernel call per field.
 */
#include "common.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* argv bytes kept per exec; the loader sets it, at most EBF_ARGS_CAP. */
const volatile __u32 args_max = 1024;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ebf_exec_event_v1);
} exec_scratch SEC(".maps");

/*
 * tgid -> CLOCK_BOOTTIME of its last exec, for the exit's duration. LRU: a process whose
 * exit was never seen (a missed event) must not pin a slot forever; an evicted entry only
 * means that exit measures from fork instead, and says so in its flags.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u64);
} exec_start SEC(".maps");

SEC("tp_btf/sched_process_exec")
int BPF_PROG(handle_sched_process_exec, struct task_struct *task, pid_t old_pid,
	     struct linux_binprm *bprm)
{
	struct ebf_exec_event_v1 *e;
	__u32 zero = 0, tgid;
	__u64 arg_start, arg_end, total, size;
	long n;

	if (current__is_self())
		return 0;
	e = bpf_map_lookup_elem(&exec_scratch, &zero);
	if (!e)
		return 0;

	task__fill(&e->task, task, current__cgroup_id());
	comm__copy(e->parent_comm, task->real_parent->comm);
	e->flags = 0;
	e->_pad0 = 0;

	n = bpf_probe_read_kernel_str(&e->filename, sizeof(e->filename), BPF_CORE_READ(bprm, filename));
	if (n < 0)
		e->filename[0] = 0;
	else if (n == sizeof(e->filename))
		e->flags |= EBF_EXEC_FILENAME_TRUNCATED;

	arg_start = task->mm->arg_start;
	arg_end = task->mm->arg_end;
	total = arg_end > arg_start ? arg_end - arg_start : 0;
	size = total;
	if (size > args_max)
		size = args_max;
	if (size > EBF_ARGS_CAP)
		size = EBF_ARGS_CAP;
	if (size < total)
		e->flags |= EBF_EXEC_ARGS_TRUNCATED;
	/* The new image's argv pages were written by this exec, so they are present. */
	if (size && bpf_probe_read_user(&e->args, size, (void *)arg_start)) {
		e->flags |= EBF_EXEC_ARGS_READ_FAILED;
		size = 0;
	}
	e->args_size = size;
	e->args_total = total;

	header__fill(&e->header, EBF_EVENT_EXEC, 1,
		     __builtin_offsetof(struct ebf_exec_event_v1, args) + size);
	tgid = e->task.tgid;
	bpf_map_update_elem(&exec_start, &tgid, &e->header.timestamp_ns, BPF_ANY);
	output__emit(ctx, e, __builtin_offsetof(struct ebf_exec_event_v1, args) + size);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(handle_sched_process_fork, struct task_struct *parent, struct task_struct *child)
{
	struct ebf_fork_event_v1 e = {};
	__u32 child_pid = child->pid;
	__u32 child_tgid = child->tgid;

	/* A new thread shares its parent's tgid; only new processes matter for ancestry. */
	if (child_pid != child_tgid || current__is_self())
		return 0;
	task__fill(&e.task, parent, current__cgroup_id());
	e.child_pid = child_pid;
	e.child_tgid = child_tgid;
	header__fill(&e.header, EBF_EVENT_FORK, 1, sizeof(e));
	output__emit(ctx, &e, sizeof(e));
	return 0;
}

/* The kernel 6.16+ tracepoint has a second argument (group_dead); the first is all we read. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(handle_sched_process_exit, struct task_struct *task)
{
	struct ebf_exit_event_v1 e = {};
	__u32 tgid = task->tgid;
	__u32 code;
	__u64 *start;

	/* One record per process: when its thread-group leader exits. */
	if (task->pid != tgid || current__is_self())
		return 0;
	task__fill(&e.task, task, current__cgroup_id());
	header__fill(&e.header, EBF_EVENT_EXIT, 1, sizeof(e));

	start = bpf_map_lookup_elem(&exec_start, &tgid);
	if (start) {
		e.duration_ns = e.header.timestamp_ns - *start;
		bpf_map_delete_elem(&exec_start, &tgid);
	} else {
		e.duration_ns = e.header.timestamp_ns - task->start_boottime;
		e.flags |= EBF_EXIT_DURATION_FROM_FORK;
	}
	/* exit_code is a wait status: exit status in bits 8-15, signal in 0-6, core in 7. */
	code = task->exit_code;
	e.signal = code & 0x7f;
	e.exit_code = e.signal ? 0 : (code >> 8) & 0xff;
	if (code & 0x80)
		e.flags |= EBF_EXIT_CORE_DUMPED;
	output__emit(ctx, &e, sizeof(e));
	return 0;
}
