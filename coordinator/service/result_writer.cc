// See result_writer.h.
#include "coordinator/service/result_writer.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <system_error>

#include <nlohmann/json.hpp>
#include <png.h>

#include "coordinator/service/npy.h"

namespace dnd::coordinator {
namespace {

// A job id names one directory under jobs/: nothing that could reach outside it.
bool IsPlainJobId(const std::string& job_id) {
  return !job_id.empty() && job_id != "." && job_id != ".." &&
         job_id.find_first_of("/\\") == std::string::npos &&
         job_id.find('\0') == std::string::npos;
}

namespace fs = std::filesystem;
using nlohmann::json;

constexpr std::array<std::array<uint8_t, 3>, 8> kPalette = {{
    {31, 119, 180},   // blue
    {255, 127, 14},   // orange
    {44, 160, 44},    // green
    {214, 39, 40},    // red
    {148, 103, 189},  // purple
    {140, 86, 75},    // brown
    {227, 119, 194},  // pink
    {188, 189, 34},   // olive
}};
constexpr std::array<uint8_t, 3> kFictitiousGrey = {128, 128, 128};

uint8_t ToByte(double v) { return static_cast<uint8_t>(std::clamp(std::lround(v), 0L, 255L)); }

std::string Hex(const std::array<uint8_t, 3>& c) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "#%02x%02x%02x", c[0], c[1], c[2]);
  return buf;
}

json SpecJson(const protocol::JobSpec& s) {
  json experts = json::array();
  for (const protocol::ExpertRef& e : s.experts) {
    experts.push_back(
        {{"expert", e.expert_name}, {"concept", e.concept_name}, {"weight", e.weight}});
  }
  json fairness = json::array();
  if (s.fairness.proportional) fairness.push_back("proportional");
  if (s.fairness.envy_free) fairness.push_back("envy-free");
  if (s.fairness.equitable) fairness.push_back("equitable");
  return {{"experts", experts},
          {"strategy", protocol::StrategyName(s.strategy)},
          {"fairness", fairness},
          {"rho", s.fairness.rho},
          {"epsilon", s.fairness.epsilon},
          {"utility", protocol::UtilityKindName(s.utility)},
          {"steps", s.steps},
          {"seed", s.seed},
          {"cfg_scale", s.cfg_scale},
          {"eta", s.eta},
          {"beta", s.beta},
          {"gamma", s.gamma},
          {"guidance_outside", s.guidance_outside},
          {"layout_masks", s.layout.size()},
          {"beta_schedule", s.schedule_name},
          {"timestep_spacing", s.timestep_spacing},
          {"sampler", "ddim"}};
}

}  // namespace

std::array<uint8_t, 3> PlayerColour(int player, int num_experts) {
  if (player >= num_experts) return kFictitiousGrey;
  return kPalette[static_cast<size_t>(player) % kPalette.size()];
}

RgbImage DecodeLatent(std::span<const float> latent, const method::LatentShape& shape, int scale) {
  const int h = shape.height, w = shape.width, c = shape.channels;
  std::vector<double> grey(static_cast<size_t>(h) * w);
  if (c == 1) {
    for (size_t j = 0; j < grey.size(); ++j) grey[j] = (latent[j] + 1.0) * 127.5;
  } else {
    double lo = 1e300, hi = -1e300;
    for (size_t j = 0; j < grey.size(); ++j) {
      double mean = 0;
      for (int k = 0; k < c; ++k) mean += latent[static_cast<size_t>(k) * grey.size() + j];
      grey[j] = mean / c;
      lo = std::min(lo, grey[j]);
      hi = std::max(hi, grey[j]);
    }
    for (double& v : grey) v = hi > lo ? (v - lo) / (hi - lo) * 255.0 : 0.0;
  }
  RgbImage image{w * scale, h * scale, {}};
  image.rgb.resize(static_cast<size_t>(image.width) * image.height * 3);
  for (int y = 0; y < image.height; ++y) {
    for (int x = 0; x < image.width; ++x) {
      const uint8_t v = ToByte(grey[static_cast<size_t>(y / scale) * w + x / scale]);
      uint8_t* p = &image.rgb[(static_cast<size_t>(y) * image.width + x) * 3];
      p[0] = p[1] = p[2] = v;
    }
  }
  return image;
}

RgbImage CanvasImage(const Canvas& canvas, int scale) {
  RgbImage image{canvas.width * scale, canvas.height * scale, {}};
  image.rgb.resize(static_cast<size_t>(image.width) * image.height * 3);
  for (int y = 0; y < image.height; ++y) {
    for (int x = 0; x < image.width; ++x) {
      const double v = canvas.values[static_cast<size_t>(y / scale) * canvas.width + x / scale];
      uint8_t* p = &image.rgb[(static_cast<size_t>(y) * image.width + x) * 3];
      p[0] = p[1] = p[2] = ToByte(v * 255.0);
    }
  }
  return image;
}

RgbImage OverlayAllocation(const RgbImage& image, std::span<const double> q, int num_players,
                           const method::LatentShape& shape, double opacity) {
  RgbImage out = image;
  const int m = shape.positions();
  const int scale_x = image.width / shape.width, scale_y = image.height / shape.height;
  for (int y = 0; y < image.height; ++y) {
    for (int x = 0; x < image.width; ++x) {
      const int j = (y / scale_y) * shape.width + x / scale_x;
      double colour[3] = {0, 0, 0};
      for (int i = 0; i < num_players; ++i) {
        const auto c = PlayerColour(i, num_players - 1);
        const double weight = q[static_cast<size_t>(i) * m + j];
        for (int k = 0; k < 3; ++k) colour[k] += weight * c[k];
      }
      uint8_t* p = &out.rgb[(static_cast<size_t>(y) * image.width + x) * 3];
      for (int k = 0; k < 3; ++k) p[k] = ToByte((1.0 - opacity) * p[k] + opacity * colour[k]);
    }
  }
  return out;
}

RgbImage Strip(const std::vector<RgbImage>& tiles, int gap) {
  if (tiles.empty()) return {};
  const int tw = tiles[0].width, th = tiles[0].height;
  const int n = static_cast<int>(tiles.size());
  RgbImage out{n * tw + (n - 1) * gap, th, {}};
  out.rgb.assign(static_cast<size_t>(out.width) * out.height * 3, 255);
  for (int t = 0; t < n; ++t) {
    for (int y = 0; y < th; ++y) {
      std::copy_n(&tiles[t].rgb[static_cast<size_t>(y) * tw * 3], static_cast<size_t>(tw) * 3,
                  &out.rgb[(static_cast<size_t>(y) * out.width + t * (tw + gap)) * 3]);
    }
  }
  return out;
}

Status WritePng(const RgbImage& image, const fs::path& file) {
  FILE* fp = std::fopen(file.c_str(), "wb");
  if (fp == nullptr) return InternalError("cannot write " + file.string());
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (png == nullptr || info == nullptr || setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    std::fclose(fp);
    return InternalError("libpng failed writing " + file.string());
  }
  png_init_io(png, fp);
  png_set_IHDR(png, info, image.width, image.height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (int y = 0; y < image.height; ++y) {
    png_write_row(png, &image.rgb[static_cast<size_t>(y) * image.width * 3]);
  }
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  if (std::fclose(fp) != 0) return InternalError("cannot finish writing " + file.string());
  return OkStatus();
}

fs::path ResultWriter::JobDir(const std::string& job_id) const {
  return data_dir_ / "jobs" / job_id;
}

const LatentDecoder* ResultWriter::FindDecoder(const std::string& latent_space_id) const {
  for (const auto& decoder : decoders_) {
    if (decoder->latent_space_id() == latent_space_id) return decoder.get();
  }
  return nullptr;
}

RgbImage ResultWriter::RenderImage(const Job& job, ImageSource& source) const {
  const method::LatentShape& shape = job.shape();
  if (const LatentDecoder* decoder = FindDecoder(job.latent_space_id())) {
    StatusOr<Canvas> canvas = decoder->Decode(job.latent());
    if (canvas.ok()) {
      source = {"autoencoder", decoder->latent_space_id(), ""};
      return CanvasImage(*canvas, image_scale_);
    }
    source = {"preview", "",
              "the autoencoder of latent space '" + job.latent_space_id() + "' failed: " +
                  canvas.status().ToString() + "; image.png shows the latent's channel mean"};
  } else if (shape.channels == 1) {
    source = {"pixels", "", ""};
  } else {
    source = {"preview", "",
              "this coordinator has no autoencoder for latent space '" + job.latent_space_id() +
                  "' (dnd-coordinator --autoencoder); image.png shows the latent's channel mean"};
  }
  return DecodeLatent(job.latent(), shape, image_scale_);
}

Status ResultWriter::WriteSuccess(const Job& job, int64_t wall_ms) const {
  const fs::path dir = JobDir(job.id());
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return InternalError("cannot create " + dir.string() + ": " + ec.message());
  const method::LatentShape& shape = job.shape();
  ImageSource source;
  const RgbImage image = RenderImage(job, source);
  DND_RETURN_IF_ERROR(WritePng(image, dir / kImageFile));
  const int players = job.allocation().num_players;
  DND_RETURN_IF_ERROR(WritePng(OverlayAllocation(image, job.allocation().q, players, shape, 0.5),
                               dir / kAllocationFile));
  std::vector<RgbImage> tiles;
  const RgbImage black{image.width, image.height, std::vector<uint8_t>(image.rgb.size(), 0)};
  for (const auto& [step, q] : job.snapshots()) {
    tiles.push_back(OverlayAllocation(black, q, players, shape, 1.0));
  }
  DND_RETURN_IF_ERROR(WritePng(Strip(tiles, 4), dir / kAllocationStepsFile));
  const std::array<int64_t, 3> latent_shape = {shape.channels, shape.height, shape.width};
  DND_ASSIGN_OR_RETURN(std::string npy, EncodeNpyFloat32(job.latent(), latent_shape));
  {
    std::ofstream out(dir / kLatentFile, std::ios::binary);
    out.write(npy.data(), static_cast<std::streamsize>(npy.size()));
    if (!out) return InternalError("cannot write " + (dir / kLatentFile).string());
  }
  return WriteRecord(job, wall_ms, &source);
}

Status ResultWriter::WriteRecordOnly(const Job& job, int64_t wall_ms) const {
  std::error_code ec;
  fs::create_directories(JobDir(job.id()), ec);
  if (ec) return InternalError("cannot create " + JobDir(job.id()).string() + ": " + ec.message());
  return WriteRecord(job, wall_ms, nullptr);
}

Status ResultWriter::WriteRecord(const Job& job, int64_t wall_ms, const ImageSource* image) const {
  json experts = json::array();
  for (size_t i = 0; i < job.experts().size(); ++i) {
    const JobExpert& e = job.experts()[i];
    experts.push_back({{"expert", e.expert_name},
                       {"organisation", e.organisation},
                       {"concept", e.concept_name},
                       {"guidance_scale", e.guidance_scale},
                       {"colour", Hex(PlayerColour(static_cast<int>(i),
                                                   static_cast<int>(job.experts().size())))}});
  }
  json steps = json::array();
  for (const StepRecord& r : job.records()) {
    json view_shift = json::array();
    for (const method::ViewShift& v : r.view_shift) view_shift.push_back({v.dy, v.dx});
    steps.push_back({{"index", r.index},
                     {"t", r.timestep},
                     {"t_prev", r.prev_timestep},
                     {"share", r.share},
                     {"utility", r.utility_obtained},
                     {"fair_share", r.fair_share},
                     {"max_violation", r.max_violation},
                     {"dual_iterations", r.dual_iterations},
                     {"converged", r.converged},
                     {"step_latency_ms", r.step_latency_ms},
                     {"guidance_latency_ms", r.guidance_latency_ms},
                     {"coordinator_ms", r.coordinator_ms},
                     {"view_shift", view_shift}});
  }
  json files = json::array();
  if (job.state() == protocol::JobState::kSucceeded || job.all_steps_done()) {
    files = {kImageFile, kAllocationFile, kAllocationStepsFile, kLatentFile, kRecordFile};
  } else {
    files = {kRecordFile};
  }
  json record = {
      {"job_id", job.id()},
      {"software", {{"name", "dnd"}, {"version", DND_VERSION}}},
      {"state",
       job.all_steps_done() && !job.finished() ? "succeeded" : protocol::JobStateName(job.state())},
      {"reason", job.reason()},
      {"spec", SpecJson(job.spec())},
      {"utility_smoothing", job.strategy_options().utility_smoothing},
      {"views",
       {{"gain", job.strategy_options().view_gain},
        {"max_shift", job.strategy_options().view_max_shift},
        {"min_separation", job.strategy_options().view_min_separation},
        {"reference_size", job.strategy_options().view_reference_size}}},
      {"seed", job.spec().seed},
      {"latent_space",
       {{"id", job.latent_space_id()},
        {"shape", {job.shape().channels, job.shape().height, job.shape().width}}}},
      {"experts", experts},
      {"fictitious_colour", Hex(kFictitiousGrey)},
      {"timesteps", job.timesteps()},
      {"steps_done", job.steps_done()},
      {"wall_ms", wall_ms},
      {"coordinator_ms", job.total_coordinator_ms()},
      {"steps", steps},
      {"files", files},
  };
  if (image != nullptr) {
    json entry = {{"source", image->kind}};
    if (!image->decoder.empty()) entry["decoder"] = image->decoder;
    if (!image->note.empty()) entry["note"] = image->note;
    record["image"] = entry;
  }
  const fs::path path = JobDir(job.id()) / kRecordFile;
  std::ofstream out(path);
  out << record.dump(1) << "\n";
  if (!out) return InternalError("cannot write " + path.string());
  return OkStatus();
}

bool ResultWriter::HasRecord(const std::string& job_id) const {
  std::error_code error;
  return IsPlainJobId(job_id) && fs::is_regular_file(JobDir(job_id) / kRecordFile, error);
}

StatusOr<std::vector<protocol::ResultFile>> ResultWriter::Read(const std::string& job_id) const {
  if (!IsPlainJobId(job_id)) return NotFoundError("no job '" + job_id + "': not a job id");
  const fs::path dir = JobDir(job_id);
  std::vector<protocol::ResultFile> files;
  for (const char* name :
       {kImageFile, kAllocationFile, kAllocationStepsFile, kLatentFile, kRecordFile}) {
    std::ifstream in(dir / name, std::ios::binary);
    if (!in) continue;
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string bytes = ss.str();
    files.push_back({name, std::vector<uint8_t>(bytes.begin(), bytes.end())});
  }
  if (files.empty()) return NotFoundError("job '" + job_id + "' has no results");
  return files;
}

uint64_t ResultWriter::HighestJobNumber() const {
  uint64_t highest = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(data_dir_ / "jobs", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("j-", 0) != 0) continue;
    uint64_t number = 0;
    const char* first = name.data() + 2;
    const char* last = name.data() + name.size();
    auto [end, error] = std::from_chars(first, last, number);
    if (error == std::errc() && end == last) highest = std::max(highest, number);
  }
  return highest;
}

}  // namespace dnd::coordinator
