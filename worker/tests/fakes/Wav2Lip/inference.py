"""A fake of Wav2Lip's inference.py (github.com/Rudrabha/Wav2Lip, inference.py at 5c90fa9), for the
wav2lip engine's tests: no torch, no weights, real media.

The same command line (its argparse, flag for flag: an unknown flag exits 2), the same prints and
tqdm bars in the same order (the generation bar at 0, the face detection bar, then generation),
the same files relative to the cwd (``temp/faulty_frame.jpg``, ``temp/result.avi`` in DIVX,
``temp/temp.wav`` for a non-WAV audio) and the same unchecked
``ffmpeg -y -i <audio> -i temp/result.avi -strict -2 -q:v 1 <outfile>`` through a shell.

Instead of S3FD, OpenCV's bundled Haar cascade finds the face (the largest box, then the same pads
and 5-frame smoothing); without a face in some frame it writes ``temp/faulty_frame.jpg`` and raises
the same ``ValueError('Face not detected! Ensure the video contains a face in all the frames.')``.
Instead of the model, each 96x96 face crop gets a dark mouth opened by the speech's energy over
the mel window of its frame, and is pasted back into the frame as the real one pastes its output.
The checkpoint is opened for real (its FileNotFoundError when it is missing) and read for nothing.

The module is shaped as inference.py is (its ``args`` parsed at import, ``load_model``,
``face_detect``, ``datagen``, ``main`` reading the global ``args``), so that the resident host
(engines/gpu/wav2lip_host.py) drives it as it drives the real one. When FAKE_WAV2LIP_CALLS names a
file, each ``load_model`` and each ``face_detect`` call appends a line to it (``load_model <path>``,
``face_detect <n images>``): what a test counts to see a model loaded once, a face detected once.

Failures, switched by FAKE_WAV2LIP_FAIL: ``oom`` (torch's CUDA out of memory in the first batch),
``weights`` (the checkpoint's FileNotFoundError, as torch.load raises it), ``crash`` (a CUDA
RuntimeError), ``segfault`` (the process dies of SIGSEGV in the first batch, as a CUDA extension
may), ``hang`` (stops in the first batch until killed).
"""

# ruff: noqa: B904, B905, E501, SIM108, UP032 - the tool's own code, kept as it is written there

import argparse
import os
import platform
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import soundfile

parser = argparse.ArgumentParser(description='Inference code to lip-sync videos in the wild using Wav2Lip models')

parser.add_argument('--checkpoint_path', type=str,
                    help='Name of saved checkpoint to load weights from', required=True)

parser.add_argument('--face', type=str,
                    help='Filepath of video/image that contains faces to use', required=True)
parser.add_argument('--audio', type=str,
                    help='Filepath of video/audio file to use as raw audio source', required=True)
parser.add_argument('--outfile', type=str, help='Video path to save result. See default for an e.g.',
                    default='results/result_voice.mp4')

parser.add_argument('--static', type=bool,
                    help='If True, then use only first video frame for inference', default=False)
parser.add_argument('--fps', type=float, help='Can be specified only if input is a static image (default: 25)',
                    default=25., required=False)

parser.add_argument('--pads', nargs='+', type=int, default=[0, 10, 0, 0],
                    help='Padding (top, bottom, left, right). Please adjust to include chin at least')

parser.add_argument('--face_det_batch_size', type=int,
                    help='Batch size for face detection', default=16)
parser.add_argument('--wav2lip_batch_size', type=int, help='Batch size for Wav2Lip model(s)', default=128)

parser.add_argument('--resize_factor', default=1, type=int,
                    help='Reduce the resolution by this factor. Sometimes, best results are obtained at 480p or 720p')

parser.add_argument('--crop', nargs='+', type=int, default=[0, -1, 0, -1],
                    help='Crop video to a smaller region (top, bottom, left, right). Applied after resize_factor '
                    'and rotate arg. Useful if multiple face present. -1 implies the value will be auto-inferred '
                    'based on height, width')

parser.add_argument('--box', nargs='+', type=int, default=[-1, -1, -1, -1],
                    help='Specify a constant bounding box for the face. Use only as a last resort if the face is '
                    'not detected. Also, might work only if the face is not moving around much. Syntax: (top, '
                    'bottom, left, right).')

parser.add_argument('--rotate', default=False, action='store_true',
                    help='Sometimes videos taken from a phone can be flipped 90deg. If true, will flip video right '
                    'by 90deg. Use if you get a flipped result, despite feeding a normal looking video')

parser.add_argument('--nosmooth', default=False, action='store_true',
                    help='Prevent smoothing face detections over a short temporal window')

args = parser.parse_args()
args.img_size = 96

if os.path.isfile(args.face) and args.face.split('.')[1] in ['jpg', 'png', 'jpeg']:
    args.static = True

FAIL = os.environ.get('FAKE_WAV2LIP_FAIL', '')
HOP = 200  # hparams.hop_size at 16 kHz: 80 mel frames a second


def _count(call):
    """One line per load_model / face_detect call, in FAKE_WAV2LIP_CALLS (the tests count them)."""
    path = os.environ.get('FAKE_WAV2LIP_CALLS')
    if path:
        with open(path, 'a') as f:
            f.write(call + '\n')


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


OutOfMemoryError.__module__ = 'torch.cuda'  # printed as torch prints it


def get_smoothened_boxes(boxes, T):
    for i in range(len(boxes)):
        window = boxes[len(boxes) - T:] if i + T > len(boxes) else boxes[i: i + T]
        boxes[i] = np.mean(window, axis=0)
    return boxes


class HaarDetector:
    """Stands in for face_detection.FaceAlignment(...).get_detections_for_batch: (x1, y1, x2, y2) or None."""

    def __init__(self):
        self.cascade = cv2.CascadeClassifier(os.path.join(cv2.data.haarcascades, 'haarcascade_frontalface_default.xml'))

    def get_detections_for_batch(self, images):
        results = []
        for image in images:
            gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
            found = self.cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(24, 24))
            if len(found) == 0:
                results.append(None)
                continue
            x, y, w, h = max(found, key=lambda b: b[2] * b[3])
            results.append((int(x), int(y), int(x + w), int(y + h)))
        return results


def face_detect(images):
    _count('face_detect {}'.format(len(images)))
    detector = HaarDetector()
    batch_size = args.face_det_batch_size

    while 1:
        predictions = []
        try:
            for i in tqdm(range(0, len(images), batch_size)):
                predictions.extend(detector.get_detections_for_batch(np.array(images[i:i + batch_size])))
        except RuntimeError:
            if batch_size == 1:
                raise RuntimeError('Image too big to run face detection on GPU. Please use the --resize_factor argument')
            batch_size //= 2
            print('Recovering from OOM error; New batch size: {}'.format(batch_size))
            continue
        break

    results = []
    pady1, pady2, padx1, padx2 = args.pads
    for rect, image in zip(predictions, images):
        if rect is None:
            cv2.imwrite('temp/faulty_frame.jpg', image)  # check this frame where the face was not detected.
            raise ValueError('Face not detected! Ensure the video contains a face in all the frames.')

        y1 = max(0, rect[1] - pady1)
        y2 = min(image.shape[0], rect[3] + pady2)
        x1 = max(0, rect[0] - padx1)
        x2 = min(image.shape[1], rect[2] + padx2)

        results.append([x1, y1, x2, y2])

    boxes = np.array(results)
    if not args.nosmooth:
        boxes = get_smoothened_boxes(boxes, T=5)
    return [[image[y1: y2, x1:x2], (y1, y2, x1, x2)] for image, (x1, y1, x2, y2) in zip(images, boxes)]


def batch(img_batch, mel_batch):
    img_batch, mel_batch = np.asarray(img_batch), np.asarray(mel_batch)
    img_masked = img_batch.copy()
    img_masked[:, args.img_size // 2:] = 0
    img_batch = np.concatenate((img_masked, img_batch), axis=3) / 255.
    mel_batch = np.reshape(mel_batch, [len(mel_batch), mel_batch.shape[1], mel_batch.shape[2], 1])
    return img_batch, mel_batch


def datagen(frames, mels):
    img_batch, mel_batch, frame_batch, coords_batch = [], [], [], []

    if args.box[0] == -1:
        face_det_results = face_detect(frames) if not args.static else face_detect([frames[0]])
    else:
        print('Using the specified bounding box instead of face detection...')
        y1, y2, x1, x2 = args.box
        face_det_results = [[f[y1: y2, x1:x2], (y1, y2, x1, x2)] for f in frames]

    for i, m in enumerate(mels):
        idx = 0 if args.static else i % len(frames)
        frame_to_save = frames[idx].copy()
        face, coords = face_det_results[idx].copy()
        face = cv2.resize(face, (args.img_size, args.img_size))
        img_batch.append(face)
        mel_batch.append(m)
        frame_batch.append(frame_to_save)
        coords_batch.append(coords)

        if len(img_batch) >= args.wav2lip_batch_size:
            yield (*batch(img_batch, mel_batch), frame_batch, coords_batch)
            img_batch, mel_batch, frame_batch, coords_batch = [], [], [], []

    if len(img_batch) > 0:
        yield (*batch(img_batch, mel_batch), frame_batch, coords_batch)


mel_step_size = 16
device = 'cuda'
print('Using {} for inference.'.format(device))


def _load(checkpoint_path):
    if FAIL == 'weights':
        raise FileNotFoundError(2, 'No such file or directory', checkpoint_path)
    with open(checkpoint_path, 'rb') as f:  # torch.load opens it first: the same FileNotFoundError
        f.read(16)
    return {'state_dict': {}}


class FakeWav2Lip:
    """The reference half of each crop with a mouth opened by the mel window's energy (0..1)."""

    def __call__(self, mel_batch, img_batch):
        out = []
        for mel, img in zip(mel_batch, img_batch):
            face = np.ascontiguousarray(img[:, :, 3:])  # the unmasked reference, 0..1
            opening = float(np.clip(mel.mean(), 0.0, 1.0))
            centre = (args.img_size // 2, int(args.img_size * 0.74))
            axes = (int(args.img_size * 0.16), max(1, int(args.img_size * 0.12 * opening)))
            cv2.ellipse(face, centre, axes, 0, 0, 360, (0.08, 0.05, 0.12), -1)
            out.append(face)
        return np.asarray(out)


def load_model(path):
    _count('load_model {}'.format(path))
    print('Load checkpoint from: {}'.format(path))
    _load(path)
    return FakeWav2Lip()


def load_wav(path, sr):
    wav, rate = soundfile.read(path, dtype='float32', always_2d=True)
    wav = wav.mean(axis=1)
    n = int(np.ceil(len(wav) * sr / rate))
    return np.interp(np.arange(n) * rate / sr, np.arange(len(wav)), wav).astype(np.float32)


def main():
    if not os.path.isfile(args.face):
        raise ValueError('--face argument must be a valid path to video/image file')

    elif args.face.split('.')[1] in ['jpg', 'png', 'jpeg']:
        full_frames = [cv2.imread(args.face)]
        fps = args.fps

    else:
        video_stream = cv2.VideoCapture(args.face)
        fps = video_stream.get(cv2.CAP_PROP_FPS)

        print('Reading video frames...')

        full_frames = []
        while 1:
            still_reading, frame = video_stream.read()
            if not still_reading:
                video_stream.release()
                break
            if args.resize_factor > 1:
                frame = cv2.resize(frame, (frame.shape[1] // args.resize_factor, frame.shape[0] // args.resize_factor))
            if args.rotate:
                frame = cv2.rotate(frame, cv2.ROTATE_90_CLOCKWISE)
            y1, y2, x1, x2 = args.crop
            if x2 == -1:
                x2 = frame.shape[1]
            if y2 == -1:
                y2 = frame.shape[0]
            frame = frame[y1:y2, x1:x2]
            full_frames.append(frame)

    print('Number of frames available for inference: ' + str(len(full_frames)))

    if not args.audio.endswith('.wav'):
        print('Extracting raw audio...')
        command = 'ffmpeg -y -i {} -strict -2 {}'.format(args.audio, 'temp/temp.wav')
        subprocess.call(command, shell=True)
        args.audio = 'temp/temp.wav'

    wav = load_wav(args.audio, 16000)
    # audio.melspectrogram's shape (80 bands, a frame per hop, centred); each frame's "energy" here
    # is the RMS of 50 ms around it mapped to 0..1, the only thing the fake model reads.
    frames_80 = 1 + len(wav) // HOP
    padded = np.pad(wav, (HOP * 2, HOP * 2))
    rms = np.array([np.sqrt(np.mean(padded[i * HOP: i * HOP + HOP * 4] ** 2) + 1e-12) for i in range(frames_80)])
    level = np.clip((20 * np.log10(rms + 1e-9) + 50) / 40, 0.0, 1.0)
    print((80, frames_80))

    mel_chunks = []
    mel_idx_multiplier = 80. / fps
    i = 0
    while 1:
        start_idx = int(i * mel_idx_multiplier)
        if start_idx + mel_step_size > frames_80:
            mel_chunks.append(np.full((80, mel_step_size), level[frames_80 - mel_step_size]))
            break
        mel_chunks.append(np.full((80, mel_step_size), level[start_idx]))  # the mouth at the frame's time
        i += 1

    print('Length of mel chunks: {}'.format(len(mel_chunks)))

    full_frames = full_frames[:len(mel_chunks)]

    batch_size = args.wav2lip_batch_size
    gen = datagen(full_frames.copy(), mel_chunks)

    for i, (img_batch, mel_batch, frames, coords) in enumerate(tqdm(gen, total=int(np.ceil(float(len(mel_chunks)) / batch_size)))):
        if i == 0:
            model = load_model(args.checkpoint_path)
            print('Model loaded')

            frame_h, frame_w = full_frames[0].shape[:-1]
            out = cv2.VideoWriter('temp/result.avi', cv2.VideoWriter_fourcc(*'DIVX'), fps, (frame_w, frame_h))

        if FAIL == 'oom':
            raise OutOfMemoryError(
                'CUDA out of memory. Tried to allocate 1.12 GiB (GPU 0; 23.65 GiB total capacity; 21.87 GiB already '
                'allocated; 712.56 MiB free; 22.01 GiB reserved in total by PyTorch) If reserved memory is >> '
                'allocated memory try setting max_split_size_mb to avoid fragmentation.  See documentation for '
                'Memory Management and PYTORCH_CUDA_ALLOC_CONF')
        if FAIL == 'crash':
            raise RuntimeError('CUDA error: an illegal memory access was encountered\nCUDA kernel errors might be '
                               'asynchronously reported at some other API call, so the stacktrace below might be '
                               'incorrect.\nFor debugging consider passing CUDA_LAUNCH_BLOCKING=1.')
        if FAIL == 'segfault':
            os.kill(os.getpid(), signal.SIGSEGV)
        if FAIL == 'hang':
            time.sleep(3600)

        pred = model(mel_batch, img_batch)
        pred = pred * 255.

        for p, f, c in zip(pred, frames, coords):
            y1, y2, x1, x2 = c
            p = cv2.resize(p.astype(np.uint8), (x2 - x1, y2 - y1))
            f[y1:y2, x1:x2] = p
            out.write(f)

    out.release()

    command = 'ffmpeg -y -i {} -i {} -strict -2 -q:v 1 {}'.format(args.audio, 'temp/result.avi', args.outfile)
    subprocess.call(command, shell=platform.system() != 'Windows')


if __name__ == '__main__':
    main()
