"""A fake of Real-ESRGAN's ``inference_realesrgan_video.py`` (xinntao/Real-ESRGAN at a4abfb2, 2024-04-03),
for the realesrgan engine's tests: no torch, no weights, no GPU.

It keeps the real script's interface: the same argparse (flags, defaults, help), the same reading
of the input (a video by its mimetype, ``nb_frames`` from ffprobe, frames piped from ffmpeg as
bgr24), the same output ``<output>/<video_name>_<suffix>.mp4`` (libx264 yuv420p, the input's fps,
its audio copied), the same model table and weights lookup (``weights/<model>.pth`` under the
current directory, else a download into ``<checkout>/weights`` that fails without a network), the
same ``int(w * outscale)`` output size and the same tqdm ``inference`` bar (stderr, ``unit=frame``).
The "network" is the model: each frame is resized with OpenCV's lanczos to ``netscale`` and then
to ``outscale`` (RealESRGANer.enhance does that second resize too).

Failures, switched by ``FAKE_REALESRGAN_FAIL``, print what the real script prints:

- ``oom``: with ``--tile 0``, each frame's ``upsampler.enhance`` raises torch's CUDA OOM
  RuntimeError, which the script catches per frame (``print('Error', error)`` and its --tile hint),
  writes no frame and exits 0; with a tile the frames fit.
- ``weights``: as if ``weights/<model>.pth`` were missing: ``Downloading: "<url>" to <path>`` then
  urllib's URLError traceback (no network).
- ``crash``: a traceback from loading the state dict (a corrupt .pth), exit 1.
- ``hang``: the bar starts, then nothing (a wedged GPU), until killed.

``torch.cuda.device_count()`` is the number of ids in CUDA_VISIBLE_DEVICES (1 when unset); with
none the script's ``ctx.Pool(0)`` fails as the real one does. The multi-process path (several GPUs)
is not faked: it runs as one process.
"""

import argparse
import glob
import json
import mimetypes
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
from os import path as osp

import cv2
import numpy as np

try:
    from tqdm import tqdm
except ImportError:  # the worker's venv has no tqdm: the same bar, drawn the same way

    class tqdm:  # noqa: N801 - tqdm's name
        def __init__(self, total=None, unit='it', desc=None):
            self.total, self.unit, self.desc, self.n = total, unit, desc, 0
            self.start = time.time()
            self._draw()

        def _draw(self):
            elapsed = time.time() - self.start
            rate = self.n / elapsed if elapsed > 0 and self.n else None
            frac = self.n / self.total if self.total else 0
            filled = int(frac * 10)
            bar = '█' * filled + ' ' * (10 - filled)
            remaining = (self.total - self.n) / rate if rate else None

            def clock(s):
                return '?' if s is None else f'{int(s) // 60:02d}:{int(s) % 60:02d}'

            rate_s = f'{rate:.2f}{self.unit}/s' if rate else f'?{self.unit}/s'
            sys.stderr.write(f'\r{self.desc}: {int(frac * 100):3d}%|{bar}| {self.n}/{self.total} '
                             f'[{clock(elapsed)}<{clock(remaining)}, {rate_s}]')
            sys.stderr.flush()

        def update(self, n=1):
            self.n += n
            self._draw()

        def close(self):  # tqdm.close (also run by __del__ at exit): the bar once more, then a newline
            if getattr(self, 'closed', False):
                return
            self.closed = True
            self._draw()
            sys.stderr.write('\n')
            sys.stderr.flush()

        def __del__(self):
            self.close()

FAIL = os.environ.get('FAKE_REALESRGAN_FAIL', '')
ROOT_DIR = os.path.dirname(os.path.abspath(__file__))

# inference_video's model table: name -> (netscale, file_url)
MODELS = {
    'RealESRGAN_x4plus': (4, ['https://github.com/xinntao/Real-ESRGAN/releases/download/v0.1.0/RealESRGAN_x4plus.pth']),
    'RealESRNet_x4plus': (4, ['https://github.com/xinntao/Real-ESRGAN/releases/download/v0.1.1/RealESRNet_x4plus.pth']),
    'RealESRGAN_x4plus_anime_6B': (
        4, ['https://github.com/xinntao/Real-ESRGAN/releases/download/v0.2.2.4/RealESRGAN_x4plus_anime_6B.pth']),
    'RealESRGAN_x2plus': (2, ['https://github.com/xinntao/Real-ESRGAN/releases/download/v0.2.1/RealESRGAN_x2plus.pth']),
    'realesr-animevideov3': (
        4, ['https://github.com/xinntao/Real-ESRGAN/releases/download/v0.2.5.0/realesr-animevideov3.pth']),
    'realesr-general-x4v3': (4, [
        'https://github.com/xinntao/Real-ESRGAN/releases/download/v0.2.5.0/realesr-general-wdn-x4v3.pth',
        'https://github.com/xinntao/Real-ESRGAN/releases/download/v0.2.5.0/realesr-general-x4v3.pth'
    ]),
}


def cuda_device_count():
    visible = os.environ.get('CUDA_VISIBLE_DEVICES')
    if visible is None:
        return 1
    ids = [d for d in visible.split(',') if d.strip() and not d.strip().startswith('-')]
    return len(ids)


def load_file_from_url(url, model_dir=None, progress=True, file_name=None):
    """basicsr.utils.download_util.load_file_from_url, with torch.hub's download failing offline."""
    os.makedirs(model_dir, exist_ok=True)
    filename = os.path.basename(url)
    if file_name is not None:
        filename = file_name
    cached_file = os.path.abspath(os.path.join(model_dir, filename))
    if not os.path.exists(cached_file) or FAIL == 'weights':
        print(f'Downloading: "{url}" to {cached_file}\n', flush=True)
        try:
            raise socket.gaierror(-3, 'Temporary failure in name resolution')
        except OSError as err:
            raise urllib.error.URLError(err)  # noqa: B904 - urllib chains it implicitly
    return cached_file


def get_video_meta_info(video_path):
    ret = {}
    out = subprocess.run(['ffprobe', '-v', 'error', '-print_format', 'json', '-show_format', '-show_streams', video_path],
                         capture_output=True, check=True).stdout
    probe = json.loads(out)
    video_streams = [stream for stream in probe['streams'] if stream['codec_type'] == 'video']
    has_audio = any(stream['codec_type'] == 'audio' for stream in probe['streams'])
    ret['width'] = video_streams[0]['width']
    ret['height'] = video_streams[0]['height']
    ret['fps'] = eval(video_streams[0]['avg_frame_rate'])
    ret['audio'] = video_path if has_audio else None
    ret['nb_frames'] = int(video_streams[0]['nb_frames'])
    return ret


class Reader:

    def __init__(self, args):
        self.args = args
        input_type = mimetypes.guess_type(args.input)[0]
        self.input_type = 'folder' if input_type is None else input_type
        self.paths = []
        self.audio = None
        self.input_fps = None
        if self.input_type.startswith('video'):
            video_path = args.input
            self.stream_reader = subprocess.Popen(
                [args.ffmpeg_bin, '-i', video_path, '-f', 'rawvideo', '-pix_fmt', 'bgr24', '-loglevel', 'error',
                 'pipe:'], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            meta = get_video_meta_info(video_path)
            self.width = meta['width']
            self.height = meta['height']
            self.input_fps = meta['fps']
            self.audio = meta['audio']
            self.nb_frames = meta['nb_frames']
        else:
            if self.input_type.startswith('image'):
                self.paths = [args.input]
            else:
                self.paths = sorted(glob.glob(os.path.join(args.input, '*')))
            self.nb_frames = len(self.paths)
            assert self.nb_frames > 0, 'empty folder'
            img = cv2.imread(self.paths[0])
            self.height, self.width = img.shape[:2]
        self.idx = 0

    def get_resolution(self):
        return self.height, self.width

    def get_fps(self):
        if self.args.fps is not None:
            return self.args.fps
        elif self.input_fps is not None:
            return self.input_fps
        return 24

    def get_audio(self):
        return self.audio

    def __len__(self):
        return self.nb_frames

    def get_frame(self):
        if self.input_type.startswith('video'):
            img_bytes = self.stream_reader.stdout.read(self.width * self.height * 3)
            if not img_bytes:
                return None
            return np.frombuffer(img_bytes, np.uint8).reshape([self.height, self.width, 3])
        if self.idx >= self.nb_frames:
            return None
        img = cv2.imread(self.paths[self.idx])
        self.idx += 1
        return img

    def close(self):
        if self.input_type.startswith('video'):
            self.stream_reader.stdin.close()
            self.stream_reader.wait()


class Writer:

    def __init__(self, args, audio, height, width, video_save_path, fps):
        out_width, out_height = int(width * args.outscale), int(height * args.outscale)
        if out_height > 2160:
            print('You are generating video that is larger than 4K, which will be very slow due to IO speed.',
                  'We highly recommend to decrease the outscale(aka, -s).')
        cmd = [args.ffmpeg_bin, '-f', 'rawvideo', '-pix_fmt', 'bgr24', '-s', f'{out_width}x{out_height}',
               '-framerate', str(fps), '-i', 'pipe:']
        if audio is not None:
            cmd += ['-i', audio, '-map', '0:v', '-map', '1:a', '-acodec', 'copy']
        cmd += ['-pix_fmt', 'yuv420p', '-vcodec', 'libx264', '-loglevel', 'error', video_save_path, '-y']
        self.stream_writer = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def write_frame(self, frame):
        self.stream_writer.stdin.write(frame.astype(np.uint8).tobytes())

    def close(self):
        self.stream_writer.stdin.close()
        self.stream_writer.wait()


class RealESRGANer:
    """realesrgan.utils.RealESRGANer: loads the weights, ``enhance`` upsamples by ``scale`` then
    resizes to ``outscale`` (cv2 lanczos)."""

    def __init__(self, scale, model_path, dni_weight=None, tile=0, tile_pad=10, pre_pad=10, half=False):
        self.scale = scale
        self.tile_size = tile
        for p in model_path if isinstance(model_path, list) else [model_path]:
            with open(p, 'rb'):  # torch.load: FileNotFoundError on a missing path
                pass
        if FAIL == 'crash':
            raise RuntimeError('Error(s) in loading state_dict for RRDBNet:\n\tMissing key(s) in state_dict: '
                               '"conv_first.weight", "conv_first.bias", "body.0.rdb1.conv1.weight". ')

    def enhance(self, img, outscale=None):
        if FAIL == 'oom' and self.tile_size == 0:
            h, w = img.shape[:2]
            gib = h * w * self.scale * self.scale * 64 * 2 / 2**30
            raise RuntimeError(f'CUDA out of memory. Tried to allocate {gib:.2f} GiB (GPU 0; 23.69 GiB total capacity; '
                               '21.03 GiB already allocated; 1.01 GiB free; 21.52 GiB reserved in total by PyTorch) '
                               'If reserved memory is >> allocated memory try setting max_split_size_mb to avoid '
                               'fragmentation.  See documentation for Memory Management and PYTORCH_CUDA_ALLOC_CONF')
        h_input, w_input = img.shape[0:2]
        output = cv2.resize(img, (w_input * self.scale, h_input * self.scale), interpolation=cv2.INTER_LANCZOS4)
        if outscale is not None and outscale != float(self.scale):
            output = cv2.resize(output, (int(w_input * outscale), int(h_input * outscale)),
                                interpolation=cv2.INTER_LANCZOS4)
        return output, 'RGB'


def inference_video(args, video_save_path):
    args.model_name = args.model_name.split('.pth')[0]
    if args.model_name not in MODELS:  # the real elif chain leaves them unbound
        raise UnboundLocalError("cannot access local variable 'file_url' where it is not associated with a value")
    netscale, file_url = MODELS[args.model_name]

    model_path = os.path.join('weights', args.model_name + '.pth')
    if not os.path.isfile(model_path) or FAIL == 'weights':
        for url in file_url:
            model_path = load_file_from_url(url=url, model_dir=os.path.join(ROOT_DIR, 'weights'), progress=True)

    dni_weight = None
    if args.model_name == 'realesr-general-x4v3' and args.denoise_strength != 1:
        wdn_model_path = model_path.replace('realesr-general-x4v3', 'realesr-general-wdn-x4v3')
        model_path = [model_path, wdn_model_path]
        dni_weight = [args.denoise_strength, 1 - args.denoise_strength]

    upsampler = RealESRGANer(scale=netscale, model_path=model_path, dni_weight=dni_weight, tile=args.tile,
                             tile_pad=args.tile_pad, pre_pad=args.pre_pad, half=not args.fp32)

    if 'anime' in args.model_name and args.face_enhance:
        print('face_enhance is not supported in anime models, we turned this option off for you. '
              'if you insist on turning it on, please manually comment the relevant lines of code.')
        args.face_enhance = False
    if args.face_enhance:
        from gfpgan import GFPGANer  # noqa: F401 - fails as the real one does without GFPGAN installed

    reader = Reader(args)
    audio = reader.get_audio()
    height, width = reader.get_resolution()
    fps = reader.get_fps()
    writer = Writer(args, audio, height, width, video_save_path, fps)

    pbar = tqdm(total=len(reader), unit='frame', desc='inference')
    while True:
        img = reader.get_frame()
        if img is None:
            break
        if FAIL == 'hang':
            while True:
                time.sleep(1)
        try:
            output, _ = upsampler.enhance(img, outscale=args.outscale)
        except RuntimeError as error:
            print('Error', error)
            print('If you encounter CUDA out of memory, try to set --tile with a smaller number.')
        else:
            writer.write_frame(output)
        pbar.update(1)

    reader.close()
    writer.close()


def run(args):
    args.video_name = osp.splitext(os.path.basename(args.input))[0]
    video_save_path = osp.join(args.output, f'{args.video_name}_{args.suffix}.mp4')

    if args.extract_frame_first:
        tmp_frames_folder = osp.join(args.output, f'{args.video_name}_inp_tmp_frames')
        os.makedirs(tmp_frames_folder, exist_ok=True)
        os.system(f'ffmpeg -i {args.input} -qscale:v 1 -qmin 1 -qmax 1 -vsync 0  {tmp_frames_folder}/frame%08d.png')
        args.input = tmp_frames_folder

    num_gpus = cuda_device_count()
    num_process = num_gpus * args.num_process_per_gpu
    if num_process < 1:  # torch.multiprocessing's ctx.Pool(0)
        raise ValueError('Number of processes must be at least 1')
    inference_video(args, video_save_path)


def main():
    """Inference demo for Real-ESRGAN.
    It mainly for restoring anime videos.

    """
    parser = argparse.ArgumentParser()
    parser.add_argument('-i', '--input', type=str, default='inputs', help='Input video, image or folder')
    parser.add_argument(
        '-n',
        '--model_name',
        type=str,
        default='realesr-animevideov3',
        help=('Model names: realesr-animevideov3 | RealESRGAN_x4plus_anime_6B | RealESRGAN_x4plus | RealESRNet_x4plus |'
              ' RealESRGAN_x2plus | realesr-general-x4v3'
              'Default:realesr-animevideov3'))
    parser.add_argument('-o', '--output', type=str, default='results', help='Output folder')
    parser.add_argument(
        '-dn',
        '--denoise_strength',
        type=float,
        default=0.5,
        help=('Denoise strength. 0 for weak denoise (keep noise), 1 for strong denoise ability. '
              'Only used for the realesr-general-x4v3 model'))
    parser.add_argument('-s', '--outscale', type=float, default=4, help='The final upsampling scale of the image')
    parser.add_argument('--suffix', type=str, default='out', help='Suffix of the restored video')
    parser.add_argument('-t', '--tile', type=int, default=0, help='Tile size, 0 for no tile during testing')
    parser.add_argument('--tile_pad', type=int, default=10, help='Tile padding')
    parser.add_argument('--pre_pad', type=int, default=0, help='Pre padding size at each border')
    parser.add_argument('--face_enhance', action='store_true', help='Use GFPGAN to enhance face')
    parser.add_argument(
        '--fp32', action='store_true', help='Use fp32 precision during inference. Default: fp16 (half precision).')
    parser.add_argument('--fps', type=float, default=None, help='FPS of the output video')
    parser.add_argument('--ffmpeg_bin', type=str, default='ffmpeg', help='The path to ffmpeg')
    parser.add_argument('--extract_frame_first', action='store_true')
    parser.add_argument('--num_process_per_gpu', type=int, default=1)

    parser.add_argument(
        '--alpha_upsampler',
        type=str,
        default='realesrgan',
        help='The upsampler for the alpha channels. Options: realesrgan | bicubic')
    parser.add_argument(
        '--ext',
        type=str,
        default='auto',
        help='Image extension. Options: auto | jpg | png, auto means using the same extension as inputs')
    args = parser.parse_args()

    args.input = args.input.rstrip('/').rstrip('\\')
    os.makedirs(args.output, exist_ok=True)

    if mimetypes.guess_type(args.input)[0] is not None and mimetypes.guess_type(args.input)[0].startswith('video'):
        is_video = True
    else:
        is_video = False

    if is_video and args.input.endswith('.flv'):
        mp4_path = args.input.replace('.flv', '.mp4')
        os.system(f'ffmpeg -i {args.input} -codec copy {mp4_path}')
        args.input = mp4_path

    if args.extract_frame_first and not is_video:
        args.extract_frame_first = False

    run(args)

    if args.extract_frame_first:
        tmp_frames_folder = osp.join(args.output, f'{args.video_name}_inp_tmp_frames')
        shutil.rmtree(tmp_frames_folder)


if __name__ == '__main__':
    main()
