/* SPDX-License-Identifier: MIT */
/*
 * The kernel-socket backend (backend.h): one nonblocking UDP socket per lcore,
 * batched with recvmmsg/sendmmsg. Everything the data path touches (receive
 * buffers, message headers, source addresses) is allocated at open, so
 * rx_burst and tx_burst never allocate.
 *
 * The kernel stamps each datagram as it queues it on the socket
 * (SO_TIMESTAMPNS); rx_burst compares that with the time it takes it: the
 * `rx_delay` histogram is how long datagrams waited for this lcore, its
 * wake-up from a sleep included.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "backend.h"
#include "hist.h"
#include "lcr_assert.h"
#include "put.h"

/* sendmmsg and recvmmsg take at most UIO_MAXIOV (1024) messages per call. */
#define LCR_SOCK_BURST_MAX 1024
/* Control bytes per received message: its SCM_TIMESTAMPNS and UDP_GRO. */
#define LCR_SOCK_CTL (CMSG_SPACE(sizeof(struct timespec)) + CMSG_SPACE(sizeof(int)))
/* Control bytes per sent message: its UDP_SEGMENT. */
#define LCR_SOCK_TX_CTL CMSG_SPACE(sizeof(uint16_t))
/* The largest UDP payload over IPv6 (65535 less the UDP header). */
#define LCR_SOCK_DGRAM_MAX 65527
/* Segmentation offload: datagrams per send (the kernel's UDP_MAX_SEGMENTS)
 * and bytes per send (under IPv4's largest UDP payload, 65507). */
#define LCR_SOCK_GSO_SEGS  64
#define LCR_SOCK_GSO_BYTES 65000
/* A receive buffer when the kernel may coalesce datagrams (UDP_GRO). */
#define LCR_SOCK_GRO_BYTES 65535

struct lcr_sock_addr {
	uint32_t node;
	socklen_t len;
	struct sockaddr_storage sa;
};

struct lcr_sock {
	struct lcr_backend be;
	struct lcr_allocator alloc;
	int fd;
	int family;
	bool busy_poll;
	bool gso;	    /* sends coalesce datagrams to one peer (UDP_SEGMENT) */
	bool gro;	    /* receives may hold several datagrams (UDP_GRO) */
	uint32_t burst;	    /* messages per recvmmsg/sendmmsg */
	uint32_t dgram_max; /* largest datagram taken */
	uint32_t rx_bytes;  /* bytes per receive buffer: dgram_max, or a coalesced one's */
	uint32_t n_peers;
	uint32_t last_rx_peer; /* index of the peer that sent last: bursts come in runs */
	struct lcr_backend_stats st;
	struct lcr_sock_addr peers[LCR_SOCK_PEERS_MAX];
	/* Receive side: burst buffers of dgram_max bytes and their headers. */
	uint8_t *rx_buf;
	struct mmsghdr *rx_msg;
	struct iovec *rx_iov;
	struct sockaddr_storage *rx_name;
	uint8_t *rx_ctl; /* LCR_SOCK_CTL bytes per message */
	/* Received and not yet handed out (a coalesced message holds several):
	 * messages [rx_next, rx_got) of the last recvmmsg, the first from rx_off. */
	uint32_t rx_got, rx_next, rx_off;
	uint32_t *rx_seg; /* each message's datagram size (its GRO segment, or its length) */
	/* wait(): the epoll set this socket was added to (-1: none), and an fd
	 * found not to be one (ppoll is used with it). */
	int ep_fd, not_ep_fd;
	/* The last sleep in the epoll set ended without the socket among what
	 * it reported: the next receive skips its recvmmsg (the set is level
	 * triggered for the socket, so what came since wakes the next sleep at
	 * once). Set by wait(), cleared by the next receive. */
	bool rx_quiet;
	uint64_t rx_skipped; /* receives that so spared a recvmmsg */
	struct lcr_hist rx_delay;
	/* Send side: headers pointing at the caller's bytes, and where each came from. */
	struct mmsghdr *tx_msg;
	struct iovec *tx_iov; /* one per datagram: a message gathers a run of them */
	uint8_t *tx_ctl;      /* LCR_SOCK_TX_CTL bytes per message */
	uint32_t *tx_src;     /* index in the caller's array of each message's first datagram */
	uint32_t *tx_segs;    /* datagrams in each message */
};

static struct lcr_sock *to_sock(struct lcr_backend *be)
{
	return (struct lcr_sock *)be;
}

static void say(char *why, unsigned why_len, const char *fmt, ...)
{
	va_list ap;

	if (!why || !why_len)
		return;
	va_start(ap, fmt);
	vsnprintf(why, why_len, fmt, ap);
	va_end(ap);
}

/* "127.0.0.1:7001" or "[::1]:7001", as people write addresses in configs. */
static const char *host_port(char *out, size_t len, const char *host, uint16_t port)
{
	if (strchr(host, ':'))
		snprintf(out, len, "[%s]:%u", host, port);
	else
		snprintf(out, len, "%s:%u", host, port);
	return out;
}

static int gai_errno(int rc)
{
	switch (rc) {
	case EAI_NONAME:
#ifdef EAI_NODATA
	case EAI_NODATA:
#endif
		return -ENOENT;
	case EAI_FAMILY:
#ifdef EAI_ADDRFAMILY
	case EAI_ADDRFAMILY:
#endif
		return -EAFNOSUPPORT;
	case EAI_AGAIN:
		return -EAGAIN;
	case EAI_MEMORY:
		return -ENOMEM;
	case EAI_SYSTEM:
		return errno ? -errno : -EIO;
	default:
		return -EINVAL;
	}
}

/*
 * Resolve once, at open: the data path never calls the resolver. A peer is
 * resolved in the family of the bound socket; an IPv6 socket reaches IPv4
 * peers through v4-mapped addresses (AI_V4MAPPED).
 */
static int resolve(const char *host, uint16_t port, int family, bool passive,
		   struct sockaddr_storage *sa, socklen_t *len, const char **err)
{
	struct addrinfo hints, *res;
	char service[8];
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = family;
	hints.ai_socktype = SOCK_DGRAM;
	hints.ai_protocol = IPPROTO_UDP;
	hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
	if (family == AF_INET6)
		hints.ai_flags |= AI_V4MAPPED;
	snprintf(service, sizeof(service), "%u", port);
	errno = 0;
	rc = getaddrinfo(host, service, &hints, &res);
	if (rc != 0) {
		*err = rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc);
		return gai_errno(rc);
	}
	LCR_ASSERT(res->ai_addrlen <= sizeof(*sa));
	memcpy(sa, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static bool same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
		return x->sin6_port == y->sin6_port &&
		       memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
	}
	return false;
}

/* The node whose address sent a datagram, or 0. At most 64 peers: a scan is cheap. */
static uint32_t peer_of(struct lcr_sock *s, const struct sockaddr_storage *from)
{
	if (s->last_rx_peer < s->n_peers && same_addr(&s->peers[s->last_rx_peer].sa, from))
		return s->peers[s->last_rx_peer].node;
	for (uint32_t i = 0; i < s->n_peers; i++) {
		if (same_addr(&s->peers[i].sa, from)) {
			s->last_rx_peer = i;
			return s->peers[i].node;
		}
	}
	return 0;
}

static const struct lcr_sock_addr *addr_of(const struct lcr_sock *s, uint32_t node)
{
	for (uint32_t i = 0; i < s->n_peers; i++)
		if (s->peers[i].node == node)
			return &s->peers[i];
	return NULL;
}

/* How long a message waited in the socket, into rx_delay; and its GRO segment size (0: one). */
static uint32_t rx_meta(struct lcr_sock *s, struct msghdr *h, const struct timespec *now)
{
	uint32_t seg = 0;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
			/* The clock may have stepped since: such a sample is left out. */
			struct timespec ts;
			memcpy(&ts, CMSG_DATA(c), sizeof(ts));
			int64_t waited = (int64_t)(now->tv_sec - ts.tv_sec) * 1000000000 +
					 (now->tv_nsec - ts.tv_nsec);
			if (waited >= 0 && waited < 1000000000)
				lcr_hist_add(&s->rx_delay, (uint64_t)waited);
		} else if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
			int v;
			memcpy(&v, CMSG_DATA(c), sizeof(v));
			seg = v > 0 ? (uint32_t)v : 0;
		}
	}
	return seg;
}

/* One recvmmsg into the burst buffers: the messages wait in rx_got. */
static int rx_fill(struct lcr_sock *s, uint32_t n)
{
	/* recvmmsg writes the lengths back: reset them for every call. */
	for (uint32_t i = 0; i < n; i++) {
		s->rx_msg[i].msg_hdr.msg_namelen = sizeof(s->rx_name[i]);
		s->rx_msg[i].msg_hdr.msg_flags = 0;
		s->rx_msg[i].msg_hdr.msg_controllen = LCR_SOCK_CTL;
	}
	int got = recvmmsg(s->fd, s->rx_msg, n, MSG_DONTWAIT, NULL);
	if (got < 0) {
		int err = errno;

		if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR)
			return 0;
		s->st.rx_errors++;
		/* An ICMP error queued on the socket is reported once; the next call goes on. */
		if (err == ECONNREFUSED || err == EHOSTUNREACH || err == ENETUNREACH ||
		    err == EHOSTDOWN || err == ENETDOWN)
			return 0;
		return -err;
	}
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	for (int i = 0; i < got; i++) {
		struct mmsghdr *m = &s->rx_msg[i];
		uint32_t seg = rx_meta(s, &m->msg_hdr, &now);

		/* A datagram larger than the buffer was cut: its tail is gone, so drop it. */
		if (lcr_unlikely(m->msg_hdr.msg_flags & MSG_TRUNC)) {
			s->st.rx_truncated++;
			m->msg_len = 0;
			continue;
		}
		/* Not coalesced: one datagram, the whole message. */
		if (seg == 0 || seg >= m->msg_len)
			seg = m->msg_len;
		/* The buffer is larger than dgram_max where the kernel coalesces:
		 * a larger datagram is dropped all the same. */
		if (lcr_unlikely(seg > s->dgram_max)) {
			s->st.rx_truncated++;
			m->msg_len = 0;
			continue;
		}
		s->rx_seg[i] = seg;
		if (seg < m->msg_len)
			s->st.rx_coalesced++;
		s->st.rx_bytes += m->msg_len;
	}
	s->rx_got = (uint32_t)got;
	s->rx_next = 0;
	s->rx_off = 0;
	return got;
}

/*
 * Hand out what the last recvmmsg took, a datagram at a time: a message the
 * kernel coalesced (UDP_GRO) is cut at its segment size. A new recvmmsg only
 * when nothing is left, at the start of a call, so the buffers handed out
 * stay valid until the next call.
 */
static int sock_rx_burst(struct lcr_backend *be, struct lcr_dgram *d, uint32_t max)
{
	struct lcr_sock *s = to_sock(be);
	uint32_t out = 0;

	if (max == 0)
		return 0;
	if (s->rx_quiet) {
		s->rx_quiet = false;
		if (s->rx_next == s->rx_got) {
			s->rx_skipped++;
			return 0;
		}
	}
	if (s->rx_next == s->rx_got) {
		int got = rx_fill(s, max < s->burst ? max : s->burst);
		if (got <= 0)
			return got;
	}
	while (out < max && s->rx_next < s->rx_got) {
		struct mmsghdr *m = &s->rx_msg[s->rx_next];
		uint32_t seg = s->rx_seg[s->rx_next];
		if (s->rx_off >= m->msg_len) {
			s->rx_next++;
			s->rx_off = 0;
			continue;
		}
		uint32_t len = m->msg_len - s->rx_off < seg ? m->msg_len - s->rx_off : seg;
		d[out].buf = (uint8_t *)m->msg_hdr.msg_iov->iov_base + s->rx_off;
		d[out].len = len;
		d[out].peer = peer_of(s, &s->rx_name[s->rx_next]);
		s->rx_off += len;
		out++;
	}
	s->st.rx_dgrams += out;
	return (int)out;
}

static bool tx_try_later(int err)
{
	/* The socket buffer or the device queue is full: the caller keeps the datagram. */
	return err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS;
}

/* Errors that say the kernel or the path cannot segment a send (UDP_SEGMENT). */
static bool gso_refused(int err)
{
	return err == EIO || err == EINVAL || err == EOPNOTSUPP || err == ENOPROTOOPT ||
	       err == EMSGSIZE;
}

/*
 * Send msgs[0..cnt). Returns how many of them were dealt with: sent, or lost to
 * an error other than a full buffer (UDP would lose them anyway, and a dead
 * peer must not stall the others). A coalesced message the kernel refuses
 * turns segmentation off, and is not dealt with: it goes again, datagram by
 * datagram.
 */
static uint32_t tx_flush(struct lcr_sock *s, uint32_t cnt)
{
	uint32_t done = 0;

	while (done < cnt) {
		int rc = sendmmsg(s->fd, s->tx_msg + done, cnt - done, MSG_DONTWAIT);

		if (rc > 0) {
			for (int i = 0; i < rc; i++) {
				s->st.tx_bytes += s->tx_msg[done + i].msg_len;
				s->st.tx_dgrams += s->tx_segs[done + i];
			}
			done += (uint32_t)rc;
			continue;
		}
		if (rc == 0)
			break;
		if (errno == EINTR)
			continue;
		if (tx_try_later(errno))
			break;
		if (s->tx_segs[done] > 1 && gso_refused(errno)) {
			s->gso = false;
			s->st.gso_off++;
			break;
		}
		/* ECONNREFUSED, EHOSTUNREACH, EMSGSIZE, EPERM...: this datagram is lost. */
		s->st.tx_errors++;
		done++;
	}
	return done;
}

/* Datagrams from d[i] on that go as one message: the same peer and size (the
 * last may be shorter), within the kernel's bounds; 1 without offload. */
static uint32_t tx_run(const struct lcr_sock *s, const struct lcr_dgram *d, uint32_t i, uint32_t n,
		       uint32_t iov_left)
{
	uint32_t k = 1, bytes = d[i].len;

	if (!s->gso)
		return 1;
	while (i + k < n && k < LCR_SOCK_GSO_SEGS && k < iov_left) {
		const struct lcr_dgram *x = &d[i + k];
		if (x->peer != d[i].peer || x->len > d[i].len ||
		    bytes + x->len > LCR_SOCK_GSO_BYTES)
			break;
		bytes += x->len;
		k++;
		if (x->len < d[i].len)
			break; /* a shorter one ends the message */
	}
	return k;
}

static int sock_tx_burst(struct lcr_backend *be, const struct lcr_dgram *d, uint32_t n)
{
	struct lcr_sock *s = to_sock(be);
	uint32_t taken = 0;

	while (taken < n) {
		uint32_t cnt = 0, iov = 0, i = taken, done;

		for (; i < n && cnt < s->burst && iov < s->burst;) {
			const struct lcr_sock_addr *a = addr_of(s, d[i].peer);
			struct mmsghdr *m = &s->tx_msg[cnt];

			if (lcr_unlikely(!a)) {
				/* Nowhere to send it: count it as a failed send, never abort. */
				s->st.tx_errors++;
				i++;
				continue;
			}
			uint32_t k = tx_run(s, d, i, n, s->burst - iov);
			for (uint32_t j = 0; j < k; j++) {
				s->tx_iov[iov + j].iov_base = d[i + j].buf;
				s->tx_iov[iov + j].iov_len = d[i + j].len;
			}
			m->msg_hdr.msg_iov = &s->tx_iov[iov];
			m->msg_hdr.msg_iovlen = k;
			m->msg_hdr.msg_name = (void *)&a->sa;
			m->msg_hdr.msg_namelen = a->len;
			m->msg_hdr.msg_control = NULL;
			m->msg_hdr.msg_controllen = 0;
			if (k > 1) {
				/* The kernel cuts it back into datagrams of d[i].len. */
				uint8_t *ctl = s->tx_ctl + (size_t)cnt * LCR_SOCK_TX_CTL;
				m->msg_hdr.msg_control = ctl;
				m->msg_hdr.msg_controllen = LCR_SOCK_TX_CTL;
				struct cmsghdr *c = CMSG_FIRSTHDR(&m->msg_hdr);
				c->cmsg_level = SOL_UDP;
				c->cmsg_type = UDP_SEGMENT;
				c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
				uint16_t seg = (uint16_t)d[i].len;
				memcpy(CMSG_DATA(c), &seg, sizeof(seg));
				s->st.gso_sends++;
			}
			s->tx_src[cnt] = i;
			s->tx_segs[cnt] = k;
			cnt++;
			iov += k;
			i += k;
		}
		done = tx_flush(s, cnt);
		if (done < cnt) {
			/* Everything before it was taken; unknown peers after it come again. */
			for (uint32_t j = s->tx_src[done] + 1; j < i; j++)
				if (!addr_of(s, d[j].peer))
					s->st.tx_errors--;
			return (int)s->tx_src[done];
		}
		taken = i;
	}
	return (int)taken;
}

/*
 * Sleep until a datagram, `fd` readable, or the timeout. The lcore's `fd` is
 * an epoll set (its ring's eventfd and the application's fd): the socket joins
 * it once, and every sleep is one epoll_pwait2 on registrations that stay,
 * where a ppoll over the socket and the set would add and remove a wait on
 * each, every time. Any other fd is waited for with ppoll. Both take
 * nanoseconds, so the fault decorator wakes exactly when a held datagram
 * falls due, where milliseconds would oversleep by up to one.
 */
static int sock_wait(struct lcr_backend *be, int fd, uint64_t timeout_ns)
{
	struct lcr_sock *s = to_sock(be);
	struct timespec ts;

	if (s->busy_poll || timeout_ns == 0)
		return 0;
	if (timeout_ns / 1000000000u > INT_MAX)
		timeout_ns = (uint64_t)INT_MAX * 1000000000u;
	ts.tv_sec = (time_t)(timeout_ns / 1000000000u);
	ts.tv_nsec = (long)(timeout_ns % 1000000000u);
	s->st.wakeups++;
	if (fd >= 0 && fd != s->ep_fd && fd != s->not_ep_fd) {
		struct epoll_event ev = { .events = EPOLLIN, .data.fd = s->fd };
		if (epoll_ctl(fd, EPOLL_CTL_ADD, s->fd, &ev) == 0 || errno == EEXIST)
			s->ep_fd = fd;
		else
			s->not_ep_fd = fd;
	}
	if (fd >= 0 && fd == s->ep_fd) {
		struct epoll_event evs[4];
		int n = epoll_pwait2(fd, evs, 4, &ts, NULL);
		if (n < 0 && errno != EINTR)
			return -errno;
		s->rx_quiet = true;
		for (int i = 0; i < n; i++)
			if (evs[i].data.fd == s->fd)
				s->rx_quiet = false;
		return 0;
	}
	struct pollfd pfd[2] = {
		{ .fd = s->fd, .events = POLLIN },
		{ .fd = fd, .events = POLLIN },
	};
	if (ppoll(pfd, fd >= 0 ? 2 : 1, &ts, NULL) < 0 && errno != EINTR)
		return -errno;
	return 0;
}

static void sock_stats(const struct lcr_backend *be, struct lcr_backend_stats *st)
{
	*st = ((const struct lcr_sock *)be)->st;
}

static void sock_close(struct lcr_backend *be)
{
	struct lcr_sock *s = to_sock(be);

	if (!s)
		return;
	if (s->fd >= 0)
		close(s->fd);
	lcr_allocator_free(&s->alloc, s->rx_buf);
	lcr_allocator_free(&s->alloc, s->rx_msg);
	lcr_allocator_free(&s->alloc, s->rx_iov);
	lcr_allocator_free(&s->alloc, s->rx_name);
	lcr_allocator_free(&s->alloc, s->rx_ctl);
	lcr_allocator_free(&s->alloc, s->tx_msg);
	lcr_allocator_free(&s->alloc, s->tx_iov);
	lcr_allocator_free(&s->alloc, s->tx_src);
	lcr_allocator_free(&s->alloc, s->tx_segs);
	lcr_allocator_free(&s->alloc, s->tx_ctl);
	lcr_allocator_free(&s->alloc, s->rx_seg);
	lcr_allocator_free_aligned(&s->alloc, s);
}

static int sock_metrics_json(const struct lcr_backend *be, char *buf, size_t len)
{
	const struct lcr_sock *s = (const struct lcr_sock *)be;
	const struct lcr_hist *h = &s->rx_delay;
	size_t o = 0;

	LCR_PUT("\"rx_delay\":{\"count\":%llu,\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,"
		"\"max_us\":%.1f},\"offload\":{\"gso\":%s,\"gro\":%s,\"gso_sends\":%llu,"
		"\"gso_off\":%llu,\"rx_coalesced\":%llu},\"rx_skipped\":%llu",
		(unsigned long long)h->count, (double)lcr_hist_pct(h, 0.5) / 1000.0,
		(double)lcr_hist_pct(h, 0.99) / 1000.0, (double)lcr_hist_pct(h, 0.999) / 1000.0,
		(double)h->max_ns / 1000.0, s->gso ? "true" : "false", s->gro ? "true" : "false",
		(unsigned long long)s->st.gso_sends, (unsigned long long)s->st.gso_off,
		(unsigned long long)s->st.rx_coalesced, (unsigned long long)s->rx_skipped);
	return o < len ? (int)o : -ENOSPC;
}

/* Remove peer i (the last one takes its place: rx_burst's cache of the
 * last sender is checked against the address before it is used). */
static void peer_remove(struct lcr_sock *s, uint32_t i)
{
	LCR_ASSERT(i < s->n_peers);
	s->peers[i] = s->peers[--s->n_peers];
}

/*
 * Learn or move a peer, between bursts. The address must be numeric
 * (AI_NUMERICHOST: the resolver never runs on the lcore) and of the socket's
 * family (an IPv6 socket takes IPv4 peers as v4-mapped addresses).
 */
static int sock_set_peer(struct lcr_backend *be, const struct lcr_be_peer *p, char *why,
			 size_t why_len)
{
	struct lcr_sock *s = to_sock(be);
	struct sockaddr_storage sa;
	struct addrinfo hints, *res;
	char service[8], hp[96];

	LCR_ASSERT(p && p->host && p->node != 0);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = s->family;
	hints.ai_socktype = SOCK_DGRAM;
	hints.ai_protocol = IPPROTO_UDP;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	if (s->family == AF_INET6)
		hints.ai_flags |= AI_V4MAPPED;
	snprintf(service, sizeof(service), "%u", p->port);
	int rc = getaddrinfo(p->host, service, &hints, &res);
	if (rc != 0) {
		host_port(hp, sizeof(hp), p->host, p->port);
		say(why, (unsigned)why_len,
		    "peer node %u at %s: not a numeric %s address (a peer learned at run time "
		    "needs one: the lcore never waits on the resolver)",
		    p->node, hp, s->family == AF_INET6 ? "IPv6 or IPv4" : "IPv4");
		return -EINVAL;
	}
	LCR_ASSERT(res->ai_addrlen <= sizeof(sa));
	memset(&sa, 0, sizeof(sa));
	memcpy(&sa, res->ai_addr, res->ai_addrlen);
	socklen_t len = res->ai_addrlen;
	freeaddrinfo(res);

	bool known = false, taken = false;
	for (uint32_t i = 0; i < s->n_peers; i++) {
		if (s->peers[i].node == p->node)
			known = true;
		else if (same_addr(&s->peers[i].sa, &sa))
			taken = true;
	}
	if (!known && !taken && s->n_peers == LCR_SOCK_PEERS_MAX) {
		say(why, (unsigned)why_len,
		    "peer node %u: the socket backend knows %u peers already, its most", p->node,
		    LCR_SOCK_PEERS_MAX);
		return -ENOSPC;
	}
	/* An address belongs to one node: another that had it loses it. */
	for (uint32_t i = 0; i < s->n_peers;) {
		if (s->peers[i].node != p->node && same_addr(&s->peers[i].sa, &sa))
			peer_remove(s, i);
		else
			i++;
	}
	struct lcr_sock_addr *a = NULL;
	for (uint32_t i = 0; i < s->n_peers && !a; i++)
		if (s->peers[i].node == p->node)
			a = &s->peers[i];
	if (!a)
		a = &s->peers[s->n_peers++];
	LCR_ASSERT(s->n_peers <= LCR_SOCK_PEERS_MAX);
	a->node = p->node;
	a->sa = sa;
	a->len = len;
	return 0;
}

static int sock_forget_peer(struct lcr_backend *be, uint32_t node)
{
	struct lcr_sock *s = to_sock(be);

	for (uint32_t i = 0; i < s->n_peers; i++) {
		if (s->peers[i].node == node) {
			peer_remove(s, i);
			break;
		}
	}
	return 0;
}

static const struct lcr_backend_ops sock_ops = {
	.rx_burst = sock_rx_burst,
	.tx_burst = sock_tx_burst,
	.wait = sock_wait,
	.stats = sock_stats,
	.metrics_json = sock_metrics_json,
	.close = sock_close,
	.set_peer = sock_set_peer,
	.forget_peer = sock_forget_peer,
};

void lcr_sock_opts_default(struct lcr_sock_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->bind_host = "0.0.0.0";
	o->burst = 64;
	o->dgram_max = 9000;
	o->offload = true;
}

static int check_opts(const struct lcr_sock_opts *o, char *why, unsigned why_len)
{
	if (!o->bind_host || !o->bind_host[0]) {
		say(why, why_len, "no bind address");
		return -EINVAL;
	}
	if (o->burst == 0 || o->burst > LCR_SOCK_BURST_MAX) {
		say(why, why_len, "burst %u out of range 1..%u", o->burst, LCR_SOCK_BURST_MAX);
		return -EINVAL;
	}
	if (o->dgram_max == 0 || o->dgram_max > LCR_SOCK_DGRAM_MAX) {
		say(why, why_len, "dgram_max %u out of range 1..%u", o->dgram_max,
		    LCR_SOCK_DGRAM_MAX);
		return -EINVAL;
	}
	if (o->n_peers > LCR_SOCK_PEERS_MAX) {
		say(why, why_len, "%u peers, at most %u", o->n_peers, LCR_SOCK_PEERS_MAX);
		return -EINVAL;
	}
	for (uint32_t i = 0; i < o->n_peers; i++) {
		/* Node 0 means "unknown sender" on receive, so no peer may have it. */
		if (o->peers[i].node == 0) {
			say(why, why_len, "peer %u: node id 0 is reserved", i);
			return -EINVAL;
		}
		if (!memchr(o->peers[i].host, '\0', sizeof(o->peers[i].host))) {
			say(why, why_len, "peer node %u: host name not terminated",
			    o->peers[i].node);
			return -EINVAL;
		}
		for (uint32_t j = 0; j < i; j++) {
			if (o->peers[j].node == o->peers[i].node) {
				say(why, why_len, "peer node %u listed twice", o->peers[i].node);
				return -EINVAL;
			}
		}
	}
	return 0;
}

static int alloc_bufs(struct lcr_sock *s)
{
	uint32_t b = s->burst;

	const struct lcr_allocator *a = &s->alloc;

	s->rx_buf = lcr_allocator_alloc(a, (size_t)b * s->rx_bytes);
	s->rx_msg = lcr_allocator_zalloc(a, b * sizeof(*s->rx_msg));
	s->rx_iov = lcr_allocator_zalloc(a, b * sizeof(*s->rx_iov));
	s->rx_name = lcr_allocator_zalloc(a, b * sizeof(*s->rx_name));
	s->rx_ctl = lcr_allocator_zalloc(a, (size_t)b * LCR_SOCK_CTL);
	s->rx_seg = lcr_allocator_zalloc(a, b * sizeof(*s->rx_seg));
	s->tx_msg = lcr_allocator_zalloc(a, b * sizeof(*s->tx_msg));
	s->tx_iov = lcr_allocator_zalloc(a, b * sizeof(*s->tx_iov));
	s->tx_ctl = lcr_allocator_zalloc(a, (size_t)b * LCR_SOCK_TX_CTL);
	s->tx_src = lcr_allocator_zalloc(a, b * sizeof(*s->tx_src));
	s->tx_segs = lcr_allocator_zalloc(a, b * sizeof(*s->tx_segs));
	if (!s->rx_buf || !s->rx_msg || !s->rx_iov || !s->rx_name || !s->rx_ctl || !s->rx_seg ||
	    !s->tx_msg || !s->tx_iov || !s->tx_ctl || !s->tx_src || !s->tx_segs)
		return -ENOMEM;
	for (uint32_t i = 0; i < b; i++) {
		s->rx_iov[i].iov_base = s->rx_buf + (size_t)i * s->rx_bytes;
		s->rx_iov[i].iov_len = s->rx_bytes;
		s->rx_msg[i].msg_hdr.msg_iov = &s->rx_iov[i];
		s->rx_msg[i].msg_hdr.msg_iovlen = 1;
		s->rx_msg[i].msg_hdr.msg_name = &s->rx_name[i];
		s->rx_msg[i].msg_hdr.msg_control = s->rx_ctl + (size_t)i * LCR_SOCK_CTL;
	}
	return 0;
}

static int set_int(int fd, int level, int name, int val)
{
	return setsockopt(fd, level, name, &val, sizeof(val)) < 0 ? -errno : 0;
}

/*
 * Create and bind the socket. No SO_REUSEADDR: UDP has no TIME_WAIT for it to
 * skip, and on Linux it lets a second socket bind the very same address and
 * port and silently take over its datagrams, so two nodes configured on one
 * port would both start. Without it that mistake is "Address already in use".
 */
static int open_socket(struct lcr_sock *s, const struct lcr_sock_opts *o, char *why,
		       unsigned why_len)
{
	struct sockaddr_storage sa;
	socklen_t len;
	const char *err;
	char hp[96];
	int rc;

	host_port(hp, sizeof(hp), o->bind_host, o->bind_port);
	rc = resolve(o->bind_host, o->bind_port, AF_UNSPEC, true, &sa, &len, &err);
	if (rc < 0) {
		say(why, why_len, "bind address %s: %s", hp, err);
		return rc;
	}
	s->family = sa.ss_family;
	s->fd = socket(s->family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
	if (s->fd < 0) {
		rc = -errno;
		say(why, why_len, "socket for %s: %s", hp, strerror(-rc));
		return rc;
	}
	/* An IPv6 socket also serves IPv4 peers (as v4-mapped addresses). */
	if (s->family == AF_INET6)
		(void)set_int(s->fd, IPPROTO_IPV6, IPV6_V6ONLY, 0);
	/* SO_RCVBUF stops at net.core.rmem_max (often 208 KiB, 4 MiB here),
	 * which a burst to a receiver off its CPU overflows; with CAP_NET_ADMIN
	 * SO_RCVBUFFORCE gives the size asked for. */
	if (o->rcvbuf && set_int(s->fd, SOL_SOCKET, SO_RCVBUFFORCE, (int)o->rcvbuf) < 0 &&
	    (rc = set_int(s->fd, SOL_SOCKET, SO_RCVBUF, (int)o->rcvbuf)) < 0) {
		say(why, why_len, "SO_RCVBUF %u on %s: %s", o->rcvbuf, hp, strerror(-rc));
		return rc;
	}
	if (o->sndbuf && (rc = set_int(s->fd, SOL_SOCKET, SO_SNDBUF, (int)o->sndbuf)) < 0) {
		say(why, why_len, "SO_SNDBUF %u on %s: %s", o->sndbuf, hp, strerror(-rc));
		return rc;
	}
	/* Kernel receive timestamps for rx_delay; without them it stays empty. */
	(void)set_int(s->fd, SOL_SOCKET, SO_TIMESTAMPNS, 1);
	/* Datagrams of one sender may reach us coalesced (a kernel without
	 * UDP_GRO, before 5.0, delivers them one by one). */
	if (s->gro && set_int(s->fd, SOL_UDP, UDP_GRO, 1) < 0)
		s->gro = false;
	if (bind(s->fd, (struct sockaddr *)&sa, len) < 0) {
		rc = -errno;
		say(why, why_len, "bind %s: %s", hp, strerror(-rc));
		return rc;
	}
	return 0;
}

static int resolve_peers(struct lcr_sock *s, const struct lcr_sock_opts *o, char *why,
			 unsigned why_len)
{
	for (uint32_t i = 0; i < o->n_peers; i++) {
		const struct lcr_sock_peer *p = &o->peers[i];
		struct lcr_sock_addr *a = &s->peers[i];
		const char *err;
		char hp[96];
		int rc;

		a->node = p->node;
		rc = resolve(p->host, p->port, s->family, false, &a->sa, &a->len, &err);
		if (rc < 0) {
			host_port(hp, sizeof(hp), p->host, p->port);
			say(why, why_len, "peer node %u at %s (for a %s socket): %s", p->node, hp,
			    s->family == AF_INET6 ? "IPv6" : "IPv4", err);
			return rc;
		}
	}
	s->n_peers = o->n_peers;
	return 0;
}

int lcr_sock_open(struct lcr_backend **out, const struct lcr_sock_opts *o, char *why,
		  unsigned why_len)
{
	struct lcr_sock *s;
	int rc;

	LCR_ASSERT(out);
	LCR_ASSERT(o);
	*out = NULL;
	rc = check_opts(o, why, why_len);
	if (rc < 0)
		return rc;
	/* Cache-line aligned: the lcore's loop reads it on every iteration. */
	s = lcr_allocator_aligned(&o->alloc, sizeof(*s), LCR_CACHE_LINE);
	if (!s) {
		say(why, why_len, "out of memory");
		return -ENOMEM;
	}
	s->alloc = o->alloc;
	s->be.ops = &sock_ops;
	s->fd = -1;
	s->ep_fd = -1;
	s->not_ep_fd = -1;
	s->busy_poll = o->busy_poll;
	s->burst = o->burst;
	s->dgram_max = o->dgram_max;
	s->gso = o->offload;
	s->gro = o->offload;
	s->rx_bytes =
		o->offload && o->dgram_max < LCR_SOCK_GRO_BYTES ? LCR_SOCK_GRO_BYTES : o->dgram_max;
	rc = alloc_bufs(s);
	if (rc < 0) {
		say(why, why_len, "out of memory for %u buffers of %u bytes", o->burst,
		    o->dgram_max);
		goto err_close;
	}
	rc = open_socket(s, o, why, why_len);
	if (rc < 0)
		goto err_close;
	rc = resolve_peers(s, o, why, why_len);
	if (rc < 0)
		goto err_close;
	*out = &s->be;
	return 0;

err_close:
	sock_close(&s->be);
	return rc;
}
