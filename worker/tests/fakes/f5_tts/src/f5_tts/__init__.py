"""Fake F5-TTS package (tests/fakes/f5_tts, shaped like its checkout: src/f5_tts beside data/):
``f5_tts.api.F5TTS`` (api.py) for the tts engine; ``f5_tts.infer.utils_infer.transcribe``,
``f5_tts.train.datasets.prepare_csv_wavs`` and ``f5_tts.train.finetune_cli`` for the voice trainer
(their shared pieces in _fake.py)."""
