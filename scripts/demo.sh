#!/usr/bin/env bash
# guardd's main job on a machine with no Pi: sets up (scripts/setup.sh), makes a spoken request
# with espeak-ng ("Alexa ... send a message to the kitchen speaker saying dinner is ready"), and
# runs it through the same pipeline as `guardd run`, on audio time, with the LED drawn in the
# terminal: wake word, utterance kept, an upload request, a simulated button press while the LED
# blinks, and the approved bytes delivered to a receiver on loopback. Then it shows the audit log
# and verifies it. Everything stays in ./.demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --runtime

demo="$PWD/.demo"
rm -rf "$demo/state" "$demo/port"
mkdir -p "$demo"
.venv/bin/python -m corpus.generate --only-demo "$demo/audio" >/dev/null

.venv/bin/python scripts/demo_receiver.py "$demo/port" &
receiver=$!
trap 'kill $receiver 2>/dev/null' EXIT
for _ in $(seq 100); do [ -s "$demo/port" ] && break; sleep 0.1; done

cat > "$demo/guardd.yaml" <<CONFIG
# The demo's config: the defaults, state kept in this folder, and one destination on loopback.
state_dir: $demo/state
destinations:
  assistant:
    url: http://127.0.0.1:$(cat "$demo/port")/utterance
after_wake:
  upload_to: assistant
announce:
  output: none  # no speaker here: the announcement is shown as text, and takes its time
CONFIG

# The simulated person presses the button once the speaker has said where the upload goes and
# how much it is (the tone and "Send to assistant: 4 seconds of audio.", 3.6 s after the request
# starts asking; a press before that does not count): the end of the spoken request (from the
# generator's manifest), the trailing silence, then five seconds.
press_at=$(.venv/bin/python -c "
import json; d = json.load(open('$demo/audio/manifest.json'))['demo']
print(round(d['command_end'] + 0.8 + 5.0, 2))")

# The owner's verification key for the log's seals: printed once, kept off the device (here, in
# a shell variable) and used by `guardd verify --key` below.
key=$(.venv/bin/guardd log init --config "$demo/guardd.yaml" 2>/dev/null)

echo "== guardd replay: the spoken request as guardd hears it; the button is pressed at ${press_at}s"
.venv/bin/guardd replay "$demo/audio/demo.wav" --config "$demo/guardd.yaml" --press-at "$press_at"
echo
echo "== guardd log: every step, each logged before it happened"
.venv/bin/guardd log --config "$demo/guardd.yaml"
echo
echo "== guardd history: the same, one line per request"
.venv/bin/guardd history --config "$demo/guardd.yaml"
echo
echo "== guardd verify --key: the hash chain and every seal hold"
.venv/bin/guardd verify --config "$demo/guardd.yaml" --key "$key"
echo
echo "Kept recordings (mode 0600, only on this machine): $demo/state/recordings"
