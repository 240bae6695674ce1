"""The encrypted link to Home Assistant: guardd as an ESPHome voice satellite (docs/esphome.md)."""
