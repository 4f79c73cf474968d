// Tests of the coordinator client (tools/coordinator_client.h) against real sockets on loopback:
// nothing listening -> Unavailable within the timeout; a CURVE key that is not allow-listed, or a
// plain client at a CURVE server -> Unauthenticated; and request/reply and Watch against a small
// scripted coordinator (a real ROUTER on its own thread).
#include "tools/coordinator_client.h"

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "protocol/codec.h"
#include "protocol/curve_keys.h"
#include "tests/support/closed_port.h"

namespace dnd::tools {
namespace {

using protocol::ClientToCoordinator;
using protocol::CoordinatorToClient;

std::unique_ptr<protocol::TransportContext> MakeContext() {
  auto context = protocol::TransportContext::Create();
  EXPECT_TRUE(context.ok()) << context.status().ToString();
  return std::move(context).value();
}

protocol::CurveKeyPair MakeKeys() {
  auto keys = protocol::GenerateCurveKeyPair();
  EXPECT_TRUE(keys.ok()) << keys.status().ToString();
  return *keys;
}

// A scripted coordinator: a ROUTER made and used on its own thread; `handler` maps each request to
// the replies to send back (possibly none).
class FakeCoordinator {
 public:
  using Handler = std::function<std::vector<CoordinatorToClient>(const ClientToCoordinator&)>;
  FakeCoordinator(protocol::SecurityOptions security, Handler handler)
      : handler_(std::move(handler)) {
    std::promise<std::string> bound;
    auto endpoint = bound.get_future();
    thread_ = std::thread([this, security, &bound] {
      auto context = MakeContext();
      auto router = protocol::RouterSocket::Bind(*context, "tcp://127.0.0.1:*", security);
      if (!router.ok()) {
        bound.set_value("");
        return;
      }
      bound.set_value((*router)->endpoint());
      while (!stop_.load()) {
        auto in = (*router)->Receive(50);
        if (!in.ok()) continue;
        auto request = protocol::DecodeClientToCoordinator(protocol::AsBytes(in->payload));
        if (!request.ok()) continue;
        ++requests_;
        for (const CoordinatorToClient& reply : handler_(*request)) {
          (void)(*router)->Send(in->peer, protocol::Encode(reply));
        }
      }
    });
    endpoint_ = endpoint.get();
  }
  ~FakeCoordinator() {
    stop_.store(true);
    thread_.join();
  }
  const std::string& endpoint() const { return endpoint_; }
  int requests() const { return requests_.load(); }

 private:
  Handler handler_;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::string endpoint_;
  std::thread thread_;
};

std::unique_ptr<CoordinatorClient> MakeClient(protocol::TransportContext& context,
                                              const std::string& endpoint,
                                              protocol::SecurityOptions security,
                                              int timeout_ms = 3000) {
  ClientOptions options;
  options.endpoint = endpoint;
  options.security = std::move(security);
  options.reply_timeout_ms = timeout_ms;
  auto client = CoordinatorClient::Connect(context, options);
  EXPECT_TRUE(client.ok()) << client.status().ToString();
  return std::move(client).value();
}

protocol::ProgressEvent Event(const std::string& job, protocol::JobState state, uint32_t step) {
  protocol::ProgressEvent e;
  e.job_id = job;
  e.state = state;
  e.step = step;
  e.total_steps = 3;
  return e;
}

TEST(CoordinatorClientTest, NothingListeningIsUnavailableWithinTheTimeout) {
  auto context = MakeContext();
  const testing::ClosedPort closed;  // held for the whole test: nobody can listen there
  const std::string endpoint = closed.endpoint();
  auto client = MakeClient(*context, endpoint, protocol::SecurityOptions::Plain(), 500);
  const auto start = std::chrono::steady_clock::now();
  auto jobs = client->GetStatus("");
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(jobs.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(jobs.status().message().find(endpoint), std::string::npos) << jobs.status().message();
  EXPECT_NE(jobs.status().message().find("within 0.5 s"), std::string::npos)
      << jobs.status().message();
  EXPECT_LT(waited, std::chrono::seconds(10)) << "bounded by the timeout, not hanging";
}

TEST(CoordinatorClientTest, KeyNotOnTheAllowListIsUnauthenticated) {
  const auto server_keys = MakeKeys();
  const auto admitted = MakeKeys();
  const auto stranger = MakeKeys();
  FakeCoordinator server(protocol::SecurityOptions::CurveServer(server_keys, {admitted.public_key}),
                         [](const ClientToCoordinator&) {
                           return std::vector<CoordinatorToClient>{protocol::StatusReply{}};
                         });
  ASSERT_FALSE(server.endpoint().empty());
  auto context = MakeContext();
  auto client =
      MakeClient(*context, server.endpoint(),
                 protocol::SecurityOptions::CurveClient(stranger, server_keys.public_key), 5000);
  auto jobs = client->GetStatus("");
  EXPECT_EQ(jobs.status().code(), StatusCode::kUnauthenticated) << jobs.status().ToString();
  EXPECT_NE(jobs.status().message().find("refused this client's key"), std::string::npos);
  EXPECT_EQ(server.requests(), 0);

  // The admitted key, same server: a reply.
  auto admitted_client =
      MakeClient(*context, server.endpoint(),
                 protocol::SecurityOptions::CurveClient(admitted, server_keys.public_key), 5000);
  auto ok = admitted_client->GetStatus("");
  EXPECT_TRUE(ok.ok()) << ok.status().ToString();
}

TEST(CoordinatorClientTest, PlainClientAtACurveServerIsUnauthenticated) {
  const auto server_keys = MakeKeys();
  FakeCoordinator server(protocol::SecurityOptions::CurveServer(server_keys, {}),
                         [](const ClientToCoordinator&) {
                           return std::vector<CoordinatorToClient>{protocol::StatusReply{}};
                         });
  auto context = MakeContext();
  auto client = MakeClient(*context, server.endpoint(), protocol::SecurityOptions::Plain(), 5000);
  auto jobs = client->GetStatus("");
  EXPECT_EQ(jobs.status().code(), StatusCode::kUnauthenticated) << jobs.status().ToString();
}

TEST(CoordinatorClientTest, TypedRequestsReturnRepliesAndErrorReplies) {
  FakeCoordinator server(protocol::SecurityOptions::Plain(), [](const ClientToCoordinator& r) {
    std::vector<CoordinatorToClient> out;
    if (const auto* submit = std::get_if<protocol::SubmitJob>(&r)) {
      out.push_back(protocol::SubmitReply{"j-" + submit->client_token});
    } else if (const auto* get = std::get_if<protocol::GetStatus>(&r)) {
      if (get->job_id == "j-missing") {
        out.push_back(protocol::ErrorReply{StatusCode::kNotFound, "no job j-missing", "", 0, 0});
      } else {
        protocol::JobStatus job;
        job.job_id = get->job_id;
        job.state = protocol::JobState::kRunning;
        job.step = 4;
        out.push_back(protocol::StatusReply{{job}});
      }
    } else if (std::holds_alternative<protocol::Cancel>(r)) {
      out.push_back(protocol::StatusReply{});  // the wrong kind of reply
    }
    return out;
  });
  auto context = MakeContext();
  auto client = MakeClient(*context, server.endpoint(), protocol::SecurityOptions::Plain());
  protocol::JobSpec spec;
  spec.experts = {protocol::ExpertRef{"footwear", "sneaker", 1.0f}};
  spec.steps = 10;
  auto id = client->Submit(protocol::SubmitJob{"tok", spec});
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(*id, "j-tok");
  auto jobs = client->GetStatus("j-1");
  ASSERT_TRUE(jobs.ok()) << jobs.status().ToString();
  ASSERT_EQ(jobs->size(), 1u);
  EXPECT_EQ((*jobs)[0].step, 4u);
  auto missing = client->GetStatus("j-missing");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(missing.status().message(), "no job j-missing");
  // A reply of the wrong kind is Internal.
  EXPECT_EQ(client->Cancel("j-1").status().code(), StatusCode::kInternal);
}

TEST(CoordinatorClientTest, WatchDeliversEveryEventUntilTheTerminalOne) {
  FakeCoordinator server(protocol::SecurityOptions::Plain(), [](const ClientToCoordinator& r) {
    std::vector<CoordinatorToClient> out;
    if (std::holds_alternative<protocol::Watch>(r)) {
      out.push_back(Event("j-1", protocol::JobState::kRunning, 1));
      out.push_back(Event("j-1", protocol::JobState::kRunning, 2));
      out.push_back(Event("j-1", protocol::JobState::kSucceeded, 3));
    }
    return out;
  });
  auto context = MakeContext();
  auto client = MakeClient(*context, server.endpoint(), protocol::SecurityOptions::Plain());
  std::vector<uint32_t> steps;
  auto last =
      client->Watch("j-1", [&](const protocol::ProgressEvent& e) { steps.push_back(e.step); });
  ASSERT_TRUE(last.ok()) << last.status().ToString();
  EXPECT_EQ(last->state, protocol::JobState::kSucceeded);
  EXPECT_EQ(steps, (std::vector<uint32_t>{1, 2, 3}));
}

TEST(CoordinatorClientTest, WatchOfASilentCoordinatorAsksForTheStatus) {
  FakeCoordinator server(protocol::SecurityOptions::Plain(), [](const ClientToCoordinator& r) {
    std::vector<CoordinatorToClient> out;
    if (std::holds_alternative<protocol::GetStatus>(r)) {
      protocol::JobStatus job;
      job.job_id = "j-2";
      job.state = protocol::JobState::kFailed;
      job.reason = "worker 'rest' stopped answering";
      job.step = 7;
      job.total_steps = 50;
      out.push_back(protocol::StatusReply{{job}});
    }
    return out;  // the Watch itself gets no events
  });
  auto context = MakeContext();
  auto client = MakeClient(*context, server.endpoint(), protocol::SecurityOptions::Plain(), 300);
  auto last = client->Watch("j-2", nullptr);
  ASSERT_TRUE(last.ok()) << last.status().ToString();
  EXPECT_EQ(last->state, protocol::JobState::kFailed);
  EXPECT_EQ(last->message, "worker 'rest' stopped answering");
  EXPECT_EQ(last->step, 7u);
}

TEST(CoordinatorClientTest, WatchPastItsDeadlineIsDeadlineExceeded) {
  FakeCoordinator server(protocol::SecurityOptions::Plain(), [](const ClientToCoordinator& r) {
    std::vector<CoordinatorToClient> out;
    if (std::holds_alternative<protocol::Watch>(r)) {
      out.push_back(Event("j-3", protocol::JobState::kRunning, 1));
    }
    if (std::holds_alternative<protocol::GetStatus>(r)) {
      protocol::JobStatus job;
      job.job_id = "j-3";
      job.state = protocol::JobState::kRunning;
      out.push_back(protocol::StatusReply{{job}});
    }
    return out;
  });
  auto context = MakeContext();
  auto client = MakeClient(*context, server.endpoint(), protocol::SecurityOptions::Plain(), 200);
  auto last = client->Watch("j-3", nullptr, std::chrono::milliseconds(700));
  EXPECT_EQ(last.status().code(), StatusCode::kDeadlineExceeded) << last.status().ToString();
  EXPECT_NE(last.status().message().find("keeps running"), std::string::npos);
}

TEST(CoordinatorClientTest, WatchOfAnUnknownJobIsNotFound) {
  FakeCoordinator server(protocol::SecurityOptions::Plain(), [](const ClientToCoordinator& r) {
    std::vector<CoordinatorToClient> out;
    if (std::holds_alternative<protocol::Watch>(r)) {
      out.push_back(protocol::ErrorReply{StatusCode::kNotFound, "unknown job j-9", "", 0, 0});
    }
    return out;
  });
  auto context = MakeContext();
  auto client = MakeClient(*context, server.endpoint(), protocol::SecurityOptions::Plain());
  EXPECT_EQ(client->Watch("j-9", nullptr).status().code(), StatusCode::kNotFound);
}

TEST(CoordinatorClientTest, MalformedEndpointIsInvalidArgument) {
  auto context = MakeContext();
  ClientOptions options;
  options.endpoint = "not-an-endpoint";
  options.security = protocol::SecurityOptions::Plain();
  EXPECT_EQ(CoordinatorClient::Connect(*context, options).status().code(),
            StatusCode::kInvalidArgument);
  options.endpoint = "tcp://127.0.0.1:5556";
  options.security = {};
  EXPECT_EQ(CoordinatorClient::Connect(*context, options).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace dnd::tools
