#!/usr/bin/env bash
# guardd's main job on a machine with no Pi: sets up (scripts/setup.sh), makes a spoken request
# with espeak-ng ("Alexa ... send a message to the kitchen speaker saying dinner is ready"), and
# runs it through the same pipeline as `guardd run`, on audio time, with the LED drawn in the
# terminal. Then it shows the audit log and verifies it. Everything stays in ./.demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

demo="$PWD/.demo"
mkdir -p "$demo"
.venv/bin/python tests/fixtures/generate.py --only-demo "$demo/audio"
cat > "$demo/guardd.yaml" <<EOF
# The demo's config: the defaults, with state kept in this folder.
state_dir: $demo/state
EOF

echo "== guardd replay: the spoken request, as guardd hears it"
.venv/bin/guardd replay "$demo/audio/demo.wav" --config "$demo/guardd.yaml"
echo
echo "== guardd log: what was recorded, each step logged before it happened"
.venv/bin/guardd log --config "$demo/guardd.yaml" --last 4
echo
echo "== guardd verify: the hash chain holds"
.venv/bin/guardd verify --config "$demo/guardd.yaml"
echo
echo "Kept recordings (mode 0600, only on this machine): $demo/state/recordings"
