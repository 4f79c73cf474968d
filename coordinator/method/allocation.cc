// The allocation game's solver (see allocation.h; derivation in docs/method.md, "Allocation").
// Layout: every (n+1) x m buffer is row-major by player, so the inner loops run over positions j
// with unit stride and vectorise.
#include "coordinator/method/allocation.h"

#include <algorithm>
#include <cmath>
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

// Workspace and constraint structure of one solver.
struct AllocationSolver::Impl {
  int n = 0;  // real experts; players are 0..n, n is the fictitious one
  int m = 0;
  std::vector<Constraint> constraints;
  // (player, util_row) pairs whose M = sum_j Q_ij u_kj the constraints read.
  std::vector<std::pair<int, int>> pairs;
  std::vector<std::vector<std::pair<int, double>>> constraint_pairs;  // per c: (pair index, coef)
  // Hessian second-moment terms: T(i, k, l) = sum_j Q_ij u_kj u_lj.
  std::vector<std::array<int, 3>> triples;
  std::vector<std::vector<std::pair<int, double>>> hessian_terms;  // per (c, d) c <= d

  std::vector<double> u;               // normalised utilities, (n+1) x m
  std::vector<double> base;            // log prev + u / beta, (n+1) x m
  std::vector<double> w;               // exp(e - colmax), then Q, (n+1) x m
  std::vector<double> colmax, colsum;  // m
  std::vector<double> means;           // C x m: m^c_j = sum_i Q_ij phi^c_ij
  std::vector<double> lambda;          // warm start, C

  // Exponents e_ij = base_ij - sum_k A_ik u_kj into w, then w = exp(e - max_i e), colsum = Z_j.
  // Returns f(lambda) = <b, lambda> + sum_j log Z_j.
  double Value(const std::vector<double>& lam);
  // From w and colsum of the last Value(): Q into w, gradient g = b - lhs and Hessian H.
  void Derivatives(std::vector<double>* lhs, Eigen::MatrixXd* hessian, bool want_hessian);
  double Dot(int i, int k) const;
};

double AllocationSolver::Impl::Value(const std::vector<double>& lam) {
  const int players = n + 1;
  const size_t msz = static_cast<size_t>(m);
  // A_ik = sum_c lambda_c coef (terms with player i and util_row k).
  std::vector<double> a(static_cast<size_t>(players) * n, 0.0);
  for (size_t c = 0; c < constraints.size(); ++c) {
    if (lam[c] == 0) continue;
    for (const Term& t : constraints[c].terms) a[t.player * n + t.util_row] += lam[c] * t.coef;
  }
  double* __restrict cm = colmax.data();
  std::fill(colmax.begin(), colmax.end(), -std::numeric_limits<double>::infinity());
  for (int i = 0; i < players; ++i) {
    double* __restrict e = w.data() + i * msz;
    const double* __restrict bi = base.data() + i * msz;
    std::copy(bi, bi + msz, e);
    for (int k = 0; k < n; ++k) {
      const double aik = a[i * n + k];
      if (aik == 0) continue;
      const double* __restrict uk = u.data() + k * msz;
      for (size_t j = 0; j < msz; ++j) e[j] -= aik * uk[j];
    }
    for (size_t j = 0; j < msz; ++j) cm[j] = e[j] > cm[j] ? e[j] : cm[j];
  }
  double* __restrict cs = colsum.data();
  std::fill(colsum.begin(), colsum.end(), 0.0);
  for (int i = 0; i < players; ++i) {
    double* __restrict e = w.data() + i * msz;
    for (size_t j = 0; j < msz; ++j) {
      e[j] = internal::ExpNonPositive(e[j] - cm[j]);
      cs[j] += e[j];
    }
  }
  double total = 0;
  for (size_t j = 0; j < msz; ++j) total += cm[j] + internal::LogPositive(cs[j]);
  for (size_t c = 0; c < constraints.size(); ++c) total += constraints[c].b * lam[c];
  return total;
}

double AllocationSolver::Impl::Dot(int i, int k) const {
  const size_t msz = static_cast<size_t>(m);
  const double* __restrict q = w.data() + i * msz;
  const double* __restrict uk = u.data() + k * msz;
  double s = 0;
  for (size_t j = 0; j < msz; ++j) s += q[j] * uk[j];
  return s;
}

void AllocationSolver::Impl::Derivatives(std::vector<double>* lhs, Eigen::MatrixXd* hessian,
                                         bool want_hessian) {
  const int players = n + 1;
  const size_t msz = static_cast<size_t>(m);
  // Q = w / Z.
  double* __restrict cs = colsum.data();
  for (size_t j = 0; j < msz; ++j) cs[j] = 1.0 / cs[j];
  for (int i = 0; i < players; ++i) {
    double* __restrict q = w.data() + i * msz;
    for (size_t j = 0; j < msz; ++j) q[j] *= cs[j];
  }
  const size_t num_c = constraints.size();
  std::vector<double> pair_value(pairs.size());
  for (size_t p = 0; p < pairs.size(); ++p) pair_value[p] = Dot(pairs[p].first, pairs[p].second);
  lhs->assign(num_c, 0.0);
  for (size_t c = 0; c < num_c; ++c) {
    for (const auto& [p, coef] : constraint_pairs[c]) (*lhs)[c] += coef * pair_value[p];
  }
  if (!want_hessian || num_c == 0) return;
  // Cov_j(phi^c, phi^d) summed over j = sum of second moments - sum_j m^c_j m^d_j.
  std::vector<double> triple_value(triples.size());
  for (size_t t = 0; t < triples.size(); ++t) {
    const auto [i, k, l] = triples[t];
    const double* __restrict q = w.data() + i * msz;
    const double* __restrict uk = u.data() + k * msz;
    const double* __restrict ul = u.data() + l * msz;
    double s = 0;
    for (size_t j = 0; j < msz; ++j) s += q[j] * uk[j] * ul[j];
    triple_value[t] = s;
  }
  for (size_t c = 0; c < num_c; ++c) {
    double* __restrict mc = means.data() + c * msz;
    std::fill(mc, mc + msz, 0.0);
    for (const Term& t : constraints[c].terms) {
      const double* __restrict q = w.data() + t.player * msz;
      const double* __restrict uk = u.data() + t.util_row * msz;
      const double coef = t.coef;
      for (size_t j = 0; j < msz; ++j) mc[j] += coef * q[j] * uk[j];
    }
  }
  hessian->resize(num_c, num_c);
  size_t index = 0;
  for (size_t c = 0; c < num_c; ++c) {
    for (size_t d = c; d < num_c; ++d, ++index) {
      double second = 0;
      for (const auto& [t, coef] : hessian_terms[index]) second += coef * triple_value[t];
      const double* __restrict mc = means.data() + c * msz;
      const double* __restrict md = means.data() + d * msz;
      double cross = 0;
      for (size_t j = 0; j < msz; ++j) cross += mc[j] * md[j];
      (*hessian)(c, d) = (*hessian)(d, c) = second - cross;
    }
  }
}

AllocationSolver::AllocationSolver(const AllocationOptions& options, int num_experts,
                                   int num_positions)
    : options_(options),
      num_experts_(num_experts),
      num_positions_(num_positions),
      impl_(std::make_unique<Impl>()) {}

AllocationSolver::~AllocationSolver() = default;

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
  const size_t num_c = s.constraints.size();
  std::map<std::pair<int, int>, int> pair_index;
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
  s.w.resize(total);
  s.colmax.resize(num_positions);
  s.colsum.resize(num_positions);
  s.means.resize(num_c * num_positions);
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
  // Utilities: finite, >= 0, row sum > 0; then normalised rows. The checks are reductions (cheap);
  // the offending entry is searched only on failure.
  for (int i = 0; i < players; ++i) {
    const float* __restrict ui = utilities.data() + i * msz;
    double sum = 0;
    float lowest = 0;
    for (size_t j = 0; j < msz; ++j) {
      sum += ui[j];
      lowest = ui[j] < lowest ? ui[j] : lowest;
    }
    if (!std::isfinite(sum) || lowest < 0) {
      for (size_t j = 0; j < msz; ++j) {
        if (!std::isfinite(ui[j]) || ui[j] < 0) {
          return InvalidArgumentError("utility of " + PlayerName(i, n) + " at position " +
                                      std::to_string(j) + " is " + std::to_string(ui[j]) +
                                      " (expected finite and >= 0)");
        }
      }
      return InvalidArgumentError("utility row of " + PlayerName(i, n) + " overflows when summed");
    }
    if (!(sum > 0)) {
      return InvalidArgumentError("utility of " + PlayerName(i, n) +
                                  " is zero at every position (an expert with no mass)");
    }
    const double inv = 1.0 / sum;
    double* __restrict uo = s.u.data() + i * msz;
    for (size_t j = 0; j < msz; ++j) uo[j] = ui[j] * inv;
  }
  // Previous allocation: finite, >= 0, columns summing to 1 within 1e-4.
  std::fill(s.colsum.begin(), s.colsum.end(), 0.0);
  double lowest = 0;
  for (int i = 0; i < players; ++i) {
    const double* __restrict p = previous.data() + i * msz;
    double* __restrict cs = s.colsum.data();
    for (size_t j = 0; j < msz; ++j) {
      cs[j] += p[j];
      lowest = p[j] < lowest ? p[j] : lowest;
    }
  }
  for (size_t j = 0; j < msz; ++j) {
    const double c = s.colsum[j];
    if (!(std::abs(c - 1.0) <= 1e-4) || lowest < 0) {
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
      return InvalidArgumentError("previous allocation at position " + std::to_string(j) +
                                  " sums to " + std::to_string(c) + " over players (expected 1)");
    }
  }
  // base_ij = log max(prev_ij / colsum_j, min_prior) + u_ij / beta_eff.
  const double beta_eff = options_.beta_reference_positions > 0
                              ? options_.beta * options_.beta_reference_positions / s.m
                              : options_.beta;
  const double inv_beta = 1.0 / beta_eff;
  const double floor = options_.min_prior;
  for (int i = 0; i < players; ++i) {
    const double* __restrict p = previous.data() + i * msz;
    const double* __restrict ui = s.u.data() + i * msz;
    const double* __restrict cs = s.colsum.data();
    double* __restrict b = s.base.data() + i * msz;
    for (size_t j = 0; j < msz; ++j) {
      const double v = p[j] / cs[j];
      b[j] = internal::LogPositive(v > floor ? v : floor) + ui[j] * inv_beta;
    }
  }

  // Projected Newton on the dual f(lambda) = <b, lambda> + sum_j log Z_j(lambda), lambda >= 0.
  const size_t num_c = s.constraints.size();
  std::vector<double> lam = s.lambda;
  std::vector<double> lhs, grad(num_c);
  Eigen::MatrixXd hessian;
  double value = s.Value(lam);
  s.Derivatives(&lhs, &hessian, true);
  auto residual_of = [&](const std::vector<double>& l, const std::vector<double>& g) {
    double r = 0;
    for (size_t c = 0; c < num_c; ++c) r = std::max(r, l[c] > 0 ? std::abs(g[c]) : -g[c]);
    return r;
  };
  for (size_t c = 0; c < num_c; ++c) grad[c] = s.constraints[c].b - lhs[c];
  double residual = residual_of(lam, grad);
  int iterations = 0;
  bool converged = residual <= options_.tolerance;
  while (!converged && iterations < options_.max_iterations) {
    ++iterations;
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
    std::vector<double> dir(num_c, 0.0);
    if (!free.empty()) {
      const int nf = static_cast<int>(free.size());
      Eigen::MatrixXd h(nf, nf);
      Eigen::VectorXd g(nf);
      double max_diag = 0;
      for (int a = 0; a < nf; ++a) {
        g(a) = grad[free[a]];
        for (int b = 0; b < nf; ++b) h(a, b) = hessian(free[a], free[b]);
        max_diag = std::max(max_diag, h(a, a));
      }
      h.diagonal().array() += 1e-12 * max_diag + 1e-300;
      const Eigen::VectorXd d = h.ldlt().solve(-g);
      for (int a = 0; a < nf; ++a) dir[free[a]] = std::isfinite(d(a)) ? d(a) : -g(a);
    }
    // Armijo backtracking along the projected arc.
    double step = 1.0;
    bool accepted = false;
    std::vector<double> trial(num_c);
    for (int tries = 0; tries < 60; ++tries, step *= 0.5) {
      double decrease = 0;
      for (size_t c = 0; c < num_c; ++c) {
        trial[c] = std::max(0.0, lam[c] + step * dir[c]);
        decrease += grad[c] * (trial[c] - lam[c]);
      }
      if (trial == lam) break;
      const double trial_value = s.Value(trial);
      if (trial_value <= value + 1e-4 * decrease) {
        accepted = true;
        value = trial_value;
        lam = trial;
        break;
      }
    }
    if (!accepted) {
      s.Value(lam);  // restore w for lam
      s.Derivatives(&lhs, &hessian, false);
      break;  // no descent left at double precision
    }
    s.Derivatives(&lhs, &hessian, true);
    for (size_t c = 0; c < num_c; ++c) grad[c] = s.constraints[c].b - lhs[c];
    residual = residual_of(lam, grad);
    converged = residual <= options_.tolerance;
  }
  s.lambda = lam;

  out.num_players = players;
  out.num_positions = s.m;
  out.q.assign(s.w.begin(), s.w.end());
  out.position_share.resize(players);
  out.utility_obtained.resize(players);
  out.fair_share.assign(players, options_.rho / n);
  out.fair_share[n] = 0.0;
  out.constraints.clear();
  out.max_violation = 0;
  for (int i = 0; i < players; ++i) {
    const double* q = s.w.data() + i * msz;
    double share = 0;
    for (size_t j = 0; j < msz; ++j) share += q[j];
    out.position_share[i] = share / s.m;
    out.utility_obtained[i] = s.Dot(i, i);
  }
  for (size_t c = 0; c < num_c; ++c) {
    const Constraint& con = s.constraints[c];
    out.constraints.push_back({con.label, lhs[c], con.b, lam[c]});
    out.max_violation = std::max(out.max_violation, lhs[c] - con.b);
  }
  out.kkt_residual = residual;
  out.dual_iterations = iterations;
  out.converged = converged;
  out.effective_beta = beta_eff;
  return OkStatus();
}

}  // namespace dnd::method
