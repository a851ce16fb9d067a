"""SadTalker's src/utils/preprocess.py (CropAndExtract): the face crop of the source image, its
landmarks and its 3DMM coefficients, written where SadTalker writes them (<pic>.png,
<pic>_landmarks.txt, <pic>.mat in first_frame_dir). Its models load in the same order, from the
same files: facexlib's (gfpgan/weights), then the 3D reconstruction net (the safetensors
checkpoint, or epoch_20.pth in the old layout)."""

import os

import cv2
import numpy as np
from scipy.io import savemat
from src.utils.croper import Preprocesser
from src.utils.fake_io import load_checkpoint, record
from src.utils.fake_tqdm import tqdm


class _Frame:
    """The PIL image SadTalker keeps (only .size is read here)."""

    def __init__(self, array):
        self.array = array
        self.size = (array.shape[1], array.shape[0])


class CropAndExtract:
    def __init__(self, sadtalker_path, device):

        self.propress = Preprocesser(device)
        if sadtalker_path['use_safetensor']:
            load_checkpoint(sadtalker_path['checkpoint'])
        else:
            load_checkpoint(sadtalker_path['path_of_net_recon_model'])
        self.device = device
        record('build', 'CropAndExtract')

    def generate(self, input_path, save_dir, crop_or_resize='crop', source_image_flag=False, pic_size=256):

        record('generate', os.path.basename(input_path), crop_or_resize, pic_size, source_image_flag)
        pic_name = os.path.splitext(os.path.split(input_path)[-1])[0]

        landmarks_path =  os.path.join(save_dir, pic_name+'_landmarks.txt')
        coeff_path =  os.path.join(save_dir, pic_name+'.mat')
        png_path =  os.path.join(save_dir, pic_name+'.png')

        #load input
        if not os.path.isfile(input_path):
            raise ValueError('input_path must be a valid path to video/image file')
        elif input_path.split('.')[-1] in ['jpg', 'png', 'jpeg']:
            full_frames = [cv2.imread(input_path)]
        else:
            video_stream = cv2.VideoCapture(input_path)
            full_frames = []
            while 1:
                still_reading, frame = video_stream.read()
                if not still_reading:
                    video_stream.release()
                    break
                full_frames.append(frame)
                if source_image_flag:
                    break

        x_full_frames= [cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)  for frame in full_frames]

        if 'crop' in crop_or_resize.lower() or 'full' in crop_or_resize.lower():
            x_full_frames, crop, quad = self.propress.crop(x_full_frames, still='ext' in crop_or_resize.lower(), xsize=512)
            clx, cly, crx, cry = crop
            lx, ly, rx, ry = quad
            lx, ly, rx, ry = int(lx), int(ly), int(rx), int(ry)
            oy1, oy2, ox1, ox2 = cly+ly, cly+ry, clx+lx, clx+rx
            crop_info = ((ox2 - ox1, oy2 - oy1), crop, quad)
        else: # resize mode
            oy1, oy2, ox1, ox2 = 0, x_full_frames[0].shape[0], 0, x_full_frames[0].shape[1]
            crop_info = ((ox2 - ox1, oy2 - oy1), None, None)

        frames_pil = [_Frame(cv2.resize(frame,(pic_size, pic_size))) for frame in x_full_frames]
        if len(frames_pil) == 0:
            print('No face is detected in the input file')
            return None, None

        for frame in frames_pil:
            cv2.imwrite(png_path, cv2.cvtColor(frame.array, cv2.COLOR_RGB2BGR))

        if not os.path.isfile(landmarks_path):
            self.propress.predictor.extract_keypoint(frames_pil, landmarks_path)
        else:
            print(' Using saved landmarks.')

        if not os.path.isfile(coeff_path):
            video_coeffs = []
            for _idx in tqdm(range(len(frames_pil)), desc='3DMM Extraction In Video:'):
                # exp (64), angle (3), trans (3), crop params (3): a neutral face
                video_coeffs.append(np.zeros((1, 73), dtype=np.float32))
            semantic_npy = np.array(video_coeffs)[:,0]
            savemat(coeff_path, {'coeff_3dmm': semantic_npy, 'full_3dmm': np.zeros((1, 257), dtype=np.float32)})

        return coeff_path, png_path, crop_info
