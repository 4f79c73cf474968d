// Tests of protocol/transport on real loopback sockets (tcp://127.0.0.1, ephemeral ports): round
// trips, CURVE with a ZAP allow-list (unknown keys refused, allow-listed keys admitted), the
// maximum message size, and version framing. Every wait is bounded by a timeout of a few seconds.
#include "protocol/transport.h"

#include <array>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "protocol/codec.h"
#include "protocol/curve_keys.h"
#include "protocol/messages.h"

namespace dnd::protocol {
namespace {

constexpr int kWaitMs = 3000;     // for messages that must arrive
constexpr int kRefusedMs = 1000;  // for messages that must not arrive

std::unique_ptr<TransportContext> MakeContext() {
  auto context = TransportContext::Create();
  EXPECT_TRUE(context.ok()) << context.status().ToString();
  return std::move(context).value();
}

CurveKeyPair MakeKeys() {
  auto keys = GenerateCurveKeyPair();
  EXPECT_TRUE(keys.ok()) << keys.status().ToString();
  return *keys;
}

WorkerHello Hello(const std::string& name) {
  WorkerHello h;
  h.expert_name = name;
  h.organisation = "org";
  h.latent_space_id = "space";
  h.latent_shape = {4, 8, 8};
  h.utilities = {UtilityKind::kScore};
  return h;
}

// Receives on the router and decodes a WorkerHello; returns its expert name.
std::string ReceiveHelloName(RouterSocket& router, RoutedMessage* raw = nullptr) {
  auto in = router.Receive(kWaitMs);
  if (!in.ok()) return "<" + in.status().ToString() + ">";
  auto decoded = DecodeWorkerToCoordinator(AsBytes(in->payload));
  if (!decoded.ok()) return "<" + decoded.status().ToString() + ">";
  if (raw) *raw = *in;
  return std::get<WorkerHello>(*decoded).expert_name;
}

TEST(TransportTest, PlainRoundTripDealerRouterDealer) {
  auto context = MakeContext();
  auto router = RouterSocket::Bind(*context, "tcp://127.0.0.1:*", SecurityOptions::Plain());
  ASSERT_TRUE(router.ok()) << router.status().ToString();
  EXPECT_EQ((*router)->endpoint().find('*'), std::string::npos) << (*router)->endpoint();
  auto dealer = DealerSocket::Connect(*context, (*router)->endpoint(), SecurityOptions::Plain());
  ASSERT_TRUE(dealer.ok()) << dealer.status().ToString();

  const WorkerToCoordinator hello = Hello("footwear");
  ASSERT_TRUE((*dealer)->Send(Encode(hello)).ok());
  auto in = (*router)->Receive(kWaitMs);
  ASSERT_TRUE(in.ok()) << in.status().ToString();
  EXPECT_TRUE(in->peer_public_key.empty());
  auto decoded = DecodeWorkerToCoordinator(AsBytes(in->payload));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_TRUE(*decoded == hello);

  const CoordinatorToWorker ack = HelloAck{true, "", 1000};
  ASSERT_TRUE((*router)->Send(in->peer, Encode(ack)).ok());
  auto back = (*dealer)->Receive(kWaitMs);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  auto ack_decoded = DecodeCoordinatorToWorker(AsBytes(*back));
  ASSERT_TRUE(ack_decoded.ok());
  EXPECT_TRUE(*ack_decoded == ack);
}

TEST(TransportTest, DealerRoutingIdIsThePeerIdentity) {
  auto context = MakeContext();
  auto router = RouterSocket::Bind(*context, "tcp://127.0.0.1:*", SecurityOptions::Plain());
  ASSERT_TRUE(router.ok());
  SocketOptions options;
  options.routing_id = "worker-7";
  auto dealer =
      DealerSocket::Connect(*context, (*router)->endpoint(), SecurityOptions::Plain(), options);
  ASSERT_TRUE(dealer.ok());
  ASSERT_TRUE((*dealer)->Send(Encode(WorkerToCoordinator(Hello("a")))).ok());
  RoutedMessage raw;
  EXPECT_EQ(ReceiveHelloName(**router, &raw), "a");
  EXPECT_EQ(raw.peer, "worker-7");
}

TEST(TransportTest, UnsetSecurityIsRefused) {
  auto context = MakeContext();
  auto router = RouterSocket::Bind(*context, "tcp://127.0.0.1:*", SecurityOptions{});
  ASSERT_FALSE(router.ok());
  EXPECT_EQ(router.status().code(), StatusCode::kInvalidArgument);
  auto dealer = DealerSocket::Connect(*context, "tcp://127.0.0.1:1", SecurityOptions{});
  ASSERT_FALSE(dealer.ok());
  EXPECT_EQ(dealer.status().code(), StatusCode::kInvalidArgument);
}

TEST(TransportTest, ReceiveTimesOutWithDeadlineExceeded) {
  auto context = MakeContext();
  auto router = RouterSocket::Bind(*context, "tcp://127.0.0.1:*", SecurityOptions::Plain());
  ASSERT_TRUE(router.ok());
  auto in = (*router)->Receive(50);
  ASSERT_FALSE(in.ok());
  EXPECT_EQ(in.status().code(), StatusCode::kDeadlineExceeded);
}

TEST(TransportTest, BadEndpointIsUnavailable) {
  auto context = MakeContext();
  auto router = RouterSocket::Bind(*context, "tcp://not-an-address:*", SecurityOptions::Plain());
  ASSERT_FALSE(router.ok());
  EXPECT_EQ(router.status().code(), StatusCode::kUnavailable);
}

TEST(TransportTest, SendToAnUnknownPeerIsUnavailable) {
  auto context = MakeContext();
  auto router = RouterSocket::Bind(*context, "tcp://127.0.0.1:*", SecurityOptions::Plain());
  ASSERT_TRUE(router.ok());
  Status s = (*router)->Send("nobody", "x");
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
}

TEST(TransportTest, CurveAdmitsOnlyAllowListedClients) {
  auto context = MakeContext();
  const CurveKeyPair server = MakeKeys();
  const CurveKeyPair allowed = MakeKeys();
  const CurveKeyPair stranger = MakeKeys();
  auto router = RouterSocket::Bind(*context, "tcp://127.0.0.1:*",
                                   SecurityOptions::CurveServer(server, {allowed.public_key}));
  ASSERT_TRUE(router.ok()) << router.status().ToString();

  // The stranger's handshake is refused by the ZAP handler: nothing reaches the server.
  auto refused = DealerSocket::Connect(*context, (*router)->endpoint(),
                                       SecurityOptions::CurveClient(stranger, server.public_key));
  ASSERT_TRUE(refused.ok());
  ASSERT_TRUE((*refused)->Send(Encode(WorkerToCoordinator(Hello("stranger")))).ok());
  auto nothing = (*router)->Receive(kRefusedMs);
  ASSERT_FALSE(nothing.ok()) << "a message from an unknown key arrived";
  EXPECT_EQ(nothing.status().code(), StatusCode::kDeadlineExceeded);

  // The allow-listed client gets through, and the server learns which key it used.
  auto admitted = DealerSocket::Connect(*context, (*router)->endpoint(),
                                        SecurityOptions::CurveClient(allowed, server.public_key));
  ASSERT_TRUE(admitted.ok());
  ASSERT_TRUE((*admitted)->Send(Encode(WorkerToCoordinator(Hello("allowed")))).ok());
  RoutedMessage raw;
  EXPECT_EQ(ReceiveHelloName(**router, &raw), "allowed");
  EXPECT_EQ(raw.peer_public_key, allowed.public_key);
  ASSERT_TRUE(
      (*router)->Send(raw.peer, Encode(CoordinatorToWorker(HelloAck{true, "", 1000}))).ok());
  auto back = (*admitted)->Receive(kWaitMs);
  EXPECT_TRUE(back.ok()) << back.status().ToString();

  // Still nothing from the stranger.
  auto still_nothing = (*router)->Receive(200);
  EXPECT_EQ(still_nothing.status().code(), StatusCode::kDeadlineExceeded);
}

TEST(TransportTest, CurveClientWithTheWrongServerKeyNeverConnects) {
  auto context = MakeContext();
  const CurveKeyPair server = MakeKeys();
  const CurveKeyPair impostor = MakeKeys();
  const CurveKeyPair client = MakeKeys();
  auto router = RouterSocket::Bind(*context, "tcp://127.0.0.1:*",
                                   SecurityOptions::CurveServer(server, {client.public_key}));
  ASSERT_TRUE(router.ok());
  auto dealer = DealerSocket::Connect(*context, (*router)->endpoint(),
                                      SecurityOptions::CurveClient(client, impostor.public_key));
  ASSERT_TRUE(dealer.ok());
  ASSERT_TRUE((*dealer)->Send(Encode(WorkerToCoordinator(Hello("x")))).ok());
  auto nothing = (*router)->Receive(kRefusedMs);
  EXPECT_EQ(nothing.status().code(), StatusCode::kDeadlineExceeded);
}

TEST(TransportTest, TwoCurveServersInOneContextKeepSeparateAllowLists) {
  auto context = MakeContext();
  const CurveKeyPair server = MakeKeys();
  const CurveKeyPair worker = MakeKeys();
  const CurveKeyPair client = MakeKeys();
  auto workers = RouterSocket::Bind(*context, "tcp://127.0.0.1:*",
                                    SecurityOptions::CurveServer(server, {worker.public_key}));
  auto clients = RouterSocket::Bind(*context, "tcp://127.0.0.1:*",
                                    SecurityOptions::CurveServer(server, {client.public_key}));
  ASSERT_TRUE(workers.ok() && clients.ok());
  // The worker's key is not admitted on the client socket.
  auto wrong = DealerSocket::Connect(*context, (*clients)->endpoint(),
                                     SecurityOptions::CurveClient(worker, server.public_key));
  ASSERT_TRUE(wrong.ok());
  ASSERT_TRUE((*wrong)->Send(Encode(WorkerToCoordinator(Hello("w")))).ok());
  EXPECT_EQ((*clients)->Receive(kRefusedMs).status().code(), StatusCode::kDeadlineExceeded);
  // ... but is on the worker socket.
  auto right = DealerSocket::Connect(*context, (*workers)->endpoint(),
                                     SecurityOptions::CurveClient(worker, server.public_key));
  ASSERT_TRUE(right.ok());
  ASSERT_TRUE((*right)->Send(Encode(WorkerToCoordinator(Hello("w")))).ok());
  EXPECT_EQ(ReceiveHelloName(**workers), "w");
}

TEST(TransportTest, CurveWithMalformedKeysIsInvalidArgument) {
  auto context = MakeContext();
  CurveKeyPair bad{"too-short", "too-short"};
  auto router =
      RouterSocket::Bind(*context, "tcp://127.0.0.1:*", SecurityOptions::CurveServer(bad, {}));
  ASSERT_FALSE(router.ok());
  EXPECT_EQ(router.status().code(), StatusCode::kInvalidArgument);
}

TEST(TransportTest, OversizedMessageIsDroppedAndTheServerKeepsWorking) {
  auto context = MakeContext();
  SocketOptions options;
  options.max_message_bytes = 64 * 1024;
  auto router =
      RouterSocket::Bind(*context, "tcp://127.0.0.1:*", SecurityOptions::Plain(), options);
  ASSERT_TRUE(router.ok());

  auto big_sender =
      DealerSocket::Connect(*context, (*router)->endpoint(), SecurityOptions::Plain());
  ASSERT_TRUE(big_sender.ok());
  ASSERT_TRUE((*big_sender)->Send(std::string(256 * 1024, 'x')).ok());
  auto dropped = (*router)->Receive(kRefusedMs);
  ASSERT_FALSE(dropped.ok()) << "an oversized message arrived";
  EXPECT_EQ(dropped.status().code(), StatusCode::kDeadlineExceeded);

  auto next = DealerSocket::Connect(*context, (*router)->endpoint(), SecurityOptions::Plain());
  ASSERT_TRUE(next.ok());
  ASSERT_TRUE((*next)->Send(Encode(WorkerToCoordinator(Hello("after")))).ok());
  EXPECT_EQ(ReceiveHelloName(**router), "after");
}

TEST(TransportTest, WrongVersionFrameIsFailedPreconditionAndTheSocketKeepsWorking) {
  auto context = MakeContext();
  auto router = RouterSocket::Bind(*context, "tcp://127.0.0.1:*", SecurityOptions::Plain());
  ASSERT_TRUE(router.ok());
  auto dealer = DealerSocket::Connect(*context, (*router)->endpoint(), SecurityOptions::Plain());
  ASSERT_TRUE(dealer.ok());

  const std::array<uint8_t, 4> version2 = {2, 0, 0, 0};
  const std::string payload = Encode(WorkerToCoordinator(Hello("v2")));
  (*dealer)->socket().send(zmq::buffer(version2), zmq::send_flags::sndmore);
  (*dealer)->socket().send(zmq::buffer(payload), zmq::send_flags::none);
  auto wrong = (*router)->Receive(kWaitMs);
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(wrong.status().message().find("version 2"), std::string::npos);

  // A single frame (no version frame at all).
  (*dealer)->socket().send(zmq::buffer(payload), zmq::send_flags::none);
  auto missing = (*router)->Receive(kWaitMs);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kInvalidArgument);

  ASSERT_TRUE((*dealer)->Send(Encode(WorkerToCoordinator(Hello("v1")))).ok());
  EXPECT_EQ(ReceiveHelloName(**router), "v1");
}

TEST(TransportTest, GarbagePayloadIsAnErrorValueNotACrash) {
  auto context = MakeContext();
  auto router = RouterSocket::Bind(*context, "tcp://127.0.0.1:*", SecurityOptions::Plain());
  ASSERT_TRUE(router.ok());
  auto dealer = DealerSocket::Connect(*context, (*router)->endpoint(), SecurityOptions::Plain());
  ASSERT_TRUE(dealer.ok());
  ASSERT_TRUE((*dealer)->Send("not a capnp message").ok());
  auto in = (*router)->Receive(kWaitMs);
  ASSERT_TRUE(in.ok());
  auto decoded = DecodeWorkerToCoordinator(AsBytes(in->payload));
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.status().code(), StatusCode::kDataLoss);
}

TEST(TransportTest, ContextMayBeDestroyedBeforeItsSockets) {
  auto context = MakeContext();
  auto router = RouterSocket::Bind(*context, "tcp://127.0.0.1:*", SecurityOptions::Plain());
  ASSERT_TRUE(router.ok());
  context.reset();
  auto in = (*router)->Receive(10);
  EXPECT_EQ(in.status().code(), StatusCode::kDeadlineExceeded);
}

}  // namespace
}  // namespace dnd::protocol
