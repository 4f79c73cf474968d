// Tests of protocol/curve_keys and the `dnd keygen` command: Z85 validity, key files (written,
// read back, mode 0600 for the secret, never overwritten) and allow-lists.
#include "protocol/curve_keys.h"

#include <array>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <zmq.h>

#include "tools/keygen_command.h"

namespace dnd::protocol {
namespace {

// A fresh empty directory under the test's temporary directory.
std::filesystem::path FreshDir(const std::string& name) {
  const auto dir = std::filesystem::path(::testing::TempDir()) /
                   ("dnd_keys_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

std::string ReadAll(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(CurveKeysTest, GeneratedPairIsValidZ85AndConsistent) {
  auto keys = GenerateCurveKeyPair();
  ASSERT_TRUE(keys.ok()) << keys.status().ToString();
  EXPECT_EQ(keys->public_key.size(), kZ85KeyLength);
  EXPECT_TRUE(ValidateZ85Key(keys->public_key).ok());
  EXPECT_TRUE(ValidateZ85Key(keys->secret_key).ok());
  // The public key derived independently by libzmq from the secret key matches.
  std::array<char, 41> derived{};
  ASSERT_EQ(zmq_curve_public(derived.data(), keys->secret_key.c_str()), 0);
  EXPECT_EQ(std::string(derived.data()), keys->public_key);
  auto other = GenerateCurveKeyPair();
  ASSERT_TRUE(other.ok());
  EXPECT_NE(other->secret_key, keys->secret_key);
}

TEST(CurveKeysTest, ValidateRejectsWrongLengthAndAlphabet) {
  EXPECT_EQ(ValidateZ85Key(std::string(39, 'a')).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateZ85Key(std::string(41, 'a')).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateZ85Key(std::string(39, 'a') + "~").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateZ85Key(std::string(39, 'a') + " ").code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(ValidateZ85Key(std::string(40, 'a')).ok());
}

TEST(CurveKeysTest, WriteThenReadReturnsTheSamePairWithASecretFileOfMode0600) {
  const auto dir = FreshDir("rw");
  auto keys = GenerateCurveKeyPair();
  ASSERT_TRUE(keys.ok());
  ASSERT_TRUE(WriteKeyPair(dir, "alice", *keys).ok());
  struct stat st {};
  ASSERT_EQ(::stat(SecretKeyPath(dir, "alice").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(PublicKeyPath(dir, "alice").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0022, 0u);  // public file: nobody else may write it
  auto read = ReadKeyPair(dir, "alice");
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(*read, *keys);
}

TEST(CurveKeysTest, WriteRefusesToOverwriteEitherFile) {
  const auto dir = FreshDir("overwrite");
  auto first = GenerateCurveKeyPair();
  auto second = GenerateCurveKeyPair();
  ASSERT_TRUE(first.ok() && second.ok());
  ASSERT_TRUE(WriteKeyPair(dir, "bob", *first).ok());
  const std::string before = ReadAll(SecretKeyPath(dir, "bob"));
  EXPECT_EQ(WriteKeyPair(dir, "bob", *second).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(ReadAll(SecretKeyPath(dir, "bob")), before);
  // Only the public file present: still refused, and no secret file appears.
  std::filesystem::remove(SecretKeyPath(dir, "bob"));
  EXPECT_EQ(WriteKeyPair(dir, "bob", *second).code(), StatusCode::kAlreadyExists);
  EXPECT_FALSE(std::filesystem::exists(SecretKeyPath(dir, "bob")));
}

TEST(CurveKeysTest, BadNamesAndMissingDirectoriesAreRejected) {
  auto keys = GenerateCurveKeyPair();
  ASSERT_TRUE(keys.ok());
  const auto dir = FreshDir("names");
  EXPECT_EQ(WriteKeyPair(dir, "", *keys).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(WriteKeyPair(dir, "a/b", *keys).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(WriteKeyPair(dir, ".hidden", *keys).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(WriteKeyPair(dir / "missing", "x", *keys).code(), StatusCode::kNotFound);
  EXPECT_EQ(ReadKeyFile(dir / "missing.key").status().code(), StatusCode::kNotFound);
}

TEST(CurveKeysTest, AllowListReadsEveryPublicKeyAndRejectsMalformedFiles) {
  const auto dir = FreshDir("allow");
  std::vector<std::string> expected;
  for (const char* name : {"w1", "w2", "w3"}) {
    auto keys = GenerateCurveKeyPair();
    ASSERT_TRUE(keys.ok());
    ASSERT_TRUE(WriteKeyPair(dir, name, *keys).ok());
    expected.push_back(keys->public_key);
  }
  auto list = ReadAllowList(dir);
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  EXPECT_EQ(*list, expected);  // sorted by file name w1, w2, w3; secret files ignored
  std::ofstream(dir / "broken.key") << "not a key\n";
  auto broken = ReadAllowList(dir);
  ASSERT_FALSE(broken.ok());
  EXPECT_EQ(broken.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadAllowList(dir / "missing").status().code(), StatusCode::kNotFound);
}

TEST(KeygenCommandTest, WritesValidFilesAndRefusesToOverwrite) {
  const auto dir = FreshDir("keygen");
  std::ostringstream out;
  ASSERT_TRUE(tools::RunKeygen({dir, "coordinator"}, out).ok());
  auto keys = ReadKeyPair(dir, "coordinator");
  ASSERT_TRUE(keys.ok()) << keys.status().ToString();
  EXPECT_NE(out.str().find(keys->public_key), std::string::npos);
  EXPECT_EQ(out.str().find(keys->secret_key), std::string::npos) << "secret key printed";
  struct stat st {};
  ASSERT_EQ(::stat(SecretKeyPath(dir, "coordinator").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(tools::RunKeygen({dir, "coordinator"}, out).code(), StatusCode::kAlreadyExists);
  auto again = ReadKeyPair(dir, "coordinator");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *keys);
}

TEST(KeygenCommandTest, CreatesAMissingDirectoryPrivateToItsOwner) {
  const auto dir = FreshDir("keygen-new") / "keys";
  ASSERT_FALSE(std::filesystem::exists(dir));
  std::ostringstream out;
  ASSERT_TRUE(tools::RunKeygen({dir, "alice"}, out).ok());
  EXPECT_TRUE(ReadKeyPair(dir, "alice").ok());
  struct stat st {};
  ASSERT_EQ(::stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

TEST(KeygenCommandTest, BinaryExitsNonZeroWhenTheFilesExist) {
  const auto dir = FreshDir("binary");
  const std::string command =
      std::string(DND_BINARY) + " keygen --out " + dir.string() + " --name w >/dev/null 2>&1";
  EXPECT_EQ(std::system(command.c_str()), 0);
  EXPECT_TRUE(ReadKeyPair(dir, "w").ok());
  EXPECT_NE(std::system(command.c_str()), 0);
}

}  // namespace
}  // namespace dnd::protocol
