// Tests of the shared connection flags and the config file (tools/connection_flags.h): values
// from a TOML file, flags overriding the file, $DND_CONFIG, and the errors of resolving keys.
#include "tools/connection_flags.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <gtest/gtest.h>

#include "protocol/curve_keys.h"

namespace dnd::tools {
namespace {

std::filesystem::path FreshDir(const std::string& name) {
  const auto dir = std::filesystem::path(::testing::TempDir()) / ("dnd_cli_" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// Parses `args` with the connection flags on the top level and a `status` subcommand; returns
// the flags and the parse outcome in *error (empty when it parsed).
ConnectionFlags Parse(const std::vector<std::string>& args, std::string* error = nullptr) {
  CLI::App app{"test"};
  ConnectionFlags flags;
  AddConnectionFlags(app, flags);
  app.add_subcommand("status", "");
  std::vector<const char*> argv = {"dnd"};
  for (const auto& a : args) argv.push_back(a.c_str());
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
    if (error) error->clear();
  } catch (const CLI::ParseError& e) {
    if (error) *error = std::string(e.get_name()) + ": " + e.what();
  }
  return flags;
}

class ConfigFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    unsetenv("DND_CONFIG");
    // Keep a real ~/.config/dnd/config.toml out of the test.
    home_ = FreshDir("home");
    const char* old = std::getenv("HOME");
    old_home_ = old ? old : "";
    setenv("HOME", home_.c_str(), 1);
  }
  void TearDown() override {
    unsetenv("DND_CONFIG");
    setenv("HOME", old_home_.c_str(), 1);
  }
  std::filesystem::path home_;
  std::string old_home_;
};

TEST_F(ConfigFileTest, ValuesComeFromTheFileAndFlagsOverrideThem) {
  const auto dir = FreshDir("config");
  const auto file = dir / "dnd.toml";
  std::ofstream(file) << "# dnd client settings\n"
                         "coordinator = \"tcp://coordinator.example:7000\"\n"
                         "key-dir = \"/etc/dnd/keys\"\n"
                         "key-name = \"alice\"\n"
                         "server-key = \"/etc/dnd/keys/coordinator.key\"\n"
                         "connect-timeout = 2.5\n";
  std::string error;
  ConnectionFlags from_file = Parse({"--config", file.string(), "status"}, &error);
  ASSERT_EQ(error, "");
  EXPECT_EQ(from_file.coordinator, "tcp://coordinator.example:7000");
  EXPECT_EQ(from_file.key_dir, "/etc/dnd/keys");
  EXPECT_EQ(from_file.key_name, "alice");
  EXPECT_EQ(from_file.server_key, "/etc/dnd/keys/coordinator.key");
  EXPECT_EQ(from_file.connect_timeout_s, 2.5);
  EXPECT_FALSE(from_file.plain);

  ConnectionFlags overridden =
      Parse({"--config", file.string(), "status", "--coordinator", "tcp://other:1"}, &error);
  ASSERT_EQ(error, "");
  EXPECT_EQ(overridden.coordinator, "tcp://other:1");
  EXPECT_EQ(overridden.key_name, "alice");
}

TEST_F(ConfigFileTest, DndConfigNamesTheDefaultFile) {
  const auto file = FreshDir("env") / "c.toml";
  std::ofstream(file) << "coordinator = \"tcp://from-env:5556\"\nplain = true\n";
  setenv("DND_CONFIG", file.c_str(), 1);
  std::string error;
  ConnectionFlags flags = Parse({"status"}, &error);
  ASSERT_EQ(error, "");
  EXPECT_EQ(flags.coordinator, "tcp://from-env:5556");
  EXPECT_TRUE(flags.plain);
}

TEST_F(ConfigFileTest, HomeConfigIsUsedWhenItExists) {
  std::filesystem::create_directories(home_ / ".config" / "dnd");
  std::ofstream(home_ / ".config" / "dnd" / "config.toml") << "coordinator = \"tcp://home:1\"\n";
  std::string error;
  EXPECT_EQ(Parse({"status"}, &error).coordinator, "tcp://home:1");
  EXPECT_EQ(error, "");
}

TEST_F(ConfigFileTest, MissingFilesAreErrorsOnlyWhenNamed) {
  std::string error;
  EXPECT_EQ(Parse({"status"}, &error).coordinator, kDefaultCoordinator);
  EXPECT_EQ(error, "") << "no default file: the defaults apply";
  Parse({"--config", "/nonexistent/dnd.toml", "status"}, &error);
  EXPECT_NE(error, "");
  setenv("DND_CONFIG", "/nonexistent/dnd.toml", 1);
  Parse({"status"}, &error);
  EXPECT_NE(error.find("DND_CONFIG"), std::string::npos) << error;
}

TEST_F(ConfigFileTest, UnknownKeysAreRefused) {
  const auto file = FreshDir("unknown") / "c.toml";
  std::ofstream(file) << "coordinatr = \"tcp://typo:1\"\n";
  std::string error;
  Parse({"--config", file.string(), "status"}, &error);
  EXPECT_NE(error, "");
}

TEST(ResolveClientOptionsTest, PlainNeedsNoKeys) {
  ConnectionFlags flags;
  flags.plain = true;
  flags.connect_timeout_s = 1.5;
  auto options = ResolveClientOptions(flags);
  ASSERT_TRUE(options.ok()) << options.status().ToString();
  EXPECT_EQ(options->security.mode, protocol::SecurityMode::kPlain);
  EXPECT_EQ(options->reply_timeout_ms, 1500);
  EXPECT_EQ(options->endpoint, kDefaultCoordinator);
}

TEST(ResolveClientOptionsTest, CurveReadsTheKeyFiles) {
  const auto dir = FreshDir("keys");
  auto client = protocol::GenerateCurveKeyPair();
  auto server = protocol::GenerateCurveKeyPair();
  ASSERT_TRUE(client.ok() && server.ok());
  ASSERT_TRUE(protocol::WriteKeyPair(dir, "alice", *client).ok());
  ASSERT_TRUE(protocol::WriteKeyPair(dir, "coordinator", *server).ok());
  ConnectionFlags flags;
  flags.key_dir = dir.string();
  flags.key_name = "alice";
  flags.server_key = protocol::PublicKeyPath(dir, "coordinator").string();
  auto options = ResolveClientOptions(flags);
  ASSERT_TRUE(options.ok()) << options.status().ToString();
  EXPECT_EQ(options->security.mode, protocol::SecurityMode::kCurve);
  EXPECT_EQ(options->security.own_keys, *client);
  EXPECT_EQ(options->security.server_public_key, server->public_key);

  flags.key_name = "bob";
  EXPECT_EQ(ResolveClientOptions(flags).status().code(), StatusCode::kNotFound);
}

TEST(ResolveClientOptionsTest, NeitherPlainNorKeysIsInvalid) {
  ConnectionFlags flags;
  EXPECT_EQ(ResolveClientOptions(flags).status().code(), StatusCode::kInvalidArgument);
  flags.plain = true;
  flags.connect_timeout_s = 0;
  EXPECT_EQ(ResolveClientOptions(flags).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace dnd::tools
