// JSON forms of the CLI's output (json_output.h).
#include "tools/json_output.h"

namespace dnd::tools {

nlohmann::json JobStatusJson(const protocol::JobStatus& job) {
  nlohmann::json j;
  j["job_id"] = job.job_id;
  j["state"] = protocol::JobStateName(job.state);
  j["reason"] = job.reason;
  j["step"] = job.step;
  j["total_steps"] = job.total_steps;
  j["submitted_unix_millis"] = job.submitted_unix_millis;
  j["started_unix_millis"] = job.started_unix_millis;
  j["finished_unix_millis"] = job.finished_unix_millis;
  j["eta_millis"] = job.eta_millis >= 0 ? nlohmann::json(job.eta_millis) : nlohmann::json();
  return j;
}

nlohmann::json ProgressEventJson(const protocol::ProgressEvent& event) {
  nlohmann::json j;
  j["job_id"] = event.job_id;
  j["state"] = protocol::JobStateName(event.state);
  j["step"] = event.step;
  j["total_steps"] = event.total_steps;
  j["shares"] = event.shares;
  j["message"] = event.message;
  return j;
}

nlohmann::json ExpertInfoJson(const protocol::ExpertInfo& expert) {
  nlohmann::json j;
  j["name"] = expert.expert_name;
  j["organisation"] = expert.organisation;
  j["latent_space"] = expert.latent_space_id;
  j["latent_shape"] = expert.latent_shape;
  j["concepts"] = expert.concepts;
  nlohmann::json utilities = nlohmann::json::array();
  for (protocol::UtilityKind u : expert.utilities)
    utilities.push_back(protocol::UtilityKindName(u));
  j["utilities"] = utilities;
  j["prediction_type"] = protocol::PredictionTypeName(expert.prediction_type);
  j["guidance_scale"] = expert.guidance_scale;  // 0 = the coordinator's default
  j["alive"] = expert.alive;
  j["last_seen_millis_ago"] = expert.last_seen_millis_ago;
  return j;
}

nlohmann::json ResultPathsJson(const std::string& job_id, protocol::JobState state,
                               const std::vector<std::filesystem::path>& files) {
  nlohmann::json j;
  j["job_id"] = job_id;
  j["state"] = protocol::JobStateName(state);
  nlohmann::json paths = nlohmann::json::array();
  for (const auto& p : files) paths.push_back(p.string());
  j["files"] = paths;
  return j;
}

}  // namespace dnd::tools
