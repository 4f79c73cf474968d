// Backend "torchscript": serves an organisation's own diffusion model exported from PyTorch with
// torch.jit.script/torch.jit.save, so no C++ is needed to bring a fine-tuned model. The module
// contract (attribute and method names, dtypes, shapes) is spelled out in docs/experts.md,
// "TorchScript contract"; in short:
//   attributes  latent_space: str, latent_shape: List[int] = [C, H, W], concepts: List[str],
//               prediction_type: str ("epsilon" | "sample" | "v")
//   methods     predict(x: float32[B,C,H,W], t: int64[B], cond: int64[B]) -> float32[B,C,H,W]
//                 (cond = index into concepts; -1 = unconditional)
//               attention(x, t, cond) -> float32[B,H,W] >= 0   (optional: the localisation map)
#ifndef DND_WORKER_EXPERTS_TORCHSCRIPT_EXPERT_H_
#define DND_WORKER_EXPERTS_TORCHSCRIPT_EXPERT_H_

#include <memory>

#include "protocol/status.h"
#include "worker/experts/expert.h"

namespace dnd::experts {

// Loads config.model_path with torch::jit::load, checks the contract and runs predict (and
// attention, if present) once on a zero latent to check output shapes. config.concepts: empty =
// serve all the module's concepts, else the subset to serve. Utilities: score always, attention
// when the module has an attention method. Errors: NotFound (no such file), InvalidArgument (not a
// TorchScript archive, a concept the module does not declare), FailedPrecondition (the module
// breaks the contract: the message names the missing or ill-typed attribute/method, or the wrong
// output shape).
StatusOr<std::unique_ptr<Expert>> CreateTorchScriptExpert(const ExpertConfig& config);

}  // namespace dnd::experts

#endif  // DND_WORKER_EXPERTS_TORCHSCRIPT_EXPERT_H_
