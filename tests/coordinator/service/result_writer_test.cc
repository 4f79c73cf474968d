// The coordinator's result files for a job in a 4x16x16 latent space (no sockets: a Job driven by
// hand-made worker replies): latent.npy (header and values), image.png decoded by the autoencoder
// of the job's latent space (a stand-in decoder with a known formula, and the shipped autoencoder
// file when present), the channel-mean preview for a latent space without a decoder, and the
// decoder-loading errors. Expected pixels are computed here in float64 from the job's latent.
#include "coordinator/service/result_writer.h"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <png.h>

#include "coordinator/service/coordinator_server.h"
#include "coordinator/service/job.h"
#include "coordinator/service/job_spec.h"
#include "coordinator/service/latent_decoder.h"
#include "coordinator/service/npy.h"
#include "coordinator/service/worker_registry.h"
#include "protocol/transport.h"
#include "tests/support/subprocess.h"
#include "worker/models/autoencoder.h"

namespace dnd::coordinator {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int C = 4, H = 16, W = 16;
constexpr int kScale = 4;  // the server's image scale

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A PNG read back with libpng (8-bit RGB).
struct Png {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;
  uint8_t Grey(int x, int y) const { return rgb[(static_cast<size_t>(y) * width + x) * 3]; }
};

Png ReadPng(const fs::path& file) {
  Png out;
  FILE* fp = std::fopen(file.c_str(), "rb");
  if (fp == nullptr) return out;
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    std::fclose(fp);
    return Png{};
  }
  png_init_io(png, fp);
  png_read_info(png, info);
  out.width = static_cast<int>(png_get_image_width(png, info));
  out.height = static_cast<int>(png_get_image_height(png, info));
  EXPECT_EQ(png_get_color_type(png, info), PNG_COLOR_TYPE_RGB);
  out.rgb.resize(static_cast<size_t>(out.width) * out.height * 3);
  for (int y = 0; y < out.height; ++y) {
    png_read_row(png, &out.rgb[static_cast<size_t>(y) * out.width * 3], nullptr);
  }
  png_destroy_read_struct(&png, &info, nullptr);
  std::fclose(fp);
  return out;
}

uint8_t Byte(double v) { return static_cast<uint8_t>(std::clamp(std::lround(v), 0L, 255L)); }

// A job of two experts in latent space `latent_space_id` (4x16x16), run to its last step with
// seeded stand-in predictions (no workers).
std::unique_ptr<Job> FinishedJob(const std::string& latent_space_id) {
  WorkerRegistry registry(std::chrono::milliseconds(60000));
  const auto now = SteadyClock::now();
  for (const char* name : {"footwear", "rest"}) {
    protocol::WorkerHello hello;
    hello.expert_name = name;
    hello.organisation = name;
    hello.latent_space_id = latent_space_id;
    hello.latent_shape = {C, H, W};
    hello.concepts = {std::string(name) == "footwear" ? "sneaker" : "bag"};
    hello.utilities = {protocol::UtilityKind::kScore, protocol::UtilityKind::kAttention};
    registry.Register(std::string("peer-") + name, "", hello, now);
  }
  protocol::JobSpec spec;
  spec.experts = {{"footwear", "sneaker", 1.0f}, {"rest", "bag", 1.0f}};
  spec.steps = 4;
  spec.seed = 7;
  auto resolved = ResolveJob(spec, JobDefaults{}, registry);
  DND_CHECK(resolved.ok()) << resolved.status().ToString();
  auto job = Job::Create("j-000001", std::move(resolved->resolved), std::move(resolved->experts),
                         resolved->shape, resolved->latent_space_id);
  DND_CHECK(job.ok()) << job.status().ToString();
  std::vector<Outgoing> pending = (*job)->Start(now, 60000);
  int replies = 0;
  while (!pending.empty()) {
    std::vector<Outgoing> next;
    for (const Outgoing& o : pending) {
      std::vector<Outgoing> more;
      if (const auto* step = std::get_if<protocol::StepRequest>(&o.message)) {
        protocol::StepReply reply;
        reply.job_id = step->job_id;
        reply.step_index = step->step_index;
        reply.attempt = step->attempt;
        const std::vector<uint32_t> shape = {C, H, W};
        reply.prediction_cond = {shape, protocol::DType::kFloat32, {}, {}};
        reply.prediction_uncond = reply.prediction_cond;
        for (int k = 0; k < C * H * W; ++k) {
          reply.prediction_cond.f32.push_back(
              static_cast<float>(0.5 * std::sin(0.37 * k + step->step_index + replies)));
          reply.prediction_uncond.f32.push_back(static_cast<float>(0.3 * std::cos(0.11 * k)));
        }
        reply.utility = {
            {H, W}, protocol::DType::kFloat32, std::vector<float>(H * W, 1.0f / (H * W)), {}};
        ++replies;
        more = (*job)->OnStepReply(o.peer, reply, now);
      } else if (const auto* guidance = std::get_if<protocol::GuidanceRequest>(&o.message)) {
        protocol::GuidanceReply reply;
        reply.job_id = guidance->job_id;
        reply.step_index = guidance->step_index;
        reply.attempt = guidance->attempt;
        reply.gradient = {
            {C, H, W}, protocol::DType::kFloat32, std::vector<float>(C * H * W, 0.0f), {}};
        more = (*job)->OnGuidanceReply(o.peer, reply, now);
      }
      next.insert(next.end(), more.begin(), more.end());
    }
    pending = std::move(next);
  }
  DND_CHECK((*job)->all_steps_done()) << "the stand-in replies did not finish the job";
  return std::move(job).value();
}

// A decoder with a known formula: canvas(y, x) = clamp(0.5 + 0.25 * z[c, y/4, x/4]) with
// c = (x + y) mod 4, for checking the writer without LibTorch.
class FormulaDecoder final : public LatentDecoder {
 public:
  explicit FormulaDecoder(std::string id) : id_(std::move(id)) {}
  const std::string& latent_space_id() const override { return id_; }
  StatusOr<Canvas> Decode(std::span<const float> latent) const override {
    if (latent.size() != static_cast<size_t>(C * H * W)) return InvalidArgumentError("size");
    Canvas canvas{64, 64, std::vector<float>(64 * 64)};
    for (int y = 0; y < 64; ++y) {
      for (int x = 0; x < 64; ++x) {
        const int c = (x + y) % 4;
        canvas.values[y * 64 + x] = std::clamp(
            0.5f + 0.25f * latent[(static_cast<size_t>(c) * H + y / 4) * W + x / 4], 0.0f, 1.0f);
      }
    }
    return canvas;
  }

 private:
  std::string id_;
};

class ResultWriterTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::MakeTempDir("dnd-result-writer-test-"); }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir_);
  }
  json Record(const std::string& job_id) {
    return json::parse(ReadAll(fs::path(dir_) / "jobs" / job_id / kRecordFile));
  }
  fs::path JobFile(const std::string& name) { return fs::path(dir_) / "jobs" / "j-000001" / name; }
  std::string dir_;
};

TEST_F(ResultWriterTest, LatentNpyHoldsTheFinalLatentUnderANumpyV1Header) {
  const std::unique_ptr<Job> job = FinishedJob("test-space");
  ResultWriter writer(dir_, kScale);
  ASSERT_TRUE(writer.WriteSuccess(*job, 10).ok());
  const std::string bytes = ReadAll(JobFile(kLatentFile));
  ASSERT_GE(bytes.size(), 10u);
  EXPECT_EQ(bytes.substr(0, 6), std::string("\x93NUMPY"));
  EXPECT_EQ(bytes[6], '\x01');
  EXPECT_EQ(bytes[7], '\x00');
  const size_t header_length = static_cast<unsigned char>(bytes[8]) |
                               (static_cast<size_t>(static_cast<unsigned char>(bytes[9])) << 8);
  EXPECT_EQ((10 + header_length) % 64, 0u) << "numpy aligns the data to 64 bytes";
  const std::string header = bytes.substr(10, header_length);
  EXPECT_EQ(header.back(), '\n');
  EXPECT_NE(header.find("'descr': '<f4'"), std::string::npos) << header;
  EXPECT_NE(header.find("'fortran_order': False"), std::string::npos) << header;
  EXPECT_NE(header.find("'shape': (4, 16, 16)"), std::string::npos) << header;
  const std::vector<float>& latent = job->latent();
  ASSERT_EQ(bytes.size(), 10 + header_length + latent.size() * 4);
  int wrong = 0;
  for (size_t i = 0; i < latent.size(); ++i) {
    float v;
    std::memcpy(&v, bytes.data() + 10 + header_length + 4 * i, 4);
    wrong += std::memcmp(&v, &latent[i], 4) != 0 ? 1 : 0;
  }
  EXPECT_EQ(wrong, 0) << "values of latent.npy that differ from the job's final latent";

  const json record = Record("j-000001");
  EXPECT_NE(std::find(record["files"].begin(), record["files"].end(), kLatentFile),
            record["files"].end())
      << record["files"];
  auto files = writer.Read("j-000001");
  ASSERT_TRUE(files.ok());
  bool served = false;
  for (const auto& f : *files)
    served = served || (f.name == kLatentFile && f.data.size() == bytes.size());
  EXPECT_TRUE(served) << "FetchResult does not include latent.npy";
}

// FetchResult passes the client's job id to Read: an id that is a path must not reach files
// outside jobs/ (here a job's real files, one level up and through "..").
TEST_F(ResultWriterTest, ReadAndHasRecordRefuseIdsThatAreNotPlainNames) {
  const std::unique_ptr<Job> job = FinishedJob("test-space");
  ResultWriter writer(dir_, kScale);
  ASSERT_TRUE(writer.WriteSuccess(*job, 10).ok());
  ASSERT_TRUE(writer.Read("j-000001").ok());
  EXPECT_TRUE(writer.HasRecord("j-000001"));
  EXPECT_FALSE(writer.HasRecord("j-000002"));
  const std::vector<std::string> ids = {"../jobs/j-000001", "j-000001/", "./j-000001",  "..", ".",
                                        "",  "x/../j-000001",
                                        fs::absolute(fs::path(dir_) / "jobs" / "j-000001").string()};
  for (const std::string& id : ids) {
    auto files = writer.Read(id);
    EXPECT_EQ(files.status().code(), StatusCode::kNotFound) << "'" << id << "'";
    EXPECT_FALSE(writer.HasRecord(id)) << "'" << id << "'";
  }
}

TEST_F(ResultWriterTest, UnknownLatentSpaceGetsTheChannelMeanPreviewAndSaysSo) {
  const std::unique_ptr<Job> job = FinishedJob("test-space");
  ResultWriter writer(dir_, kScale, {std::make_shared<FormulaDecoder>("another-space")});
  ASSERT_TRUE(writer.WriteSuccess(*job, 10).ok());
  // Expected: the mean over channels at each of the 16x16 positions, min-max to 0..255.
  const std::vector<float>& z = job->latent();
  std::vector<double> mean(H * W, 0.0);
  for (int j = 0; j < H * W; ++j) {
    for (int c = 0; c < C; ++c) mean[j] += z[static_cast<size_t>(c) * H * W + j] / 4.0;
  }
  const double lo = *std::min_element(mean.begin(), mean.end());
  const double hi = *std::max_element(mean.begin(), mean.end());
  const Png image = ReadPng(JobFile(kImageFile));
  ASSERT_EQ(image.width, W * kScale);
  ASSERT_EQ(image.height, H * kScale);
  int wrong = 0;
  for (int y = 0; y < image.height; ++y) {
    for (int x = 0; x < image.width; ++x) {
      const double v = (mean[(y / kScale) * W + x / kScale] - lo) / (hi - lo) * 255.0;
      wrong += std::abs(image.Grey(x, y) - Byte(v)) > 1 ? 1 : 0;  // 1: rounding of a float mean
    }
  }
  EXPECT_EQ(wrong, 0);
  const json record = Record("j-000001");
  EXPECT_EQ(record["image"]["source"], "preview") << record["image"];
  EXPECT_NE(record["image"]["note"].get<std::string>().find("'test-space'"), std::string::npos)
      << record["image"];
}

TEST_F(ResultWriterTest, MatchingDecoderGivesTheDecodedCanvasUpscaled) {
  const std::unique_ptr<Job> job = FinishedJob("test-space");
  ResultWriter writer(dir_, kScale,
                      {std::make_shared<FormulaDecoder>("another-space"),
                       std::make_shared<FormulaDecoder>("test-space")});
  ASSERT_TRUE(writer.WriteSuccess(*job, 10).ok());
  const std::vector<float>& z = job->latent();
  const Png image = ReadPng(JobFile(kImageFile));
  ASSERT_EQ(image.width, 64 * kScale);
  ASSERT_EQ(image.height, 64 * kScale);
  int wrong = 0, distinct_low = 0;
  for (int y = 0; y < image.height; ++y) {
    for (int x = 0; x < image.width; ++x) {
      const int cy = y / kScale, cx = x / kScale, c = (cx + cy) % 4;
      const double v =
          std::clamp(0.5 + 0.25 * z[(static_cast<size_t>(c) * H + cy / 4) * W + cx / 4], 0.0, 1.0);
      wrong += std::abs(image.Grey(x, y) - Byte(255.0 * v)) > 0 ? 1 : 0;
      distinct_low += image.Grey(x, y) < 100 ? 1 : 0;
    }
  }
  EXPECT_EQ(wrong, 0) << "pixels that are not the decoded canvas, 4x4 each";
  EXPECT_GT(distinct_low, 0) << "a flat image would not test anything";
  // The allocation overlay covers the same picture: 16x16 positions of 16x16 pixels each.
  const Png overlay = ReadPng(JobFile(kAllocationFile));
  EXPECT_EQ(overlay.width, image.width);
  EXPECT_EQ(overlay.height, image.height);
  const json record = Record("j-000001");
  EXPECT_EQ(record["image"]["source"], "autoencoder") << record["image"];
  EXPECT_EQ(record["image"]["decoder"], "test-space") << record["image"];
}

// The shipped autoencoder (or $DND_TEST_AUTOENCODER): skipped when neither is there.
fs::path AutoencoderFile() {
  if (const char* env = std::getenv("DND_TEST_AUTOENCODER"); env != nullptr && *env) return env;
  return fs::path(DND_SOURCE_DIR) / "worker/models/weights/autoencoder.pt";
}

TEST_F(ResultWriterTest, TheAutoencoderFileDecodesTheJobsLatent) {
  const fs::path file = AutoencoderFile();
  if (!fs::exists(file)) GTEST_SKIP() << "no autoencoder at " << file;
  auto decoder = LoadAutoencoderDecoder(file);
  ASSERT_TRUE(decoder.ok()) << decoder.status().ToString();
  const std::string id = (*decoder)->latent_space_id();
  EXPECT_EQ(id.rfind("fmnist-ae-4x16x16-", 0), 0u) << id;
  const std::unique_ptr<Job> job = FinishedJob(id);
  ResultWriter writer(dir_, kScale, {std::move(decoder).value()});
  ASSERT_TRUE(writer.WriteSuccess(*job, 10).ok());
  // Expected canvas: the autoencoder library called directly on the job's latent.
  auto autoencoder = models::Autoencoder::Load(file.string());
  ASSERT_TRUE(autoencoder.ok());
  auto canvas = (*autoencoder)->Decode(job->latent());
  ASSERT_TRUE(canvas.ok());
  ASSERT_EQ(canvas->size(), 64u * 64u);
  const Png image = ReadPng(JobFile(kImageFile));
  ASSERT_EQ(image.width, 64 * kScale);
  ASSERT_EQ(image.height, 64 * kScale);
  int wrong = 0;
  for (int y = 0; y < image.height; ++y) {
    for (int x = 0; x < image.width; ++x) {
      const double v = (*canvas)[static_cast<size_t>(y / kScale) * 64 + x / kScale];
      wrong += std::abs(image.Grey(x, y) - Byte(255.0 * v)) > 0 ? 1 : 0;
    }
  }
  EXPECT_EQ(wrong, 0);
  EXPECT_EQ(Record("j-000001")["image"]["decoder"], id);
}

TEST(LatentDecoderTest, LoadingReportsMissingAndForeignFiles) {
  EXPECT_EQ(LoadAutoencoderDecoder("/nonexistent/autoencoder.pt").status().code(),
            StatusCode::kNotFound);
  const std::string dir = testing::MakeTempDir("dnd-latent-decoder-test-");
  std::ofstream(dir + "/not-a-model.pt") << "hello\n";
  EXPECT_EQ(LoadAutoencoderDecoder(dir + "/not-a-model.pt").status().code(), StatusCode::kDataLoss);
  fs::remove_all(dir);
}

TEST(LatentDecoderTest, TwoFilesOfOneLatentSpaceAreRefused) {
  const fs::path file = AutoencoderFile();
  if (!fs::exists(file)) GTEST_SKIP() << "no autoencoder at " << file;
  EXPECT_EQ(LoadAutoencoderDecoders({file, file}).status().code(), StatusCode::kInvalidArgument);
  auto one = LoadAutoencoderDecoders({file});
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->size(), 1u);
}

TEST(LatentDecoderTest, TheServerRefusesTwoDecodersOfOneLatentSpace) {
  auto context = protocol::TransportContext::Create();
  ASSERT_TRUE(context.ok());
  CoordinatorOptions options;
  options.worker_security = protocol::SecurityOptions::Plain();
  options.client_security = protocol::SecurityOptions::Plain();
  options.data_dir = testing::MakeTempDir("dnd-latent-decoder-server-test-");
  options.decoders = {std::make_shared<FormulaDecoder>("x"), std::make_shared<FormulaDecoder>("x")};
  EXPECT_EQ(CoordinatorServer::Create(options, **context).status().code(),
            StatusCode::kInvalidArgument);
  options.decoders = {std::make_shared<FormulaDecoder>("x"), nullptr};
  EXPECT_EQ(CoordinatorServer::Create(options, **context).status().code(),
            StatusCode::kInvalidArgument);
  options.decoders = {std::make_shared<FormulaDecoder>("x"), std::make_shared<FormulaDecoder>("y")};
  EXPECT_TRUE(CoordinatorServer::Create(options, **context).ok());
  fs::remove_all(options.data_dir);
}

TEST(NpyTest, ParseReadsWhatEncodeWrites) {
  for (const std::vector<int64_t>& shape :
       {std::vector<int64_t>{4, 16, 16}, std::vector<int64_t>{7}, std::vector<int64_t>{2, 0}}) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::vector<float> values(static_cast<size_t>(n));
    for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(std::sin(i) * 1e3);
    auto bytes = EncodeNpyFloat32(values, shape);
    ASSERT_TRUE(bytes.ok());
    auto parsed = ParseNpyFloat32(*bytes);
    ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
    EXPECT_EQ(parsed->shape, shape);
    EXPECT_EQ(parsed->values, values);
  }
  const std::vector<int64_t> one_d = {7};
  auto header = EncodeNpyFloat32(std::vector<float>(7), one_d);
  EXPECT_NE(header->find("'shape': (7,)"), std::string::npos) << "a 1-tuple needs its comma";
}

TEST(NpyTest, BadInputIsRefusedWithItsCode) {
  const std::vector<int64_t> shape = {2, 2};
  EXPECT_EQ(EncodeNpyFloat32(std::vector<float>(3), shape).status().code(),
            StatusCode::kInvalidArgument);
  auto good = EncodeNpyFloat32(std::vector<float>(4, 1.0f), shape);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(ParseNpyFloat32("not npy").status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(ParseNpyFloat32(good->substr(0, good->size() - 1)).status().code(),
            StatusCode::kDataLoss);
  std::string f8 = *good;
  f8.replace(f8.find("<f4"), 3, "<f8");
  EXPECT_EQ(ParseNpyFloat32(f8).status().code(), StatusCode::kDataLoss);
  std::string fortran = *good;
  fortran.replace(fortran.find("False"), 5, "True ");
  EXPECT_EQ(ParseNpyFloat32(fortran).status().code(), StatusCode::kDataLoss);
}

}  // namespace
}  // namespace dnd::coordinator
