/* SPDX-License-Identifier: MIT */
/*
 * Ethernet, IPv4, UDP and ARP on raw frames: what the DPDK backend (dpdk.c)
 * puts around a datagram and checks on the way in. Pure functions on bytes,
 * no DPDK: the unit tests and the fuzz target run them in every build.
 *
 * A frame lcraft sends is Ethernet II (no VLAN tag), IPv4 without options,
 * don't-fragment set, TTL 64, then UDP; the payload is a datagram of the wire
 * protocol (docs/wire-protocol.md), byte for byte what the socket transport
 * sends, so a DPDK node and a kernel host on the same link talk to each other.
 * A received frame is checked in the order of enum lcr_frame_drop; the first
 * rule it breaks names the counter it is dropped under.
 */
#ifndef LCR_FRAME_H
#define LCR_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LCR_ETH_HDR	  14
#define LCR_IP4_HDR	  20
#define LCR_UDP_HDR	  8
#define LCR_FRAME_HDR	  (LCR_ETH_HDR + LCR_IP4_HDR + LCR_UDP_HDR) /* 42 */
#define LCR_ETHER_IPV4	  0x0800
#define LCR_ETHER_ARP	  0x0806
#define LCR_ARP_FRAME_LEN 42 /* Ethernet + ARP for IPv4 */

/* Why a received frame was not handed up; the backend's drop counters. */
enum lcr_frame_drop {
	LCR_FRAME_OK = 0,
	LCR_FRAME_SHORT,	/* shorter than an Ethernet header */
	LCR_FRAME_NOT_IP,	/* neither IPv4 nor ARP (IPv6, VLAN-tagged, ...) */
	LCR_FRAME_IP_HEADER,	/* version not 4, header length under 20 or past the frame */
	LCR_FRAME_IP_LENGTH,	/* total length under the header or past the frame */
	LCR_FRAME_IP_CHECKSUM,	/* the IPv4 header checksum does not hold */
	LCR_FRAME_FRAGMENT,	/* a fragment (more-fragments set or an offset) */
	LCR_FRAME_NOT_UDP,	/* another IP protocol */
	LCR_FRAME_NOT_OURS,	/* addressed to another IPv4 address */
	LCR_FRAME_UDP_LENGTH,	/* UDP length disagrees with the IP length */
	LCR_FRAME_UDP_CHECKSUM, /* a non-zero UDP checksum that does not hold */
	LCR_FRAME_ARP,		/* an ARP frame that is not well formed */
	LCR_FRAME_DROP_MAX
};

const char *lcr_frame_drop_name(uint32_t reason);

/* What lcr_frame_parse found in a frame it accepts. */
struct lcr_frame {
	bool arp;	    /* an ARP frame (the fields below are the ARP ones) */
	uint8_t src_mac[6]; /* Ethernet source */
	uint32_t src_ip;    /* host order; ARP: sender protocol address */
	uint32_t dst_ip;    /* host order; ARP: target protocol address */
	uint16_t src_port;  /* UDP */
	uint16_t dst_port;  /* UDP */
	uint16_t arp_op;    /* 1 request, 2 reply */
	uint32_t payload;   /* offset of the UDP payload in the frame */
	uint32_t payload_len;
};

/*
 * Check a received frame of `len` bytes for IPv4 address `my_ip` (host
 * order). `ip_ok` / `udp_ok`: the port already verified that checksum in
 * hardware (skip it); the caller drops a frame the port found bad itself.
 * Returns LCR_FRAME_OK with *f filled, or the drop reason.
 */
uint32_t lcr_frame_parse(const uint8_t *p, uint32_t len, uint32_t my_ip, bool ip_ok, bool udp_ok,
			 struct lcr_frame *f);

/* Addresses of one UDP datagram on the link. */
struct lcr_frame_addr {
	uint8_t src_mac[6], dst_mac[6];
	uint32_t src_ip, dst_ip; /* host order */
	uint16_t src_port, dst_port;
	uint16_t ip_id;
};

/*
 * Write the 42 header bytes before a `payload_len`-byte payload at p + 42.
 * The IPv4 header checksum is filled in unless `ip_csum_offload` (then 0,
 * the port computes it); the UDP checksum likewise unless `udp_csum_offload`
 * (then the pseudo-header sum the port expects). Returns the frame length.
 */
uint32_t lcr_frame_build_udp(uint8_t *p, const struct lcr_frame_addr *a, uint32_t payload_len,
			     bool ip_csum_offload, bool udp_csum_offload);

/* An ARP frame (42 bytes): op 1 request (target MAC zero, to broadcast) or 2 reply. */
uint32_t lcr_frame_build_arp(uint8_t *p, uint16_t op, const uint8_t src_mac[6], uint32_t src_ip,
			     const uint8_t dst_mac[6], uint32_t dst_ip);

/* The Internet checksum (RFC 1071) of `len` bytes, folded, not inverted. */
uint32_t lcr_frame_sum(uint32_t sum, const void *p, size_t len);

#endif /* LCR_FRAME_H */
