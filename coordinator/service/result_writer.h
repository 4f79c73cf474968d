// Writes a finished job's results under <data_dir>/jobs/<job id>/: image.png (the final latent
// decoded with the autoencoder of the job's latent space, or shown as pixels / a channel-mean
// preview), allocation.png (the final allocation over the image, one colour per expert, the
// fictitious player grey), allocation_steps.png (the allocation's evolution, one tile per
// snapshot), latent.npy (the final latent, float32 C x H x W) and record.json (spec, seed,
// version, how the image was made, per-step diagnostics). Also reads them back for FetchResult.
// Call only from the coordinator's serving thread.
#ifndef DND_COORDINATOR_SERVICE_RESULT_WRITER_H_
#define DND_COORDINATOR_SERVICE_RESULT_WRITER_H_

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "coordinator/service/job.h"
#include "coordinator/service/latent_decoder.h"
#include "protocol/messages.h"
#include "protocol/status.h"

namespace dnd::coordinator {

inline constexpr const char* kImageFile = "image.png";
inline constexpr const char* kAllocationFile = "allocation.png";
inline constexpr const char* kAllocationStepsFile = "allocation_steps.png";
inline constexpr const char* kLatentFile = "latent.npy";
inline constexpr const char* kRecordFile = "record.json";

// An 8-bit RGB image, row-major.
struct RgbImage {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> rgb;  // width * height * 3
};

// The colour of player i of n real players (a fixed palette; the fictitious player, i == n, grey).
std::array<uint8_t, 3> PlayerColour(int player, int num_experts);

// The final latent as a picture without a decoder. A 1-channel latent is pixel space in [-1, 1]
// (black = -1); of any other latent the channels' mean is shown, rescaled to its range.
// Each latent position becomes scale x scale pixels.
RgbImage DecodeLatent(std::span<const float> latent, const method::LatentShape& shape, int scale);
// A decoded canvas (values in [0, 1], black 0) as grey: pixel value round(255 v), each canvas
// pixel scale x scale pixels.
RgbImage CanvasImage(const Canvas& canvas, int scale);
// Q as colours (sum_i Q_ij colour_i) blended over `image` with weight `opacity` (0 = image only).
RgbImage OverlayAllocation(const RgbImage& image, std::span<const double> q, int num_players,
                           const method::LatentShape& shape, double opacity);
// Tiles side by side with a gap of `gap` white pixels. All tiles have one size.
RgbImage Strip(const std::vector<RgbImage>& tiles, int gap);
// Writes a PNG. Internal on an I/O or libpng failure.
Status WritePng(const RgbImage& image, const std::filesystem::path& file);

// How image.png was made, for record.json's "image" entry. Value type.
struct ImageSource {
  std::string kind;     // "autoencoder", "pixels" (a 1-channel pixel-space latent) or "preview"
  std::string decoder;  // kind "autoencoder": the latent space id of the decoder used
  std::string note;     // kind "preview": why (no decoder for the latent space, or its error)
};

class ResultWriter {
 public:
  // `image_scale`: image.png has image_scale x the pixels of the decoded canvas (pixel space and
  // autoencoders) or of the latent grid (preview). `decoders`: at most one per latent space id.
  ResultWriter(std::filesystem::path data_dir, int image_scale,
               std::vector<std::shared_ptr<const LatentDecoder>> decoders = {})
      : data_dir_(std::move(data_dir)), image_scale_(image_scale), decoders_(std::move(decoders)) {}

  std::filesystem::path JobDir(const std::string& job_id) const;
  // Writes the five files of a job whose steps are all done. The record's state is "succeeded".
  // image.png: the final latent decoded by the decoder whose latent_space_id() equals the job's
  // (a decoder error falls back to the preview and is noted in record.json, it does not fail the
  // job); a 1-channel latent as pixels; otherwise the channel-mean preview. Internal on I/O errors.
  Status WriteSuccess(const Job& job, int64_t wall_ms) const;
  // The decoder of `latent_space_id`, or null.
  const LatentDecoder* FindDecoder(const std::string& latent_space_id) const;
  // Writes record.json only, for a failed or cancelled job (its reason and the steps it did).
  Status WriteRecordOnly(const Job& job, int64_t wall_ms) const;
  // The files of a job, for FetchResult. NotFound when the job has none, or when job_id is not
  // a plain name (empty, ".", "..", or with a path separator): nothing outside jobs/ is read.
  StatusOr<std::vector<protocol::ResultFile>> Read(const std::string& job_id) const;
  // Whether job_id is a plain name with a record.json under jobs/ (every job that ended has one),
  // without reading its files.
  bool HasRecord(const std::string& job_id) const;
  // The highest job number found under data_dir/jobs ("j-000042" -> 42), so that a restarted
  // coordinator never reuses an id. 0 when there is none.
  uint64_t HighestJobNumber() const;

 private:
  Status WriteRecord(const Job& job, int64_t wall_ms, const ImageSource* image) const;
  // image.png's picture and how it was made.
  RgbImage RenderImage(const Job& job, ImageSource& source) const;
  std::filesystem::path data_dir_;
  int image_scale_;
  std::vector<std::shared_ptr<const LatentDecoder>> decoders_;
};

}  // namespace dnd::coordinator

#endif  // DND_COORDINATOR_SERVICE_RESULT_WRITER_H_
