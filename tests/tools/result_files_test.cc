// Tests of writing fetched results (tools/result_files.h): paths in the documented order, no
// overwrite without force (and nothing written then), bad names from a reply refused; and of the
// table formatting the read commands use (tools/command_support.h).
#include "tools/result_files.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "tools/command_support.h"

namespace dnd::tools {
namespace {

std::filesystem::path FreshDir(const std::string& name) {
  const auto dir = std::filesystem::path(::testing::TempDir()) / ("dnd_results_" + name);
  std::filesystem::remove_all(dir);
  return dir;
}

std::string ReadAll(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

protocol::ResultFile File(const std::string& name, const std::string& content) {
  return {name, std::vector<uint8_t>(content.begin(), content.end())};
}

protocol::ResultFiles Result() {
  protocol::ResultFiles r;
  r.job_id = "j-000001";
  r.files = {File("record.json", "{}"), File("zz_extra.txt", "x"), File("allocation.png", "A"),
             File("image.png", "I"), File("allocation_steps.png", "S")};
  return r;
}

TEST(ResultFilesTest, WritesEveryFileAndListsThemInTheDocumentedOrder) {
  const auto dir = FreshDir("order") / "nested";
  auto paths = WriteResultFiles(Result(), dir, /*force=*/false);
  ASSERT_TRUE(paths.ok()) << paths.status().ToString();
  const std::vector<std::filesystem::path> expected = {dir / "image.png", dir / "allocation.png",
                                                       dir / "allocation_steps.png",
                                                       dir / "record.json", dir / "zz_extra.txt"};
  EXPECT_EQ(*paths, expected);
  EXPECT_EQ(ReadAll(dir / "image.png"), "I");
  EXPECT_EQ(ReadAll(dir / "record.json"), "{}");
  size_t entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 5u) << "no temporary files left behind";
}

TEST(ResultFilesTest, RefusesToOverwriteAndWritesNothingThen) {
  const auto dir = FreshDir("overwrite");
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "allocation.png") << "old";
  auto paths = WriteResultFiles(Result(), dir, /*force=*/false);
  EXPECT_EQ(paths.status().code(), StatusCode::kAlreadyExists);
  EXPECT_NE(paths.status().message().find("--force"), std::string::npos);
  EXPECT_EQ(ReadAll(dir / "allocation.png"), "old");
  EXPECT_FALSE(std::filesystem::exists(dir / "image.png"));

  auto forced = WriteResultFiles(Result(), dir, /*force=*/true);
  ASSERT_TRUE(forced.ok()) << forced.status().ToString();
  EXPECT_EQ(ReadAll(dir / "allocation.png"), "A");
}

TEST(ResultFilesTest, BadNamesFromTheCoordinatorAreRefused) {
  for (const char* bad : {"", ".", "..", "../escape.png", "a/b.png"}) {
    protocol::ResultFiles r;
    r.files = {File(bad, "x")};
    EXPECT_EQ(WriteResultFiles(r, FreshDir("bad"), true).status().code(),
              StatusCode::kInvalidArgument)
        << "'" << bad << "'";
  }
  protocol::ResultFiles twice;
  twice.files = {File("a.png", "1"), File("a.png", "2")};
  EXPECT_EQ(WriteResultFiles(twice, FreshDir("twice"), true).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(ResultFilesTest, OutIsAFileIsAFailedPrecondition) {
  const auto dir = FreshDir("file");
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "plain") << "x";
  EXPECT_EQ(WriteResultFiles(Result(), dir / "plain", true).status().code(),
            StatusCode::kFailedPrecondition);
}

TEST(FormatTableTest, ColumnsAlignToTheWidestCell) {
  const std::string table = FormatTable({{"NAME", "ALIVE"}, {"footwear", "yes"}, {"rest", "no"}});
  EXPECT_EQ(table,
            "NAME      ALIVE\n"
            "footwear  yes\n"
            "rest      no\n");
}

}  // namespace
}  // namespace dnd::tools
