"""SadTalker's src/generate_batch.py (get_data): the driven audio cut into 25 fps frames, one mel
window each ('mel:' bar). The fake keeps each frame's loudness in place of its mel window."""

import os

import numpy as np
from src.utils.fake_io import load_audio_16k
from src.utils.fake_tqdm import tqdm


def crop_pad_audio(wav, audio_length):
    if len(wav) > audio_length:
        wav = wav[:audio_length]
    elif len(wav) < audio_length:
        wav = np.pad(wav, [0, audio_length - len(wav)], mode='constant', constant_values=0)
    return wav


def parse_audio_length(audio_length, sr, fps):
    bit_per_frames = sr / fps

    num_frames = int(audio_length / bit_per_frames)
    audio_length = int(num_frames * bit_per_frames)

    return audio_length, num_frames


def get_data(first_coeff_path, audio_path, device, ref_eyeblink_coeff_path, still=False, idlemode=False,
             length_of_audio=False, use_blink=True):
    fps = 25

    pic_name = os.path.splitext(os.path.split(first_coeff_path)[-1])[0]
    audio_name = os.path.splitext(os.path.split(audio_path)[-1])[0]

    wav = load_audio_16k(audio_path)
    wav_length, num_frames = parse_audio_length(len(wav), 16000, fps)
    wav = crop_pad_audio(wav, wav_length)
    step = 16000 // fps
    loudness = []
    for i in tqdm(range(num_frames), 'mel:'):
        chunk = wav[i * step:(i + 1) * step]
        loudness.append(float(np.sqrt(np.mean(chunk ** 2))) if len(chunk) else 0.0)

    return {'loudness': np.asarray(loudness, dtype=np.float32), 'num_frames': num_frames,
            'audio_name': audio_name, 'pic_name': pic_name}
