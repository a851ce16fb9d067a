"""SadTalker's src/face3d/extract_kp_videos_safe.py: the face alignment (AWing FAN) and detection
(RetinaFace) models of facexlib, their weights looked up in gfpgan/weights under the working
directory (downloaded when absent). The fake's landmarks come from the stand-in face box;
FAKE_SADTALKER_FAIL=oomwait loops as SadTalker does on a CUDA error in face detection."""

import os
import time

import numpy as np
from src.utils.fake_io import fail, load_file_from_url
from src.utils.fake_tqdm import tqdm


def init_alignment_model(model_name, half=False, device='cuda', model_rootpath=None):
    model_url = 'https://github.com/xinntao/facexlib/releases/download/v0.1.0/alignment_WFLW_4HG.pth'
    return load_file_from_url(model_url, model_rootpath)


def init_detection_model(model_name, half=False, device='cuda', model_rootpath=None):
    # facexlib.detection.init_detection_model('retinaface_resnet50', ...)
    model_url = 'https://github.com/xinntao/facexlib/releases/download/v0.1.0/detection_Resnet50_Final.pth'
    return load_file_from_url(model_url, model_rootpath)


class KeypointExtractor:
    def __init__(self, device='cuda'):
        root_path = 'gfpgan/weights'
        self.detector = init_alignment_model('awing_fan', device=device, model_rootpath=root_path)
        self.det_net = init_detection_model('retinaface_resnet50', half=False, device=device, model_rootpath=root_path)

    def extract_keypoint(self, images, name=None, info=True):
        keypoints = []
        for image in tqdm(images, desc='landmark Det:'):
            while fail('oomwait'):  # a RuntimeError('CUDA out of memory…') in detection: retried for ever
                print("Warning: out of memory, sleep for 1s")
                time.sleep(1)
            w, h = image.size
            # 68 points on an ellipse inside the face crop: enough for the files the real one writes.
            t = np.linspace(0, 2 * np.pi, 68, endpoint=False)
            keypoints.append(np.stack([w / 2 + w / 3 * np.cos(t), h / 2 + h / 3 * np.sin(t)], 1)[None])
        keypoints = np.concatenate(keypoints, 0)
        np.savetxt(os.path.splitext(name)[0] + '.txt', keypoints.reshape(-1))
        return keypoints
