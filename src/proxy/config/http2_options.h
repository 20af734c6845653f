#pragma once

#include "common/result.h"
#include "envoy/config/core/v3/protocol.pb.h"
#include "proxy/http/http2/protocol_options.h"

namespace sheave::config {

// config.core.v3.Http2ProtocolOptions onto the HTTP/2 codec's options, for
// downstream (HCM) and upstream (cluster) alike. Unset fields keep the
// codec's defaults, which are Envoy's; the result is validated, and an error
// names the field under "http2_protocol_options".
Status parseHttp2ProtocolOptions(const envoy::config::core::v3::Http2ProtocolOptions& proto,
                                 http2::ProtocolOptions& options);

}  // namespace sheave::config
