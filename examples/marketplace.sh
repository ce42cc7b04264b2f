#!/usr/bin/env bash
# The delivery marketplace end to end, against a running Commissary:
#   a customer orders a delivery and watches it live (Server-Sent Events),
#   the restaurant accepts it, a courier takes it and hands it over with the customer's code,
#   and an integrator's webhook receives every event, signed.
#
# Start the server first (the embedded default: SQLite, jobs in process), with an admin:
#   ./scripts/bootstrap
#   ADMIN_EMAIL=admin@marketplace.example ADMIN_PASSWORD=galaxy-admin-pass-42 .venv/bin/commissary db init
#   ./scripts/serve
# then, in another terminal:
#   ./examples/marketplace.sh
# Needs curl and jq. BASE (http://127.0.0.1:8000), ADMIN_EMAIL, ADMIN_PASSWORD and
# HOOK_PORT (8765, the integrator's receiver on loopback) may be set in the environment.
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=${BASE:-http://127.0.0.1:8000}
B=$BASE/api/v1
J='Content-Type: application/json'
ADMIN_EMAIL=${ADMIN_EMAIL:-admin@marketplace.example}
ADMIN_PASSWORD=${ADMIN_PASSWORD:-galaxy-admin-pass-42}
HOOK_PORT=${HOOK_PORT:-8765}
PASSWORD=knowhere-orbit-77
RUN=$(date +%s)  # one run's accounts and restaurant: the script may run again on the same database
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
login() { curl -sf "$B/auth/login" -H "$J" -d "{\"email\":\"$1\",\"password\":\"$2\"}" | jq -r .access_token; }
post() { curl -sf "$B$1" -H "Authorization: Bearer $2" -H "$J" -d "${3:-{\}}"; }

say "The admin creates the members: a restaurateur, a courier, a customer, an integrator"
ADMIN=$(login "$ADMIN_EMAIL" "$ADMIN_PASSWORD")
member() {
  post /users "$ADMIN" "{\"email\":\"$1-$RUN@marketplace.example\",\"password\":\"$PASSWORD\",\"full_name\":\"$2\",\"role\":\"$3\"}" | jq -r .id
}
OWNER_ID=$(member rocket "Rocket" restaurateur)
member yondu "Yondu" courier > /dev/null
member mantis "Mantis" customer > /dev/null
DEV_ID=$(member nova "Nova Integrations" developer)
OWNER=$(login "rocket-$RUN@marketplace.example" $PASSWORD)
COURIER=$(login "yondu-$RUN@marketplace.example" $PASSWORD)
CUSTOMER=$(login "mantis-$RUN@marketplace.example" $PASSWORD)
DEV=$(login "nova-$RUN@marketplace.example" $PASSWORD)
echo "restaurateur $OWNER_ID, integrator $DEV_ID"

say "The restaurant (a manual kitchen: it accepts each order) and its menu"
RESTAURANT=$(post /restaurants "$ADMIN" "{\"name\":\"Knowhere Kitchen $RUN\",\"address\":\"Deck 3, Knowhere\",\"kitchen_mode\":\"manual\",\"owner_ids\":[$OWNER_ID]}" | jq -r .id)
PRODUCT=$(post /products "$OWNER" "{\"restaurant_id\":$RESTAURANT,\"name\":\"Orloni Stew\",\"price\":\"14.50\",\"ingredients\":[\"orloni\",\"carrot\"]}" | jq -r .id)
echo "restaurant $RESTAURANT, product $PRODUCT"

say "The integrator is granted the restaurant, subscribes a webhook and makes a read key"
curl -sf -X PATCH "$B/users/$DEV_ID" -H "Authorization: Bearer $ADMIN" -H "$J" \
  -d "{\"restaurant_ids\":[$RESTAURANT]}" | jq -c '{id, role, restaurant_ids}'
# The integrator's receiver: stores each delivery's headers and body.
.venv/bin/python - "$HOOK_PORT" "$WORK/hooks.jsonl" <<'PY' &
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
port, out = int(sys.argv[1]), sys.argv[2]
class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with open(out, "a") as f:
            f.write(json.dumps({"headers": dict(self.headers), "body": body.decode()}) + "\n")
        self.send_response(204)
        self.end_headers()
    def log_message(self, *args):
        pass
HTTPServer(("127.0.0.1", port), Hook).serve_forever()
PY
sleep 0.5
post /webhooks "$DEV" "{\"url\":\"http://127.0.0.1:$HOOK_PORT/hooks\",\"event_types\":[\"*\"]}" > "$WORK/webhook.json"
jq -c '{id, url, event_types}' "$WORK/webhook.json"
KEY=$(post /api-keys "$DEV" '{"name":"order sync","scopes":["orders:read"]}' | jq -r .secret)

say "The customer follows their orders live, then orders a delivery"
curl -sN "$B/events/stream" -H "Authorization: Bearer $CUSTOMER" > "$WORK/stream.txt" &
sleep 1
ORDER=$(post /orders "$CUSTOMER" "{\"items\":[{\"product_id\":$PRODUCT,\"quantity\":2}],\"fulfillment\":\"delivery\",\"delivery_address\":\"Boot of Jarnsaxa, Knowhere\"}" | jq -r .id)
echo "order $ORDER placed"
status() { curl -sf "$B/orders/$ORDER" -H "Authorization: Bearer $CUSTOMER" | jq -r .status; }
until [ "$(status)" = awaiting_acceptance ]; do sleep 0.2; done
echo "the allergen check passed: $(status)"

say "The restaurant accepts it (20 minutes), then it is ready"
post "/orders/$ORDER/accept" "$OWNER" '{"prep_minutes": 20}' | jq -c '{status, accepted_at, ready_by}'
post "/orders/$ORDER/status" "$OWNER" '{"status":"ready"}' | jq -c '{status}'

say "A courier takes the offer, picks it up and sends a position"
curl -sf "$B/deliveries/available" -H "Authorization: Bearer $COURIER" | jq -c '[.items[] | {order_id, restaurant_address, delivery_address, total}]'
post "/deliveries/$ORDER/accept" "$COURIER" | jq -c '{order_id, status}'
post "/deliveries/$ORDER/pickup" "$COURIER" | jq -c '{order_id, status}'
post "/deliveries/$ORDER/location" "$COURIER" '{"lat": 50.1109, "lon": 8.6821}' | jq -c '{lat, lon}'

say "At the door: the customer shows the code, the courier completes the delivery"
CODE=$(curl -sf "$B/orders/$ORDER" -H "Authorization: Bearer $CUSTOMER" | jq -r .handover_code)
echo "the customer's code: $CODE"
post "/deliveries/$ORDER/complete" "$COURIER" "{\"handover_code\":\"$CODE\"}" | jq -c '{order_id, status}'

say "What the customer saw live (Server-Sent Events)"
sleep 2
grep '^data: ' "$WORK/stream.txt" | sed 's/^data: //' | jq -c '{id, type, to_status}'

say "What the integrator's webhook received (each signature checked)"
WEBHOOK_SECRET=$(jq -r .secret "$WORK/webhook.json") .venv/bin/python - "$WORK/hooks.jsonl" <<'PY'
import base64, hashlib, hmac, json, os, sys
key = base64.b64decode(os.environ["WEBHOOK_SECRET"].split("_", 1)[1])
deliveries = [json.loads(line) for line in open(sys.argv[1])]
for d in sorted(deliveries, key=lambda d: json.loads(d["body"])["data"]["id"]):
    h = {k.lower(): v for k, v in d["headers"].items()}
    signed = f'{h["webhook-id"]}.{h["webhook-timestamp"]}.{d["body"]}'.encode()
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    ok = any(s == f"v1,{expected}" for s in h["webhook-signature"].split())
    event = json.loads(d["body"])
    print(json.dumps({"id": event["data"]["id"], "type": event["type"], "signature": "valid" if ok else "INVALID"}))
PY

say "The integrator reads the order with its key; the customer's notifications"
curl -sf "$B/orders/$ORDER" -H "X-API-Key: $KEY" | jq -c '{id, status, total, handover_code}'
curl -sf "$B/notifications" -H "Authorization: Bearer $CUSTOMER" | jq -c '[.items[].title]'
