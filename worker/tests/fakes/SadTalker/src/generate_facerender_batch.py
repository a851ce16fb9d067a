"""SadTalker's src/generate_facerender_batch.py (get_facerender_data): the source face and the
target coefficients per frame, the expression scaled by --expression_scale, the pose held in
--still mode; writes <pic>##<audio>.txt beside the .mat as SadTalker does."""

import os

import cv2
import numpy as np
import scipy.io as scio


def get_facerender_data(coeff_path, pic_path, first_coeff_path, audio_path,
                        batch_size, input_yaw_list=None, input_pitch_list=None, input_roll_list=None,
                        expression_scale=1.0, still_mode = False, preprocess='crop', size = 256):

    video_name = os.path.splitext(os.path.split(coeff_path)[-1])[0]
    txt_path = os.path.splitext(coeff_path)[0]

    data={}
    source_image = cv2.cvtColor(cv2.imread(pic_path), cv2.COLOR_BGR2RGB)
    data['source_image'] = cv2.resize(source_image, (size, size))

    source_semantics = scio.loadmat(first_coeff_path)['coeff_3dmm'][:1,:73 if 'full' in preprocess.lower() else 70]
    generated_3dmm = scio.loadmat(coeff_path)['coeff_3dmm'][:,:70]
    generated_3dmm[:, :64] = generated_3dmm[:, :64] * expression_scale
    if still_mode:
        generated_3dmm[:, 64:] = np.repeat(source_semantics[:, 64:70], generated_3dmm.shape[0], axis=0)

    with open(txt_path+'.txt', 'w') as f:
        for coeff in generated_3dmm:
            for i in coeff:
                f.write(str(i)[:7]   + '  '+'\t')
            f.write('\n')

    frame_num = generated_3dmm.shape[0]
    data['frame_num'] = frame_num
    data['target_semantics_list'] = generated_3dmm
    data['batch_size'] = batch_size
    data['video_name'] = video_name
    data['audio_path'] = audio_path
    return data
