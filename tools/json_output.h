// The `--json` forms of the read commands' output (docs/cli.md lists the fields). One object per
// job, event or expert; `dnd watch --json` prints one event object per line (JSON lines).
#ifndef DND_TOOLS_JSON_OUTPUT_H_
#define DND_TOOLS_JSON_OUTPUT_H_

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "protocol/messages.h"

namespace dnd::tools {

// {"job_id", "state", "reason", "step", "total_steps", "submitted_unix_millis",
//  "started_unix_millis", "finished_unix_millis", "eta_millis"}; eta_millis null when unknown.
nlohmann::json JobStatusJson(const protocol::JobStatus& job);
// {"job_id", "state", "step", "total_steps", "shares": [...], "message"}.
nlohmann::json ProgressEventJson(const protocol::ProgressEvent& event);
// {"name", "organisation", "latent_space", "latent_shape": [C, H, W], "concepts": [...],
//  "utilities": [...], "prediction_type", "alive", "last_seen_millis_ago"}.
nlohmann::json ExpertInfoJson(const protocol::ExpertInfo& expert);
// {"job_id", "state", "files": ["out/image.png", ...]}.
nlohmann::json ResultPathsJson(const std::string& job_id, protocol::JobState state,
                               const std::vector<std::filesystem::path>& files);

}  // namespace dnd::tools

#endif  // DND_TOOLS_JSON_OUTPUT_H_
