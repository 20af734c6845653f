#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/network/buffer.h"

namespace sheave::network {

// Declared here so connection.h can include this header (its factories take a TransportSocket).
class Connection;
enum class ConnectionEvent;

// The peer's certificate as a TLS transport saw it, for later filters (RBAC principals, access
// log %DOWNSTREAM_PEER_URI_SAN%, XFCC). Filled once, when the handshake completes.
struct PeerCertificateInfo {
  std::vector<std::string> uri_sans;
  std::vector<std::string> dns_sans;
  std::string subject;        // RFC 2253, e.g. "CN=test,O=sheave"
  std::string serial_number;  // lower-case hex, no separators
  std::chrono::system_clock::time_point not_before;
  std::chrono::system_clock::time_point not_after;
  // A validation context was configured and the certificate passed it (chain and SAN checks).
  bool validated = false;
  std::string sha256;  // lower-case hex of the DER certificate's SHA-256 (XFCC's Hash)
};

// What a transport socket may ask of the connection that owns it.
class TransportSocketCallbacks {
 public:
  virtual ~TransportSocketCallbacks() = default;
  virtual int fd() const = 0;
  virtual Connection& connection() = 0;
  // True once a read event has pulled in enough; the socket stops reading and the connection
  // comes back for more on the next loop iteration (fairness and the buffer limit).
  virtual bool shouldDrainReadBuffer() = 0;
  // True once a readiness report said the peer shut down or reset. Until then a short read proves
  // the socket is drained (any later byte or FIN raises a new edge), which saves the EAGAIN read;
  // after it, read until EOF so the FIN is never left unseen.
  virtual bool peerClosedHint() const = 0;
  // The socket holds readable data the kernel no longer signals (e.g. decrypted TLS records):
  // schedule another doRead.
  virtual void setTransportSocketIsReadable() = 0;
  // kConnected after a handshake; the connection delivers it to its callbacks.
  virtual void raiseEvent(ConnectionEvent event) = 0;
  // Ask for a doWrite soon (e.g. a handshake that wants to send although the buffer is empty).
  virtual void flushWriteBuffer() = 0;
};

// The byte transport under a Connection: raw TCP now, TLS later. A TLS socket runs its handshake
// inside doRead/doWrite (returning EAGAIN until it can move application bytes) and raises
// kConnected through the callbacks when done.
class TransportSocket {
 public:
  virtual ~TransportSocket() = default;
  virtual void setCallbacks(TransportSocketCallbacks& callbacks) = 0;
  // Reads into buffer until EAGAIN, EOF or shouldDrainReadBuffer(). bytes = bytes added.
  virtual IoResult doRead(Buffer& buffer) = 0;
  // Writes and drains the buffer as far as the socket takes; after all of it and end_stream,
  // shuts down the write side. bytes = buffer bytes consumed.
  virtual IoResult doWrite(Buffer& buffer, bool end_stream) = 0;
  // TCP is connected (client side). A raw socket raises kConnected at once.
  virtual void onConnected() = 0;
  virtual std::string_view negotiatedProtocol() const = 0;
  // The connection is closing the fd (the socket must not touch it afterwards).
  virtual void closeSocket(ConnectionEvent event) = 0;
  virtual std::string_view failureReason() const = 0;
  // Null unless a handshake completed and the peer presented a certificate.
  virtual const PeerCertificateInfo* peerCertificate() const { return nullptr; }
  // The certificate this side presented (same fields); null on plaintext or when none was sent.
  virtual const PeerCertificateInfo* localCertificate() const { return nullptr; }
  // True for TLS: the connection is encrypted (":scheme" https, x-forwarded-proto).
  virtual bool secure() const { return false; }
  // The SNI the client asked for (server side), empty when none.
  virtual std::string_view requestedServerName() const { return {}; }
};

}  // namespace sheave::network
