"""Fake F5-TTS package (tests/fakes/f5_tts): only ``f5_tts.api.F5TTS``, see api.py."""
