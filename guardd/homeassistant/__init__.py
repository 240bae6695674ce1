"""What a link to Home Assistant is to the core, written once: its inputs (inputs.py), what its
frames mean (said.py), the rules on the core's thread (satellite.py), the sounds it may make the
speaker hold (playing.py, sound.py), what it may make guardd log (ration.py). guardd/wyoming/ and
guardd/esphome/ are two adapters under it, each turning its protocol into these and back."""
