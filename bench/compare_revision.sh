#!/usr/bin/env bash
# The worker benchmarks of an earlier revision and of the working tree, alternating run by run on the same machine.
#   bash bench/compare_revision.sh <revision> [runs] [benchmarks...]     e.g. bash bench/compare_revision.sh e142d3c 3
#   ROUNDS=1 bash bench/compare_revision.sh 488edef 6 s3    alternates round by round (each turn one round), which
#   keeps the machine's drift between turns out of the comparison; take the medians over the printed rounds.
# The earlier revision's worker runs from a temporary git worktree (PYTHONPATH points at it); both use this clone's
# environment, so only the product code differs. Prints each round (with the baseline's own time) and the medians.
# Both trees' code is compiled to bytecode first, as the image has it (UV_COMPILE_BYTECODE): this environment sets
# PYTHONDONTWRITEBYTECODE, so otherwise every worker start compiles its side's source again, which charges the
# larger tree a cost the product never pays (about 15 ms of CPU per start at 488edef against b35b491).
set -euo pipefail
cd "$(dirname "$0")/.."
revision=${1:?a revision to compare with}
runs=${2:-3}
rounds=${ROUNDS:-5}
shift $(( $# > 2 ? 2 : $# ))
benchmarks=("${@:-gallery download s3}")
read -r -a benchmarks <<< "${benchmarks[*]}"
old=$(mktemp -d)
trap 'git worktree remove --force "$old" >/dev/null 2>&1 || true' EXIT
git worktree add -q --detach "$old" "$revision"
python=.venv/bin/python
"$python" -m compileall -q "$old/operator" operator
for bench in "${benchmarks[@]}"; do
  for run in $(seq "$runs"); do
    echo "== $bench run $run: $revision"
    (cd "$old" && PYTHONPATH="$old/operator:$old" "$OLDPWD/$python" -m bench.worker "$bench" --rounds "$rounds" 2>&1 | grep -E "^[0-9]|median")
    echo "== $bench run $run: working tree"
    "$python" -m bench.worker "$bench" --rounds "$rounds" 2>&1 | grep -E "^[0-9]|median"
  done
done
