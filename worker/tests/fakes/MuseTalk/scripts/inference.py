"""A fake of MuseTalk's scripts/inference.py (github.com/TMElyralab/MuseTalk, scripts/inference.py,
musetalk/utils/{utils,preprocessing,audio_processor}.py at 0a89dec), run like the real one from
the checkout: ``python -m scripts.inference --inference_config … --result_dir … --version v15``.
No torch, no weights, real media.

The same argparse (an unknown flag exits 2), the same YAML tasks (OmegaConf: video_path,
audio_path, optional result_name and bbox_shift), the same prints, tqdm bars and files: frames cut
by ``ffmpeg -v fatal -i <video> -start_number 0 <result_dir>/<version>/<video>/%08d.png`` through
os.system, the face boxes pickled to ``<result_dir>/../<video>.pkl``, the blended frames to
``<result_dir>/<version>/<video>_<audio>/``, encoded and muxed by its two ffmpeg commands into
``<result_dir>/<version>/<video>_<audio>.mp4``, then cleaned up. The frame count is MuseTalk's:
floor(audio seconds x fps), over the frames played forward then backward.

Instead of DWPose + S3FD, OpenCV's bundled Haar cascade finds the face; a frame without one gets
the same placeholder box, and no face at all ends as the real one does: its bbox_shift banner
divides by zero, inside the task's try, so the script prints "Error occurred during processing:
division by zero" and exits 0. Instead of the UNet, the lower half of the face box gets a dark
mouth opened by the speech's energy at that frame.

Loading the UNet opens its config and weights for real (the FileNotFoundError of json/torch.load
when missing, outside the task's try: a traceback, exit 1). Failures, switched by
FAKE_MUSETALK_FAIL: ``oom`` (torch's CUDA out of memory in the first batch, inside the try: printed,
exit 0), ``weights`` (the UNet's FileNotFoundError), ``crash`` (a CUDA error inside the try:
printed, exit 0), ``hang`` (stops in the first batch until killed).
"""

# ruff: noqa: B904, B905, E501, SIM108, UP032 - the tool's own code, kept as it is written there

import argparse
import copy
import glob
import json
import math
import os
import pickle
import shutil
import subprocess
import sys
import time

import cv2
import numpy as np
import soundfile
import yaml

FAIL = os.environ.get('FAKE_MUSETALK_FAIL', '')
coord_placeholder = (0.0, 0.0, 0.0, 0.0)


class tqdm:  # noqa: N801 - tqdm's own name and default format, on stderr
    def __init__(self, iterable, total=None):
        self.iterable, self.n, self.t0 = iterable, 0, time.time()
        self.total = len(iterable) if total is None else total
        self._show()

    def _show(self):
        elapsed = time.time() - self.t0
        pct = 100 * self.n / self.total if self.total else 0
        bar = ('█' * int(10 * self.n / self.total) if self.total else '').ljust(10)
        rate = f'{self.n / elapsed:5.2f}it/s' if self.n and elapsed > 0 else '?it/s'
        left = f'00:{int((self.total - self.n) * elapsed / self.n):02d}' if self.n else '?'
        sys.stderr.write(f'\r{pct:3.0f}%|{bar}| {self.n}/{self.total} [00:{int(elapsed):02d}<{left}, {rate}]')
        sys.stderr.flush()

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.n += 1
            self._show()
        sys.stderr.write('\n')


class OutOfMemoryError(RuntimeError):
    pass


OutOfMemoryError.__module__ = 'torch.cuda'


def fast_check_ffmpeg():
    try:
        subprocess.run(['ffmpeg', '-version'], capture_output=True, check=True)
        return True
    except Exception:
        return False


def get_file_type(video_path):
    _, ext = os.path.splitext(video_path)
    if ext.lower() in ['.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff']:
        return 'image'
    elif ext.lower() in ['.avi', '.mp4', '.mov', '.flv', '.mkv']:
        return 'video'
    else:
        return 'unsupported'


def get_video_fps(video_path):
    video = cv2.VideoCapture(video_path)
    fps = video.get(cv2.CAP_PROP_FPS)
    video.release()
    return fps


def load_all_model(unet_model_path, vae_type, unet_config, device):
    """musetalk.utils.utils.load_all_model: the UNet's config (json) then its weights (torch.load)."""
    print(f'load unet model from {unet_model_path}')
    with open(unet_config) as f:
        json.load(f)
    if FAIL == 'weights':
        raise FileNotFoundError(2, 'No such file or directory', unet_model_path)
    with open(unet_model_path, 'rb') as f:
        f.read(16)


def read_imgs(img_list):
    frames = []
    print('reading images...')
    for img_path in tqdm(img_list):
        frames.append(cv2.imread(img_path))
    return frames


def get_landmark_and_bbox(img_list, upperbondrange=0):
    """musetalk.utils.preprocessing.get_landmark_and_bbox, with a Haar cascade for DWPose + S3FD."""
    frames = read_imgs(img_list)
    cascade = cv2.CascadeClassifier(os.path.join(cv2.data.haarcascades, 'haarcascade_frontalface_default.xml'))
    coords_list = []
    if upperbondrange != 0:
        print('get key_landmark and face bounding boxes with the bbox_shift:', upperbondrange)
    else:
        print('get key_landmark and face bounding boxes with the default value')
    average_range_minus = []
    average_range_plus = []
    for frame in tqdm(frames):
        found = cascade.detectMultiScale(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), 1.1, 5, minSize=(24, 24))
        if len(found) == 0:  # no face in the image
            coords_list += [coord_placeholder]
            continue
        x, y, w, h = (int(v) for v in max(found, key=lambda b: b[2] * b[3]))
        average_range_minus.append(h // 10)
        average_range_plus.append(h // 12)
        coords_list += [(x, y + h // 4 + upperbondrange, x + w, min(frame.shape[0], y + h + h // 10))]

    print('********************************************bbox_shift parameter adjustment'
          '**********************************************************')
    print(f'Total frame:「{len(frames)}」 Manually adjust range : [ -{int(sum(average_range_minus) / len(average_range_minus))}'
          f'~{int(sum(average_range_plus) / len(average_range_plus))} ] , the current value: {upperbondrange}')
    print('*' * 185)
    return coords_list, frames


def audio_levels(audio_path, fps):
    """AudioProcessor + get_whisper_chunk's frame count (floor(seconds x fps)); per frame, the
    speech's energy (0..1) where the real one has a Whisper feature window."""
    wav, sr = soundfile.read(audio_path, dtype='float32', always_2d=True)
    wav = wav.mean(axis=1)
    num_frames = math.floor((len(wav) / sr) * int(fps))
    hop = sr / int(fps)
    levels = []
    for i in range(num_frames):
        window = wav[int(i * hop): int((i + 1) * hop)]
        rms = float(np.sqrt(np.mean(window ** 2) + 1e-12)) if len(window) else 0.0
        levels.append(float(np.clip((20 * np.log10(rms + 1e-9) + 50) / 40, 0.0, 1.0)))
    return levels


def datagen(whisper_chunks, vae_encode_latents, batch_size=8, delay_frame=0):
    whisper_batch, latent_batch = [], []
    for i, w in enumerate(whisper_chunks):
        idx = (i + delay_frame) % len(vae_encode_latents)
        whisper_batch.append(w)
        latent_batch.append(vae_encode_latents[idx])
        if len(latent_batch) >= batch_size:
            yield whisper_batch, latent_batch
            whisper_batch, latent_batch = [], []
    if len(latent_batch) > 0:
        yield whisper_batch, latent_batch


def unet(level, crop):
    """The face crop (256x256) with a mouth opened by ``level``."""
    face = crop.copy()
    axes = (40, max(1, int(34 * level)))
    cv2.ellipse(face, (128, 176), axes, 0, 0, 360, (20, 12, 30), -1)
    return face


def main(args):
    if not fast_check_ffmpeg():
        print('Adding ffmpeg to PATH')
        path_separator = ';' if sys.platform == 'win32' else ':'
        os.environ['PATH'] = f"{args.ffmpeg_path}{path_separator}{os.environ['PATH']}"
        if not fast_check_ffmpeg():
            print('Warning: Unable to find ffmpeg, please ensure ffmpeg is properly installed')

    load_all_model(unet_model_path=args.unet_model_path, vae_type=args.vae_type, unet_config=args.unet_config,
                   device=f'cuda:{args.gpu_id}')

    with open(args.inference_config) as f:
        inference_config = yaml.safe_load(f)
    print('Loaded inference config:', inference_config)

    for task_id in inference_config:
        try:
            video_path = inference_config[task_id]['video_path']
            audio_path = inference_config[task_id]['audio_path']
            if 'result_name' in inference_config[task_id]:
                args.output_vid_name = inference_config[task_id]['result_name']

            if args.version == 'v15':
                bbox_shift = 0
            else:
                bbox_shift = inference_config[task_id].get('bbox_shift', args.bbox_shift)

            input_basename = os.path.basename(video_path).split('.')[0]
            audio_basename = os.path.basename(audio_path).split('.')[0]
            output_basename = f'{input_basename}_{audio_basename}'

            temp_dir = os.path.join(args.result_dir, f'{args.version}')
            os.makedirs(temp_dir, exist_ok=True)

            result_img_save_path = os.path.join(temp_dir, output_basename)
            crop_coord_save_path = os.path.join(args.result_dir, '../', input_basename + '.pkl')
            os.makedirs(result_img_save_path, exist_ok=True)

            if args.output_vid_name is None:
                output_vid_name = os.path.join(temp_dir, output_basename + '.mp4')
            else:
                output_vid_name = os.path.join(temp_dir, args.output_vid_name)

            if get_file_type(video_path) == 'video':
                save_dir_full = os.path.join(temp_dir, input_basename)
                os.makedirs(save_dir_full, exist_ok=True)
                cmd = f'ffmpeg -v fatal -i {video_path} -start_number 0 {save_dir_full}/%08d.png'
                os.system(cmd)
                input_img_list = sorted(glob.glob(os.path.join(save_dir_full, '*.[jpJP][pnPN]*[gG]')))
                fps = get_video_fps(video_path)
            elif get_file_type(video_path) == 'image':
                input_img_list = [video_path]
                fps = args.fps
            elif os.path.isdir(video_path):
                input_img_list = glob.glob(os.path.join(video_path, '*.[jpJP][pnPN]*[gG]'))
                input_img_list = sorted(input_img_list, key=lambda x: int(os.path.splitext(os.path.basename(x))[0]))
                fps = args.fps
            else:
                raise ValueError(f'{video_path} should be a video file, an image file or a directory of images')

            whisper_chunks = audio_levels(audio_path, fps)

            if os.path.exists(crop_coord_save_path) and args.use_saved_coord:
                print('Using saved coordinates')
                with open(crop_coord_save_path, 'rb') as f:
                    coord_list = pickle.load(f)
                frame_list = read_imgs(input_img_list)
            else:
                print('Extracting landmarks... time-consuming operation')
                coord_list, frame_list = get_landmark_and_bbox(input_img_list, bbox_shift)
                with open(crop_coord_save_path, 'wb') as f:
                    pickle.dump(coord_list, f)

            print(f'Number of frames: {len(frame_list)}')

            input_latent_list = []
            for bbox, frame in zip(coord_list, frame_list):
                if bbox == coord_placeholder:
                    continue
                x1, y1, x2, y2 = bbox
                if args.version == 'v15':
                    y2 = min(y2 + args.extra_margin, frame.shape[0])
                crop_frame = cv2.resize(frame[y1:y2, x1:x2], (256, 256), interpolation=cv2.INTER_LANCZOS4)
                input_latent_list.append(crop_frame)

            frame_list_cycle = frame_list + frame_list[::-1]
            coord_list_cycle = coord_list + coord_list[::-1]
            input_latent_list_cycle = input_latent_list + input_latent_list[::-1]

            print('Starting inference')
            video_num = len(whisper_chunks)
            batch_size = args.batch_size
            gen = datagen(whisper_chunks=whisper_chunks, vae_encode_latents=input_latent_list_cycle,
                          batch_size=batch_size, delay_frame=0)

            res_frame_list = []
            total = int(np.ceil(float(video_num) / batch_size))
            for i, (whisper_batch, latent_batch) in enumerate(tqdm(gen, total=total)):
                if i == 0 and FAIL == 'oom':
                    raise OutOfMemoryError(
                        'CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 23.65 GiB total capacity; 21.10 GiB '
                        'already allocated; 1.06 GiB free; 21.40 GiB reserved in total by PyTorch) If reserved '
                        'memory is >> allocated memory try setting max_split_size_mb to avoid fragmentation.  See '
                        'documentation for Memory Management and PYTORCH_CUDA_ALLOC_CONF')
                if i == 0 and FAIL == 'crash':
                    raise RuntimeError('CUDA error: an illegal memory access was encountered')
                if i == 0 and FAIL == 'hang':
                    time.sleep(3600)
                for level, latent in zip(whisper_batch, latent_batch):
                    res_frame_list.append(unet(level, latent))

            print('Padding generated images to original video size')
            for i, res_frame in enumerate(tqdm(res_frame_list)):
                bbox = coord_list_cycle[i % (len(coord_list_cycle))]
                ori_frame = copy.deepcopy(frame_list_cycle[i % (len(frame_list_cycle))])
                x1, y1, x2, y2 = bbox
                if args.version == 'v15':
                    y2 = min(y2 + args.extra_margin, frame.shape[0])
                try:
                    res_frame = cv2.resize(res_frame.astype(np.uint8), (x2 - x1, y2 - y1))
                except Exception:
                    continue
                ori_frame[y1:y2, x1:x2] = res_frame  # get_image: the face parser's blend
                cv2.imwrite(f'{result_img_save_path}/{str(i).zfill(8)}.png', ori_frame)

            temp_vid_path = f'{temp_dir}/temp_{input_basename}_{audio_basename}.mp4'
            cmd_img2video = (f'ffmpeg -y -v warning -r {fps} -f image2 -i {result_img_save_path}/%08d.png '
                             f'-vcodec libx264 -vf format=yuv420p -crf 18 {temp_vid_path}')
            print('Video generation command:', cmd_img2video)
            os.system(cmd_img2video)

            cmd_combine_audio = f'ffmpeg -y -v warning -i {audio_path} -i {temp_vid_path} {output_vid_name}'
            print('Audio combination command:', cmd_combine_audio)
            os.system(cmd_combine_audio)

            shutil.rmtree(result_img_save_path)
            os.remove(temp_vid_path)

            shutil.rmtree(save_dir_full)
            if not args.saved_coord:
                os.remove(crop_coord_save_path)

            print(f'Results saved to {output_vid_name}')
        except Exception as e:
            print('Error occurred during processing:', e)


if __name__ == '__main__':
    parser = argparse.ArgumentParser()
    parser.add_argument('--ffmpeg_path', type=str, default='./ffmpeg-4.4-amd64-static/', help='Path to ffmpeg executable')
    parser.add_argument('--gpu_id', type=int, default=0, help='GPU ID to use')
    parser.add_argument('--vae_type', type=str, default='sd-vae', help='Type of VAE model')
    parser.add_argument('--unet_config', type=str, default='./models/musetalk/config.json', help='Path to UNet configuration file')
    parser.add_argument('--unet_model_path', type=str, default='./models/musetalkV15/unet.pth', help='Path to UNet model weights')
    parser.add_argument('--whisper_dir', type=str, default='./models/whisper', help='Directory containing Whisper model')
    parser.add_argument('--inference_config', type=str, default='configs/inference/test_img.yaml', help='Path to inference configuration file')
    parser.add_argument('--bbox_shift', type=int, default=0, help='Bounding box shift value')
    parser.add_argument('--result_dir', default='./results', help='Directory for output results')
    parser.add_argument('--extra_margin', type=int, default=10, help='Extra margin for face cropping')
    parser.add_argument('--fps', type=int, default=25, help='Video frames per second')
    parser.add_argument('--audio_padding_length_left', type=int, default=2, help='Left padding length for audio')
    parser.add_argument('--audio_padding_length_right', type=int, default=2, help='Right padding length for audio')
    parser.add_argument('--batch_size', type=int, default=8, help='Batch size for inference')
    parser.add_argument('--output_vid_name', type=str, default=None, help='Name of output video file')
    parser.add_argument('--use_saved_coord', action='store_true', help='Use saved coordinates to save time')
    parser.add_argument('--saved_coord', action='store_true', help='Save coordinates for future use')
    parser.add_argument('--use_float16', action='store_true', help='Use float16 for faster inference')
    parser.add_argument('--parsing_mode', default='jaw', help='Face blending parsing mode')
    parser.add_argument('--left_cheek_width', type=int, default=90, help='Width of left cheek region')
    parser.add_argument('--right_cheek_width', type=int, default=90, help='Width of right cheek region')
    parser.add_argument('--version', type=str, default='v15', choices=['v1', 'v15'], help='Model version to use')
    args = parser.parse_args()
    main(args)
