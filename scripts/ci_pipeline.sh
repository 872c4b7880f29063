#!/usr/bin/env bash
# The pipeline's CI, the same locally, in .ci/run and in GitHub Actions:
#
#   scripts/ci_pipeline.sh [--tests] [BASE]    # BASE: what to compare with (default: main)
#
# 1. with --tests, runs the tests (the README's command); 2. checks that the committed dvc.lock
# is not stale (scripts/check_lock.py); 3. runs `dvc repro` on the sample data: only the stages
# whose params, code or data changed, when the outputs are in the workspace or the DVC cache;
# 4. reports the stages re-run and `dvc params diff` / `dvc metrics diff` against BASE, with
# `dvc plots diff` as an HTML page. The report goes to stdout and to $CI_PIPELINE_OUT (default
# ci-report/: summary.md, repro.log, plots/index.html) and, in GitHub Actions, to the job summary.
# Exits non-zero when the tests or the pipeline fail or dvc.lock is stale.
set -euo pipefail
cd "$(dirname "$0")/.."

tests=false
if [ "${1:-}" = "--tests" ]; then tests=true; shift; fi
base="${1:-main}"
out="${CI_PIPELINE_OUT:-ci-report}"
# inside the project's environment already (uv run, an activated venv): use it as it is
if [ -n "${VIRTUAL_ENV:-}" ]; then run=(); else run=(uv run --locked); fi

# BASE may exist only as a remote branch (a pull request's checkout in GitHub Actions)
if ! git rev-parse --verify --quiet "$base^{commit}" >/dev/null; then
    if git rev-parse --verify --quiet "origin/$base^{commit}" >/dev/null; then
        base="origin/$base"
    else
        echo "error: nothing called '$base' to compare with (git fetch origin $base; in GitHub Actions, checkout with fetch-depth: 0)" >&2
        exit 2
    fi
fi

if $tests; then
    echo "== tests"
    uv run --locked pytest
fi
rm -rf "$out" && mkdir -p "$out"

if [ -n "${GITHUB_ACTIONS:-}" ]; then
    # outputs of earlier runs from the DVC cache (the workflow restores .dvc/cache), so that
    # dvc repro re-runs only what changed; what the cache lacks, dvc repro rebuilds
    "${run[@]}" dvc checkout --allow-missing --quiet || true
fi

echo "== dvc.lock"
lock_ok=true
"${run[@]}" python scripts/check_lock.py | tee "$out/lock.txt" || lock_ok=false

echo "== dvc repro"
repro_ok=true
TQDM_DISABLE=1 "${run[@]}" dvc repro 2>&1 | tee "$out/repro.log" || repro_ok=false
stages=$(grep -oE "Running stage '[a-z_]+'" "$out/repro.log" | cut -d"'" -f2 | paste -sd, - | sed 's/,/, /g' || true)

# a diff table, or a line saying there is no difference
diff_table() {
    local table
    table=$("${run[@]}" dvc "$1" diff "$base" --md)
    if [ "$(printf '%s\n' "$table" | grep -c '^|')" -le 2 ]; then echo "No $1 differ from \`$base\`."; else printf '%s\n' "$table"; fi
}

{
    echo "## Pipeline against \`$base\`"
    echo
    if $repro_ok; then
        echo "dvc repro re-ran: ${stages:-nothing (every stage was up to date)}"
    else
        echo "**dvc repro failed**: see repro.log"
    fi
    echo
    if ! $lock_ok; then
        echo "**dvc.lock is stale**"
        echo
        echo '```'
        cat "$out/lock.txt"
        echo '```'
        echo
    fi
    echo "### Params"
    echo
    diff_table params
    echo
    echo "### Metrics"
    echo
    diff_table metrics
    echo
} > "$out/summary.md"
if $repro_ok; then
    "${run[@]}" dvc plots diff "$base" -o "$out/plots" > /dev/null
    echo "### Plots: \`plots/index.html\` in the report ($out/)" >> "$out/summary.md"
fi
echo "== report"
cat "$out/summary.md"
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then cat "$out/summary.md" >> "$GITHUB_STEP_SUMMARY"; fi

$repro_ok || { echo "error: dvc repro failed" >&2; exit 1; }
$lock_ok || { echo "error: dvc.lock is stale: run dvc repro and commit dvc.lock with metrics/ and plots/" >&2; exit 1; }
echo "ok"
