// ring_ceiling: C libxdp's ring code over rings whose kernel side is
// played in memory, the C counterpart of xdpkit's user-space ceiling
// (go test -bench RunnerMemory ./pipeline).
//
// The user side is the C anchor's loops (../shared/anchors/c/xsk_rxdrop.c:
// rx_drop, and rx_reflect with complete_tx), written against libxdp's
// inline ring functions (<xdp/xsk.h>) on struct xsk_ring_prod/cons that
// point into plain memory instead of a socket's mmapped rings. The kernel
// side does what afxdp.MemoryKernel does, once a batch: deliver moves
// `batch` frames from the fill ring to the RX ring (a descriptor at the
// frame's packet offset, of the frame length), and transmitted moves what
// the TX ring holds to the completion ring. No syscalls: that is the point.
//
// Output, one line: mode=drop batch=64 frames=N ns_per_frame=X mpps=Y.
// Build: cc -O2 -o ring_ceiling ring_ceiling.c (needs libxdp-dev's header;
// nothing is linked).
#define _GNU_SOURCE
#include <linux/if_xdp.h>
#include <xdp/xsk.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define HEADROOM 256 /* XDP_PACKET_HEADROOM: where the kernel puts a packet in its frame */

/* One ring as the kernel sees it: the shared producer and consumer
 * indices (on cache lines of their own, as the kernel lays them out), the
 * flags, and the entries. */
struct mring {
	uint32_t prod __attribute__((aligned(64)));
	uint32_t cons __attribute__((aligned(64)));
	uint32_t flags __attribute__((aligned(64)));
	void *entries;
	uint32_t size, mask;
};

static struct mring m_fill, m_comp, m_rx, m_tx;
static struct xsk_ring_prod fq, tx;
static struct xsk_ring_cons cq, rx;
static uint8_t *umem_area;
static uint32_t opt_batch = 64, opt_frames = 4096, opt_frame_size = 4096, opt_ring = 2048, opt_len = 60;
static uint32_t outstanding;
static volatile uint8_t sink_out;
static uint8_t sink;

static void *alloc(size_t n, int huge)
{
	void *p = MAP_FAILED;
	if (huge)
		p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_POPULATE, -1, 0);
	if (p == MAP_FAILED)
		p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (p == MAP_FAILED) {
		fprintf(stderr, "ring_ceiling: mmap %zu bytes: %s\n", n, strerror(errno));
		exit(1);
	}
	return p;
}

static void mring_init(struct mring *m, uint32_t size, size_t entry)
{
	m->size = size;
	m->mask = size - 1;
	m->entries = alloc((size_t)size * entry, 0);
}

/* The user's view of a ring, set up as xsk_umem__create and
 * xsk_socket__create set it up over the mmapped ring. */
static void prod_init(struct xsk_ring_prod *p, struct mring *m)
{
	p->mask = m->mask;
	p->size = m->size;
	p->producer = &m->prod;
	p->consumer = &m->cons;
	p->ring = m->entries;
	p->flags = &m->flags;
	p->cached_prod = m->prod;
	p->cached_cons = m->cons + m->size;
}

static void cons_init(struct xsk_ring_cons *c, struct mring *m)
{
	c->mask = m->mask;
	c->size = m->size;
	c->producer = &m->prod;
	c->consumer = &m->cons;
	c->ring = m->entries;
	c->flags = &m->flags;
	c->cached_prod = m->prod;
	c->cached_cons = m->cons;
}

/* The kernel side. */

/* deliver is MemoryKernel.DeliverN: up to n frames off the fill ring
 * onto the RX ring. */
static __attribute__((noinline)) uint32_t deliver(uint32_t n)
{
	uint32_t fc = m_fill.cons, fp = __atomic_load_n(&m_fill.prod, __ATOMIC_ACQUIRE);
	uint32_t rp = m_rx.prod, rc = __atomic_load_n(&m_rx.cons, __ATOMIC_ACQUIRE);
	uint32_t got = fp - fc, room = m_rx.size - (rp - rc);
	if (got > n)
		got = n;
	if (got > room)
		got = room;
	const uint64_t *addrs = m_fill.entries;
	struct xdp_desc *descs = m_rx.entries;
	for (uint32_t i = 0; i < got; i++) {
		struct xdp_desc *d = &descs[(rp + i) & m_rx.mask];
		/* Aligned mode: the kernel uses the frame the address falls in
		 * (the anchor gives back received addresses, headroom and all). */
		d->addr = (addrs[(fc + i) & m_fill.mask] & ~(uint64_t)(opt_frame_size - 1)) + HEADROOM;
		d->len = opt_len;
		d->options = 0;
	}
	__atomic_store_n(&m_fill.cons, fc + got, __ATOMIC_RELEASE);
	__atomic_store_n(&m_rx.prod, rp + got, __ATOMIC_RELEASE);
	return got;
}

/* transmitted is MemoryKernel.Transmitted: what the TX ring holds onto
 * the completion ring. */
static __attribute__((noinline)) uint32_t transmitted(void)
{
	uint32_t tc = m_tx.cons, tp = __atomic_load_n(&m_tx.prod, __ATOMIC_ACQUIRE);
	uint32_t cp = m_comp.prod, cc = __atomic_load_n(&m_comp.cons, __ATOMIC_ACQUIRE);
	uint32_t got = tp - tc, room = m_comp.size - (cp - cc);
	if (got > room)
		got = room;
	const struct xdp_desc *descs = m_tx.entries;
	uint64_t *addrs = m_comp.entries;
	for (uint32_t i = 0; i < got; i++)
		addrs[(cp + i) & m_comp.mask] = descs[(tc + i) & m_tx.mask].addr;
	__atomic_store_n(&m_tx.cons, tc + got, __ATOMIC_RELEASE);
	__atomic_store_n(&m_comp.prod, cp + got, __ATOMIC_RELEASE);
	return got;
}

/* The user side: the C anchor's loops, without their syscalls (a memory
 * ring never needs a wake-up). */

static void refill(const uint64_t *addrs, unsigned n)
{
	uint32_t idx;
	if (xsk_ring_prod__reserve(&fq, n, &idx) != n) {
		fprintf(stderr, "ring_ceiling: fill ring full\n");
		exit(1);
	}
	for (unsigned i = 0; i < n; i++)
		*xsk_ring_prod__fill_addr(&fq, idx + i) = addrs[i];
	xsk_ring_prod__submit(&fq, n);
}

static void complete_tx(void)
{
	uint32_t idx;
	uint64_t addrs[4096];
	if (!outstanding)
		return;
	unsigned n = xsk_ring_cons__peek(&cq, opt_batch, &idx);
	if (!n)
		return;
	for (unsigned i = 0; i < n; i++)
		addrs[i] = *xsk_ring_cons__comp_addr(&cq, idx + i);
	xsk_ring_cons__release(&cq, n);
	refill(addrs, n);
	outstanding -= n;
}

static unsigned rx_drop(void)
{
	uint32_t idx;
	uint64_t addrs[4096];
	unsigned n = xsk_ring_cons__peek(&rx, opt_batch, &idx);
	if (!n)
		return 0;
	for (unsigned i = 0; i < n; i++) {
		const struct xdp_desc *d = xsk_ring_cons__rx_desc(&rx, idx + i);
		const uint8_t *p = xsk_umem__get_data(umem_area, d->addr);
		sink ^= p[12]; /* the EtherType byte: touch the packet */
		addrs[i] = d->addr;
	}
	xsk_ring_cons__release(&rx, n);
	refill(addrs, n);
	return n;
}

static unsigned rx_reflect(void)
{
	uint32_t idx_rx, idx_tx;
	complete_tx();
	unsigned n = xsk_ring_cons__peek(&rx, opt_batch, &idx_rx);
	if (!n)
		return 0;
	if (xsk_ring_prod__reserve(&tx, n, &idx_tx) != n) {
		fprintf(stderr, "ring_ceiling: TX ring full\n");
		exit(1);
	}
	for (unsigned i = 0; i < n; i++) {
		const struct xdp_desc *d = xsk_ring_cons__rx_desc(&rx, idx_rx + i);
		struct xdp_desc *t = xsk_ring_prod__tx_desc(&tx, idx_tx + i);
		uint8_t *p = xsk_umem__get_data(umem_area, d->addr);
		uint8_t tmp[6];
		memcpy(tmp, p, 6);
		memcpy(p, p + 6, 6);
		memcpy(p + 6, tmp, 6);
		t->addr = d->addr;
		t->len = d->len;
		t->options = 0;
	}
	xsk_ring_prod__submit(&tx, n);
	xsk_ring_cons__release(&rx, n);
	outstanding += n;
	complete_tx();
	return n;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void usage(const char *p)
{
	fprintf(stderr,
		"usage: %s [-m drop|reflect] [-b batch] [-t seconds | -i batches] [-n frames] [-s frame-size] [-r ring-size] [-l length] [-H]\n",
		p);
	exit(2);
}

static int pow2(uint32_t v) { return v && !(v & (v - 1)); }

int main(int argc, char **argv)
{
	const char *mode = "drop";
	double secs = 2;
	int huge = 0, c;
	long long batches = 0;
	while ((c = getopt(argc, argv, "m:b:t:i:n:s:r:l:H")) != -1) {
		switch (c) {
		case 'm': mode = optarg; break;
		case 'b': opt_batch = atoi(optarg); break;
		case 't': secs = atof(optarg); break;
		case 'i': batches = atoll(optarg); break;
		case 'n': opt_frames = atoi(optarg); break;
		case 's': opt_frame_size = atoi(optarg); break;
		case 'r': opt_ring = atoi(optarg); break;
		case 'l': opt_len = atoi(optarg); break;
		case 'H': huge = 1; break;
		default: usage(argv[0]);
		}
	}
	int reflect = strcmp(mode, "reflect") == 0;
	if (!reflect && strcmp(mode, "drop") != 0)
		usage(argv[0]);
	if (!pow2(opt_ring) || !pow2(opt_frame_size) || opt_batch < 1 || opt_batch > opt_ring || opt_batch > 4096 ||
	    opt_frames < opt_ring || secs <= 0 || opt_len < 14 || opt_len > opt_frame_size - HEADROOM) {
		fprintf(stderr, "ring_ceiling: bad options (rings and frame size powers of 2, 1 <= batch <= ring, frames >= ring)\n");
		return 2;
	}
	umem_area = alloc((size_t)opt_frames * opt_frame_size, huge);
	for (uint32_t i = 0; i < opt_frames; i++) {
		/* A UDP-looking frame: two MACs and the IPv4 EtherType. */
		uint8_t *p = umem_area + (size_t)i * opt_frame_size + HEADROOM;
		memset(p, 0, opt_len);
		memcpy(p, "\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00", 14);
	}
	mring_init(&m_fill, opt_ring, sizeof(uint64_t));
	mring_init(&m_comp, opt_ring, sizeof(uint64_t));
	mring_init(&m_rx, opt_ring, sizeof(struct xdp_desc));
	mring_init(&m_tx, opt_ring, sizeof(struct xdp_desc));
	prod_init(&fq, &m_fill);
	prod_init(&tx, &m_tx);
	cons_init(&cq, &m_comp);
	cons_init(&rx, &m_rx);
	/* Stock the fill ring, as the anchor does at start. */
	uint32_t idx = 0;
	if (xsk_ring_prod__reserve(&fq, opt_ring, &idx) != opt_ring)
		return 1;
	for (uint32_t i = 0; i < opt_ring; i++)
		*xsk_ring_prod__fill_addr(&fq, idx + i) = (uint64_t)i * opt_frame_size;
	xsk_ring_prod__submit(&fq, opt_ring);

	if (batches > 0) {
		/* A fixed number of batches, untimed: for instruction counts
		 * (valgrind --tool=callgrind), which two such runs differ by. */
		for (long long it = 0; it < batches; it++) {
			deliver(opt_batch);
			if ((reflect ? rx_reflect() : rx_drop()) != opt_batch) {
				fprintf(stderr, "ring_ceiling: a short batch\n");
				return 1;
			}
			if (reflect)
				transmitted();
		}
		sink_out = sink;
		printf("mode=%s batch=%u batches=%lld\n", mode, opt_batch, batches);
		return 0;
	}
	/* Warm up for a tenth of the time, then count whole batches until
	 * the time is up, reading the clock every 1024 batches. */
	uint64_t frames = 0, warm = 0;
	double start = now(), warm_end = start + secs / 10, t0 = 0, end = 0;
	for (uint64_t it = 0;; it++) {
		deliver(opt_batch);
		unsigned n = reflect ? rx_reflect() : rx_drop();
		if (n != opt_batch) {
			fprintf(stderr, "ring_ceiling: a batch of %u frames, want %u\n", n, opt_batch);
			return 1;
		}
		if (reflect)
			transmitted();
		if (t0)
			frames += n;
		else
			warm += n;
		if (it % 1024 == 1023) {
			double t = now();
			if (!t0 && t >= warm_end) {
				t0 = t;
			} else if (t0 && t - t0 >= secs) {
				end = t;
				break;
			}
		}
	}
	sink_out = sink;
	double ns = (end - t0) * 1e9 / frames;
	printf("mode=%s batch=%u frames=%llu ns_per_frame=%.3f mpps=%.3f\n", mode, opt_batch,
	       (unsigned long long)frames, ns, 1e3 / ns);
	return 0;
}
