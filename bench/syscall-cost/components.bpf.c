// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Parts of the shipped sys_enter counter, one program each, for bench/syscall-cost: what each
 * step costs above the empty program, so the next change to syscall.bpf.c aims at the part that
 * costs. Every program writes one per-CPU value, so clang cannot drop the work it measures.
 *   task_only: the task pointer, the self check and one per-CPU array write (the floor of any
 *              counter that filters itself out);
 *   chase:     the same plus task -> css_set -> cgroup -> kernfs_node -> id;
 *   helper:    bpf_get_current_cgroup_id() instead of the task pointer and the chase.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile __u32 self_tgid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} sink SEC(".maps");

SEC("tp_btf/sys_enter")
int BPF_PROG(task_only, struct pt_regs *regs, long id)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u32 zero = 0;
	__u64 *out;

	if ((self_tgid && task->tgid == self_tgid) || id < 0)
		return 0;
	out = bpf_map_lookup_elem(&sink, &zero);
	if (out)
		*out = task->cgroups ? 1 : 2; /* the verifier allows no arithmetic on the pointer */
	return 0;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(chase, struct pt_regs *regs, long id)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u32 zero = 0;
	__u64 *out;

	if ((self_tgid && task->tgid == self_tgid) || id < 0)
		return 0;
	out = bpf_map_lookup_elem(&sink, &zero);
	if (out)
		*out += task->cgroups->dfl_cgrp->kn->id;
	return 0;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(helper, struct pt_regs *regs, long id)
{
	__u32 zero = 0;
	__u64 *out;

	if (id < 0)
		return 0;
	out = bpf_map_lookup_elem(&sink, &zero);
	if (out)
		*out += bpf_get_current_cgroup_id();
	return 0;
}
