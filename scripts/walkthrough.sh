#!/usr/bin/env bash
# Takes one dispute up the whole ladder over the REST API, exactly as the README shows.
# Start the service first with `make run` (it listens on http://127.0.0.1:8000 with demo data).
set -euo pipefail
API=${API:-http://127.0.0.1:8000/api/v1}
DS=${DS:-.venv/bin/dispute-service}
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

IRO=$($DS token iro@example.gov.uk | awk '{print $NF}')
TM=$($DS token tm@example.gov.uk | awk '{print $NF}')

# 1. The IRO raises a dispute. The team manager named here owns the first stage.
RAISED=$(curl -sf -X POST "$API/disputes" \
  -H "Authorization: Bearer $IRO" -H "Content-Type: application/json" \
  -H "Idempotency-Key: walkthrough-$(date +%s)" \
  -d '{"child_ref": "LCS-204816", "case_type": "looked_after",
       "categories": ["permanency_delay"], "summary": "Permanence plan not progressed since the last review.",
       "team_manager_email": "tm@example.gov.uk"}')
ID=$(echo "$RAISED" | json '["id"]')
VERSION=$(echo "$RAISED" | json '["version"]')
echo "raised $ID"

# Each action is aimed at the version the previous answer returned (If-Match), so a repeated or stray
# request can never move the dispute a second rung; the answer gives the version for the next one.
step() {
  local out
  printf '%-18s -> ' "$2"
  out=$(curl -sf -X POST "$API/disputes/$ID/actions/$2" -H "If-Match: \"$VERSION\"" \
    -H "Authorization: Bearer $1" -H "Content-Type: application/json" -d "$3")
  VERSION=$(echo "$out" | json '["version"]')
  echo "$out" | python3 -c "import json,sys; d=json.load(sys.stdin); print(d['stage'], d['state'], 'due', d['due_at'])"
}

# 2. The team manager acknowledges and responds.
step "$TM" acknowledge '{}'
step "$TM" respond '{"response": "A permanence planning meeting is booked."}'
# 3. The IRO is not satisfied and escalates four times, up to the Assistant Director.
for _ in 1 2 3 4; do step "$IRO" escalate '{"reason": "Not satisfied: no date for the final hearing."}'; done
# 4. The IRO refers the case to CAFCASS, then records CAFCASS's outcome and closes the dispute.
step "$IRO" refer_to_cafcass "{\"reason\": \"Ladder exhausted without a plan.\", \"referred_on\": \"$(date +%F)\"}"
step "$IRO" close '{"outcome": "CAFCASS secured a revised plan."}'

# 5. The audit log: one entry per change, each chained to the one before.
curl -sf "$API/disputes/$ID/audit" -H "Authorization: Bearer $IRO" \
  | python3 -c "import json,sys; [print(e['seq'], e['trigger'], e['from_stage'], '->', e['to_stage'], e['hash'][:12]) for e in json.load(sys.stdin)['items']]"
$DS audit verify
