"""SadTalker's src/utils/face_enhancer.py: GFPGAN (or RestoreFormer) over every frame ('Face
Enhancer:' bar), at GFPGANer's upscale=2. Its weights: <name>.pth in gfpgan/weights, else in
checkpoints/ (both under the working directory), else a download into the gfpgan package; its
face helper's parsing net in gfpgan/weights. The fake's enhancement is a 2x resize and a sharpen."""

import os

import cv2
import numpy as np
from src.utils.fake_io import load_file_from_url
from src.utils.fake_tqdm import tqdm
from src.utils.videoio import load_video_to_cv2


class GeneratorWithLen:
    def __init__(self, gen, length):
        self.gen = gen
        self.length = length

    def __len__(self):
        return self.length

    def __iter__(self):
        return self.gen


def enhancer_list(images, method='gfpgan', bg_upsampler='realesrgan'):
    gen = enhancer_generator_no_len(images, method=method, bg_upsampler=bg_upsampler)
    return list(gen)


def enhancer_generator_with_len(images, method='gfpgan', bg_upsampler='realesrgan'):
    if os.path.isfile(images):
        images = load_video_to_cv2(images)
    gen = enhancer_generator_no_len(images, method=method, bg_upsampler=bg_upsampler)
    return GeneratorWithLen(gen, len(images))


def enhancer_generator_no_len(images, method='gfpgan', bg_upsampler='realesrgan'):
    print('face enhancer....')
    if not isinstance(images, list) and os.path.isfile(images):
        images = load_video_to_cv2(images)

    if  method == 'gfpgan':
        model_name = 'GFPGANv1.4'
        url = 'https://github.com/TencentARC/GFPGAN/releases/download/v1.3.0/GFPGANv1.4.pth'
    elif method == 'RestoreFormer':
        model_name = 'RestoreFormer'
        url = 'https://github.com/TencentARC/GFPGAN/releases/download/v1.3.4/RestoreFormer.pth'
    elif method == 'codeformer':
        model_name = 'CodeFormer'
        url = 'https://github.com/sczhou/CodeFormer/releases/download/v0.1.0/codeformer.pth'
    else:
        raise ValueError(f'Wrong model version {method}.')

    model_path = os.path.join('gfpgan/weights', model_name + '.pth')
    if not os.path.isfile(model_path):
        model_path = os.path.join('checkpoints', model_name + '.pth')
    if not os.path.isfile(model_path):
        model_path = url

    # GFPGANer: FaceRestoreHelper(model_rootpath='gfpgan/weights') loads RetinaFace and the parsing
    # net, then the restorer's weights (a URL is downloaded into the gfpgan package).
    load_file_from_url('https://github.com/xinntao/facexlib/releases/download/v0.1.0/detection_Resnet50_Final.pth',
                       'gfpgan/weights')
    load_file_from_url('https://github.com/xinntao/facexlib/releases/download/v0.2.2/parsing_parsenet.pth',
                       'gfpgan/weights')
    if model_path.startswith('https://'):
        package = os.path.join(os.path.dirname(os.__file__), 'site-packages')
        load_file_from_url(model_path, os.path.join(package, 'gfpgan/weights'), create=False)

    sharpen = np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], dtype=np.float32)
    for idx in tqdm(range(len(images)), 'Face Enhancer:'):
        img = images[idx]
        big = cv2.resize(img, (img.shape[1] * 2, img.shape[0] * 2), interpolation=cv2.INTER_CUBIC)
        yield cv2.filter2D(big, -1, sharpen)

