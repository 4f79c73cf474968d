// End-to-end tests of the `dnd` command line as real processes on loopback: dnd-coordinator and two
// dnd-worker processes (exact Fashion-MNIST experts), driven by `dnd` subprocesses. Checks a full
// job (submit --wait, status, experts, result), cancellation, a killed worker, the exit codes of
// every failure class, and that the embedded and distributed demos write identical images.
// Every wait is bounded; a test that hangs fails by its ctest timeout.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "protocol/curve_keys.h"
#include "tests/support/closed_port.h"
#include "tests/support/subprocess.h"

namespace dnd {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr int kExitOk = 0, kExitJobFailed = 1, kExitUnavailable = 2, kExitTimeout = 3,
              kExitUsage = 64;

int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  DND_CHECK(bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0) << "bind";
  DND_CHECK(getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) << "getsockname";
  close(fd);
  return ntohs(address.sin_port);
}

std::string ReadAll(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct CliResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs `dnd ARGS...` to completion (at most `timeout`; a hang fails the test).
CliResult RunCli(const std::string& work_dir, std::vector<std::string> args,
                 milliseconds timeout = seconds(120)) {
  static int counter = 0;
  const std::string log = work_dir + "/cli-" + std::to_string(++counter) + ".log";
  args.insert(args.begin(), DND_BINARY);
  testing::Subprocess cli(args, log);
  auto code = cli.Wait(timeout);
  EXPECT_TRUE(code.has_value()) << "dnd did not finish within the timeout: " << cli.Output();
  CliResult result;
  result.exit_code = code.value_or(cli.Stop());
  result.output = cli.Output();
  return result;
}

std::string JobIdIn(const std::string& text) {
  std::smatch m;
  return std::regex_search(text, m, std::regex("j-[0-9]+")) ? m.str() : "";
}

// A coordinator and two workers as processes. `curve`: CURVE keys; the client key "alice" is
// allow-listed, "mallory" is not.
class Federation {
 public:
  explicit Federation(bool curve, int step_deadline_ms = 60000) : curve_(curve) {
    dir_ = testing::MakeTempDir("dnd-cli-test-");
    const int worker_port = FreePort(), client_port = FreePort();
    worker_ep_ = "tcp://127.0.0.1:" + std::to_string(worker_port);
    client_ep_ = "tcp://127.0.0.1:" + std::to_string(client_port);
    std::vector<std::string> security = {"--plain"};
    std::vector<std::string> worker_security = {"--plain"};
    if (curve) {
      keys_ = dir_ + "/keys";
      const std::string allow = dir_ + "/allow";
      std::filesystem::create_directories(keys_);
      std::filesystem::create_directories(allow);
      for (const char* name : {"coordinator", "footwear", "rest", "alice", "mallory"}) {
        auto pair = protocol::GenerateCurveKeyPair();
        DND_CHECK(pair.ok()) << pair.status().ToString();
        DND_CHECK(protocol::WriteKeyPair(keys_, name, *pair).ok()) << name;
        if (std::string(name) != "coordinator" && std::string(name) != "mallory") {
          std::ofstream(protocol::PublicKeyPath(allow, name)) << pair->public_key << "\n";
        }
      }
      security = {"--key-dir", keys_, "--key-name", "coordinator", "--allow-dir", allow};
    }
    std::vector<std::string> coordinator = {DND_COORDINATOR_BINARY,
                                            "--worker-endpoint",
                                            worker_ep_,
                                            "--client-endpoint",
                                            client_ep_,
                                            "--data-dir",
                                            dir_ + "/data",
                                            "--max-jobs",
                                            "2",
                                            "--step-deadline-ms",
                                            std::to_string(step_deadline_ms),
                                            "--heartbeat-ms",
                                            "200",
                                            "--liveness-ms",
                                            "1500"};
    coordinator.insert(coordinator.end(), security.begin(), security.end());
    coordinator_ = std::make_unique<testing::Subprocess>(coordinator, dir_ + "/coordinator.log");
    StartWorker("footwear", "sandal,sneaker,ankle_boot");
    StartWorker("rest", "trouser,dress,bag", {"--guidance-scale", "8"});  // its owner's scale
  }

  // Connection flags for `dnd` as client `name` (CURVE) or plain.
  std::vector<std::string> Connection(const std::string& name = "alice") const {
    std::vector<std::string> flags = {"--coordinator", client_ep_, "--connect-timeout", "5"};
    if (!curve_) {
      flags.push_back("--plain");
    } else {
      for (const std::string& f :
           {std::string("--key-dir"), keys_, std::string("--key-name"), name,
            std::string("--server-key"), protocol::PublicKeyPath(keys_, "coordinator").string()}) {
        flags.push_back(f);
      }
    }
    return flags;
  }

  // `dnd ARGS... <connection flags>`.
  CliResult Cli(std::vector<std::string> args, milliseconds timeout = seconds(120),
                const std::string& client = "alice") const {
    for (const std::string& f : Connection(client)) args.push_back(f);
    return RunCli(dir_, std::move(args), timeout);
  }

  // Waits until both experts are registered and alive (through `dnd experts --json`).
  bool WaitForExperts() const {
    const auto deadline = std::chrono::steady_clock::now() + seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      CliResult r = Cli({"experts", "--json"}, seconds(30));
      if (r.exit_code == kExitOk) {
        const size_t start = r.output.find('[');
        if (start != std::string::npos) {
          auto experts = nlohmann::json::parse(r.output.substr(start), nullptr, false);
          int alive = 0;
          if (experts.is_array()) {
            for (const auto& e : experts) alive += e.value("alive", false) ? 1 : 0;
          }
          if (alive == 2) return true;
        }
      }
      std::this_thread::sleep_for(milliseconds(200));
    }
    return false;
  }

  // Stops the processes; the directory (logs, keys, results) is kept when the test failed.
  ~Federation() {
    workers_.clear();
    coordinator_.reset();
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir_);
  }
  Federation(const Federation&) = delete;
  Federation& operator=(const Federation&) = delete;

  testing::Subprocess& worker(size_t i) { return *workers_[i]; }
  const std::string& dir() const { return dir_; }
  std::string Logs() const {
    std::string all = "coordinator:\n" + coordinator_->Output();
    for (const auto& w : workers_) all += "\nworker:\n" + w->Output();
    return all;
  }

 private:
  void StartWorker(const std::string& name, const std::string& concepts,
                   const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {
        DND_WORKER_BINARY, "--coordinator", worker_ep_,  "--name", name, "--organisation", name,
        "--concepts",      concepts,        "--threads", "1"};
    args.insert(args.end(), extra.begin(), extra.end());
    if (curve_) {
      for (const std::string& f :
           {std::string("--key-dir"), keys_, std::string("--key-name"), name,
            std::string("--server-key"), protocol::PublicKeyPath(keys_, "coordinator").string()}) {
        args.push_back(f);
      }
    } else {
      args.push_back("--plain");
    }
    workers_.push_back(std::make_unique<testing::Subprocess>(args, dir_ + "/" + name + ".log"));
  }

  bool curve_;
  std::string dir_, keys_, worker_ep_, client_ep_;
  std::unique_ptr<testing::Subprocess> coordinator_;
  std::vector<std::unique_ptr<testing::Subprocess>> workers_;
};

TEST(CliProcessTest, FullJobThroughTheCommandLine) {
  Federation federation(/*curve=*/true);
  ASSERT_TRUE(federation.WaitForExperts()) << federation.Logs();
  const std::string out = federation.dir() + "/results";
  CliResult submit =
      federation.Cli({"submit", "--expert", "footwear:sneaker", "--expert", "rest:bag", "--utility",
                      "attention", "--steps", "10", "--wait", "--out", out});
  ASSERT_EQ(submit.exit_code, kExitOk) << submit.output << federation.Logs();
  for (const char* name : {"image.png", "allocation.png", "allocation_steps.png", "record.json"}) {
    const auto path = std::filesystem::path(out) / name;
    EXPECT_TRUE(std::filesystem::exists(path)) << path;
    EXPECT_NE(submit.output.find(path.string()), std::string::npos) << "path printed: " << path;
  }
  EXPECT_EQ(ReadAll(std::filesystem::path(out) / "image.png").substr(1, 3), "PNG");
  const std::string job = JobIdIn(submit.output);
  ASSERT_FALSE(job.empty()) << submit.output;

  CliResult status = federation.Cli({"status", job, "--json"});
  ASSERT_EQ(status.exit_code, kExitOk) << status.output;
  auto json = nlohmann::json::parse(status.output.substr(status.output.find('{')));
  EXPECT_EQ(json["state"], "succeeded");
  EXPECT_EQ(json["step"], 10);

  CliResult again = federation.Cli({"result", job, "--out", out});
  EXPECT_EQ(again.exit_code, kExitUsage) << "refuses to overwrite: " << again.output;
  EXPECT_NE(again.output.find("--force"), std::string::npos);
  CliResult forced = federation.Cli({"result", job, "--out", out, "--force"});
  EXPECT_EQ(forced.exit_code, kExitOk) << forced.output;

  CliResult experts = federation.Cli({"experts"});
  EXPECT_EQ(experts.exit_code, kExitOk);
  EXPECT_NE(experts.output.find("footwear"), std::string::npos) << experts.output;
  EXPECT_NE(experts.output.find("sandal,sneaker,ankle_boot"), std::string::npos);
  EXPECT_NE(experts.output.find("CFG"), std::string::npos) << experts.output;
  EXPECT_NE(experts.output.find("default"), std::string::npos) << "footwear declares no scale";
  // The job set no --cfg: footwear sampled with the coordinator's default, rest with its owner's.
  auto record = nlohmann::json::parse(ReadAll(std::filesystem::path(out) / "record.json"));
  EXPECT_EQ(record["experts"][0]["guidance_scale"], 5.0) << record["experts"];
  EXPECT_EQ(record["experts"][1]["guidance_scale"], 8.0) << record["experts"];

  CliResult unknown = federation.Cli({"status", "j-999999"});
  EXPECT_EQ(unknown.exit_code, kExitUsage) << unknown.output;
}

TEST(CliProcessTest, ClientKeyNotOnTheAllowListExitsTwo) {
  Federation federation(/*curve=*/true);
  ASSERT_TRUE(federation.WaitForExperts()) << federation.Logs();
  CliResult refused = federation.Cli({"experts"}, seconds(60), "mallory");
  EXPECT_EQ(refused.exit_code, kExitUnavailable) << refused.output;
  EXPECT_NE(refused.output.find("refused this client's key"), std::string::npos) << refused.output;
}

TEST(CliProcessTest, UnreachableCoordinatorExitsTwoWithinTheTimeout) {
  const std::string dir = testing::MakeTempDir("dnd-cli-test-");
  const auto start = std::chrono::steady_clock::now();
  const testing::ClosedPort closed;
  CliResult r = RunCli(
      dir, {"status", "--plain", "--coordinator", closed.endpoint(), "--connect-timeout", "1"});
  EXPECT_EQ(r.exit_code, kExitUnavailable) << r.output;
  EXPECT_NE(r.output.find("cannot reach the coordinator"), std::string::npos) << r.output;
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(30));
  if (!HasFailure()) std::filesystem::remove_all(dir);
}

TEST(CliProcessTest, BadJobsExitWithTheUsageCodeAndSayWhatIsAvailable) {
  Federation federation(/*curve=*/false);
  ASSERT_TRUE(federation.WaitForExperts()) << federation.Logs();
  CliResult expert = federation.Cli({"submit", "--expert", "hats:fedora", "--steps", "5"});
  EXPECT_EQ(expert.exit_code, kExitUsage) << expert.output;
  EXPECT_NE(expert.output.find("footwear"), std::string::npos) << "lists the experts";
  CliResult concept_name = federation.Cli({"submit", "--expert", "footwear:bag", "--steps", "5"});
  EXPECT_EQ(concept_name.exit_code, kExitUsage) << concept_name.output;
  EXPECT_NE(concept_name.output.find("sneaker"), std::string::npos) << "lists the concepts";
  CliResult steps = federation.Cli({"submit", "--expert", "footwear:sneaker", "--steps", "0"});
  EXPECT_EQ(steps.exit_code, kExitUsage) << steps.output;
  CliResult nan = federation.Cli({"submit", "--expert", "footwear:sneaker", "--cfg", "nan"});
  EXPECT_EQ(nan.exit_code, kExitUsage) << nan.output;
}

TEST(CliProcessTest, CancelledJobExitsOneAndWatchTimeoutExitsThree) {
  Federation federation(/*curve=*/false);
  ASSERT_TRUE(federation.WaitForExperts()) << federation.Logs();
  CliResult submit = federation.Cli(
      {"submit", "--expert", "footwear:sneaker", "--expert", "rest:bag", "--steps", "500"});
  ASSERT_EQ(submit.exit_code, kExitOk) << submit.output;
  // No --utility: both (exact) experts report attention, so the job asks for it.
  EXPECT_NE(submit.output.find("utility: attention"), std::string::npos) << submit.output;
  const std::string job = JobIdIn(submit.output);
  ASSERT_FALSE(job.empty()) << submit.output;

  CliResult timeout = federation.Cli({"watch", job, "--timeout", "1"});
  EXPECT_EQ(timeout.exit_code, kExitTimeout) << timeout.output;

  CliResult cancel = federation.Cli({"cancel", job});
  EXPECT_EQ(cancel.exit_code, kExitOk) << cancel.output;
  CliResult watch = federation.Cli({"watch", job}, seconds(60));
  EXPECT_EQ(watch.exit_code, kExitJobFailed) << watch.output;
  EXPECT_NE(watch.output.find("cancelled"), std::string::npos) << watch.output;
  CliResult result = federation.Cli({"result", job, "--out", federation.dir() + "/none"});
  EXPECT_EQ(result.exit_code, kExitJobFailed) << result.output;
  EXPECT_NE(result.output.find("was cancelled"), std::string::npos) << result.output;
}

TEST(CliProcessTest, KilledWorkerFailsTheJobWithExitCodeOne) {
  Federation federation(/*curve=*/false, /*step_deadline_ms=*/3000);
  ASSERT_TRUE(federation.WaitForExperts()) << federation.Logs();
  CliResult submit = federation.Cli(
      {"submit", "--expert", "footwear:sneaker", "--expert", "rest:bag", "--steps", "500"});
  ASSERT_EQ(submit.exit_code, kExitOk) << submit.output;
  const std::string job = JobIdIn(submit.output);
  // Kill "rest" once the job has made a step.
  const auto deadline = std::chrono::steady_clock::now() + seconds(30);
  for (;;) {
    CliResult status = federation.Cli({"status", job, "--json"});
    const size_t brace = status.output.find('{');
    if (brace != std::string::npos) {
      auto json = nlohmann::json::parse(status.output.substr(brace), nullptr, false);
      if (json.is_object() && json.value("step", 0) > 0) break;
      ASSERT_NE(json.value("state", ""), "failed") << status.output;
    }
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << status.output;
    std::this_thread::sleep_for(milliseconds(100));
  }
  federation.worker(1).Signal(SIGKILL);
  CliResult watch = federation.Cli({"watch", job}, seconds(90));
  EXPECT_EQ(watch.exit_code, kExitJobFailed) << watch.output << federation.Logs();
  EXPECT_NE(watch.output.find("failed"), std::string::npos) << watch.output;
  EXPECT_NE(watch.output.find("rest"), std::string::npos) << "names the worker: " << watch.output;
}

TEST(CliProcessTest, EmbeddedAndDistributedDemosWriteIdenticalImages) {
  const std::string dir = testing::MakeTempDir("dnd-cli-demo-");
  CliResult embedded = RunCli(dir, {"demo", "--steps", "10", "--out", dir + "/embedded"});
  ASSERT_EQ(embedded.exit_code, kExitOk) << embedded.output;
  CliResult distributed =
      RunCli(dir, {"demo", "--distributed", "--steps", "10", "--out", dir + "/distributed"});
  ASSERT_EQ(distributed.exit_code, kExitOk) << distributed.output;
  for (const char* name : {"image.png", "allocation.png", "allocation_steps.png", "latent.npy"}) {
    const std::string a = ReadAll(dir + "/embedded/" + name);
    const std::string b = ReadAll(dir + "/distributed/" + name);
    EXPECT_FALSE(a.empty()) << name;
    EXPECT_TRUE(a == b) << name << " differs between the embedded and distributed demos";
  }
  // With the shipped weights the demo runs the trained experts and decodes with the autoencoder;
  // without them, the exact experts in pixel space.
  const std::filesystem::path weights =
      std::filesystem::path(DND_SOURCE_DIR) / "worker/models/weights";
  const bool shipped = std::filesystem::exists(weights / "autoencoder.pt") &&
                       std::filesystem::exists(weights / "footwear.pt") &&
                       std::filesystem::exists(weights / "rest.pt");
  for (const char* mode : {"embedded", "distributed"}) {
    auto record = nlohmann::json::parse(ReadAll(dir + "/" + mode + "/record.json"), nullptr, false);
    ASSERT_TRUE(record.is_object()) << mode;
    EXPECT_EQ(record["image"]["source"], shipped ? "autoencoder" : "pixels")
        << mode << ": " << record["image"];
  }
  if (!HasFailure()) std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace dnd
