// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Not loaded: this object exists so that its BTF describes every wire type and constant of
 * events.h. `npm run gen:layout` reads that BTF and writes the TypeScript layout.
 */
#include "vmlinux.h"
#include "events.h"

struct ebf_all_types {
	struct ebf_event_header header;
	struct ebf_task task;
	struct ebf_exec_event_v1 exec_v1;
	struct ebf_exit_event_v1 exit_v1;
	struct ebf_fork_event_v1 fork_v1;
	struct ebf_tcp_event_v1 tcp_v1;
	struct ebf_syscall_event_v1 syscall_v1;
	struct ebf_syscall_count_key syscall_count_key;
	struct ebf_syscall_slot_counts syscall_slot_counts;
	struct ebf_file_event_v1 file_v1;
	struct ebf_file_key file_key;
	struct ebf_file_seen file_seen;
	struct ebf_traffic_key traffic_key;
	struct ebf_traffic_value traffic_value;
	enum ebf_limits limits;
	enum ebf_event_type event_type;
	enum ebf_drop_reason drop_reason;
	enum ebf_exec_flags exec_flags;
	enum ebf_exit_flags exit_flags;
	enum ebf_tcp_kind tcp_kind;
	enum ebf_tcp_role tcp_role;
	enum ebf_traffic_direction traffic_direction;
	enum ebf_file_access file_access;
	enum ebf_file_op file_op;
	enum ebf_file_flags file_flags;
};

struct ebf_all_types ebf_all_types __attribute__((used));
