/* SPDX-License-Identifier: MIT */
/* Ethernet, IPv4, UDP and ARP on raw frames (see frame.h). */
#include <string.h>

#include "frame.h"
#include "lcr_assert.h"

static const char *const drop_names[LCR_FRAME_DROP_MAX] = {
	[LCR_FRAME_OK] = "none",
	[LCR_FRAME_SHORT] = "frame_short",
	[LCR_FRAME_NOT_IP] = "not_ip",
	[LCR_FRAME_IP_HEADER] = "ip_header",
	[LCR_FRAME_IP_LENGTH] = "ip_length",
	[LCR_FRAME_IP_CHECKSUM] = "ip_checksum",
	[LCR_FRAME_FRAGMENT] = "ip_fragment",
	[LCR_FRAME_NOT_UDP] = "not_udp",
	[LCR_FRAME_NOT_OURS] = "not_our_ip",
	[LCR_FRAME_UDP_LENGTH] = "udp_length",
	[LCR_FRAME_UDP_CHECKSUM] = "udp_checksum",
	[LCR_FRAME_ARP] = "arp_malformed",
};

const char *lcr_frame_drop_name(uint32_t reason)
{
	return reason < LCR_FRAME_DROP_MAX ? drop_names[reason] : "unknown";
}

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void wr32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

uint32_t lcr_frame_sum(uint32_t sum, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint64_t s = sum;

	while (len >= 2) {
		s += (uint32_t)(p[0] << 8 | p[1]);
		p += 2;
		len -= 2;
	}
	if (len)
		s += (uint32_t)p[0] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint32_t)s;
}

/* The UDP pseudo-header: addresses, protocol, UDP length (folded sum). */
static uint32_t pseudo_sum(uint32_t src, uint32_t dst, uint16_t udp_len)
{
	uint8_t ph[12];

	wr32(ph, src);
	wr32(ph + 4, dst);
	ph[8] = 0;
	ph[9] = 17;
	wr16(ph + 10, udp_len);
	return lcr_frame_sum(0, ph, sizeof(ph));
}

static uint32_t parse_arp(const uint8_t *p, uint32_t len, struct lcr_frame *f)
{
	const uint8_t *a = p + LCR_ETH_HDR;

	/* Ethernet (1), IPv4 (0x0800), 6-byte and 4-byte addresses. */
	if (len < LCR_ARP_FRAME_LEN || rd16(a) != 1 || rd16(a + 2) != LCR_ETHER_IPV4 || a[4] != 6 ||
	    a[5] != 4)
		return LCR_FRAME_ARP;
	f->arp_op = rd16(a + 6);
	if (f->arp_op != 1 && f->arp_op != 2)
		return LCR_FRAME_ARP;
	f->arp = true;
	memcpy(f->src_mac, a + 8, 6);
	f->src_ip = rd32(a + 14);
	f->dst_ip = rd32(a + 24);
	return LCR_FRAME_OK;
}

uint32_t lcr_frame_parse(const uint8_t *p, uint32_t len, uint32_t my_ip, bool ip_ok, bool udp_ok,
			 struct lcr_frame *f)
{
	memset(f, 0, sizeof(*f));
	if (len < LCR_ETH_HDR)
		return LCR_FRAME_SHORT;
	memcpy(f->src_mac, p + 6, 6);
	uint16_t type = rd16(p + 12);
	if (type == LCR_ETHER_ARP)
		return parse_arp(p, len, f);
	if (type != LCR_ETHER_IPV4)
		return LCR_FRAME_NOT_IP;

	const uint8_t *ip = p + LCR_ETH_HDR;
	uint32_t room = len - LCR_ETH_HDR; /* Ethernet may pad short frames */
	if (room < LCR_IP4_HDR || ip[0] >> 4 != 4)
		return LCR_FRAME_IP_HEADER;
	uint32_t ihl = (uint32_t)(ip[0] & 0xf) * 4;
	if (ihl < LCR_IP4_HDR || ihl > room)
		return LCR_FRAME_IP_HEADER;
	uint32_t total = rd16(ip + 2);
	if (total < ihl || total > room)
		return LCR_FRAME_IP_LENGTH;
	if (!ip_ok && lcr_frame_sum(0, ip, ihl) != 0xffff)
		return LCR_FRAME_IP_CHECKSUM;
	if (rd16(ip + 6) & 0x3fff) /* MF, or a fragment offset */
		return LCR_FRAME_FRAGMENT;
	if (ip[9] != 17)
		return LCR_FRAME_NOT_UDP;
	f->src_ip = rd32(ip + 12);
	f->dst_ip = rd32(ip + 16);
	if (f->dst_ip != my_ip)
		return LCR_FRAME_NOT_OURS;

	const uint8_t *u = ip + ihl;
	if (total < ihl + LCR_UDP_HDR)
		return LCR_FRAME_UDP_LENGTH;
	uint32_t ulen = rd16(u + 4);
	if (ulen != total - ihl)
		return LCR_FRAME_UDP_LENGTH;
	if (!udp_ok && rd16(u + 6) != 0) {
		uint32_t s = pseudo_sum(f->src_ip, f->dst_ip, (uint16_t)ulen);
		if (lcr_frame_sum(s, u, ulen) != 0xffff)
			return LCR_FRAME_UDP_CHECKSUM;
	}
	f->src_port = rd16(u);
	f->dst_port = rd16(u + 2);
	f->payload = LCR_ETH_HDR + ihl + LCR_UDP_HDR;
	f->payload_len = ulen - LCR_UDP_HDR;
	return LCR_FRAME_OK;
}

uint32_t lcr_frame_build_udp(uint8_t *p, const struct lcr_frame_addr *a, uint32_t payload_len,
			     bool ip_csum_offload, bool udp_csum_offload)
{
	LCR_ASSERT(payload_len <= 65535 - LCR_IP4_HDR - LCR_UDP_HDR);
	uint16_t ulen = (uint16_t)(LCR_UDP_HDR + payload_len);
	uint8_t *ip = p + LCR_ETH_HDR, *u = ip + LCR_IP4_HDR;

	memcpy(p, a->dst_mac, 6);
	memcpy(p + 6, a->src_mac, 6);
	wr16(p + 12, LCR_ETHER_IPV4);
	ip[0] = 0x45;
	ip[1] = 0;
	wr16(ip + 2, (uint16_t)(LCR_IP4_HDR + ulen));
	wr16(ip + 4, a->ip_id);
	wr16(ip + 6, 0x4000); /* don't fragment */
	ip[8] = 64;
	ip[9] = 17;
	wr16(ip + 10, 0);
	wr32(ip + 12, a->src_ip);
	wr32(ip + 16, a->dst_ip);
	if (!ip_csum_offload)
		wr16(ip + 10, (uint16_t)~lcr_frame_sum(0, ip, LCR_IP4_HDR));
	wr16(u, a->src_port);
	wr16(u + 2, a->dst_port);
	wr16(u + 4, ulen);
	uint32_t ps = pseudo_sum(a->src_ip, a->dst_ip, ulen);
	if (udp_csum_offload) {
		wr16(u + 6, (uint16_t)ps); /* what the port adds the rest to */
	} else {
		wr16(u + 6, 0);
		uint16_t c = (uint16_t)~lcr_frame_sum(ps, u, ulen);
		wr16(u + 6, c ? c : 0xffff); /* 0 would mean "no checksum" */
	}
	return LCR_FRAME_HDR + payload_len;
}

uint32_t lcr_frame_build_arp(uint8_t *p, uint16_t op, const uint8_t src_mac[6], uint32_t src_ip,
			     const uint8_t dst_mac[6], uint32_t dst_ip)
{
	static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	uint8_t *a = p + LCR_ETH_HDR;

	LCR_ASSERT(op == 1 || op == 2);
	memcpy(p, op == 1 ? bcast : dst_mac, 6);
	memcpy(p + 6, src_mac, 6);
	wr16(p + 12, LCR_ETHER_ARP);
	wr16(a, 1);
	wr16(a + 2, LCR_ETHER_IPV4);
	a[4] = 6;
	a[5] = 4;
	wr16(a + 6, op);
	memcpy(a + 8, src_mac, 6);
	wr32(a + 14, src_ip);
	if (op == 1)
		memset(a + 18, 0, 6);
	else
		memcpy(a + 18, dst_mac, 6);
	wr32(a + 24, dst_ip);
	return LCR_ARP_FRAME_LEN;
}
