// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Network: the TCP lifecycle from sock:inet_sock_set_state (no kprobes needed), and
 * per-cgroup traffic counters from cgroup_skb programs attached at the cgroup v2 root.
 */
#include "common.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AF_INET 2
#define AF_INET6 10
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17

/* include/net/tcp_states.h */
enum {
	TCP_ESTABLISHED_ = 1,
	TCP_SYN_SENT_ = 2,
	TCP_SYN_RECV_ = 3,
	TCP_CLOSE_ = 7,
};

/* Set by the loader: this machine's numbers of accept(2) and accept4(2); ~0 = absent. */
const volatile __u32 accept_nr = ~0U;
const volatile __u32 accept4_nr = ~0U;

enum conn_flags {
	/* A process took the connection with accept()/accept4(): owner fields are set. */
	CONN_ACCEPTED = 1,
	/* The ACCEPT record was emitted. */
	CONN_ACCEPT_SENT = 2,
};

struct conn_start {
	__u64 start_ns;
	__u64 sock_id;
	/* tcp_sock counters when the connection was established, see tcp__data_bytes(). */
	__u64 acked_base;
	__u64 received_base;
	/* Owner: the caller of connect(), or of the accept() that returned the socket. */
	__u64 cgroup_id;
	__u32 pid;
	__u8 role;
	__u8 flags; /* enum conn_flags */
	/*
	 * Endpoints taken at ESTABLISHED: tcp_set_state(TCP_CLOSE) unhashes the socket and
	 * inet_put_port() zeroes its local port before inet_sock_set_state fires, so a close
	 * cannot read them from the socket any more.
	 */
	__u16 family; /* AF_INET for IPv4-mapped IPv6 sockets */
	__u16 sport;
	__u16 dport;
	__u8 _pad[4];
	__u8 saddr[16];
	__u8 daddr[16];
	__u8 comm[EBF_COMM_LEN];
};

/*
 * Connections seen opening, keyed by socket address, until they close. Not LRU: an evicted
 * entry would lose its close. A full map is counted (MAP_FULL) and that connection is not
 * followed.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct conn_start);
} conns SEC(".maps");

/* Counters per (cgroup, direction, protocol, remote address, ports). Bounded LRU: the least
 * recently active flows make room; userspace reads deltas often enough to keep them. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct ebf_traffic_key);
	__type(value, struct ebf_traffic_value);
} traffic SEC(".maps");

__u64 sock_id_seq = 0;

static __always_inline __u64 sock__cgroup_id(struct sock *sk)
{
	/* struct sock_cgroup_data holds a cgroup pointer since 5.15. */
	return BPF_CORE_READ(sk, sk_cgrp_data.cgroup, kn, id);
}

#define RCV_SHUTDOWN 1
#define SEND_SHUTDOWN 2

/*
 * Payload bytes of a closing connection. tcp_sock's bytes_acked and bytes_received
 * (RFC 4898) advance with the sequence space, which SYN and FIN occupy too: the SYN is left
 * out by counting from the values at ESTABLISHED, our FIN by checking whether it was sent
 * (SEND_SHUTDOWN) and acknowledged (snd_una reached write_seq, which counts it), the peer's
 * FIN by RCV_SHUTDOWN (tcp_fin() sets it after rcv_nxt moved past the FIN).
 */
static __always_inline void tcp__data_bytes(struct sock *sk, struct conn_start *start,
					    __u64 *sent, __u64 *received)
{
	struct tcp_sock *tp = (struct tcp_sock *)sk;
	__u64 acked = BPF_CORE_READ(tp, bytes_acked) - start->acked_base;
	__u64 got = BPF_CORE_READ(tp, bytes_received) - start->received_base;
	__u8 shutdown = BPF_CORE_READ(sk, sk_shutdown);

	if ((shutdown & SEND_SHUTDOWN) && acked > 0 &&
	    BPF_CORE_READ(tp, snd_una) == BPF_CORE_READ(tp, write_seq))
		acked -= 1;
	if ((shutdown & RCV_SHUTDOWN) && got > 0)
		got -= 1;
	*sent = acked;
	*received = got;
}

/*
 * The connection's endpoints as the socket has them now. An IPv6 socket talking to an
 * IPv4 peer (a dual-stack listener, or a connect to ::ffff:a.b.c.d) carries IPv4-mapped
 * addresses; its inet_sock fields hold the plain IPv4 ones, which are reported instead.
 */
static __always_inline void conns__endpoints(struct sock *sk, struct conn_start *start)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	__u16 sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	__u8 *d = start->daddr;

	/* inet_sport survives inet_put_port(): the only source left once CLOSE is reached. */
	if (!sport)
		sport = bpf_ntohs(BPF_CORE_READ((struct inet_sock *)sk, inet_sport));
	start->sport = sport;
	start->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	__builtin_memset(start->saddr, 0, sizeof(start->saddr));
	__builtin_memset(start->daddr, 0, sizeof(start->daddr));
	if (family == AF_INET6) {
		bpf_core_read(start->daddr, 16, &sk->__sk_common.skc_v6_daddr);
		if (d[0] | d[1] | d[2] | d[3] | d[4] | d[5] | d[6] | d[7] | d[8] | d[9] ||
		    d[10] != 0xff || d[11] != 0xff) {
			bpf_core_read(start->saddr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
			start->family = AF_INET6;
			return;
		}
		__builtin_memset(start->daddr, 0, sizeof(start->daddr));
	}
	bpf_core_read(start->saddr, 4, &sk->__sk_common.skc_rcv_saddr);
	bpf_core_read(start->daddr, 4, &sk->__sk_common.skc_daddr);
	start->family = AF_INET;
}

static __always_inline void conns__established(struct sock *sk, struct conn_start *start)
{
	struct tcp_sock *tp = (struct tcp_sock *)sk;

	start->acked_base = BPF_CORE_READ(tp, bytes_acked);
	start->received_base = BPF_CORE_READ(tp, bytes_received);
	conns__endpoints(sk, start);
}

static __always_inline void tcp__emit(void *ctx, struct sock *sk, struct conn_start *start,
				      __u8 kind, __u64 now)
{
	struct ebf_tcp_event_v1 e = {};

	e.cgroup_id = start->cgroup_id;
	e.sock_id = start->sock_id;
	e.pid = start->pid;
	e.role = start->role;
	e.kind = kind;
	__builtin_memcpy(e.comm, start->comm, sizeof(e.comm));
	e.netns_ino = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	e.family = start->family;
	e.sport = start->sport;
	e.dport = start->dport;
	__builtin_memcpy(e.saddr, start->saddr, sizeof(e.saddr));
	__builtin_memcpy(e.daddr, start->daddr, sizeof(e.daddr));
	if (kind == EBF_TCP_CLOSE || kind == EBF_TCP_CONNECT_FAILED) {
		e.duration_ns = now - start->start_ns;
		if (kind == EBF_TCP_CLOSE)
			tcp__data_bytes(sk, start, &e.bytes_sent, &e.bytes_received);
	}
	header__fill(&e.header, EBF_EVENT_TCP, 1, sizeof(e));
	e.header.timestamp_ns = now;
	output__emit(ctx, &e, sizeof(e));
}

static __always_inline void conns__track(struct sock *sk, __u64 key, __u8 role, __u64 now)
{
	struct conn_start start = { .start_ns = now, .role = role };

	start.sock_id = __sync_fetch_and_add(&sock_id_seq, 1) + 1;
	if (role == EBF_TCP_ROLE_ACTIVE) {
		/* connect() runs in the caller's context: the owner is current. */
		start.pid = bpf_get_current_pid_tgid() >> 32;
		bpf_get_current_comm(&start.comm, sizeof(start.comm));
		start.cgroup_id = current__cgroup_id();
	} else {
		/* Until accept() names the owner: the listener's cgroup, inherited by the child. */
		start.cgroup_id = sock__cgroup_id(sk);
	}
	if (bpf_map_update_elem(&conns, &key, &start, BPF_ANY))
		drops__count(EBF_DROP_MAP_FULL);
}

/*
 * tp_btf (5.5+) rather than the classic tracepoint: a typed socket pointer, and no tracefs
 * mount needed on minimal hosts.
 */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(handle_inet_sock_set_state, struct sock *sk, int oldstate, int newstate)
{
	__u64 key = (__u64)sk, now;
	struct conn_start *start;

	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return 0;
	now = bpf_ktime_get_boot_ns();

	if (newstate == TCP_SYN_SENT_) {
		if (!current__is_self())
			conns__track(sk, key, EBF_TCP_ROLE_ACTIVE, now);
		return 0;
	}
	if (newstate == TCP_ESTABLISHED_ && oldstate == TCP_SYN_RECV_) {
		/*
		 * A passive open completes in softirq: current is unrelated. The ACCEPT record
		 * waits for the accept() that hands the socket to a process (handle_sys_exit).
		 */
		conns__track(sk, key, EBF_TCP_ROLE_PASSIVE, now);
		start = bpf_map_lookup_elem(&conns, &key);
		if (start)
			conns__established(sk, start);
		return 0;
	}
	start = bpf_map_lookup_elem(&conns, &key);
	if (!start)
		return 0;
	if (newstate == TCP_ESTABLISHED_ && oldstate == TCP_SYN_SENT_) {
		conns__established(sk, start);
		tcp__emit(ctx, sk, start, EBF_TCP_CONNECT, now);
	} else if (newstate == TCP_CLOSE_) {
		if (oldstate == TCP_SYN_SENT_) {
			/* Never established: what the socket still has (its local port may be 0). */
			conns__endpoints(sk, start);
			tcp__emit(ctx, sk, start, EBF_TCP_CONNECT_FAILED, now);
		} else {
			/* Closed before any process accepted it: still reported, with no owner. */
			if (start->role == EBF_TCP_ROLE_PASSIVE && !(start->flags & CONN_ACCEPT_SENT))
				tcp__emit(ctx, sk, start, EBF_TCP_ACCEPT, now);
			tcp__emit(ctx, sk, start, EBF_TCP_CLOSE, now);
		}
		bpf_map_delete_elem(&conns, &key);
	}
	return 0;
}

static __always_inline long syscall__nr(struct pt_regs *regs)
{
#if defined(__TARGET_ARCH_x86)
	return regs->orig_ax;
#elif defined(__TARGET_ARCH_arm64)
	return regs->syscallno;
#else
#error "syscall__nr: unsupported architecture"
#endif
}

/* The socket behind a file descriptor of the current task, or NULL. */
static __always_inline struct sock *fd__sock(long fd)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds, *file = NULL;
	struct socket *sock;

	if (fd < 0 || fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_core_read(&file, sizeof(file), &fds[fd]) || !file)
		return NULL;
	/* A socket file's private_data is its struct socket (sock_alloc_file). */
	sock = BPF_CORE_READ(file, private_data);
	return BPF_CORE_READ(sock, sk);
}

/*
 * The owner of a passive connection is the process whose accept()/accept4() returned it:
 * read where that process is current, and the ACCEPT record goes out with it. Sockets taken
 * by other means (io_uring accept) keep no owner: their ACCEPT record is emitted at close,
 * with pid 0.
 */
static __always_inline int accept__returned(void *ctx, long ret)
{
	struct conn_start *start;
	struct sock *sk;
	__u64 key;

	if (ret < 0)
		return 0;
	sk = fd__sock(ret);
	key = (__u64)sk;
	start = bpf_map_lookup_elem(&conns, &key);
	if (!start || start->role != EBF_TCP_ROLE_PASSIVE || (start->flags & CONN_ACCEPTED))
		return 0;
	if (current__is_self()) {
		/* The collector's own connections are not captured. */
		bpf_map_delete_elem(&conns, &key);
		return 0;
	}
	start->pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(&start->comm, sizeof(start->comm));
	start->cgroup_id = current__cgroup_id();
	start->flags |= CONN_ACCEPTED | CONN_ACCEPT_SENT;
	tcp__emit(ctx, sk, start, EBF_TCP_ACCEPT, bpf_ktime_get_boot_ns());
	return 0;
}

/* The context of a syscalls:sys_exit_* tracepoint (its format file). */
struct syscall_exit_ctx {
	__u64 common;
	__s32 syscall_nr;
	__u32 _pad;
	__s64 ret;
};

/*
 * The per-syscall tracepoints cost the calls that are not traced least: the kernel tests a
 * bitmap of enabled syscalls before any program runs. They need tracefs to attach.
 */
SEC("tracepoint/syscalls/sys_exit_accept")
int handle_sys_exit_accept(struct syscall_exit_ctx *ctx)
{
	return accept__returned(ctx, ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int handle_sys_exit_accept4(struct syscall_exit_ctx *ctx)
{
	return accept__returned(ctx, ctx->ret);
}

/*
 * Without tracefs: every syscall exit runs this program, so the syscall number is compared
 * before anything else.
 */
SEC("tp_btf/sys_exit")
int BPF_PROG(handle_sys_exit, struct pt_regs *regs, long ret)
{
	long nr = syscall__nr(regs);

	if (nr != accept_nr && nr != accept4_nr)
		return 0;
	return accept__returned(ctx, ret);
}

static __always_inline void traffic__count(struct __sk_buff *skb, __u8 direction)
{
	struct ebf_traffic_key key = { .direction = direction };
	struct ebf_traffic_value one = { .packets = 1, .bytes = skb->len }, *value;
	__u16 ports[2] = {}; /* source, destination: network byte order */
	__u32 l4_offset;
	__u8 protocol;

	key.cgroup_id = bpf_skb_cgroup_id(skb);
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;

		if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)))
			return;
		protocol = ip.protocol;
		l4_offset = ip.ihl * 4;
		key.family = AF_INET;
		__builtin_memcpy(key.remote_addr, direction == EBF_DIR_EGRESS ? &ip.daddr : &ip.saddr, 4);
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;

		if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)))
			return;
		protocol = ip6.nexthdr; /* extension headers: counted without ports */
		l4_offset = sizeof(ip6);
		key.family = AF_INET6;
		__builtin_memcpy(key.remote_addr,
				 direction == EBF_DIR_EGRESS ? &ip6.daddr : &ip6.saddr, 16);
	} else {
		return;
	}
	key.protocol = protocol;
	if ((protocol == IPPROTO_TCP || protocol == IPPROTO_UDP) &&
	    !bpf_skb_load_bytes(skb, l4_offset, ports, sizeof(ports))) {
		__u16 src = bpf_ntohs(ports[0]), dst = bpf_ntohs(ports[1]);

		key.remote_port = direction == EBF_DIR_EGRESS ? dst : src;
		key.local_port = direction == EBF_DIR_EGRESS ? src : dst;
	}

	value = bpf_map_lookup_elem(&traffic, &key);
	if (value) {
		value->packets += 1;
		value->bytes += skb->len;
		return;
	}
	if (bpf_map_update_elem(&traffic, &key, &one, BPF_NOEXIST)) {
		value = bpf_map_lookup_elem(&traffic, &key);
		if (value) {
			value->packets += 1;
			value->bytes += skb->len;
		} else {
			drops__count(EBF_DROP_MAP_FULL);
		}
	}
}

/* Counting only: 1 lets every packet through. */
SEC("cgroup_skb/ingress")
int handle_skb_ingress(struct __sk_buff *skb)
{
	traffic__count(skb, EBF_DIR_INGRESS);
	return 1;
}

SEC("cgroup_skb/egress")
int handle_skb_egress(struct __sk_buff *skb)
{
	traffic__count(skb, EBF_DIR_EGRESS);
	return 1;
}
