"""SadTalker's src/utils/videoio.py: the video and the audio muxed by ffmpeg (video copied) into a
temporary file in the working directory, then moved (watermark off, as inference.py calls it)."""

import os
import shutil
import uuid

import cv2


def load_video_to_cv2(input_path):
    video_stream = cv2.VideoCapture(input_path)
    full_frames = []
    while 1:
        still_reading, frame = video_stream.read()
        if not still_reading:
            video_stream.release()
            break
        full_frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    return full_frames


def save_video_with_watermark(video, audio, save_path, watermark=False):
    temp_file = str(uuid.uuid4())+'.mp4'
    cmd = f'ffmpeg -y -hide_banner -loglevel error -i "{video}" -i "{audio}" -vcodec copy "{temp_file}"'
    os.system(cmd)
    shutil.move(temp_file, save_path)
