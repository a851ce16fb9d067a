# ruff: noqa: UP031, SIM112, SIM115, SIM105, B007  (the real script's own style, kept)
"""Fake of GPT-SoVITS tools/asr/fasterwhisper_asr.py (48b1a01): the same flags and choices, the same
model folder (tools/asr/models/faster-whisper-<size>), the same tqdm bar over the files and the same
list file (<output_folder>/<input folder name>.list: ``path|folder|LANG|text``). What it "hears" is
FAKE_GPT_SOVITS_TRAIN_TEXT, about 2.5 words a second of each file, in order."""

import argparse
import os
import time
import traceback

import _fake
import soundfile as sf
from tools.asr.config import get_models

# fmt: off
language_code_list = [
    "af", "am", "ar", "as", "az", "ba", "be", "bg", "bn", "bo", "br", "bs", "ca", "cs", "cy", "da", "de", "el", "en",
    "es", "et", "eu", "fa", "fi", "fo", "fr", "gl", "gu", "ha", "haw", "he", "hi", "hr", "ht", "hu", "hy", "id", "is",
    "it", "ja", "jw", "ka", "kk", "km", "kn", "ko", "la", "lb", "ln", "lo", "lt", "lv", "mg", "mi", "mk", "ml", "mn",
    "mr", "ms", "mt", "my", "ne", "nl", "nn", "no", "oc", "pa", "pl", "ps", "pt", "ro", "ru", "sa", "sd", "si", "sk",
    "sl", "sn", "so", "sq", "sr", "su", "sv", "sw", "ta", "te", "tg", "th", "tk", "tl", "tr", "tt", "uk", "ur", "uz",
    "vi", "yi", "yo", "zh", "yue", "auto"]
# fmt: on


def download_model(model_size: str):
    repo_id = f"Systran/faster-whisper-{model_size}"
    model_path = f"tools/asr/models/{repo_id.replace('Systran/', '')}"
    if os.path.isfile(os.path.join(model_path, "model.bin")):
        print(f"Downloading model from HuggingFace: {repo_id} to {model_path}")
        return model_path
    # Offline: requests.get to huggingface.co fails, ModelScope's download fails in turn.
    print("Downloading model from ModelScope: XXXXRT/faster-whisper to tools/asr/models")
    raise ConnectionError(f"HTTPSConnectionPool(host='www.modelscope.cn', port=443): Max retries exceeded with url: "
                          f"/api/v1/models/XXXXRT/faster-whisper/repo/files (faster-whisper-{model_size})")


def execute_asr(input_folder, output_folder, model_path, language, precision):
    print("loading faster whisper model:", model_path, model_path)
    words = os.environ.get("FAKE_GPT_SOVITS_TRAIN_TEXT", "hello this is my voice").split()
    input_file_names = os.listdir(input_folder)
    input_file_names.sort()
    output = []
    output_file_name = os.path.basename(input_folder)
    started, at = time.monotonic(), 0
    total = len(input_file_names)
    _fake.bar(0, total, started=started)
    for i, file_name in enumerate(input_file_names):
        try:
            file_path = os.path.join(input_folder, file_name)
            info = sf.info(file_path)
            n = max(1, round(info.duration * 2.5))
            text = "" if _fake.silent_asr() else " " + " ".join(words[(at + k) % len(words)] for k in range(n))
            at += n
            lang = "en" if language in (None, "auto") else language
            output.append(f"{file_path}|{output_file_name}|{lang.upper()}|{text}")
        except Exception as e:
            print(e)
            traceback.print_exc()
        _fake.step_sleep()
        _fake.bar(i + 1, total, started=started)
    output_folder = output_folder or "output/asr_opt"
    os.makedirs(output_folder, exist_ok=True)
    output_file_path = os.path.abspath(f"{output_folder}/{output_file_name}.list")
    with open(output_file_path, "w", encoding="utf-8") as f:
        f.write("\n".join(output))
        print(f"ASR 任务完成->标注文件路径: {output_file_path}\n")
    return output_file_path


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("-i", "--input_folder", type=str, required=True, help="Path to the folder containing WAV files.")
    parser.add_argument("-o", "--output_folder", type=str, required=True, help="Output folder to store transcriptions.")
    parser.add_argument("-s", "--model_size", type=str, default="large-v3", choices=get_models(),
                        help="Model Size of Faster Whisper")
    parser.add_argument("-l", "--language", type=str, default="ja", choices=language_code_list,
                        help="Language of the audio files.")
    parser.add_argument("-p", "--precision", type=str, default="float16", choices=["float16", "float32", "int8"],
                        help="fp16, int8 or fp32")
    cmd = parser.parse_args()
    _fake.begin("asr")
    model_size = cmd.model_size
    if model_size == "large":
        model_size = "large-v3"
    model_path = download_model(model_size)
    execute_asr(input_folder=cmd.input_folder, output_folder=cmd.output_folder, model_path=model_path,
                language=None if cmd.language == "auto" else cmd.language, precision=cmd.precision)
