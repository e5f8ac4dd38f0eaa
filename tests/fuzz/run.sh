#!/usr/bin/env bash
# Run the atheris harnesses of tests/fuzz/ one after the other and report the inputs tried.
#
#   tests/fuzz/run.sh                     every harness, FUZZ_SECONDS each (default 60)
#   tests/fuzz/run.sh frames config       only these
#   FUZZ_RUNS=100000 tests/fuzz/run.sh    a fixed number of inputs each instead of a time
#
# Corpus, logs and crashing inputs go to $FUZZ_WORK_DIR (default runs/fuzz): the corpus grows
# from run to run; a crash leaves runs/fuzz/<harness>/crashes/crash-<sha1>, replayed with
# `.venv/bin/python tests/fuzz/fuzz_<harness>.py runs/fuzz/<harness>/crashes/crash-...`.
# Exit status: 0 when no harness crashed. Runs at nice 10: it shares the machine.
set -u
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
EACH=${FUZZ_SECONDS:-60}
RUNS=${FUZZ_RUNS:-}
WORK=${FUZZ_WORK_DIR:-runs/fuzz}
ALL=(frames gatt manifest archive config recording)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${ALL[@]}")

if ! "$PY" -c "import atheris" 2>/dev/null; then
    echo "atheris is not installed: .venv/bin/pip install -e '.[fuzz]' (or: make fuzz)" >&2
    exit 2
fi
mkdir -p "$WORK"
summary="$WORK/summary.txt"
printf '%-10s %12s %8s  %s\n' harness inputs seconds result | tee "$summary"
status=0
for t in "${targets[@]}"; do
    if [ ! -f "tests/fuzz/fuzz_$t.py" ]; then
        echo "no harness tests/fuzz/fuzz_$t.py (have: ${ALL[*]})" >&2
        exit 2
    fi
    mkdir -p "$WORK/$t/crashes"
    if [ -n "$RUNS" ]; then limit="-runs=$RUNS"; else limit="-max_total_time=$EACH"; fi
    log="$WORK/$t.log"
    start=$(date +%s)
    # -rss_limit_mb: a parser that balloons is a finding; -timeout: so is one that hangs (s)
    FUZZ_WORK_DIR="$WORK" nice -n 10 "$PY" "tests/fuzz/fuzz_$t.py" "$limit" \
        -print_final_stats=1 -rss_limit_mb=1536 -timeout=10 \
        -artifact_prefix="$WORK/$t/crashes/" >"$log" 2>&1
    rc=$?
    took=$(( $(date +%s) - start ))
    inputs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | awk '{print $2}')
    if [ $rc -eq 0 ]; then
        result="ok"
    else
        status=1
        crash=$(grep -o "Test unit written to [^ ]*" "$log" | tail -1 | sed 's/Test unit written to //')
        result="FINDING (exit $rc): ${crash:-see $log}"
    fi
    printf '%-10s %12s %8s  %s\n' "$t" "${inputs:-?}" "$took" "$result" | tee -a "$summary"
done
exit $status
