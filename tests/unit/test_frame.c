/* Ethernet/IPv4/UDP/ARP frames of the DPDK path (dpdk-net/frame.c): built, parsed, every drop
 * reason. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "frame.h"

#define MY_IP	  0x0a000001u /* 10.0.0.1 */
#define PEER_IP	  0x0a000002u
#define PAYLOAD_N 100

static const uint8_t my_mac[6] = { 0x02, 0, 0, 0, 0, 1 };
static const uint8_t peer_mac[6] = { 0x02, 0, 0, 0, 0, 2 };

/* A datagram from the peer to us, checksums in software. */
static uint32_t frame(uint8_t *f, uint32_t payload_len)
{
	struct lcr_frame_addr a = {
		.src_ip = PEER_IP, .dst_ip = MY_IP, .src_port = 7201, .dst_port = 7101, .ip_id = 7
	};
	memcpy(a.src_mac, peer_mac, 6);
	memcpy(a.dst_mac, my_mac, 6);
	for (uint32_t i = 0; i < payload_len; i++)
		f[LCR_FRAME_HDR + i] = (uint8_t)(i * 7 + 1);
	return lcr_frame_build_udp(f, &a, payload_len, false, false);
}

static uint32_t parse(const uint8_t *f, uint32_t len, struct lcr_frame *out)
{
	return lcr_frame_parse(f, len, MY_IP, false, false, out);
}

static void test_frame_round_trip(void **state)
{
	uint8_t f[2048];
	struct lcr_frame p;
	(void)state;

	uint32_t len = frame(f, PAYLOAD_N);
	assert_int_equal(len, LCR_FRAME_HDR + PAYLOAD_N);
	assert_int_equal(parse(f, len, &p), LCR_FRAME_OK);
	assert_false(p.arp);
	assert_int_equal(p.src_ip, PEER_IP);
	assert_int_equal(p.dst_ip, MY_IP);
	assert_int_equal(p.src_port, 7201);
	assert_int_equal(p.dst_port, 7101);
	assert_int_equal(p.payload, LCR_FRAME_HDR);
	assert_int_equal(p.payload_len, PAYLOAD_N);
	assert_memory_equal(p.src_mac, peer_mac, 6);
	/* Ethernet pads short frames: trailing bytes past the IP length are fine. */
	memset(f + len, 0xee, 20);
	assert_int_equal(parse(f, len + 20, &p), LCR_FRAME_OK);
	assert_int_equal(p.payload_len, PAYLOAD_N);
	/* A zero UDP checksum means "none" over IPv4. */
	f[LCR_ETH_HDR + LCR_IP4_HDR + 6] = 0;
	f[LCR_ETH_HDR + LCR_IP4_HDR + 7] = 0;
	assert_int_equal(parse(f, len, &p), LCR_FRAME_OK);
}

/* Checksums match an independent computation (RFC 1071 example, RFC 768 pseudo-header). */
static void test_frame_checksums(void **state)
{
	static const uint8_t rfc1071[] = { 0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7 };
	uint8_t f[256];
	(void)state;

	assert_int_equal(lcr_frame_sum(0, rfc1071, sizeof(rfc1071)), 0xddf2);
	uint32_t len = frame(f, 13); /* an odd payload */
	const uint8_t *ip = f + LCR_ETH_HDR;
	assert_int_equal(lcr_frame_sum(0, ip, LCR_IP4_HDR), 0xffff);
	/* Offloaded: the IP checksum left 0, the UDP one the pseudo-header sum. */
	struct lcr_frame_addr a = {
		.src_ip = PEER_IP, .dst_ip = MY_IP, .src_port = 1, .dst_port = 2
	};
	lcr_frame_build_udp(f, &a, 13, true, true);
	assert_int_equal(ip[10] | ip[11], 0);
	uint8_t ph[12] = { 10, 0, 0, 2, 10, 0, 0, 1, 0, 17, 0, 21 };
	uint32_t want = lcr_frame_sum(0, ph, sizeof(ph));
	const uint8_t *u = ip + LCR_IP4_HDR;
	assert_int_equal((uint32_t)(u[6] << 8 | u[7]), want);
	(void)len;
}

/* Each rule of lcr_frame_parse, broken on its own, names its reason. */
static void test_frame_drop_reasons(void **state)
{
	uint8_t good[256], f[256];
	struct lcr_frame p;
	(void)state;

	uint32_t len = frame(good, 32);
	uint8_t *ip = f + LCR_ETH_HDR, *u = ip + LCR_IP4_HDR;
#define FRESH() memcpy(f, good, sizeof(good))
	FRESH();
	assert_int_equal(parse(f, 13, &p), LCR_FRAME_SHORT);
	FRESH();
	f[12] = 0x86, f[13] = 0xdd; /* IPv6 */
	assert_int_equal(parse(f, len, &p), LCR_FRAME_NOT_IP);
	FRESH();
	f[12] = 0x81, f[13] = 0x00; /* a VLAN tag */
	assert_int_equal(parse(f, len, &p), LCR_FRAME_NOT_IP);
	FRESH();
	ip[0] = 0x65; /* version 6 */
	assert_int_equal(parse(f, len, &p), LCR_FRAME_IP_HEADER);
	FRESH();
	ip[0] = 0x44; /* 16-byte header */
	assert_int_equal(parse(f, len, &p), LCR_FRAME_IP_HEADER);
	FRESH();
	assert_int_equal(parse(f, LCR_ETH_HDR + 10, &p), LCR_FRAME_IP_HEADER);
	FRESH();
	ip[2] = 0x7f; /* total length past the frame */
	assert_int_equal(parse(f, len, &p), LCR_FRAME_IP_LENGTH);
	FRESH();
	ip[8] = 63; /* TTL changed, checksum not */
	assert_int_equal(parse(f, len, &p), LCR_FRAME_IP_CHECKSUM);
	assert_int_equal(lcr_frame_parse(f, len, MY_IP, true, false, &p), LCR_FRAME_OK);
	FRESH();
	ip[6] = 0x20; /* more fragments (checksum fixed below) */
	ip[10] = ip[11] = 0;
	uint16_t c = (uint16_t)~lcr_frame_sum(0, ip, LCR_IP4_HDR);
	ip[10] = (uint8_t)(c >> 8), ip[11] = (uint8_t)c;
	assert_int_equal(parse(f, len, &p), LCR_FRAME_FRAGMENT);
	FRESH();
	ip[9] = 6; /* TCP */
	assert_int_equal(lcr_frame_parse(f, len, MY_IP, true, false, &p), LCR_FRAME_NOT_UDP);
	FRESH();
	assert_int_equal(lcr_frame_parse(f, len, MY_IP + 1, false, false, &p), LCR_FRAME_NOT_OURS);
	FRESH();
	u[5] = (uint8_t)(u[5] + 1); /* UDP length one more than IP says */
	assert_int_equal(parse(f, len, &p), LCR_FRAME_UDP_LENGTH);
	FRESH();
	f[LCR_FRAME_HDR + 3] ^= 0x10; /* a payload bit: the UDP checksum catches it */
	assert_int_equal(parse(f, len, &p), LCR_FRAME_UDP_CHECKSUM);
	assert_int_equal(lcr_frame_parse(f, len, MY_IP, false, true, &p), LCR_FRAME_OK);
	FRESH();
	ip[2] = 0, ip[3] = 24; /* room for the IP header and half a UDP header */
	assert_int_equal(lcr_frame_parse(f, len, MY_IP, true, false, &p), LCR_FRAME_UDP_LENGTH);
	for (uint32_t r = 0; r < LCR_FRAME_DROP_MAX; r++)
		assert_string_not_equal(lcr_frame_drop_name(r), "unknown");
	assert_string_equal(lcr_frame_drop_name(LCR_FRAME_DROP_MAX), "unknown");
#undef FRESH
}

/* Every single-bit flip of a frame is either still a well-formed frame with the
 * same payload length or dropped: nothing reads past the frame. */
static void test_frame_every_bit_flip(void **state)
{
	uint8_t good[256], f[256];
	struct lcr_frame p;
	(void)state;

	uint32_t len = frame(good, 40);
	uint32_t ok = 0, dropped = 0;
	for (uint32_t bit = 0; bit < len * 8; bit++) {
		memcpy(f, good, len);
		f[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		uint32_t r = parse(f, len, &p);
		if (r == LCR_FRAME_OK) {
			assert_true(p.payload + p.payload_len <= len);
			ok++;
		} else {
			dropped++;
		}
	}
	/* MAC addresses, the IP id and the ports are not checked by the frame. */
	assert_true(dropped > ok);
}

static void test_frame_arp(void **state)
{
	uint8_t f[64];
	struct lcr_frame p;
	static const uint8_t zero[6];
	(void)state;

	uint32_t len = lcr_frame_build_arp(f, 1, peer_mac, PEER_IP, zero, MY_IP);
	assert_int_equal(len, LCR_ARP_FRAME_LEN);
	for (int i = 0; i < 6; i++)
		assert_int_equal(f[i], 0xff); /* a request is broadcast */
	assert_int_equal(parse(f, len, &p), LCR_FRAME_OK);
	assert_true(p.arp);
	assert_int_equal(p.arp_op, 1);
	assert_int_equal(p.src_ip, PEER_IP);
	assert_int_equal(p.dst_ip, MY_IP);
	assert_memory_equal(p.src_mac, peer_mac, 6);
	len = lcr_frame_build_arp(f, 2, my_mac, MY_IP, peer_mac, PEER_IP);
	assert_memory_equal(f, peer_mac, 6); /* a reply goes to the asker */
	assert_int_equal(parse(f, len, &p), LCR_FRAME_OK);
	assert_int_equal(p.arp_op, 2);
	assert_memory_equal(p.src_mac, my_mac, 6);
	assert_int_equal(parse(f, len - 1, &p), LCR_FRAME_ARP);
	f[LCR_ETH_HDR + 7] = 3; /* RARP */
	assert_int_equal(parse(f, len, &p), LCR_FRAME_ARP);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frame_round_trip),
		cmocka_unit_test(test_frame_checksums),
		cmocka_unit_test(test_frame_drop_reasons),
		cmocka_unit_test(test_frame_every_bit_flip),
		cmocka_unit_test(test_frame_arp),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
