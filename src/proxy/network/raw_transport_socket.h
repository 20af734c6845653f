#pragma once

#include "proxy/network/connection.h"
#include "proxy/network/transport_socket.h"

namespace sheave::network {

// Plain TCP.
class RawTransportSocket final : public TransportSocket {
 public:
  void setCallbacks(TransportSocketCallbacks& callbacks) override { callbacks_ = &callbacks; }
  IoResult doRead(Buffer& buffer) override;
  IoResult doWrite(Buffer& buffer, bool end_stream) override;
  void onConnected() override;
  std::string_view negotiatedProtocol() const override { return {}; }
  void closeSocket(ConnectionEvent) override {}
  std::string_view failureReason() const override { return {}; }

 private:
  TransportSocketCallbacks* callbacks_ = nullptr;
  bool shutdown_ = false;
};

}  // namespace sheave::network
