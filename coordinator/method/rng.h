// The job's seeded normal generator: Philox4x32-10 (Salmon et al., SC'11) + Box-Muller, written out
// so that the same seed gives bit-identical noise on every machine and in every process: element j
// of the noise for (sample, purpose, step) is a pure function of (seed, sample, purpose, step, j).
// Used by the composite step to draw x_{t-1} and by the job to draw x_T (docs/method.md, "Noise").
#ifndef DND_COORDINATOR_METHOD_RNG_H_
#define DND_COORDINATOR_METHOD_RNG_H_

#include <array>
#include <cstdint>
#include <span>

namespace dnd::method {

// One Philox4x32-10 block: 10 rounds with multipliers 0xD2511F53 / 0xCD9E8D57 and Weyl key
// increments 0x9E3779B9 / 0xBB67AE85, matching Random123's philox4x32_10 (known-answer vectors are
// tested). Pure function.
std::array<uint32_t, 4> Philox4x32x10(std::array<uint32_t, 4> counter, std::array<uint32_t, 2> key);

// Which random quantity of a job a noise buffer is.
enum class NoisePurpose : uint32_t {
  kInitialLatent = 0,  // x_T
  kStepNoise = 1,      // z of x_{t-1} = mu + std z; `step` is the step index 0..num_steps-1
};

// Standard normals from counters. Layout: key = (seed low 32 bits, seed high 32 bits); counter =
// (block low, block high, step, sample * 2 + purpose) with block = j / 4; the block's four words
// w0..w3 give elements 4b..4b+3 through two Box-Muller pairs:
//   u = (w + 0.5) / 2^32 in (0, 1),  r = sqrt(-2 ln u_a),  z_a = r cos(2 pi u_b),  z_b = r sin(2 pi
//   u_b)
// with (u_a, u_b) = (w0, w1) and (w2, w3). ln, cos and sin are computed by the polynomial routines
// in rng.cc using only IEEE-754 double +, -, *, / and sqrt (compiled with -ffp-contract=off), never
// the platform's libm, so results do not depend on the C library or the CPU's FMA support.
// Immutable value type: thread-safe.
class NormalGenerator {
 public:
  explicit NormalGenerator(uint64_t seed) : seed_(seed) {}
  uint64_t seed() const { return seed_; }

  // Fills out[k] with element (offset + k) of the stream (sample, purpose, step). Elements are
  // addressable: filling [0, n) at once or in pieces gives the same numbers.
  void Fill(uint32_t sample, NoisePurpose purpose, uint32_t step, std::span<float> out,
            uint64_t offset = 0) const;

 private:
  uint64_t seed_;
};

// Exposed for tests: the generator's own ln(x) for x in (0, 1] and (cos, sin)(2 pi u) for u in
// [0, 1). Absolute error below 1e-15 on those ranges.
double PortableLog(double x);
void PortableSinCosTurns(double u, double* sin_out, double* cos_out);

}  // namespace dnd::method

#endif  // DND_COORDINATOR_METHOD_RNG_H_
