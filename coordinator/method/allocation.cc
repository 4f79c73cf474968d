// The allocation game's solver (see allocation.h; derivation in docs/method.md, "Allocation").
// Layout: every (n+1) x m buffer is row-major by player, so the inner loops run over positions j
// with unit stride and vectorise.
#include "coordinator/method/allocation.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <utility>

#include <Eigen/Dense>

#include "coordinator/method/fast_math.h"

namespace dnd::method {
namespace {

constexpr uint32_t kKnownFairness = kFairnessProportional | kFairnessEnvyFree | kFairnessEquitable;

// phi^c_ij = sum over terms with player == i of coef * u[util_row, j].
struct Term {
  int player;
  int util_row;
  double coef;
};
struct Constraint {
  std::string label;
  std::vector<Term> terms;
  double b;
};

std::string PlayerName(int i, int n) {
  return i == n ? "fictitious player " + std::to_string(i) : "expert " + std::to_string(i);
}

}  // namespace

Allocation Allocation::Uniform(int num_players, int num_positions) {
  Allocation a;
  a.num_players = num_players;
  a.num_positions = num_positions;
  a.q.assign(static_cast<size_t>(num_players) * num_positions, 1.0 / num_players);
  return a;
}

StatusOr<Allocation> Allocation::FromMasks(std::span<const std::vector<float>> masks,
                                           int num_positions) {
  const int n = static_cast<int>(masks.size());
  if (n < 1 || num_positions < 1) {
    return InvalidArgumentError("need at least one mask and one position");
  }
  Allocation a;
  a.num_players = n + 1;
  a.num_positions = num_positions;
  a.q.assign(static_cast<size_t>(n + 1) * num_positions, 0.0);
  for (int i = 0; i < n; ++i) {
    if (static_cast<int>(masks[i].size()) != num_positions) {
      return InvalidArgumentError("mask of expert " + std::to_string(i) + " has " +
                                  std::to_string(masks[i].size()) + " values, expected " +
                                  std::to_string(num_positions));
    }
  }
  for (int j = 0; j < num_positions; ++j) {
    double total = 0;
    for (int i = 0; i < n; ++i) {
      const double v = masks[i][j];
      if (!std::isfinite(v) || v < 0) {
        return InvalidArgumentError("mask of expert " + std::to_string(i) + " at position " +
                                    std::to_string(j) + " is " + std::to_string(v) +
                                    " (expected finite and >= 0)");
      }
      total += v;
    }
    for (int i = 0; i < n; ++i) {
      a.q[static_cast<size_t>(i) * num_positions + j] = total > 0 ? masks[i][j] / total : 0.0;
    }
    a.q[static_cast<size_t>(n) * num_positions + j] = total > 0 ? 0.0 : 1.0;
  }
  return a;
}

StatusOr<Allocation> Allocation::VerticalStrips(int num_experts, int height, int width) {
  if (num_experts < 1 || height < 1 || width < 1) {
    return InvalidArgumentError("vertical strips need num_experts, height and width >= 1");
  }
  std::vector<std::vector<float>> masks(num_experts,
                                        std::vector<float>(static_cast<size_t>(height) * width));
  for (int h = 0; h < height; ++h) {
    for (int w = 0; w < width; ++w) {
      const int owner = static_cast<int>(static_cast<int64_t>(w) * num_experts / width);
      masks[owner][static_cast<size_t>(h) * width + w] = 1.0f;
    }
  }
  return FromMasks(masks, height * width);
}

namespace {

// Sum of a float row (four partial sums so the loop vectorises; the order of the additions is
// fixed by this code, so the result is the same on every machine) and the OR of its bit patterns,
// whose sign bit is set when an entry is negative (or -0.0). Min/max reductions do not vectorise
// (NaN rules); bit ORs do.
void SumAndSignBits(const float* __restrict x, size_t len, double* sum, uint32_t* bits) {
  double s[4] = {0, 0, 0, 0};
  size_t j = 0;
  for (; j + 4 <= len; j += 4) {
    for (size_t l = 0; l < 4; ++l) s[l] += x[j + l];
  }
  for (; j < len; ++j) s[0] += x[j];
  *sum = (s[0] + s[1]) + (s[2] + s[3]);
  uint32_t b = 0;
  for (j = 0; j < len; ++j) b |= std::bit_cast<uint32_t>(x[j]);
  *bits = b;
}

// sum_j a_j, sum_j a_j b_j and sum_j a_j b_j c_j with four partial sums (as SumAndMin).
double Sum(const double* __restrict a, size_t len) {
  double s[4] = {0, 0, 0, 0};
  size_t j = 0;
  for (; j + 4 <= len; j += 4) {
    for (size_t l = 0; l < 4; ++l) s[l] += a[j + l];
  }
  for (; j < len; ++j) s[0] += a[j];
  return (s[0] + s[1]) + (s[2] + s[3]);
}
double SumProduct(const double* __restrict a, const double* __restrict b, size_t len) {
  double s[4] = {0, 0, 0, 0};
  size_t j = 0;
  for (; j + 4 <= len; j += 4) {
    for (size_t l = 0; l < 4; ++l) s[l] += a[j + l] * b[j + l];
  }
  for (; j < len; ++j) s[0] += a[j] * b[j];
  return (s[0] + s[1]) + (s[2] + s[3]);
}
double SumProduct(const double* __restrict a, const double* __restrict b,
                  const double* __restrict c, size_t len) {
  double s[4] = {0, 0, 0, 0};
  size_t j = 0;
  for (; j + 4 <= len; j += 4) {
    for (size_t l = 0; l < 4; ++l) s[l] += a[j + l] * b[j + l] * c[j + l];
  }
  for (; j < len; ++j) s[0] += a[j] * b[j] * c[j];
  return (s[0] + s[1]) + (s[2] + s[3]);
}

// q_j = w_j * inv_z_j, returning sum_j q_j and sum_j q_j u_j (four partial sums each, as
// SumAndMin) in one pass.
void StoreRow(const double* __restrict w, const double* __restrict inv_z,
              const double* __restrict u, size_t len, double* __restrict q, double* share,
              double* utility) {
  double s[4] = {0, 0, 0, 0}, t[4] = {0, 0, 0, 0};
  size_t j = 0;
  for (; j + 4 <= len; j += 4) {
    for (size_t l = 0; l < 4; ++l) {
      q[j + l] = w[j + l] * inv_z[j + l];
      s[l] += q[j + l];
      t[l] += q[j + l] * u[j + l];
    }
  }
  for (; j < len; ++j) {
    q[j] = w[j] * inv_z[j];
    s[0] += q[j];
    t[0] += q[j] * u[j];
  }
  *share += (s[0] + s[1]) + (s[2] + s[3]);
  *utility += (t[0] + t[1]) + (t[2] + t[3]);
}

// sum_j log x_j for len <= 128 values x_j in [1, 2^63] (Z_j is in [1, n+1]): eight running
// products of at most 16 factors each (below 2^1008, no overflow), then eight logs.
double SumOfLogs(const double* __restrict x, size_t len) {
  constexpr size_t kLanes = 8;
  double prod[kLanes];
  for (size_t l = 0; l < kLanes; ++l) prod[l] = 1.0;
  size_t j = 0;
  for (; j + kLanes <= len; j += kLanes) {
    for (size_t l = 0; l < kLanes; ++l) prod[l] *= x[j + l];
  }
  for (size_t l = 0; j + l < len; ++l) prod[l] *= x[j + l];
  double s = 0;
  for (size_t l = 0; l < kLanes; ++l) s += internal::LogPositive(prod[l]);
  return s;
}

// Positions are processed in chunks of this many, so that one evaluation of the dual reads each
// (n+1) x m input once and keeps its per-chunk intermediates in L1.
constexpr size_t kChunk = 128;
static_assert(kChunk <= 128, "SumOfLogs takes at most 128 values");

}  // namespace

// Workspace and constraint structure of one solver.
struct AllocationSolver::Impl {
  int n = 0;  // real experts; players are 0..n, n is the fictitious one
  int m = 0;
  double min_prior = 0;
  std::vector<Constraint> constraints;
  // (player, util_row) pairs whose M = sum_j Q_ij u_kj the constraints read; pairs [0, n] are
  // (i, i), every player's utility obtained (a diagnostic).
  std::vector<std::pair<int, int>> pairs;
  std::vector<std::vector<std::pair<int, double>>> constraint_pairs;  // per c: (pair index, coef)
  // Hessian second-moment terms: T(i, k, l) = sum_j Q_ij u_kj u_lj.
  std::vector<std::array<int, 3>> triples;
  std::vector<std::vector<std::pair<int, double>>> hessian_terms;  // per (c, d) c <= d

  // The dual at one lambda (Evaluate) with the Q(lambda) it comes from; the Hessian is filled by
  // Hessian() only when a Newton step needs it.
  struct Evaluation {
    double value = 0;                // f(lambda)
    std::vector<double> lhs;         // sum_ij Q_ij phi^c_ij, per constraint; grad f = b - lhs
    std::vector<double> pair_value;  // M = sum_j Q_ij u_kj, per pair
    std::vector<double> share;       // sum_j Q_ij, per player
    std::vector<double> q;           // Q, (n+1) x m
    std::vector<double> colmax;      // max_i e_ij, per position
    std::vector<double> z;           // Z_j = sum_i exp(e_ij - colmax_j), in [1, n+1], per position
    Eigen::MatrixXd hessian;         // Hess f, C x C
  };

  std::vector<double> u;  // normalised utilities, (n+1) x m
  // log max(Q_{t+1}, min_prior) + u / beta_eff (+ a per-position constant, see StoreLogQ),
  // (n+1) x m. Between calls it holds log max(Q_t, min_prior) + log Z_j of the last result.
  std::vector<double> base;
  bool base_is_log_q = false;   // base holds the log of current.q (the last result)
  std::vector<double> scratch;  // m: column sums of a foreign previous allocation; StoreLogQ
  Evaluation current, trial;    // at lambda, and at the line search's trial point
  std::vector<double> lambda;   // warm start, C
  // Per-chunk workspace: exponents then exp weights, (n+1) x kChunk; m^c_j, C x kChunk.
  std::vector<double> chunk_w, chunk_means;

  // A_ik = sum_c lambda_c coef_c(i, k), (n+1) x n row-major.
  std::vector<double> Coupling(const std::vector<double>& lam) const;
  // f(lambda), Q(lambda) and grad f = b - lhs in one pass over positions:
  //   e_ij = base_ij - sum_k A_ik u_kj, Q_ij = exp(e_ij - max_i e_ij) / Z_j,
  //   f = <b, lambda> + sum_j (max_i e_ij + log Z_j).
  void Evaluate(const std::vector<double>& lam, Evaluation* ev);
  // Hess f at ev's lambda from ev->q: sum_j Cov_{Q_.j}(phi^c, phi^d), one pass over positions.
  void Hessian(Evaluation* ev);
  // base := log max(Q_ij, min_prior) + log Z_j of current, for the next call (the constant
  // log Z_j of each position leaves that call's Q unchanged and shifts its f by a constant).
  void StoreLogQ();
};

std::vector<double> AllocationSolver::Impl::Coupling(const std::vector<double>& lam) const {
  std::vector<double> a(static_cast<size_t>(n + 1) * n, 0.0);
  for (size_t c = 0; c < constraints.size(); ++c) {
    if (lam[c] == 0) continue;
    for (const Term& t : constraints[c].terms) a[t.player * n + t.util_row] += lam[c] * t.coef;
  }
  return a;
}

void AllocationSolver::Impl::Evaluate(const std::vector<double>& lam, Evaluation* ev) {
  const int players = n + 1;
  const size_t msz = static_cast<size_t>(m);
  const size_t num_c = constraints.size();
  const std::vector<double> a = Coupling(lam);
  // The nonzero A_ik of each player, as (k, A_ik).
  std::vector<std::vector<std::pair<int, double>>> coupled(players);
  for (int i = 0; i < players; ++i) {
    for (int k = 0; k < n; ++k) {
      if (a[i * n + k] != 0) coupled[i].push_back({k, a[i * n + k]});
    }
  }
  ev->pair_value.assign(pairs.size(), 0.0);
  ev->share.assign(players, 0.0);
  double total = 0;
  double inv_z[kChunk];
  for (size_t j0 = 0; j0 < msz; j0 += kChunk) {
    const size_t len = std::min(kChunk, msz - j0);
    // e_ij = base_ij - sum_k A_ik u_kj; colmax_j = max_i e_ij.
    double* __restrict colmax = ev->colmax.data() + j0;
    std::fill(colmax, colmax + len, -std::numeric_limits<double>::infinity());
    for (int i = 0; i < players; ++i) {
      double* __restrict e = chunk_w.data() + i * kChunk;
      const double* __restrict bi = base.data() + i * msz + j0;
      const auto& terms = coupled[i];
      // Fused for the common rows with at most one coupling term (proportional fairness).
      if (terms.size() <= 1) {
        const double aik = terms.empty() ? 0.0 : terms[0].second;
        const double* __restrict uk = u.data() + (terms.empty() ? 0 : terms[0].first) * msz + j0;
        for (size_t j = 0; j < len; ++j) {
          e[j] = bi[j] - aik * uk[j];
          colmax[j] = e[j] > colmax[j] ? e[j] : colmax[j];
        }
        continue;
      }
      std::copy(bi, bi + len, e);
      for (const auto& [k, aik] : terms) {
        const double* __restrict uk = u.data() + k * msz + j0;
        for (size_t j = 0; j < len; ++j) e[j] -= aik * uk[j];
      }
      for (size_t j = 0; j < len; ++j) colmax[j] = e[j] > colmax[j] ? e[j] : colmax[j];
    }
    // w_ij = exp(e_ij - colmax_j), Z_j = sum_i w_ij.
    double* __restrict z = ev->z.data() + j0;
    std::fill(z, z + len, 0.0);
    for (int i = 0; i < players; ++i) {
      double* __restrict w = chunk_w.data() + i * kChunk;
      for (size_t j = 0; j < len; ++j) {
        w[j] = internal::ExpNonPositive(w[j] - colmax[j]);
        z[j] += w[j];
      }
    }
    // f's share: sum_j (colmax_j + log Z_j); Q_ij = w_ij / Z_j.
    total += Sum(colmax, len) + SumOfLogs(z, len);
    for (size_t j = 0; j < len; ++j) inv_z[j] = 1.0 / z[j];
    // With the pair values M = sum_j Q_ij u_kj, from which lhs_c = sum over the row's terms of
    // coef M; pairs [0, n] are (i, i).
    for (int i = 0; i < players; ++i) {
      StoreRow(chunk_w.data() + i * kChunk, inv_z, u.data() + i * msz + j0, len,
               ev->q.data() + i * msz + j0, &ev->share[i], &ev->pair_value[i]);
    }
    for (size_t p = players; p < pairs.size(); ++p) {
      const auto [i, k] = pairs[p];
      ev->pair_value[p] += SumProduct(ev->q.data() + i * msz + j0, u.data() + k * msz + j0, len);
    }
  }
  for (size_t c = 0; c < num_c; ++c) total += constraints[c].b * lam[c];
  ev->value = total;
  ev->lhs.assign(num_c, 0.0);
  for (size_t c = 0; c < num_c; ++c) {
    for (const auto& [p, coef] : constraint_pairs[c]) ev->lhs[c] += coef * ev->pair_value[p];
  }
}

void AllocationSolver::Impl::Hessian(Evaluation* ev) {
  const size_t msz = static_cast<size_t>(m);
  const size_t num_c = constraints.size();
  // Cov_j(phi^c, phi^d) summed over j = second moments - sum_j m^c_j m^d_j, with
  // m^c_j = sum_i Q_ij phi^c_ij.
  std::vector<double> triple_value(triples.size(), 0.0);
  std::vector<double> cross(num_c * (num_c + 1) / 2, 0.0);
  for (size_t j0 = 0; j0 < msz; j0 += kChunk) {
    const size_t len = std::min(kChunk, msz - j0);
    for (size_t t = 0; t < triples.size(); ++t) {
      const auto [i, k, l] = triples[t];
      triple_value[t] += SumProduct(ev->q.data() + i * msz + j0, u.data() + k * msz + j0,
                                    u.data() + l * msz + j0, len);
    }
    for (size_t c = 0; c < num_c; ++c) {
      double* __restrict mc = chunk_means.data() + c * kChunk;
      std::fill(mc, mc + len, 0.0);
      for (const Term& t : constraints[c].terms) {
        const double* __restrict q = ev->q.data() + t.player * msz + j0;
        const double* __restrict uk = u.data() + t.util_row * msz + j0;
        const double coef = t.coef;
        for (size_t j = 0; j < len; ++j) mc[j] += coef * q[j] * uk[j];
      }
    }
    size_t index = 0;
    for (size_t c = 0; c < num_c; ++c) {
      for (size_t d = c; d < num_c; ++d, ++index) {
        cross[index] +=
            SumProduct(chunk_means.data() + c * kChunk, chunk_means.data() + d * kChunk, len);
      }
    }
  }
  ev->hessian.resize(num_c, num_c);
  size_t index = 0;
  for (size_t c = 0; c < num_c; ++c) {
    for (size_t d = c; d < num_c; ++d, ++index) {
      double second = 0;
      for (const auto& [t, coef] : hessian_terms[index]) second += coef * triple_value[t];
      ev->hessian(c, d) = ev->hessian(d, c) = second - cross[index];
    }
  }
}

void AllocationSolver::Impl::StoreLogQ() {
  const int players = n + 1;
  const size_t msz = static_cast<size_t>(m);
  const std::vector<double> a = Coupling(lambda);
  // t_ij = e_ij - colmax_j = log Q_ij + log Z_j (<= 0), and colmin_j = min_i t_ij.
  const double* __restrict colmax = current.colmax.data();
  double* __restrict colmin = scratch.data();
  std::fill(scratch.begin(), scratch.end(), 0.0);
  for (int i = 0; i < players; ++i) {
    double* __restrict b = base.data() + i * msz;
    for (int k = 0; k < n; ++k) {
      const double aik = a[i * n + k];
      if (aik == 0) continue;
      const double* __restrict uk = u.data() + k * msz;
      for (size_t j = 0; j < msz; ++j) b[j] -= aik * uk[j];
    }
    for (size_t j = 0; j < msz; ++j) {
      b[j] -= colmax[j];
      colmin[j] = b[j] < colmin[j] ? b[j] : colmin[j];
    }
  }
  // The floor: log max(Q, min_prior) + log Z_j = max(t_ij, log min_prior + log Z_j). As
  // 0 <= log Z_j <= log(n+1), only positions with some t_ij below log min_prior + log(n+1) can
  // be affected, and only those need log Z_j.
  const double log_floor = std::log(min_prior);
  const double threshold = log_floor + std::log(static_cast<double>(players));
  for (size_t j = 0; j < msz; ++j) {
    if (!(colmin[j] < threshold)) continue;
    const double floor_j = log_floor + internal::LogPositive(current.z[j]);
    for (int i = 0; i < players; ++i) {
      double& b = base[i * msz + j];
      b = b > floor_j ? b : floor_j;
    }
  }
  base_is_log_q = true;
}

AllocationSolver::AllocationSolver(const AllocationOptions& options, int num_experts,
                                   int num_positions)
    : options_(options),
      num_experts_(num_experts),
      num_positions_(num_positions),
      impl_(std::make_unique<Impl>()) {}

AllocationSolver::~AllocationSolver() = default;

void AllocationSolver::Reset() {
  std::fill(impl_->lambda.begin(), impl_->lambda.end(), 0.0);
  impl_->base_is_log_q = false;
}

int AllocationSolver::num_constraints() const {
  return static_cast<int>(impl_->constraints.size());
}

StatusOr<std::unique_ptr<AllocationSolver>> AllocationSolver::Create(
    const AllocationOptions& options, int num_experts, int num_positions) {
  if (num_experts < 1 || num_positions < 1) {
    return InvalidArgumentError("allocation needs >= 1 expert and >= 1 position, got " +
                                std::to_string(num_experts) + " experts and " +
                                std::to_string(num_positions) + " positions");
  }
  if ((options.fairness & ~kKnownFairness) != 0) {
    return InvalidArgumentError("unknown fairness flags " + std::to_string(options.fairness));
  }
  if (!(options.rho >= 0 && options.rho <= 1)) {
    return InvalidArgumentError("rho must be in [0, 1] (rho > 1 can be infeasible), got " +
                                std::to_string(options.rho));
  }
  if (!(options.epsilon >= 0) || !std::isfinite(options.epsilon)) {
    return InvalidArgumentError("epsilon must be finite and >= 0, got " +
                                std::to_string(options.epsilon));
  }
  if (!(options.beta > 0) || !std::isfinite(options.beta)) {
    return InvalidArgumentError("beta must be finite and > 0, got " + std::to_string(options.beta));
  }
  if (options.beta_reference_positions < 0) {
    return InvalidArgumentError("beta_reference_positions must be >= 0");
  }
  if (!(options.tolerance > 0) || options.max_iterations < 1) {
    return InvalidArgumentError("tolerance must be > 0 and max_iterations >= 1");
  }
  if (!(options.min_prior > 0 && options.min_prior >= std::numeric_limits<double>::min() &&
        options.min_prior < 1)) {
    return InvalidArgumentError("min_prior must be a normal double in (0, 1)");
  }
  std::unique_ptr<AllocationSolver> solver(
      new AllocationSolver(options, num_experts, num_positions));
  Impl& s = *solver->impl_;
  const int n = num_experts;
  s.n = n;
  s.m = num_positions;
  // Constraint rows as sum_ij Q_ij phi_ij <= b, phi built from the real players' utility rows.
  if (options.fairness & kFairnessProportional) {
    for (int k = 0; k < n; ++k) {
      s.constraints.push_back(
          {"proportional[" + std::to_string(k) + "]", {{k, k, -1.0}}, -options.rho / n});
    }
  }
  if (options.fairness & kFairnessEnvyFree) {
    for (int k = 0; k < n; ++k) {
      for (int l = 0; l < n; ++l) {
        if (k == l) continue;
        s.constraints.push_back({"envy_free[" + std::to_string(k) + "," + std::to_string(l) + "]",
                                 {{l, k, 1.0}, {k, k, -1.0}},
                                 0.0});
      }
    }
  }
  if (options.fairness & kFairnessEquitable) {
    for (int k = 0; k < n; ++k) {
      for (int l = k + 1; l < n; ++l) {
        const std::string pair = std::to_string(k) + "," + std::to_string(l) + "]";
        s.constraints.push_back(
            {"equitable[" + pair, {{k, k, 1.0}, {l, l, -1.0}}, options.epsilon});
        s.constraints.push_back(
            {"equitable_rev[" + pair, {{l, l, 1.0}, {k, k, -1.0}}, options.epsilon});
      }
    }
  }
  s.min_prior = options.min_prior;
  const size_t num_c = s.constraints.size();
  std::map<std::pair<int, int>, int> pair_index;
  for (int i = 0; i <= n; ++i) {
    pair_index.emplace(std::make_pair(i, i), i);
    s.pairs.push_back({i, i});
  }
  s.constraint_pairs.resize(num_c);
  for (size_t c = 0; c < num_c; ++c) {
    for (const Term& t : s.constraints[c].terms) {
      auto [it, inserted] = pair_index.emplace(std::make_pair(t.player, t.util_row),
                                               static_cast<int>(s.pairs.size()));
      if (inserted) s.pairs.push_back(it->first);
      s.constraint_pairs[c].push_back({it->second, t.coef});
    }
  }
  std::map<std::array<int, 3>, int> triple_index;
  for (size_t c = 0; c < num_c; ++c) {
    for (size_t d = c; d < num_c; ++d) {
      std::vector<std::pair<int, double>> terms;
      for (const Term& tc : s.constraints[c].terms) {
        for (const Term& td : s.constraints[d].terms) {
          if (tc.player != td.player) continue;
          std::array<int, 3> key = {tc.player, std::min(tc.util_row, td.util_row),
                                    std::max(tc.util_row, td.util_row)};
          auto [it, inserted] = triple_index.emplace(key, static_cast<int>(s.triples.size()));
          if (inserted) s.triples.push_back(key);
          terms.push_back({it->second, tc.coef * td.coef});
        }
      }
      s.hessian_terms.push_back(std::move(terms));
    }
  }
  const size_t total = static_cast<size_t>(n + 1) * num_positions;
  s.u.resize(total);
  s.base.resize(total);
  s.scratch.resize(num_positions);
  for (Impl::Evaluation* ev : {&s.current, &s.trial}) {
    ev->q.resize(total);
    ev->colmax.resize(num_positions);
    ev->z.resize(num_positions);
  }
  s.chunk_w.resize(static_cast<size_t>(n + 1) * kChunk);
  s.chunk_means.resize(num_c * kChunk);
  s.lambda.assign(num_c, 0.0);
  return solver;
}

StatusOr<Allocation> AllocationSolver::Solve(std::span<const float> utilities,
                                             std::span<const double> previous) {
  Allocation out;
  DND_RETURN_IF_ERROR(SolveInto(utilities, previous, &out));
  return out;
}

Status AllocationSolver::SolveInto(std::span<const float> utilities,
                                   std::span<const double> previous, Allocation* result) {
  Allocation& out = *result;
  Impl& s = *impl_;
  const int n = s.n;
  const int players = n + 1;
  const size_t msz = static_cast<size_t>(s.m);
  const size_t total = static_cast<size_t>(players) * msz;
  if (utilities.size() != total) {
    return InvalidArgumentError("utilities have " + std::to_string(utilities.size()) +
                                " values, expected (n+1) x m = " + std::to_string(players) + " x " +
                                std::to_string(s.m));
  }
  if (previous.size() != total) {
    return InvalidArgumentError("previous allocation has " + std::to_string(previous.size()) +
                                " values, expected (n+1) x m = " + std::to_string(players) + " x " +
                                std::to_string(s.m));
  }
  // Utilities: finite, >= 0, row sum > 0. The checks are reductions; the offending entry is
  // searched only on failure.
  std::vector<double> inv_row_sum(players);
  for (int i = 0; i < players; ++i) {
    const float* ui = utilities.data() + i * msz;
    double sum = 0;
    uint32_t bits = 0;
    SumAndSignBits(ui, msz, &sum, &bits);
    // A NaN or infinity makes the sum non-finite; a negative entry sets the sign bit (as -0.0
    // does, which is valid: the scan then finds nothing).
    if (!std::isfinite(sum) || (bits >> 31) != 0) {
      for (size_t j = 0; j < msz; ++j) {
        if (!std::isfinite(ui[j]) || ui[j] < 0) {
          return InvalidArgumentError("utility of " + PlayerName(i, n) + " at position " +
                                      std::to_string(j) + " is " + std::to_string(ui[j]) +
                                      " (expected finite and >= 0)");
        }
      }
      if (!std::isfinite(sum)) {
        return InvalidArgumentError("utility row of " + PlayerName(i, n) +
                                    " overflows when summed");
      }
    }
    if (!(sum > 0)) {
      return InvalidArgumentError("utility of " + PlayerName(i, n) +
                                  " is zero at every position (an expert with no mass)");
    }
    inv_row_sum[i] = 1.0 / sum;
  }
  // The previous allocation is this solver's last result, handed back unchanged (the step loop's
  // case): base already holds its log, and it is valid by construction. Otherwise validate it
  // (finite, >= 0, columns summing to 1 within 1e-4) and take the log of the renormalised columns.
  const bool own_previous = s.base_is_log_q && std::memcmp(previous.data(), s.current.q.data(),
                                                           total * sizeof(double)) == 0;
  s.base_is_log_q = false;  // base is rewritten below
  const double floor = options_.min_prior;
  if (!own_previous) {
    std::fill(s.scratch.begin(), s.scratch.end(), 0.0);
    double* __restrict cs = s.scratch.data();
    // Sign bits (as in SumAndSignBits): of a negative entry, or of 1e-4 - |colsum - 1| for a
    // column off by more than 1e-4 (exact: the subtraction of nearby doubles is exact). A NaN or
    // infinity makes the total non-finite.
    uint64_t bits = 0;
    for (int i = 0; i < players; ++i) {
      const double* __restrict p = previous.data() + i * msz;
      for (size_t j = 0; j < msz; ++j) {
        cs[j] += p[j];
        bits |= std::bit_cast<uint64_t>(p[j]);
      }
    }
    for (size_t j = 0; j < msz; ++j) bits |= std::bit_cast<uint64_t>(1e-4 - std::abs(cs[j] - 1.0));
    if ((bits >> 63) != 0 || !std::isfinite(Sum(cs, msz))) {
      for (size_t jj = 0; jj < msz; ++jj) {
        for (int i = 0; i < players; ++i) {
          const double v = previous[i * msz + jj];
          if (!std::isfinite(v) || v < 0) {
            return InvalidArgumentError("previous allocation of " + PlayerName(i, n) +
                                        " at position " + std::to_string(jj) + " is " +
                                        std::to_string(v) + " (expected finite and >= 0)");
          }
        }
      }
      for (size_t j = 0; j < msz; ++j) {
        if (!(std::abs(cs[j] - 1.0) <= 1e-4)) {
          return InvalidArgumentError("previous allocation at position " + std::to_string(j) +
                                      " sums to " + std::to_string(cs[j]) +
                                      " over players (expected 1)");
        }
      }
      // Nothing found: only -0.0 entries set a sign bit, which is valid.
    }
    // base_ij = log max(prev_ij / colsum_j, min_prior); u / beta_eff is added below. Q_T (every
    // entry equal, how a job starts) needs one log; any other allocation one per entry.
    const uint64_t first = std::bit_cast<uint64_t>(previous[0]);
    uint64_t differs = 0;
    for (size_t e = 0; e < total; ++e) differs |= std::bit_cast<uint64_t>(previous[e]) ^ first;
    const bool constant = differs == 0;
    for (size_t j = 0; j < msz; ++j) cs[j] = 1.0 / cs[j];
    if (constant) {
      const double v = previous[0] * cs[0];
      std::fill(s.base.begin(), s.base.end(), internal::LogPositive(v > floor ? v : floor));
    }
    for (int i = 0; i < players && !constant; ++i) {
      const double* __restrict p = previous.data() + i * msz;
      double* __restrict b = s.base.data() + i * msz;
      for (size_t j = 0; j < msz; ++j) {
        const double v = p[j] * cs[j];
        b[j] = internal::LogPositive(v > floor ? v : floor);
      }
    }
  }
  // u_ij normalised; base_ij = log max(Q_{t+1}[i,j], min_prior) + u_ij / beta_eff.
  const double beta_eff = options_.beta_reference_positions > 0
                              ? options_.beta * options_.beta_reference_positions / s.m
                              : options_.beta;
  const double inv_beta = 1.0 / beta_eff;
  for (int i = 0; i < players; ++i) {
    const float* __restrict ui = utilities.data() + i * msz;
    double* __restrict uo = s.u.data() + i * msz;
    double* __restrict b = s.base.data() + i * msz;
    const double inv = inv_row_sum[i];
    for (size_t j = 0; j < msz; ++j) {
      uo[j] = ui[j] * inv;
      b[j] += uo[j] * inv_beta;
    }
  }

  // Projected Newton on the dual f(lambda) = <b, lambda> + sum_j log Z_j(lambda), lambda >= 0.
  const size_t num_c = s.constraints.size();
  std::vector<double>& lam = s.lambda;
  std::vector<double> grad(num_c);
  s.Evaluate(lam, &s.current);
  auto residual_of = [&](const std::vector<double>& l, const std::vector<double>& g) {
    double r = 0;
    for (size_t c = 0; c < num_c; ++c) r = std::max(r, l[c] > 0 ? std::abs(g[c]) : -g[c]);
    return r;
  };
  for (size_t c = 0; c < num_c; ++c) grad[c] = s.constraints[c].b - s.current.lhs[c];
  double residual = residual_of(lam, grad);
  int iterations = 0;
  bool converged = residual <= options_.tolerance;
  std::vector<double> dir(num_c), trial(num_c);
  while (!converged && iterations < options_.max_iterations) {
    ++iterations;
    s.Hessian(&s.current);
    // Bound-active set: at (or within the step's reach of) zero with the gradient pushing down.
    double pg_norm = 0;
    for (size_t c = 0; c < num_c; ++c) {
      pg_norm = std::max(pg_norm, std::abs(lam[c] - std::max(0.0, lam[c] - grad[c])));
    }
    const double eps_active = std::min(1e-12, pg_norm);
    std::vector<int> free;
    for (size_t c = 0; c < num_c; ++c) {
      if (!(lam[c] <= eps_active && grad[c] > 0)) free.push_back(static_cast<int>(c));
    }
    std::fill(dir.begin(), dir.end(), 0.0);
    if (!free.empty()) {
      const int nf = static_cast<int>(free.size());
      Eigen::MatrixXd h(nf, nf);
      Eigen::VectorXd g(nf);
      double max_diag = 0;
      for (int a = 0; a < nf; ++a) {
        g(a) = grad[free[a]];
        for (int b = 0; b < nf; ++b) h(a, b) = s.current.hessian(free[a], free[b]);
        max_diag = std::max(max_diag, h(a, a));
      }
      h.diagonal().array() += 1e-12 * max_diag + 1e-300;
      const Eigen::VectorXd d = h.ldlt().solve(-g);
      for (int a = 0; a < nf; ++a) dir[free[a]] = std::isfinite(d(a)) ? d(a) : -g(a);
    }
    // Armijo backtracking along the projected arc; each trial is one pass (Evaluate).
    double step = 1.0;
    bool accepted = false;
    for (int tries = 0; tries < 60; ++tries, step *= 0.5) {
      double decrease = 0;
      for (size_t c = 0; c < num_c; ++c) {
        trial[c] = std::max(0.0, lam[c] + step * dir[c]);
        decrease += grad[c] * (trial[c] - lam[c]);
      }
      if (trial == lam) break;
      s.Evaluate(trial, &s.trial);
      if (s.trial.value <= s.current.value + 1e-4 * decrease) {
        accepted = true;
        std::swap(s.current, s.trial);
        lam = trial;
        break;
      }
    }
    if (!accepted) break;  // no descent left at double precision
    for (size_t c = 0; c < num_c; ++c) grad[c] = s.constraints[c].b - s.current.lhs[c];
    residual = residual_of(lam, grad);
    converged = residual <= options_.tolerance;
  }
  s.StoreLogQ();

  const Impl::Evaluation& ev = s.current;
  out.num_players = players;
  out.num_positions = s.m;
  out.q.assign(ev.q.begin(), ev.q.end());
  out.position_share.resize(players);
  out.utility_obtained.assign(ev.pair_value.begin(), ev.pair_value.begin() + players);
  out.fair_share.assign(players, options_.rho / n);
  out.fair_share[n] = 0.0;
  for (int i = 0; i < players; ++i) out.position_share[i] = ev.share[i] / s.m;
  out.constraints.resize(num_c);
  out.max_violation = 0;
  for (size_t c = 0; c < num_c; ++c) {
    const Constraint& con = s.constraints[c];
    out.constraints[c].label = con.label;  // reuses the string's buffer in the steady state
    out.constraints[c].lhs = ev.lhs[c];
    out.constraints[c].rhs = con.b;
    out.constraints[c].multiplier = lam[c];
    out.max_violation = std::max(out.max_violation, ev.lhs[c] - con.b);
  }
  out.kkt_residual = residual;
  out.dual_iterations = iterations;
  out.converged = converged;
  out.effective_beta = beta_eff;
  return OkStatus();
}

}  // namespace dnd::method
