// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * System calls: every call is counted per (cgroup, syscall) in the kernel, with no record
 * per call; a chosen set of security-relevant calls also emits a record with its arguments.
 * One tp_btf hook on sys_enter serves both, so a getppid storm pays one program run and one
 * per-CPU hash update per call.
 */
#include "common.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by the loader: 1 for each syscall number that emits a record. */
const volatile __u8 syscall_events[EBF_SYSCALL_NR_MAX] = {};
/*
 * Set by the loader: which arguments of that syscall are user strings to copy, as argument
 * index + 1 in the low nibble (first string) and the high nibble (second string); 0 = none.
 */
const volatile __u8 syscall_string_args[EBF_SYSCALL_NR_MAX] = {};

/*
 * Not LRU: an evicted key would lose its counts without a trace. When the map is full the
 * increment is counted as a MAP_FULL drop instead; userspace deletes keys of dead cgroups.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 32768);
	__type(key, struct ebf_syscall_count_key);
	__type(value, __u64);
} syscall_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ebf_syscall_event_v1);
} syscall_scratch SEC(".maps");

static __always_inline void counts__add(__u64 cgroup_id, __u32 nr)
{
	struct ebf_syscall_count_key key = { .cgroup_id = cgroup_id, .syscall_nr = nr };
	__u64 one = 1, *count;

	count = bpf_map_lookup_elem(&syscall_counts, &key);
	if (count) {
		*count += 1;
		return;
	}
	/* Another CPU may have created the key meanwhile: then ours is a per-CPU slot of it. */
	if (bpf_map_update_elem(&syscall_counts, &key, &one, BPF_NOEXIST)) {
		count = bpf_map_lookup_elem(&syscall_counts, &key);
		if (count)
			*count += 1;
		else
			drops__count(EBF_DROP_MAP_FULL);
	}
}

static __always_inline __u64 regs__arg(struct pt_regs *regs, __u32 i)
{
	/* x86_64 syscall convention: rdi, rsi, rdx, r10, r8, r9. */
	switch (i) {
	case 0: return BPF_CORE_READ(regs, di);
	case 1: return BPF_CORE_READ(regs, si);
	case 2: return BPF_CORE_READ(regs, dx);
	case 3: return BPF_CORE_READ(regs, r10);
	case 4: return BPF_CORE_READ(regs, r8);
	default: return BPF_CORE_READ(regs, r9);
	}
}

static __always_inline void event__string(struct ebf_syscall_event_v1 *e, __u32 slot, __u32 arg)
{
	__u32 index = arg - 1; /* arg 0 means "no string": index wraps and is rejected */
	long n;

	if (index > 5)
		return;
	n = bpf_probe_read_user_str(&e->str[slot & 1], EBF_SYSCALL_STR_LEN, (void *)e->args[index]);
	e->str_size[slot & 1] = n > 0 ? n : 0;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(handle_sys_enter, struct pt_regs *regs, long id)
{
	struct ebf_syscall_event_v1 *e;
	__u64 cgroup_id;
	__u32 nr = id, zero = 0, i, strings;

	if (current__is_self() || id < 0)
		return 0;
	cgroup_id = current__cgroup_id();
	counts__add(cgroup_id, nr);

	if (nr >= EBF_SYSCALL_NR_MAX || !syscall_events[nr])
		return 0;
	e = bpf_map_lookup_elem(&syscall_scratch, &zero);
	if (!e)
		return 0;
	task__fill(&e->task, bpf_get_current_task_btf(), cgroup_id);
	e->syscall_nr = nr;
	for (i = 0; i < 6; i++)
		e->args[i] = regs__arg(regs, i);
	e->str_size[0] = 0;
	e->str_size[1] = 0;
	strings = syscall_string_args[nr];
	event__string(e, 0, strings & 0xf);
	event__string(e, 1, strings >> 4);
	header__fill(&e->header, EBF_EVENT_SYSCALL, 1, sizeof(*e));
	output__emit(ctx, e, sizeof(*e));
	return 0;
}
