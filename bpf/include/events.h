/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The one definition of ebbflow's kernel -> userspace wire format.
 *
 * Rules (see bpf/README.md):
 *  - fixed-width __u8..__u64 and fixed arrays only; padding is written out as named fields;
 *  - every struct's size is pinned by a _Static_assert;
 *  - every record starts with struct ebf_event_header, whose size lets a reader skip a record
 *    it does not know;
 *  - a layout change is a new record version (or type); a released layout is never edited.
 *
 * The TypeScript decoders do not copy these numbers by hand: bpf/layout.bpf.c instantiates
 * every type below, and `npm run gen:layout` turns the object's BTF into
 * services/common/src/events/layout.generated.ts. A test compiles this header with the host
 * compiler and checks offsetof/sizeof against the generated file.
 *
 * Included both by BPF programs (after vmlinux.h) and by host C (after <linux/types.h>).
 */
#ifndef EBBFLOW_EVENTS_H
#define EBBFLOW_EVENTS_H

enum ebf_limits {
	EBF_COMM_LEN = 16,
	/* Longest filename kept by an exec record; longer ones are cut and flagged. */
	EBF_FILENAME_LEN = 256,
	/* Hard cap on argv bytes per exec record. The loader picks the actual bound (args_max);
	 * a power of two so the verifier can bound a variable-length copy with a mask. */
	EBF_ARGS_CAP = 4096,
	/* String arguments (paths, fs types) copied for security-relevant syscalls. */
	EBF_SYSCALL_STR_LEN = 128,
	/* Syscall numbers tracked per event/counted (x86_64 has ~460). */
	EBF_SYSCALL_NR_MAX = 512,
	/* Cgroups whose syscalls are counted in the per-CPU slot array (the rest: the hash). */
	EBF_SYSCALL_SLOTS = 128,
	/* Bytes of path a file record can hold. Components are copied at offsets masked with
	 * EBF_FILE_PATH_MASK, each at most EBF_FILE_NAME_LEN bytes, so the verifier can bound
	 * every write: paths longer than the mask are cut and flagged. */
	EBF_FILE_PATH_CAP = 4096,
	EBF_FILE_PATH_MASK = 2047,
	EBF_FILE_NAME_LEN = 256,
	/* Dentries walked up from a file before the path is cut (and flagged). */
	EBF_FILE_PATH_DEPTH = 32,
};

enum ebf_event_type {
	EBF_EVENT_EXEC = 1,
	EBF_EVENT_EXIT = 2,
	EBF_EVENT_FORK = 3,
	EBF_EVENT_TCP = 4,
	EBF_EVENT_SYSCALL = 5,
	EBF_EVENT_FILE = 6,
};

/* Why a record or counter update was lost; index into each object's per-CPU `drops` map. */
enum ebf_drop_reason {
	EBF_DROP_BUFFER_FULL = 0, /* ring/perf buffer had no room */
	EBF_DROP_MAP_FULL = 1,    /* a bounded tracking or counter map refused a new key */
	EBF_DROP_READ_FAILED = 2, /* kernel memory needed for the record could not be read */
	EBF_DROP_REASON_COUNT = 4,
};

enum ebf_exec_flags {
	EBF_EXEC_ARGS_TRUNCATED = 1,
	EBF_EXEC_FILENAME_TRUNCATED = 2,
	EBF_EXEC_ARGS_READ_FAILED = 4,
};

enum ebf_exit_flags {
	/* The process exec'd before capture started: duration counts from its fork instead. */
	EBF_EXIT_DURATION_FROM_FORK = 1,
	EBF_EXIT_CORE_DUMPED = 2,
};

enum ebf_tcp_kind {
	EBF_TCP_CONNECT = 1,        /* active open reached ESTABLISHED */
	EBF_TCP_ACCEPT = 2,         /* accept() returned a passive open (or it closed unaccepted) */
	EBF_TCP_CLOSE = 3,          /* a tracked connection reached CLOSE */
	EBF_TCP_CONNECT_FAILED = 4, /* active open went from SYN_SENT straight to CLOSE */
};

enum ebf_tcp_role {
	EBF_TCP_ROLE_ACTIVE = 1,
	EBF_TCP_ROLE_PASSIVE = 2,
};

enum ebf_traffic_direction {
	EBF_DIR_INGRESS = 0,
	EBF_DIR_EGRESS = 1,
};

/* One access kind per file record (an O_RDWR open is two records, read and write). */
enum ebf_file_access {
	EBF_FILE_READ = 1,
	EBF_FILE_WRITE = 2,
	EBF_FILE_EXEC = 4,
	EBF_FILE_CREATE = 8,
	EBF_FILE_REMOVE = 16,
	/* A truncate: an open with O_TRUNC, creat, truncate or ftruncate (Landlock's TRUNCATE). */
	EBF_FILE_TRUNCATE = 32,
};

/* The call that made the access. */
enum ebf_file_op {
	EBF_FILE_OP_OPEN = 1,   /* open, openat, openat2, creat */
	EBF_FILE_OP_EXEC = 2,   /* the exec'd binary, or its program interpreter (ld.so) */
	EBF_FILE_OP_UNLINK = 3, /* unlink, unlinkat */
	EBF_FILE_OP_RMDIR = 4,  /* rmdir, unlinkat(AT_REMOVEDIR) */
	EBF_FILE_OP_MKDIR = 5,  /* mkdir, mkdirat */
	EBF_FILE_OP_RENAME = 6, /* rename*: the old name is a remove, the new one a create */
	EBF_FILE_OP_TRUNCATE = 7, /* truncate, ftruncate */
};

enum ebf_file_flags {
	EBF_FILE_PATH_TRUNCATED = 1, /* deeper than EBF_FILE_PATH_DEPTH or longer than the mask */
	EBF_FILE_DIRECTORY = 2,      /* the path names a directory */
	/* The path is a directory's resolved path joined with the name the caller passed, as
	 * written (unlink, mkdir, rename: the name no longer, or not yet, had a file). */
	EBF_FILE_PATH_JOINED = 4,
};

struct ebf_event_header {
	__u16 type;    /* enum ebf_event_type */
	__u16 version; /* layout version of that type, starting at 1 */
	__u32 size;    /* bytes of the whole record, header included */
	__u64 timestamp_ns; /* CLOCK_BOOTTIME (bpf_ktime_get_boot_ns) */
};
_Static_assert(sizeof(struct ebf_event_header) == 16, "ebf_event_header layout");

/* The task an event happened in (current, or the exiting task). */
struct ebf_task {
	__u64 cgroup_id; /* cgroup v2 id: the inode number of the cgroup's directory */
	__u32 pid;       /* thread id */
	__u32 tgid;      /* process id */
	__u32 ppid;      /* real parent's tgid */
	__u32 uid;
	__u32 gid;
	__u32 pidns_ino;
	__u32 mntns_ino;
	__u32 _pad0;
	__u8 comm[EBF_COMM_LEN];
};
_Static_assert(sizeof(struct ebf_task) == 56, "ebf_task layout");

/* EBF_EVENT_EXEC v1. Variable length: args[] holds args_size bytes of NUL-separated argv. */
struct ebf_exec_event_v1 {
	struct ebf_event_header header;
	struct ebf_task task;
	__u8 parent_comm[EBF_COMM_LEN];
	__u32 args_size;    /* bytes present in args[] */
	__u32 args_total;   /* bytes argv had in the process (>= args_size when truncated) */
	__u32 flags;        /* enum ebf_exec_flags */
	__u32 _pad0;
	__u8 filename[EBF_FILENAME_LEN]; /* NUL-terminated */
	__u8 args[EBF_ARGS_CAP];
};
_Static_assert(sizeof(struct ebf_exec_event_v1) == 16 + 56 + 16 + 16 + 256 + 4096,
	       "ebf_exec_event_v1 layout");

/* EBF_EVENT_EXIT v1: a process (thread-group leader) ended. */
struct ebf_exit_event_v1 {
	struct ebf_event_header header;
	struct ebf_task task;
	__u64 duration_ns; /* since exec (or fork, see flags) */
	__u32 exit_code;   /* the status passed to exit() when signal == 0 */
	__u32 signal;      /* terminating signal, 0 for a normal exit */
	__u32 flags;       /* enum ebf_exit_flags */
	__u32 _pad0;
};
_Static_assert(sizeof(struct ebf_exit_event_v1) == 16 + 56 + 24, "ebf_exit_event_v1 layout");

/* EBF_EVENT_FORK v1: a new process (not a thread); task is the parent. */
struct ebf_fork_event_v1 {
	struct ebf_event_header header;
	struct ebf_task task;
	__u32 child_pid;
	__u32 child_tgid;
};
_Static_assert(sizeof(struct ebf_fork_event_v1) == 16 + 56 + 8, "ebf_fork_event_v1 layout");

/* EBF_EVENT_TCP v1: one step of a TCP connection's life. */
struct ebf_tcp_event_v1 {
	struct ebf_event_header header;
	__u64 cgroup_id;      /* the owner's cgroup (see pid); the listener's when unaccepted */
	__u64 sock_id;        /* same for every record of one connection, unique per boot */
	__u64 duration_ns;    /* CLOSE: since the connection started */
	__u64 bytes_sent;     /* CLOSE: bytes acknowledged by the peer */
	__u64 bytes_received; /* CLOSE: bytes received */
	__u32 pid;            /* caller of connect(), or of accept(); 0: closed unaccepted */
	__u32 netns_ino;
	__u8 saddr[16];       /* IPv4 in the first 4 bytes */
	__u8 daddr[16];
	__u16 sport;          /* host byte order */
	__u16 dport;
	__u16 family;         /* AF_INET or AF_INET6; IPv4-mapped IPv6 as AF_INET */
	__u8 kind;            /* enum ebf_tcp_kind */
	__u8 role;            /* enum ebf_tcp_role */
	__u8 comm[EBF_COMM_LEN];
};
_Static_assert(sizeof(struct ebf_tcp_event_v1) == 16 + 40 + 8 + 32 + 8 + 16,
	       "ebf_tcp_event_v1 layout");

/* EBF_EVENT_SYSCALL v1: a security-relevant syscall, at entry, with its raw arguments. */
struct ebf_syscall_event_v1 {
	struct ebf_event_header header;
	struct ebf_task task;
	__u64 args[6];
	__u32 syscall_nr;
	__u16 str_size[2]; /* bytes in str[i], NUL included; 0 when the argument is no string */
	__u8 str[2][EBF_SYSCALL_STR_LEN];
};
_Static_assert(sizeof(struct ebf_syscall_event_v1) == 16 + 56 + 48 + 8 + 256,
	       "ebf_syscall_event_v1 layout");

/*
 * Key of the in-kernel file dedup map: one entry per (cgroup, object, access). For an opened
 * or exec'd file the object is its (mount, dentry, inode); for a name-based call (unlink,
 * mkdir, rename) the directory's dentry and a hash of the name passed. Kernel addresses stay
 * in the collector: they only pair a record with its counter.
 */
struct ebf_file_key {
	__u64 cgroup_id;
	__u64 object;
	__u64 parent;
	__u64 ino;
	__u8 access; /* enum ebf_file_access */
	__u8 _pad0[7];
};
_Static_assert(sizeof(struct ebf_file_key) == 40, "ebf_file_key layout");

/* Value of the file dedup map. */
struct ebf_file_seen {
	__u64 window_start_ns; /* when the current record was emitted (CLOCK_BOOTTIME) */
	__u64 repeats;         /* accesses absorbed since the entry was made, never reset */
	__u64 last_ns;         /* the latest access */
};
_Static_assert(sizeof(struct ebf_file_seen) == 24, "ebf_file_seen layout");

/*
 * EBF_EVENT_FILE v1: the first access of a (cgroup, path, access) in a dedup window.
 * Variable length: path[] holds path_size bytes, NUL included. Repeats inside the window
 * are counted in the dedup map, keyed by `key`, and read by the collector.
 */
struct ebf_file_event_v1 {
	struct ebf_event_header header;
	struct ebf_task task;
	struct ebf_file_key key;
	__u32 flags;     /* enum ebf_file_flags */
	__u16 path_size; /* bytes present in path[] */
	__u8 access;     /* enum ebf_file_access */
	__u8 op;         /* enum ebf_file_op */
	__u8 path[EBF_FILE_PATH_CAP];
};
_Static_assert(sizeof(struct ebf_file_event_v1) == 16 + 56 + 40 + 8 + 4096,
	       "ebf_file_event_v1 layout");

/* Key of the in-kernel syscall counter map (value: __u64 count per CPU). */
struct ebf_syscall_count_key {
	__u64 cgroup_id;
	__u32 syscall_nr;
	__u32 _pad0;
};
_Static_assert(sizeof(struct ebf_syscall_count_key) == 16, "ebf_syscall_count_key layout");

/*
 * Value of the syscall slot counter map (per CPU): the counts of one cgroup by syscall number.
 * Userspace assigns a slot to each busy cgroup; the rest are counted in the hash map above.
 */
struct ebf_syscall_slot_counts {
	__u64 count[EBF_SYSCALL_NR_MAX];
};
_Static_assert(sizeof(struct ebf_syscall_slot_counts) == 8 * EBF_SYSCALL_NR_MAX,
	       "ebf_syscall_slot_counts layout");

/* Key of the cgroup_skb traffic counter map. Ports in host byte order. */
struct ebf_traffic_key {
	__u64 cgroup_id;
	__u8 remote_addr[16]; /* IPv4 in the first 4 bytes */
	__u16 remote_port;
	__u16 local_port;
	__u8 direction; /* enum ebf_traffic_direction */
	__u8 protocol;  /* IPPROTO_TCP, IPPROTO_UDP, ... */
	__u8 family;    /* AF_INET or AF_INET6 */
	__u8 _pad0;
};
_Static_assert(sizeof(struct ebf_traffic_key) == 32, "ebf_traffic_key layout");

struct ebf_traffic_value {
	__u64 packets;
	__u64 bytes;
};
_Static_assert(sizeof(struct ebf_traffic_value) == 16, "ebf_traffic_value layout");

#endif /* EBBFLOW_EVENTS_H */
