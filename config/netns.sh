#!/usr/bin/env bash
# Three network namespaces for config/veth-3.ini: lcr1, lcr2, lcr3, each with one
# end of a veth pair (lcrN-ns, address 10.77.0.N/24) whose other end (lcrN-br) is a
# port of the bridge lcrbr0 in the root namespace. Traffic between the nodes then
# crosses veth pairs and a bridge, like a LAN, instead of loopback. The bridge has
# the address 10.77.0.254/24, so a client in the root namespace (lcraft-cli)
# reaches the nodes too.
#
#   sudo config/netns.sh up       create what is missing (idempotent)
#   sudo config/netns.sh down     remove all of it, also after a partial up
#   sudo config/netns.sh status   show what exists; exit 0 only if all is up
#
# Environment: LCR_NETNS_MTU (default 1500) sets the MTU of the bridge and the
# veth pairs, e.g. 9000 to try jumbo frames (then set mtu = 9000 in the config).
# LCR_NETNS_PREFIX (default lcr: namespaces lcr1..3, bridge lcrbr0; 1 to 11
# lowercase letters and digits) and LCR_NETNS_SUBNET (default 10.77.0: the first
# three bytes of the /24) name another set, e.g. for tests beside yours; give
# down and status the same values as up.
set -euo pipefail

N=3
PREFIX=${LCR_NETNS_PREFIX:-lcr}
SUBNET=${LCR_NETNS_SUBNET:-10.77.0}
BRIDGE=${PREFIX}br0
MTU=${LCR_NETNS_MTU:-1500}
prog=config/netns.sh

usage() {
	sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
}

die() {
	echo "$prog: $*" >&2
	exit 1
}

have_ns() { [ -e "/run/netns/$1" ]; }
have_link() { ip link show dev "$1" >/dev/null 2>&1; }
# Tests on `ip` output (no pipes into grep -q: with pipefail, an early exit of
# grep could fail the pipeline through SIGPIPE).
is_up() { # [-n ns] dev
	local out
	out=$(ip "${@:1:$#-1}" link show dev "${!#}" 2>/dev/null) || return 1
	[[ $out =~ [\<,]UP[,\>] ]]
}
on_bridge() { [[ $(ip link show dev "$1" 2>/dev/null) == *"master $BRIDGE "* ]]; }
has_addr() { # ns ("" for the root namespace), dev, address
	[[ $(ip ${1:+-n "$1"} -4 addr show dev "$2" 2>/dev/null) == *"inet $3/24 "* ]]
}

up() {
	have_link "$BRIDGE" || ip link add "$BRIDGE" type bridge
	ip link set "$BRIDGE" mtu "$MTU" up
	ip addr replace "$SUBNET.254/24" dev "$BRIDGE"
	for i in $(seq 1 "$N"); do
		local ns=$PREFIX$i br=$PREFIX$i-br nsif=$PREFIX$i-ns
		have_ns "$ns" || ip netns add "$ns"
		if ! have_link "$br"; then
			# The end left in the root namespace by an interrupted up goes first.
			! have_link "$nsif" || ip link del "$nsif"
			# A veth end in the namespace without its peer cannot exist: create both.
			ip link add "$br" type veth peer name "$nsif" netns "$ns"
		elif have_link "$nsif"; then
			ip link set "$nsif" netns "$ns" # created, not yet moved
		fi
		ip link set "$br" mtu "$MTU" master "$BRIDGE" up
		ip -n "$ns" link set lo up
		ip -n "$ns" link set "$nsif" mtu "$MTU" up
		ip -n "$ns" addr replace "$SUBNET.$i/24" dev "$nsif"
	done
	if [ "$(cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null || echo 0)" = 1 ]; then
		echo "$prog: note: br_netfilter is active, so iptables FORWARD rules see bridged" \
			"traffic (a DROP policy, as Docker sets, blocks the nodes); allow $BRIDGE or" \
			"run: sysctl net.bridge.bridge-nf-call-iptables=0" >&2
	fi
	status >/dev/null || die "up: not everything came up; see: $prog status"
	echo "$prog: up: namespaces ${PREFIX}1..$PREFIX$N on bridge $BRIDGE ($SUBNET.254)," \
		"$SUBNET.1..$N/24"
}

down() {
	for i in $(seq 1 "$N"); do
		local ns=$PREFIX$i
		# Deleting one end of a veth pair deletes the other.
		! have_link "$ns-br" || ip link del "$ns-br"
		! have_link "$ns-ns" || ip link del "$ns-ns"
		! have_ns "$ns" || ip netns del "$ns"
	done
	! have_link "$BRIDGE" || ip link del "$BRIDGE"
	echo "$prog: down: nothing of it is left"
}

# One line per piece; returns 0 only when every piece is there and up.
status() {
	local ok=0
	check() { # description, test...
		local what=$1
		shift
		if "$@"; then echo "ok       $what"; else echo "missing  $what"; ok=1; fi
	}

	check "bridge $BRIDGE, up, $SUBNET.254/24" eval "is_up $BRIDGE && has_addr '' $BRIDGE $SUBNET.254"
	for i in $(seq 1 "$N"); do
		local ns=$PREFIX$i
		check "namespace $ns" have_ns "$ns"
		check "$ns-br on $BRIDGE, up" eval "on_bridge $ns-br && is_up $ns-br"
		check "$ns: lo up" is_up -n "$ns" lo
		check "$ns: $ns-ns up, $SUBNET.$i/24" eval "is_up -n $ns $ns-ns && has_addr $ns $ns-ns $SUBNET.$i"
	done
	return "$ok"
}

cmd=${1:-}
case "$cmd" in
up | down | status) ;;
-h | --help)
	usage
	exit 0
	;;
*)
	usage >&2
	exit 2
	;;
esac
# Interface names have at most 15 characters: <prefix><i>-br, <prefix>br0.
[[ $PREFIX =~ ^[a-z][a-z0-9]{0,10}$ ]] ||
	die "LCR_NETNS_PREFIX=$PREFIX: expected 1 to 11 lowercase letters and digits, a letter first"
byte='(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])'
[[ $SUBNET =~ ^$byte\.$byte\.$byte$ ]] ||
	die "LCR_NETNS_SUBNET=$SUBNET: expected the first three bytes of an IPv4 /24, e.g. 10.77.0"
[ "$(id -u)" = 0 ] || die "$cmd needs root (network namespaces and links): sudo $prog $cmd"
command -v ip >/dev/null || die "the ip command is missing (apt-get install iproute2)"
"$cmd"
