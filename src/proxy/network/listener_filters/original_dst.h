#pragma once

#include "common/address.h"
#include "common/result.h"

namespace sheave {

// envoy.filters.listener.original_dst's lookup: the destination an accepted TCP connection had
// before iptables REDIRECT/DNAT (the sidecar's capture rules) rewrote it, asked of netfilter's
// connection tracking with SO_ORIGINAL_DST (IPv4) or IP6T_SO_ORIGINAL_DST (IPv6). An IPv6
// socket carrying an IPv4-mapped connection is asked as IPv4 and gives an IPv4 address.
//
// Errors: kNotFound when the connection was not redirected (no NAT entry), kUnavailable when
// connection tracking is not loaded, kInvalidArgument for a descriptor that is not an IP
// socket. A connection that conntrack tracks but did not rewrite reports its own local address.
Result<Address> originalDestination(int fd);

}  // namespace sheave
