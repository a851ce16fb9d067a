"""SadTalker's src/facerender/animate.py (AnimateFromCoeff): the face renderer loaded from the
checkpoint and the mapping net (mapping_00109 for --preprocess full, mapping_00229 otherwise);
generate() renders the face video, muxes the audio, pastes the face back on the whole image
(--preprocess full), runs the face enhancer (--enhancer), and names each file as SadTalker does:
<pic>##<audio>.mp4, <pic>##<audio>_full.mp4, <pic>##<audio>_enhanced.mp4.

The renderer is a stand-in: each frame is the source face with its mouth opened as far as the
frame's expression coefficient says (the audio's loudness). FAKE_SADTALKER_FAIL=oom, crash and
hang fail in the middle of the 'Face Renderer:' bar as a GPU run can; FAKE_SADTALKER_STEP_S is
the time of one renderer step (default 0.01 s); =weights fails loading the mapping checkpoint as
if it were missing."""

import os
import time

import cv2
import numpy as np
from src.utils.face_enhancer import enhancer_generator_with_len, enhancer_list
from src.utils.fake_io import export_audio_16k, fail, load_checkpoint, mimsave, record
from src.utils.fake_tqdm import tqdm
from src.utils.paste_pic import paste_pic
from src.utils.videoio import save_video_with_watermark


class OutOfMemoryError(RuntimeError):
    """torch.cuda.OutOfMemoryError, as its traceback names it."""


OutOfMemoryError.__module__ = "torch.cuda"

OOM_MESSAGE = ("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 23.65 GiB of which "
               "1.12 GiB is free. Including non-PyTorch memory, this process has 22.51 GiB memory in use. Of the "
               "allocated memory 21.87 GiB is allocated by PyTorch, and 187.42 MiB is reserved by PyTorch but "
               "unallocated. If reserved but unallocated memory is large try setting "
               "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation.  See documentation for "
               "Memory Management  (https://pytorch.org/docs/stable/notes/cuda.html#environment-variables)")
CRASH_MESSAGE = ("CUDA error: an illegal memory access was encountered\n"
                 "CUDA kernel errors might be asynchronously reported at some other API call, so the stacktrace "
                 "below might be incorrect.\nFor debugging consider passing CUDA_LAUNCH_BLOCKING=1.\n"
                 "Compile with `TORCH_USE_CUDA_DSA` to enable device-side assertions.\n")


def make_animation(source_image, target_semantics, batch_size):
    """One frame per coefficient row, rendered batch_size at a time ('Face Renderer:' counts batches)."""
    step_s = float(os.environ.get("FAKE_SADTALKER_STEP_S", "0.01"))
    size = source_image.shape[0]
    opening = np.clip(target_semantics[:, 0], 0.0, 3.0)
    frames = []
    steps = -(-len(opening) // batch_size)
    for frame_idx in tqdm(range(steps), 'Face Renderer:'):
        if frame_idx == steps // 2:
            if fail("oom"):
                raise OutOfMemoryError(OOM_MESSAGE)
            if fail("crash"):
                raise RuntimeError(CRASH_MESSAGE)
        if frame_idx == 2 and fail("hang"):
            time.sleep(3600)
        for value in opening[frame_idx * batch_size:(frame_idx + 1) * batch_size]:
            frame = source_image.copy()
            centre = (size // 2, int(size * 0.72))
            axes = (max(2, int(size * 0.16)), max(1, int(size * 0.10 * value)))
            cv2.ellipse(frame, centre, axes, 0, 0, 360, (70, 20, 30), -1)
            frames.append(frame)
        time.sleep(step_s)
    return frames


class AnimateFromCoeff:

    def __init__(self, sadtalker_path, device):
        if 'checkpoint' in sadtalker_path: # use safe tensor
            load_checkpoint(sadtalker_path['checkpoint'])
        else:
            load_checkpoint(sadtalker_path['free_view_checkpoint'])
        load_checkpoint(sadtalker_path['mappingnet_checkpoint'], pretend_missing=fail("weights"))
        self.device = device
        record('build', 'AnimateFromCoeff')

    def generate(self, x, video_save_dir, pic_path, crop_info, enhancer=None, background_enhancer=None,
                 preprocess='crop', img_size=256):

        frame_num = x['frame_num']
        result = make_animation(x['source_image'], x['target_semantics_list'], x['batch_size'])[:frame_num]

        ### the generated video is 256x256, so we keep the aspect ratio,
        original_size = crop_info[0]
        if original_size:
            result = [cv2.resize(result_i, (img_size, int(img_size * original_size[1] / original_size[0])))
                      for result_i in result]

        video_name = x['video_name']  + '.mp4'
        path = os.path.join(video_save_dir, 'temp_'+video_name)

        mimsave(path, result,  fps=float(25))

        av_path = os.path.join(video_save_dir, video_name)
        return_path = av_path

        audio_path =  x['audio_path']
        audio_name = os.path.splitext(os.path.split(audio_path)[-1])[0]
        new_audio_path = os.path.join(video_save_dir, audio_name+'.wav')
        start_time = 0
        frames = frame_num
        end_time = start_time + frames*1/25*1000
        export_audio_16k(audio_path, new_audio_path, end_time)

        save_video_with_watermark(path, new_audio_path, av_path, watermark= False)
        print(f'The generated video is named {video_save_dir}/{video_name}')

        if 'full' in preprocess.lower():
            # only add watermark to the full image.
            video_name_full = x['video_name']  + '_full.mp4'
            full_video_path = os.path.join(video_save_dir, video_name_full)
            return_path = full_video_path
            paste_pic(path, pic_path, crop_info, new_audio_path, full_video_path,
                      extended_crop='ext' in preprocess.lower())
            print(f'The generated video is named {video_save_dir}/{video_name_full}')
        else:
            full_video_path = av_path

        #### paste back then enhancers
        if enhancer:
            video_name_enhancer = x['video_name']  + '_enhanced.mp4'
            enhanced_path = os.path.join(video_save_dir, 'temp_'+video_name_enhancer)
            av_path_enhancer = os.path.join(video_save_dir, video_name_enhancer)
            return_path = av_path_enhancer

            try:
                enhanced_images_gen_with_len = enhancer_generator_with_len(full_video_path, method=enhancer,
                                                                           bg_upsampler=background_enhancer)
                mimsave(enhanced_path, list(enhanced_images_gen_with_len), fps=float(25))
            except Exception:
                enhanced_images_gen_with_len = enhancer_list(full_video_path, method=enhancer, bg_upsampler=background_enhancer)
                mimsave(enhanced_path, enhanced_images_gen_with_len, fps=float(25))

            save_video_with_watermark(enhanced_path, new_audio_path, av_path_enhancer, watermark= False)
            print(f'The generated video is named {video_save_dir}/{video_name_enhancer}')
            os.remove(enhanced_path)

        os.remove(path)
        os.remove(new_audio_path)

        return return_path
