#!/usr/bin/env bash
# Three network namespaces for config/veth-3.ini: lcr1, lcr2, lcr3, each with one
# end of a veth pair (lcrN-ns, address 10.77.0.N/24) whose other end (lcrN-br) is a
# port of the bridge lcrbr0 in the root namespace. Traffic between the nodes then
# crosses veth pairs and a bridge, like a LAN, instead of loopback.
#
#   sudo config/netns.sh up       create what is missing (idempotent)
#   sudo config/netns.sh down     remove all of it, also after a partial up
#   sudo config/netns.sh status   show what exists; exit 0 only if all is up
#
# LCR_NETNS_MTU (default 1500) sets the MTU of the bridge and the veth pairs,
# e.g. 9000 to try jumbo frames (then set mtu = 9000 in the config file).
set -euo pipefail

N=3
BRIDGE=lcrbr0
MTU=${LCR_NETNS_MTU:-1500}
prog=config/netns.sh

usage() {
	sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
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
has_addr() { [[ $(ip -n "$1" -4 addr show dev "$2" 2>/dev/null) == *"inet $3/24 "* ]]; }

up() {
	have_link "$BRIDGE" || ip link add "$BRIDGE" type bridge
	ip link set "$BRIDGE" mtu "$MTU" up
	for i in $(seq 1 "$N"); do
		local ns=lcr$i br=lcr$i-br nsif=lcr$i-ns
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
		ip -n "$ns" addr replace "10.77.0.$i/24" dev "$nsif"
	done
	if [ "$(cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null || echo 0)" = 1 ]; then
		echo "$prog: note: br_netfilter is active, so iptables FORWARD rules see bridged" \
			"traffic (a DROP policy, as Docker sets, blocks the nodes); allow $BRIDGE or" \
			"run: sysctl net.bridge.bridge-nf-call-iptables=0" >&2
	fi
	status >/dev/null || die "up: not everything came up; see: $prog status"
	echo "$prog: up: namespaces lcr1..lcr$N on bridge $BRIDGE, 10.77.0.1..$N/24"
}

down() {
	for i in $(seq 1 "$N"); do
		local ns=lcr$i
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

	check "bridge $BRIDGE, up" is_up "$BRIDGE"
	for i in $(seq 1 "$N"); do
		local ns=lcr$i
		check "namespace $ns" have_ns "$ns"
		check "$ns-br on $BRIDGE, up" eval "on_bridge $ns-br && is_up $ns-br"
		check "$ns: lo up" is_up -n "$ns" lo
		check "$ns: $ns-ns up, 10.77.0.$i/24" eval "is_up -n $ns $ns-ns && has_addr $ns $ns-ns 10.77.0.$i"
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
[ "$(id -u)" = 0 ] || die "$cmd needs root (network namespaces and links): sudo $prog $cmd"
command -v ip >/dev/null || die "the ip command is missing (apt-get install iproute2)"
"$cmd"
