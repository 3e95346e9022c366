#!/usr/bin/env bash
# Coverage-guided fuzzing of Kujira's loaders with libFuzzer (docs/server.md, "Fuzzing").
#
#   scripts/fuzz.sh [--runs N | --time SECONDS] [--merge] [TARGET...]
#
# Targets: gguf safetensors config tokenizer template request (default: all). Builds the `kujira-fuzz` product in
# release with `-sanitize=fuzzer` into .build-fuzz/, starts each target from the committed seed corpus
# (Tests/Fixtures/fuzz/TARGET, copied so the repository stays clean), and fails on any crash, hang (-timeout) or
# runaway allocation (-rss_limit_mb / -malloc_limit_mb). A reproducer is left in .build-fuzz/artifacts/; replay it with
# `swift run kujira-fuzz TARGET FILE` (an ordinary build) to debug, and commit it to Tests/Fixtures/fuzz/TARGET once
# fixed so FuzzCorpusTests keeps it fixed. --merge then adds to the committed corpus the inputs of the working corpus
# that reach new coverage (libFuzzer's -merge=1), keeping files under 16 KiB so the repository stays small.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=100000
time_limit=0
merge=0
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --time) time_limit="$2"; runs=-1; shift 2 ;;
    --merge) merge=1; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[ ${#targets[@]} -eq 0 ] && targets=(gguf safetensors config tokenizer template request)

scratch=.build-fuzz
# lld: gold fails on libFuzzer's objects with debug info ("internal error in format_file_lineno").
flags=(-c release --product kujira-fuzz --scratch-path "$scratch" -Xswiftc -sanitize=fuzzer -Xswiftc -DKUJIRA_LIBFUZZER -Xswiftc -use-ld=lld)
swift build "${flags[@]}" >"$scratch.log" 2>&1 || { tail -n 30 "$scratch.log"; echo "fuzz: build failed"; exit 1; }
bin="$(swift build "${flags[@]}" --show-bin-path)/kujira-fuzz"

max_len() {
  case "$1" in
    gguf) echo 131072 ;; safetensors) echo 32768 ;; tokenizer) echo 16384 ;; template) echo 8192 ;; *) echo 4096 ;;
  esac
}

mkdir -p "$scratch/artifacts"
failed=0
for target in "${targets[@]}"; do
  corpus="$scratch/corpus/$target"
  mkdir -p "$corpus"
  cp -n Tests/Fixtures/fuzz/"$target"/* "$corpus"/ 2>/dev/null || true
  log="$scratch/$target.log"
  dict=()
  [ -f "scripts/fuzz-dictionaries/$target.dict" ] && dict=(-dict="scripts/fuzz-dictionaries/$target.dict")
  set +e
  KUJIRA_FUZZ_TARGET="$target" KUJIRA_FUZZ_FIXTURES="$PWD/Tests/Fixtures/models" "$bin" \
    -runs="$runs" -max_total_time="$time_limit" -max_len="$(max_len "$target")" -timeout=10 -rss_limit_mb=3072 \
    -malloc_limit_mb=1024 -print_final_stats=1 "${dict[@]}" -artifact_prefix="$scratch/artifacts/$target-" "$corpus" >"$log" 2>&1
  status=$?
  set -e
  executed=$(grep -E "^stat::number_of_executed_units:" "$log" | awk '{print $2}' || true)
  seconds=$(grep -E "^Done [0-9]+ runs in [0-9]+ second" "$log" | sed -E 's/.* in ([0-9]+) second.*/\1/' || true)
  if [ "$status" -eq 0 ]; then
    echo "fuzz $target: ${executed:-?} inputs in ${seconds:-?} s, 0 crashes, 0 hangs (corpus $(ls "$corpus" | wc -l) files)"
  else
    failed=$((failed + 1))
    echo "fuzz $target: FAILED after ${executed:-?} inputs (exit $status); reproducer and log:"
    ls -t "$scratch/artifacts/$target-"* 2>/dev/null | head -n 1
    grep -E "ERROR: libFuzzer|Fatal error|Program crashed|out-of-memory|timeout" "$log" | head -n 5
    echo "  full log: $log"
  fi
done
if [ "$merge" -eq 1 ] && [ "$failed" -eq 0 ]; then
  for target in "${targets[@]}"; do
    small="$scratch/small/$target"
    rm -rf "$small"; mkdir -p "$small"
    find "$scratch/corpus/$target" -type f -size -16k -exec cp {} "$small"/ \;
    before=$(ls Tests/Fixtures/fuzz/"$target" | wc -l)
    KUJIRA_FUZZ_TARGET="$target" KUJIRA_FUZZ_FIXTURES="$PWD/Tests/Fixtures/models" "$bin" -merge=1 \
      -max_len="$(max_len "$target")" Tests/Fixtures/fuzz/"$target" "$small" >"$scratch/$target.merge.log" 2>&1
    echo "fuzz $target: corpus $before -> $(ls Tests/Fixtures/fuzz/"$target" | wc -l) files ($(du -sh Tests/Fixtures/fuzz/"$target" | cut -f1))"
  done
fi
echo "fuzz: ${#targets[@]} targets, $failed failed"
exit $((failed > 0))
