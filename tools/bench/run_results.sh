#!/bin/bash
# Re-measures everything docs/results.md and docs/benchmarks/experts.md report, into OUT (default
# ./bench-results): the experts' gate and the composition benchmark (pairs, triples, the sweeps of
# beta x gamma and of the guidance outside the region) in both domains. Each step writes its JSON,
# markdown, log and grids when it finishes, so a run that is stopped keeps what it did.
# Usage: tools/bench/run_results.sh [DND_BINARY] [OUT]
# Long: on the 2-core VM each domain's suites (132 pair and 144 triple images per strategy) took
# 21-23 min alone; the sweeps were not timed whole, one point of 90-96 images took 55-125 s alone
# (docs/results.md, "Cost").
# The neural points before session 12 were measured with every expert at CFG 5; this script runs
# them with the current defaults (the tops worker declaring 10); add --expert-guidance-scale
# tops=5 to such a step to repeat it as it was measured.
set -u
DND=${1:-build/bin/dnd}
OUT=${2:-bench-results}
mkdir -p "$OUT"
export DND_THREADS=${DND_THREADS:-1}  # one LibTorch thread per worker: 3 workers share the cores
run() {  # run NAME ARGS...: one command, its stdout (tables) in NAME.md, stderr in NAME.log
  local name=$1; shift
  echo "$(date -u +%FT%TZ) $name: $*" | tee -a "$OUT/commands.txt"
  /usr/bin/time -f "$name: %e s wall, %U s user, %S s sys, %M KiB max RSS" -a -o "$OUT/times.txt" \
    "$DND" "$@" > "$OUT/$name.md" 2> "$OUT/$name.log" || echo "$name: exit $?" >> "$OUT/times.txt"
}
run experts_neural bench experts --domain neural --json "$OUT/experts_neural.json" --grid-dir "$OUT/grids"
run compose_neural_quick bench compose --domain neural --quick --json "$OUT/compose_neural_quick.json"
run compose_neural_pairs bench compose --domain neural --suites pairs \
  --json "$OUT/compose_neural_pairs.json" --grid-dir "$OUT/grids"
run compose_neural_triples bench compose --domain neural --suites triples \
  --json "$OUT/compose_neural_triples.json" --grid-dir "$OUT/grids"
run compose_neural_sweep bench compose --domain neural --sweep-only \
  --json "$OUT/compose_neural_sweep.json"
run compose_neural_sweep_outside bench compose --domain neural --sweep-only --sweep-beta 0.0003 \
  --sweep-gamma 0.01,0.02 --sweep-guidance-outside 0,0.3,0.5,0.7,1 \
  --json "$OUT/compose_neural_sweep_outside.json"
# Session 8: the region-centred views' gain and largest shift, and gamma and the guidance
# outside with the views on, before the views were separated (docs/results.md, "Region-centred
# views").
for view in "0 4" "1 4" "1 2" "1 3" "1.5 3" "2 3"; do
  set -- $view
  run "compose_neural_sweep_views_g$1_s$2" bench compose --domain neural --sweep-only \
    --sweep-beta 0.0003 --sweep-gamma 0.02 --sweep-guidance-outside 0.5 --view-gain "$1" \
    --view-max-shift "$2" --view-min-separation 0 \
    --json "$OUT/compose_neural_sweep_views_g$1_s$2.json"
done
run compose_neural_sweep_views_gamma bench compose --domain neural --sweep-only --sweep-beta 0.0003 \
  --sweep-gamma 0.005,0.01,0.015,0.03 --sweep-guidance-outside 0.5 --view-min-separation 0 \
  --json "$OUT/compose_neural_sweep_views_gamma.json"
run compose_neural_sweep_views_outside bench compose --domain neural --sweep-only --sweep-beta 0.0003 \
  --sweep-gamma 0.01,0.02 --sweep-guidance-outside 0.3,0.7 --view-min-separation 0 \
  --json "$OUT/compose_neural_sweep_views_outside.json"
# Session 9: the views' least separation on the 96-image triples tuning file (docs/results.md,
# "Separated views"), then the default (6) on the usual tuning subset.
for separation in 0 4 5 6 7 8; do
  run "compose_neural_sweep_separation_$separation" bench compose --domain neural --sweep-only \
    --suite-file tools/bench/compose_tuning_triples.json --sweep-beta 0.0003 --sweep-gamma 0.015 \
    --sweep-guidance-outside 0.5 --view-min-separation "$separation" \
    --json "$OUT/compose_neural_sweep_separation_$separation.json"
done
run compose_neural_sweep_separated bench compose --domain neural --sweep-only --sweep-beta 0.0003 \
  --sweep-gamma 0.015 --sweep-guidance-outside 0.5 --json "$OUT/compose_neural_sweep_separated.json"
run compose_neural_noviews bench compose --domain neural --strategies dnd --view-gain 0 \
  --json "$OUT/compose_neural_noviews.json"
run compose_neural_unseparated bench compose --domain neural --strategies dnd \
  --view-min-separation 0 --json "$OUT/compose_neural_unseparated.json"
run experts_exact bench experts --domain exact --json "$OUT/experts_exact.json" --grid-dir "$OUT/grids"
run compose_exact_triples bench compose --domain exact --suites triples \
  --json "$OUT/compose_exact_triples.json" --grid-dir "$OUT/grids"
run compose_exact_pairs bench compose --domain exact --suites pairs \
  --json "$OUT/compose_exact_pairs.json" --grid-dir "$OUT/grids"
run compose_exact_sweep bench compose --domain exact --sweep-only \
  --json "$OUT/compose_exact_sweep.json"
# Session 9: the views' settings scaled to the 64x64 canvas (the default), not scaled, and off
# (docs/method.md decision 15).
for views in "scaled" "unscaled --view-reference-size 0" "off --view-gain 0"; do
  set -- $views
  name=$1; shift
  run "compose_exact_sweep_views_$name" bench compose --domain exact --sweep-only \
    --sweep-beta 0.0003 --sweep-gamma 0.015 --sweep-guidance-outside 0.5 "$@" \
    --json "$OUT/compose_exact_sweep_views_$name.json"
done
# Session 10: the remaining knobs with the separation, on the 96-image triples tuning file
# (docs/results.md, "The remaining knobs with the separation"), then the two wider layouts on the
# usual tuning subset.
tune() {  # tune NAME DOMAIN [CHANGE...]: one point on the triples tuning file
  local name=$1 domain=$2; shift 2
  local defaults=()
  [[ " $* " == *" --sweep-gamma "* ]] || defaults+=(--sweep-gamma 0.015)
  [[ " $* " == *" --sweep-beta "* ]] || defaults+=(--sweep-beta 0.0003)
  [[ " $* " == *" --sweep-guidance-outside "* ]] || defaults+=(--sweep-guidance-outside 0.5)
  run "compose_${domain}_tune_$name" bench compose --domain "$domain" --sweep-only \
    --suite-file tools/bench/compose_tuning_triples.json "${defaults[@]}" "$@" \
    --json "$OUT/compose_${domain}_tune_$name.json"
}
for domain in neural exact; do
  tune defaults "$domain"
  tune s4d8 "$domain" --view-max-shift 4 --view-min-separation 8
  tune s5d8 "$domain" --view-max-shift 5 --view-min-separation 8
  tune s5d9 "$domain" --view-max-shift 5 --view-min-separation 9
  for layout in "s5d8 --view-max-shift 5 --view-min-separation 8" \
                "s5d9 --view-max-shift 5 --view-min-separation 9"; do
    set -- $layout
    name=$1; shift
    run "compose_${domain}_sweep_$name" bench compose --domain "$domain" --sweep-only \
      --sweep-beta 0.0003 --sweep-gamma 0.015 --sweep-guidance-outside 0.5 "$@" \
      --json "$OUT/compose_${domain}_sweep_$name.json"
  done
done
tune s4d7 neural --view-max-shift 4 --view-min-separation 7
tune cfg6 neural --cfg 6
tune cfg4 neural --cfg 4
tune gamma0.01 neural --sweep-gamma 0.01
tune beta0.0001 neural --sweep-beta 0.0001
tune beta0.001 neural --sweep-beta 0.001
tune outside0.3 neural --sweep-guidance-outside 0.3
tune outside0.7 neural --sweep-guidance-outside 0.7
tune blur3 neural --utility-smoothing 3
tune envyfree neural --fairness envy-free
tune proportional_envyfree neural --fairness proportional,envy-free
tune equitable neural --fairness equitable
# Session 11: the proportional share below 1 (docs/results.md, same table).
for rho in 0.75 0.5 0.25; do tune "rho$rho" neural --rho "$rho"; done
# Session 12: the tops expert's guidance scale, alone (its quality gate) and in the composition
# (docs/results.md, "The tops expert's guidance scale"; the neural domain's tops worker declares
# 10, so tops=5 is every expert at the coordinator's default). The eta and per-expert-normalised
# guidance rows of that section came from a throw-away build and have no flag.
for w in 5 7 10 15; do
  run "experts_neural_tops_cfg$w" bench experts --domain neural --experts tops --samples 128 \
    --seed 1 --cfg "$w" --json "$OUT/experts_neural_tops_cfg$w.json"
done
# The tops at 10 is the default: compose_neural_tune_defaults and compose_neural_sweep_separated
# above are those points.
for w in 4 5 6 7 8 12; do tune "tops$w" neural --expert-guidance-scale "tops=$w"; done
run compose_neural_sweep_tops5 bench compose --domain neural --sweep-only --sweep-beta 0.0003 \
  --sweep-gamma 0.015 --sweep-guidance-outside 0.5 --expert-guidance-scale tops=5 \
  --json "$OUT/compose_neural_sweep_tops5.json"
run compose_neural_tune_fairness bench compose --domain neural \
  --suite-file tools/bench/compose_tuning_triples.json --suites triples --strategies dnd,dnd-nofair \
  --json "$OUT/compose_neural_tune_fairness.json"
