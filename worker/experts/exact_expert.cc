// The exact Fashion-MNIST expert (see exact_expert.h; derivation in docs/experts.md).
// Notation: pixels in [-1, 1], black = -1. Item k as d_k = pixels/127.5 (in [0, 2], background 0),
// so the clean canvas of item k at offset p is mu_kp = -1 + P_p d_k (P_p pastes at p). With
// z = x_t + sqrt(a) (x_t minus the noised black canvas):
//   ||x_t - sqrt(a) mu_kp||^2 = ||z||^2 - 2 sqrt(a) <z, P_p d_k> + a ||d_k||^2,
// and <z, P_p d_k> over all 37x37 offsets p is one valid cross-correlation of z with d_k. The
// correlations and the pastings sum_kp r_kp P_p d_k run as products of spectra on the 64x64 grid
// (real FFTs, autograd through them for the gradient), with the items' spectra computed once.
#include "worker/experts/exact_expert.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>
#include <vector>

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include "worker/experts/fashion_mnist.h"
#include "worker/experts/utility_maps.h"

namespace dnd::experts {
namespace {

constexpr int kSide = kExactCanvasSide;
constexpr int kOffsets = kExactOffsetsPerAxis;
// A pair of items whose responsibilities sum to at most this is left out of the pastings, by the
// precision of the computation (see FindActivePairs).
constexpr double kNegligibleMassFloat32 = 1e-13;
constexpr double kNegligibleMassFloat64 = 1e-30;
// With more than this fraction of the pairs carrying weight, all pairs are transformed (gathering
// the others' spectra would cost more than their transforms save).
constexpr double kGatherBelowFraction = 0.8;

// Tensors of one batched forward pass.
struct Forward {
  at::Tensor eps_cond;    // [B, 1, 64, 64]
  at::Tensor eps_uncond;  // [B, 1, 64, 64]
  at::Tensor footprint;   // [B, 64, 64], posterior-expected mask of the conditional item; or empty
};

class ExactExpert final : public Expert {
 public:
  ExactExpert(ExpertInfo info, const ExpertConfig& config, at::Tensor item_spectra_conj,
              at::Tensor pair_spectra, at::Tensor item_sq_norms, at::Tensor log_prior)
      : info_(std::move(info)),
        score_options_(config.score_map),
        s0_sq_(config.component_std * config.component_std),
        items_per_class_(config.items_per_class),
        dtype_(config.exact_float64 ? at::kDouble : at::kFloat),
        item_spectra_conj_(std::move(item_spectra_conj)),
        pair_item_spectra_(pair_spectra.select(1, 0).contiguous()),
        pair_mask_spectra_(pair_spectra.select(1, 1).contiguous()),
        item_sq_norms_(std::move(item_sq_norms)),
        log_prior_(std::move(log_prior)) {}

  const ExpertInfo& Describe() const override { return info_; }

  std::vector<StatusOr<StepOutput>> Step(std::span<const StepInput> batch) override {
    std::vector<StatusOr<StepOutput>> results(batch.size(), InternalError("not computed"));
    const std::vector<size_t> valid = PartitionValidItems(info_, batch, results);
    if (valid.empty()) return results;
    try {
      c10::NoGradGuard no_grad;
      const Packed packed = Pack(batch, valid);
      const Forward forward = Run(packed);
      const at::Tensor utility = Utility(forward, packed).to(at::kFloat).contiguous();
      const at::Tensor cond = forward.eps_cond.to(at::kFloat).contiguous();
      const at::Tensor uncond = forward.eps_uncond.to(at::kFloat).contiguous();
      const size_t values = info_.latent.NumValues();
      const size_t positions = info_.latent.NumPositions();
      for (size_t b = 0; b < valid.size(); ++b) {
        StepOutput out;
        const float* c = cond.data_ptr<float>() + b * values;
        const float* u = uncond.data_ptr<float>() + b * values;
        const float* m = utility.data_ptr<float>() + b * positions;
        out.prediction_cond.assign(c, c + values);
        out.prediction_uncond.assign(u, u + values);
        out.utility.assign(m, m + positions);
        results[valid[b]] = std::move(out);
      }
    } catch (const c10::Error& error) {
      for (size_t i : valid) {
        results[i] =
            InternalError("exact expert '" + info_.name + "': " + error.what_without_backtrace());
      }
    }
    return results;
  }

  std::vector<StatusOr<std::vector<float>>> Gradient(
      std::span<const GradientInput> batch) override {
    std::vector<StatusOr<std::vector<float>>> results(batch.size(), InternalError("not computed"));
    const std::vector<size_t> valid = PartitionValidItems(info_, batch, results);
    std::vector<StepInput> steps;
    for (const GradientInput& item : batch) steps.push_back(item.step);
    if (valid.empty()) return results;
    try {
      c10::AutoGradMode grad_mode(true);
      Packed packed = Pack(steps, valid);
      packed.x.requires_grad_(true);
      const Forward forward = Run(packed);
      const at::Tensor utility = Utility(forward, packed);  // [B, 64, 64]
      const size_t positions = info_.latent.NumPositions();
      at::Tensor allocation =
          at::empty({static_cast<int64_t>(valid.size()), kSide, kSide}, at::kFloat);
      for (size_t b = 0; b < valid.size(); ++b) {
        std::memcpy(allocation.data_ptr<float>() + b * positions, batch[valid[b]].allocation.data(),
                    positions * sizeof(float));
      }
      const at::Tensor allocated = (utility * allocation.to(dtype_)).sum();
      allocated.backward();
      const at::Tensor grad = packed.x.grad().to(at::kFloat).contiguous();
      const size_t values = info_.latent.NumValues();
      for (size_t b = 0; b < valid.size(); ++b) {
        const float* g = grad.data_ptr<float>() + b * values;
        results[valid[b]] = std::vector<float>(g, g + values);
      }
    } catch (const c10::Error& error) {
      for (size_t i : valid) {
        results[i] =
            InternalError("exact expert '" + info_.name + "': " + error.what_without_backtrace());
      }
    }
    return results;
  }

 private:
  // The valid items of a batch as tensors.
  struct Packed {
    at::Tensor x;                      // [B, 1, 64, 64], dtype_
    at::Tensor alpha;                  // [B, 1, 1, 1], dtype_
    at::Tensor wants_attention;        // [B, 1, 1], bool
    std::vector<int64_t> class_index;  // [B]: index into info_.concepts
    std::vector<bool> attention;       // [B]: the item asks for the attention utility
    bool any_attention = false;
  };

  Packed Pack(std::span<const StepInput> batch, const std::vector<size_t>& valid) const {
    const int64_t count = static_cast<int64_t>(valid.size());
    const size_t values = info_.latent.NumValues();
    at::Tensor x = at::empty({count, 1, kSide, kSide}, at::kFloat);
    at::Tensor alpha = at::empty({count, 1, 1, 1}, at::kDouble);
    at::Tensor wants_attention = at::empty({count, 1, 1}, at::kBool);
    Packed packed;
    for (int64_t b = 0; b < count; ++b) {
      const StepInput& input = batch[valid[b]];
      std::memcpy(x.data_ptr<float>() + b * values, input.latent.data(), values * sizeof(float));
      alpha.data_ptr<double>()[b] = input.alpha_cumprod;
      packed.class_index.push_back(info_.ConceptIndex(input.concept_name));
      const bool attention = input.utility == UtilityKind::kAttention;
      wants_attention.data_ptr<bool>()[b] = attention;
      packed.attention.push_back(attention);
      packed.any_attention = packed.any_attention || attention;
    }
    packed.x = x.to(dtype_);
    packed.alpha = alpha.to(dtype_);
    packed.wants_attention = wants_attention;
    return packed;
  }

  // The posterior means of the conditional (requested class) and unconditional (all classes)
  // mixtures, as epsilon predictions, and the conditional footprint (zero for items that do not
  // ask for attention) where any item asks for it. One batch item at a time (RunItem): its
  // spectra, [N, 64, 33], stay small, and only items that ask for attention pay for a footprint.
  Forward Run(const Packed& packed) const {
    const int64_t count = packed.x.size(0);
    std::vector<at::Tensor> cond, uncond, footprint;
    for (int64_t b = 0; b < count; ++b) {
      Forward item = RunItem(packed.x.narrow(0, b, 1), packed.alpha.narrow(0, b, 1),
                             packed.class_index[b], packed.attention[b]);
      cond.push_back(std::move(item.eps_cond));
      uncond.push_back(std::move(item.eps_uncond));
      if (packed.any_attention) {
        footprint.push_back(packed.attention[b] ? std::move(item.footprint)
                                                : at::zeros({1, kSide, kSide}, packed.x.options()));
      }
    }
    Forward forward;
    forward.eps_cond = count == 1 ? cond[0] : at::cat(cond);
    forward.eps_uncond = count == 1 ? uncond[0] : at::cat(uncond);
    if (packed.any_attention) forward.footprint = count == 1 ? footprint[0] : at::cat(footprint);
    return forward;
  }

  // One batch item: x [1, 1, 64, 64], a [1, 1, 1, 1], the requested class; the footprint only if
  // `attention`. One cross-correlation gives the logits of both mixtures, and both pastings come
  // from one spectrum per pair of mixture items (docs/experts.md, "The exact expert").
  Forward RunItem(const at::Tensor& x, const at::Tensor& a, int64_t class_index,
                  bool attention) const {
    const int64_t num_classes = static_cast<int64_t>(info_.concepts.size());
    const at::Tensor sqrt_a = a.sqrt();
    const at::Tensor variance = a * s0_sq_ + (1.0 - a);  // v = a s0^2 + 1 - a
    // Responsibility logits of every (item, offset): log prior + (sqrt(a) corr_kp -
    // a ||d_k||^2 / 2) / v; the ||z||^2 term is the same for all components and cancels.
    const at::Tensor offset = log_prior_ - (0.5 * a / variance) * item_sq_norms_;  // [1, N, 37, 37]
    const at::Tensor logits = at::addcmul(offset, Correlate(x + sqrt_a), sqrt_a / variance)
                                  .view({num_classes, -1});  // [C, K*37*37]
    // Per class c: rho = softmax over the class's K*37*37 components (the conditional
    // responsibilities when c is requested) and its log-normaliser L_c = log sum exp(logits).
    // The unconditional responsibilities are w_c rho, w = softmax_c(L_c) (equal class weights).
    // The shift only guards exp against overflow; it cancels, so it carries no gradient.
    const at::Tensor shift = logits.amax(1, /*keepdim=*/true).detach();  // [C, 1]
    const at::Tensor unnormalised = (logits - shift).exp_();
    const at::Tensor class_total = unnormalised.sum(1, /*keepdim=*/true);  // [C, 1]
    const at::Tensor rho = unnormalised / class_total;
    const at::Tensor class_weight = at::softmax(shift + class_total.log(), 0);
    const at::Tensor pasted = at::real(at::fft_ifft2(
        PastingSpectra(rho, class_weight, class_index, attention)));  // [1, 2|3, 64, 64]
    Forward forward;
    if (attention) forward.footprint = pasted.select(1, 2);
    // Per component, E[x0 | x_t, k, p] = mu_kp + c (x_t - sqrt(a) mu_kp), c = sqrt(a) s0^2 / v;
    // summed with the responsibilities: x0 = (1 - c sqrt(a)) mbar + c x_t, mbar = -1 + pasted.
    const at::Tensor c = sqrt_a * s0_sq_ / variance;
    const at::Tensor sqrt_one_minus_a = (1.0 - a).sqrt();
    auto to_eps = [&](const at::Tensor& pasted) {
      const at::Tensor x0 = (1.0 - c * sqrt_a) * (pasted - 1.0) + c * x;
      return (x - sqrt_a * x0) / sqrt_one_minus_a;
    };
    forward.eps_uncond = to_eps(pasted.narrow(1, 0, 1));
    forward.eps_cond = to_eps(pasted.narrow(1, 1, 1));
    return forward;
  }

  // corr_kp = <z, P_p d_k> for every item k and the 37x37 offsets p, as [1, N, 37, 37], from
  // z [1, 1, 64, 64]: on the 64x64 grid, the inverse transform of Z conj(D_k), kept where no
  // wrap-around reaches (rows and columns 0..36, as 37 + 28 - 1 = 64). The last axis's inverse
  // runs on those 37 rows only.
  at::Tensor Correlate(const at::Tensor& z) const {
    const at::Tensor product = at::fft_rfft2(z) * item_spectra_conj_;  // [1, N, 64, 33]
    return at::fft_irfft(at::fft_ifft(product, c10::nullopt, 2).narrow(2, 0, kOffsets), kSide, 3)
        .narrow(3, 0, kOffsets);
  }

  // The spectra on the 64x64 grid of sum_kp r_kp P_p d_k for the unconditional and the
  // conditional responsibilities, and with `attention` of the footprint sum_kp r_kp P_p m_k of the
  // requested class (m_k = mask of item k): [1, 2|3, 64, 64], complex. rho: [C, K*37*37], class
  // weights w: [C, 1]. Each pasting is a full convolution of r_k with d_k: the spectrum of r_k
  // (zero-padded to 64x64) times D_k, summed over the items. Items go in pairs (k, k'):
  //   Re conv(rho_k + i rho_k', d_k - i d_k') = conv(rho_k, d_k) + conv(rho_k', d_k'),
  // so one complex transform serves two items, and its gradient is a transform of the same size.
  at::Tensor PastingSpectra(const at::Tensor& rho, const at::Tensor& class_weight,
                            int64_t class_index, bool attention) const {
    const int64_t num_classes = rho.size(0);
    at::Tensor paired = rho.view({num_classes, items_per_class_, kOffsets, kOffsets});
    if (items_per_class_ % 2 == 1) paired = at::constant_pad_nd(paired, {0, 0, 0, 0, 0, 1});
    const int64_t pairs_per_class = paired.size(1) / 2;
    paired = paired.view({num_classes * pairs_per_class, 2, kOffsets, kOffsets});
    const ActivePairs active = FindActivePairs(paired, pairs_per_class);
    const bool all_active = active.pairs.size() == static_cast<size_t>(paired.size(0));
    const at::Tensor index = all_active ? at::Tensor() : at::tensor(active.pairs, at::kLong);
    const at::Tensor selected = all_active ? paired : paired.index_select(0, index);
    const at::Tensor pair_spectrum = at::fft_fft(
        at::fft_fft(at::complex(selected.select(1, 0), selected.select(1, 1)), kSide, 2), kSide,
        1);  // [active pairs, 64, 64]
    const at::Tensor products =
        pair_spectrum *
        (all_active ? pair_item_spectra_ : pair_item_spectra_.index_select(0, index));
    std::vector<at::Tensor> class_sums;  // C x [64, 64]
    for (int64_t c = 0; c < num_classes; ++c) {
      class_sums.push_back(products.narrow(0, active.first[c], active.Count(c)).sum(0));
    }
    std::vector<at::Tensor> spectra = {
        (at::stack(class_sums) * class_weight.view({num_classes, 1, 1})).sum(0),
        class_sums[class_index]};
    if (attention) {
      const int64_t first = active.first[class_index];
      const int64_t count = active.Count(class_index);
      const at::Tensor masks =
          count == pairs_per_class
              ? pair_mask_spectra_.narrow(0, class_index * pairs_per_class, pairs_per_class)
              : pair_mask_spectra_.index_select(
                    0, at::tensor(at::IntArrayRef(active.pairs).slice(first, count), at::kLong));
      spectra.push_back((pair_spectrum.narrow(0, first, count) * masks).sum(0));
    }
    return at::stack(spectra).unsqueeze(0);
  }

  // The pairs of mixture items (see PastingSpectra) that carry weight, in order; pair j belongs
  // to class j / pairs_per_class, so each class's pairs are the run [first[c], first[c + 1]).
  struct ActivePairs {
    std::vector<int64_t> pairs;
    std::vector<int64_t> first;  // C + 1 entries
    int64_t Count(int64_t c) const { return first[c + 1] - first[c]; }
  };

  // The pairs to transform. A pair whose two items' responsibilities sum to at most m adds at most
  // 2 m to any pixel of a pasting (d_k <= 2), and proportionally little to its gradient; such
  // pairs are left out (at low noise, most are). m = 1e-13 in float32: all N/2 pairs together
  // then change a pixel by at most N 1e-13, 1e-11 for N = 96, against the transforms' own rounding
  // of ~1e-7 of a pasting's largest pixel, which is at least 0.01 (a pasting spreads
  // ||d_k||_1 >= 53 over 4096 pixels; 53 is the least of the first 64 train items of every class).
  // m = 1e-30 in float64. Every class keeps its most likely item (rho >= 1/(K 37^2)). When more
  // than kGatherBelowFraction of the pairs carry weight, all are kept. paired: [pairs, 2, 37, 37].
  ActivePairs FindActivePairs(const at::Tensor& paired, int64_t pairs_per_class) const {
    const double negligible =
        dtype_ == at::kDouble ? kNegligibleMassFloat64 : kNegligibleMassFloat32;
    const at::Tensor pair_mass = paired.detach().sum({1, 2, 3}).to(at::kDouble).contiguous();
    const double* mass = pair_mass.data_ptr<double>();
    const int64_t num_pairs = pair_mass.numel();
    const int64_t carrying =
        std::count_if(mass, mass + num_pairs, [&](double m) { return m > negligible; });
    const bool keep_all = carrying > kGatherBelowFraction * static_cast<double>(num_pairs);
    ActivePairs active;
    active.first.push_back(0);
    for (int64_t j = 0; j < num_pairs; ++j) {
      if (keep_all || mass[j] > negligible) active.pairs.push_back(j);
      if ((j + 1) % pairs_per_class == 0) {
        active.first.push_back(static_cast<int64_t>(active.pairs.size()));
      }
    }
    return active;
  }

  // Each item's utility of its requested kind, [B, 64, 64]. A batch of one kind computes only
  // that kind (so a gradient does not run back through the other).
  at::Tensor Utility(const Forward& forward, const Packed& packed) const {
    const bool any_score = std::find(packed.attention.begin(), packed.attention.end(), false) !=
                           packed.attention.end();
    if (!packed.any_attention) {
      return ScoreUtility(forward.eps_cond, forward.eps_uncond, score_options_);
    }
    const at::Tensor attention = AttentionUtility(forward.footprint);
    if (!any_score) return attention;
    const at::Tensor score = ScoreUtility(forward.eps_cond, forward.eps_uncond, score_options_);
    return at::where(packed.wants_attention, attention, score);
  }

  const ExpertInfo info_;
  const ScoreMapOptions score_options_;
  const double s0_sq_;
  const int64_t items_per_class_;  // K; item k belongs to concept k / K
  const at::ScalarType dtype_;
  // On the 64x64 grid, complex of dtype_. conj(rfft2(d_k)): [N, 64, 33]. fft2(w_k - i w_k') for
  // the item pairs (k, k') = (2j, 2j + 1) of each class (a class of odd K gets a zero item), pair
  // j of class c at c * ceil(K/2) + j: [C * ceil(K/2), 64, 64], with w = d (items) or w = the
  // item's mask (masks).
  const at::Tensor item_spectra_conj_;
  const at::Tensor pair_item_spectra_;
  const at::Tensor pair_mask_spectra_;
  const at::Tensor item_sq_norms_;  // [1, N, 1, 1]: ||d_k||^2
  const at::Tensor log_prior_;      // [1, 1, 37, 37]: log position prior, normalised
};

}  // namespace

StatusOr<std::unique_ptr<Expert>> CreateExactExpert(const ExpertConfig& config) {
  if (config.concepts.empty()) {
    return InvalidArgumentError("exact expert '" + config.name + "' has no concepts");
  }
  if (config.items_per_class < 1) {
    return InvalidArgumentError("items_per_class must be at least 1");
  }
  if (!(config.component_std > 0.0) || !(config.position_prior_std_px > 0.0)) {
    return InvalidArgumentError("component_std and position_prior_std_px must be positive");
  }
  std::vector<int> labels;
  for (const std::string& name : config.concepts) {
    StatusOr<int> label = FashionMnistLabel(name);
    if (!label.ok()) return InvalidArgumentError(label.status().message());
    labels.push_back(*label);
  }
  const std::string directory =
      config.model_path.empty() ? std::string(kDefaultFashionMnistDir) : config.model_path;
  DND_ASSIGN_OR_RETURN(std::vector<FashionMnistItem> items,
                       LoadFirstItemsPerClass(directory, labels, config.items_per_class));

  const at::ScalarType dtype = config.exact_float64 ? at::kDouble : at::kFloat;
  const int64_t num_items = static_cast<int64_t>(items.size());
  at::Tensor weights = at::empty({num_items, 2, 28, 28}, at::kDouble);
  double* w = weights.data_ptr<double>();
  for (int64_t k = 0; k < num_items; ++k) {
    for (int j = 0; j < kFashionMnistPixels; ++j) {
      const uint8_t pixel = items[k].pixels[j];
      w[(k * 2 + 0) * kFashionMnistPixels + j] = pixel / 127.5;  // (pixel/127.5 - 1) - (-1)
      w[(k * 2 + 1) * kFashionMnistPixels + j] = pixel > 0 ? 1.0 : 0.0;
    }
  }
  const at::Tensor item_sq_norms =
      weights.select(1, 0).pow(2).sum({1, 2}).view({1, num_items, 1, 1});
  // Discretised Gaussian over offsets, centred on the middle offset (item centred on the canvas).
  at::Tensor log_prior = at::empty({kOffsets, kOffsets}, at::kDouble);
  const double centre = (kOffsets - 1) / 2.0;
  const double var = config.position_prior_std_px * config.position_prior_std_px;
  for (int py = 0; py < kOffsets; ++py) {
    for (int px = 0; px < kOffsets; ++px) {
      log_prior.data_ptr<double>()[py * kOffsets + px] =
          -((py - centre) * (py - centre) + (px - centre) * (px - centre)) / (2.0 * var);
    }
  }
  log_prior = (log_prior - log_prior.view({-1}).logsumexp(0)).view({1, 1, kOffsets, kOffsets});

  ExpertInfo info;
  info.name = config.name;
  info.latent = {config.latent_space_id, 1, kSide, kSide};
  info.concepts = config.concepts;
  info.prediction_type = PredictionType::kEpsilon;
  info.utilities = {UtilityKind::kScore, UtilityKind::kAttention};
  // The items' spectra (see ExactExpert's members), computed in float64 and rounded once.
  const at::ScalarType complex_dtype = c10::toComplexType(dtype);
  const at::Tensor item_spectra_conj =
      at::fft_rfft2(weights.select(1, 0), at::IntArrayRef{kSide, kSide})
          .conj_physical()
          .to(complex_dtype);
  const int64_t num_classes = static_cast<int64_t>(config.concepts.size());
  at::Tensor paired = weights.view({num_classes, config.items_per_class, 2, 28, 28});
  if (config.items_per_class % 2 == 1) {
    paired = at::constant_pad_nd(paired, {0, 0, 0, 0, 0, 0, 0, 1});
  }
  paired = paired.view({-1, 2, 2, 28, 28});  // [C * pairs per class, k or k', channel, 28, 28]
  const at::Tensor pair_spectra =
      at::fft_fft2(at::complex(paired.select(1, 0), -paired.select(1, 1)),
                   at::IntArrayRef{kSide, kSide})
          .to(complex_dtype);  // [pairs, channel, 64, 64]
  return std::unique_ptr<Expert>(new ExactExpert(std::move(info), config, item_spectra_conj,
                                                 pair_spectra, item_sq_norms.to(dtype),
                                                 log_prior.to(dtype)));
}

}  // namespace dnd::experts
