#!/bin/sh
# replay.sh BIN DIR [BIN DIR ...]: runs each libFuzzer binary once on every
# file in its DIR (the inputs that crashed it once); fails if any crashes
# again. A binary that was not built is skipped, an empty DIR too (given no
# files, a fuzzer would fuzz instead of replaying).
status=0
while [ $# -ge 2 ]; do
  bin=$1 dir=$2
  shift 2
  if [ ! -x "$bin" ]; then
    echo "replay: $bin not built, skipped"
    continue
  fi
  files=$(find "$dir" -maxdepth 1 -type f ! -name '.*' | sort)
  if [ -z "$files" ]; then
    echo "replay: no inputs in $dir"
    continue
  fi
  echo "replay: $(echo "$files" | wc -l) inputs of $dir through $(basename "$bin")"
  # shellcheck disable=SC2086  # file names are ours: no spaces
  if ! "$bin" -rss_limit_mb=2048 -timeout=60 $files; then
    echo "replay: $(basename "$bin") crashed on an input of $dir"
    status=1
  fi
done
exit $status
