// A loopback TCP port on which connections are refused for as long as this object lives. Test-only.
//
// "Bind port 0, note the number, close" is racy on a busy CI machine: another test may bind the
// port in the meantime (then a plain client meets a CURVE server and the test sees a handshake
// failure), or the kernel may pick it as a client's source port (a TCP self-connect). A socket
// that is bound but never listens holds the port, and the kernel answers every SYN with a reset.
#ifndef DND_TESTS_SUPPORT_CLOSED_PORT_H_
#define DND_TESTS_SUPPORT_CLOSED_PORT_H_

#include <string>

namespace dnd::testing {

class ClosedPort {
 public:
  ClosedPort();  // Aborts the test binary when no port can be bound (a broken test set-up).
  ~ClosedPort();
  ClosedPort(const ClosedPort&) = delete;
  ClosedPort& operator=(const ClosedPort&) = delete;

  int port() const { return port_; }
  std::string endpoint() const { return "tcp://127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_ = -1;
  int port_ = 0;
};

}  // namespace dnd::testing

#endif  // DND_TESTS_SUPPORT_CLOSED_PORT_H_
