#!/usr/bin/env bash
# bench/report/concurrent_posts.sh: N concurrent `POST /v1/reports` against a running
# cluster's node (deploy/demo.sh --keep, or deploy/cluster.sh up with data loaded), as a new
# user would try it: prints how many got each HTTP status, the slowest answer and the node's
# admission metrics. With the defaults (analytics.max_running_reports 8, max_queued_reports
# 1024) every one must get 200: reports over the running limit wait their turn instead of
# being refused.
#
# Usage: bench/report/concurrent_posts.sh [N] [HTTP_PORT]   (defaults: 64, 7102)
# Environment: WHARF_BENCH_REPORT (default user_behavior_report), WHARF_BENCH_BODY (a whole
# request body, overrides the default one).
# Output: `status,COUNT,STATUS` lines and `slowest,1,SECONDS,s`. Exit code 0 when every answer
# was 200, 1 otherwise, 2 usage.
set -euo pipefail
n=${1:-64}
port=${2:-7102}
[[ "$n" =~ ^[1-9][0-9]*$ && "$port" =~ ^[1-9][0-9]*$ ]] || { sed -n '2,14p' "$0"; exit 2; }
report=${WHARF_BENCH_REPORT:-user_behavior_report}
body=${WHARF_BENCH_BODY:-"{\"report\":\"$report\",\"start_date\":\"2025-01-01\",\"end_date\":\"2025-12-31 23:59:59\",\"user_ids\":[42,4242]}"}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
start=$(date +%s.%N)
for i in $(seq 1 "$n"); do
  curl -s -o "$work/body.$i" -w '%{http_code} %{time_total}\n' -X POST \
    "http://127.0.0.1:$port/v1/reports" -d "$body" >"$work/status.$i" &
done
wait
end=$(date +%s.%N)
cat "$work"/status.* | awk '{print $1}' | sort | uniq -c | while read -r count code; do
  echo "status,$count,$code"
done
slowest=$(cat "$work"/status.* | awk '{print $2}' | sort -g | tail -1)
echo "slowest,1,$slowest,s"
echo "wall,1,$(echo "$end - $start" | bc),s"
curl -s "http://127.0.0.1:$port/metrics" | grep -E '^wharf_reports_(finished_total|rejected_total)' || true
bad=$(cat "$work"/status.* | awk '$1 != 200' | wc -l)
if [ "$bad" -ne 0 ]; then
  echo "not every answer was 200; one of them:" >&2
  for f in "$work"/status.*; do
    if [ "$(cut -d' ' -f1 "$f")" != 200 ]; then head -c 400 "${f/status/body}" >&2; echo >&2; break; fi
  done
  exit 1
fi
