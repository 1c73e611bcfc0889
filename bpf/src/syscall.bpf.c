// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * System calls: every call is counted per (cgroup, syscall) in the kernel, with no record
 * per call; a chosen set of security-relevant calls also emits a record with its arguments.
 * One tp_btf hook on sys_enter serves both.
 *
 * Counting runs on every syscall of the node, so its fast path avoids the hash map: userspace
 * gives each busy cgroup a slot of a per-CPU array (a counter per syscall number), and a
 * per-CPU cache remembers the last cgroup seen and its slot. A call from the same cgroup as
 * the CPU's previous one costs two inlined per-CPU array lookups, one global load and two
 * compares (cgroup, generation); the hash lookup on a 16-byte key it replaces was ~55-75 ns
 * of a ~140 ns run (bpf_stats). Cgroups without a slot (new ones, until userspace's next read,
 * or more than the slots) are counted in the hash.
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

/* cgroup id -> slot, written only by userspace. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, EBF_SYSCALL_SLOTS);
	__type(key, __u64);
	__type(value, __u32);
} syscall_cgroup_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, EBF_SYSCALL_SLOTS);
	__type(key, __u32);
	__type(value, struct ebf_syscall_slot_counts);
} syscall_slot_counts SEC(".maps");

/*
 * Bumped by userspace after every change to syscall_cgroup_slots (a slot assigned, freed or
 * given to another cgroup). A per-CPU cache entry is believed only while it carries the
 * current generation: one compare on a hit guards against a stale slot, where an owner array
 * cost one more lookup per call (bench/RESULTS.md, issue 20). A global in a section of its
 * own (libbpf makes it a one-entry array map, ".data.slot_gen", that userspace updates): the
 * program reads it with one load, no lookup.
 */
volatile __u64 syscall_slot_generation SEC(".data.slot_gen") = 0;

#define SLOT_NONE 0xffffffffu

struct slot_cache {
	__u64 cgroup_id;
	__u64 generation; /* of syscall_slot_generation when the entry was filled */
	__u32 slot;       /* or SLOT_NONE: counted in the hash */
	__u32 _pad0;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct slot_cache);
} syscall_slot_cache SEC(".maps");

static __always_inline void counts__add_hash(__u64 cgroup_id, __u32 nr)
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

static __always_inline bool counts__add_slot(__u64 cgroup_id, __u32 nr)
{
	struct ebf_syscall_slot_counts *counts;
	struct slot_cache *cache;
	__u32 zero = 0, slot, *found;
	__u64 now;

	if (nr >= EBF_SYSCALL_NR_MAX)
		return false;
	cache = bpf_map_lookup_elem(&syscall_slot_cache, &zero);
	if (!cache)
		return false;
	now = syscall_slot_generation;
	if (cache->cgroup_id != cgroup_id || cache->generation != now) {
		/*
		 * The generation is read before the slot map: userspace bumps it after its map
		 * write, so an entry filled from an older map state carries an older generation.
		 */
		found = bpf_map_lookup_elem(&syscall_cgroup_slots, &cgroup_id);
		cache->cgroup_id = cgroup_id;
		cache->generation = now;
		cache->slot = found ? *found : SLOT_NONE;
	}
	slot = cache->slot;
	if (slot == SLOT_NONE)
		return false;
	counts = bpf_map_lookup_elem(&syscall_slot_counts, &slot);
	if (!counts)
		return false;
	/* clang drops a repeated bound check; the barrier makes it stay for the verifier. */
	barrier_var(nr);
	if (nr >= EBF_SYSCALL_NR_MAX)
		return false;
	counts->count[nr] += 1; /* per-CPU value: no other writer while this program runs here */
	return true;
}

static __always_inline void counts__add(__u64 cgroup_id, __u32 nr)
{
	if (!counts__add_slot(cgroup_id, nr))
		counts__add_hash(cgroup_id, nr);
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
	struct task_struct *task;
	__u64 cgroup_id;
	__u32 nr = id, zero = 0, i, strings;

	/* One task pointer serves the self check and the cgroup id: a helper call less per run. */
	task = bpf_get_current_task_btf();
	if ((self_tgid && task->tgid == self_tgid) || id < 0)
		return 0;
	cgroup_id = task->cgroups->dfl_cgrp->kn->id;
	counts__add(cgroup_id, nr);

	if (nr >= EBF_SYSCALL_NR_MAX || !syscall_events[nr])
		return 0;
	e = bpf_map_lookup_elem(&syscall_scratch, &zero);
	if (!e)
		return 0;
	task__fill(&e->task, task, cgroup_id);
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
