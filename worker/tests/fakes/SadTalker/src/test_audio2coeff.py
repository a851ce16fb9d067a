"""SadTalker's src/test_audio2coeff.py (Audio2Coeff): audio2exp and audio2pose from the checkpoint,
the coefficients saved as <pic>##<audio>.mat in the run's folder. The fake's expression is the
frame's loudness (column 0), its pose still."""

import os

import numpy as np
from scipy.io import savemat
from src.utils.fake_io import load_checkpoint, record
from src.utils.fake_tqdm import tqdm


class Audio2Coeff:

    def __init__(self, sadtalker_path, device):
        try:
            if sadtalker_path['use_safetensor']:
                load_checkpoint(sadtalker_path['checkpoint'])
            else:
                load_checkpoint(sadtalker_path['audio2pose_checkpoint'])
        except:  # noqa: E722 - SadTalker's own
            raise Exception("Failed in loading audio2pose_checkpoint")  # noqa: B904 - chained as SadTalker does
        try:
            if sadtalker_path['use_safetensor']:
                load_checkpoint(sadtalker_path['checkpoint'])
            else:
                load_checkpoint(sadtalker_path['audio2exp_checkpoint'])
        except:  # noqa: E722
            raise Exception("Failed in loading audio2exp_checkpoint")  # noqa: B904
        self.device = device
        record('build', 'Audio2Coeff')

    def generate(self, batch, coeff_save_dir, pose_style, ref_pose_coeff_path=None):
        T = batch['num_frames']
        loudness = batch['loudness']
        top = float(loudness.max()) if T and loudness.max() > 0 else 1.0
        coeffs = np.zeros((T, 70), dtype=np.float32)
        for i in tqdm(range(0, T, 10), 'audio2exp:'): # every 10 frames
            coeffs[i:i + 10, 0] = loudness[i:i + 10] / top
        path = os.path.join(coeff_save_dir, f"{batch['pic_name']}##{batch['audio_name']}.mat")
        savemat(path, {'coeff_3dmm': coeffs})
        return path
