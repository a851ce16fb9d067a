"""Fake of F5-TTS's src/f5_tts/train/datasets/prepare_csv_wavs.py (SWivid/F5-TTS at
2ae2c9bd9b64dab2cb069c4b97e5e7673c521e01): the same command line (``inp_dir`` a metadata.csv with
the header ``audio_file|text`` and absolute wav paths, ``out_dir``, ``--pretrain``, ``--workers``),
the same checks and prints, the same outputs in ``out_dir``: raw.arrow, duration.json and vocab.txt
(for a fine-tune, a copy of ``data/Emilia_ZH_EN_pinyin/vocab.txt`` beside the package). The fake's
raw.arrow holds the rows as JSON lines (no pyarrow here); only the fake trainer reads it. Text is
not converted to pinyin (the fake has no jieba): English passes through it unchanged anyway.
"""

import argparse
import csv
import json
import multiprocessing
import os
import shutil
import sys
from importlib.resources import files
from pathlib import Path

import soundfile as sf
from f5_tts._fake import Bar

sys.path.append(os.getcwd())

PRETRAINED_VOCAB_PATH = files("f5_tts").joinpath("../../data/Emilia_ZH_EN_pinyin/vocab.txt")
MAX_WORKERS = max(1, multiprocessing.cpu_count() - 1)


def is_csv_wavs_format(input_path):
    fpath = Path(input_path).expanduser()
    return fpath.is_file() and fpath.suffix.lower() == ".csv"


def read_audio_text_pairs(csv_file_path):
    audio_text_pairs = []
    csv_path = Path(csv_file_path).expanduser().absolute()
    with open(csv_path.as_posix(), newline="", encoding="utf-8-sig") as csvfile:
        reader = csv.reader(csvfile, delimiter="|")
        header = next(reader, None)
        if header is None:
            return audio_text_pairs
        if len(header) < 2 or header[0].strip() != "audio_file" or header[1].strip() != "text":
            raise ValueError("CSV header must be: audio_file|text")
        for row_idx, row in enumerate(reader, start=2):
            if len(row) < 2:
                continue
            audio_file = row[0].strip()
            text = row[1].strip()
            if not audio_file:
                continue
            audio_path = Path(audio_file).expanduser()
            if not audio_path.is_absolute():
                raise ValueError(f"audio_file must be an absolute path (row {row_idx}): {audio_file}")
            audio_text_pairs.append((audio_path.as_posix(), text))
    return audio_text_pairs


def process_audio_file(audio_path, text, polyphone):
    if not Path(audio_path).exists():
        print(f"audio {audio_path} not found, skipping")
        return None
    try:
        audio_duration = sf.info(audio_path).duration
        if audio_duration <= 0:
            raise ValueError(f"Duration {audio_duration} is non-positive.")
        return (audio_path, text, audio_duration)
    except Exception as e:
        print(f"Warning: Failed to process {audio_path} due to error: {e}. Skipping corrupt file.")
        return None


def prepare_csv_wavs_dir(input_path, num_workers=None):
    if not is_csv_wavs_format(input_path):
        raise ValueError(f"input must be a .csv file: {input_path}")
    pairs = read_audio_text_pairs(Path(input_path).expanduser().as_posix())
    total_files = len(pairs)
    if total_files == 0:
        raise RuntimeError("No valid rows found in CSV.")
    worker_count = num_workers if num_workers is not None else min(MAX_WORKERS, total_files)
    print(f"\nProcessing {total_files} audio files using {worker_count} workers...")
    results = [process_audio_file(a, t, True) for a, t in Bar(pairs, desc="Processing chunk 1/1")]
    processed = [res for res in results if res is not None]
    if not processed:
        raise RuntimeError("No valid audio files were processed!")
    converted = [item[1] for item in Bar(processed, desc="Converting texts to pinyin")]
    sub_result, durations, vocab_set = [], [], set()
    for (audio_path, _, duration), conv_text in zip(processed, converted, strict=True):
        sub_result.append({"audio_path": audio_path, "text": conv_text, "duration": duration})
        durations.append(duration)
        vocab_set.update(list(conv_text))
    return sub_result, durations, vocab_set


def save_prepped_dataset(out_dir, result, duration_list, text_vocab_set, is_finetune):
    out_dir = Path(out_dir)
    out_dir.mkdir(exist_ok=True, parents=True)
    print(f"\nSaving to {out_dir} ...")
    with open(out_dir / "raw.arrow", "w", encoding="utf-8") as writer:
        for line in Bar(result, desc="Writing to raw.arrow ..."):
            writer.write(json.dumps(line, ensure_ascii=False) + "\n")
    with open(out_dir / "duration.json", "w", encoding="utf-8") as f:
        json.dump({"duration": duration_list}, f, ensure_ascii=False)
    voca_out_path = out_dir / "vocab.txt"
    if is_finetune:
        shutil.copy2(PRETRAINED_VOCAB_PATH.as_posix(), voca_out_path)
    else:
        with open(voca_out_path.as_posix(), "w") as f:
            for vocab in sorted(text_vocab_set):
                f.write(vocab + "\n")
    dataset_name = out_dir.stem
    print(f"\nFor {dataset_name}, sample count: {len(result)}")
    print(f"For {dataset_name}, vocab size is: {len(text_vocab_set)}")
    print(f"For {dataset_name}, total {sum(duration_list) / 3600:.2f} hours")


def prepare_and_save_set(inp_dir, out_dir, is_finetune: bool = True, num_workers: int = None):
    if is_finetune:
        assert PRETRAINED_VOCAB_PATH.exists(), f"pretrained vocab.txt not found: {PRETRAINED_VOCAB_PATH}"
    sub_result, durations, vocab_set = prepare_csv_wavs_dir(inp_dir, num_workers=num_workers)
    save_prepped_dataset(out_dir, sub_result, durations, vocab_set, is_finetune)


def get_args():
    parser = argparse.ArgumentParser(description="Prepare and save dataset.")
    parser.add_argument("inp_dir", type=str, help="Input CSV with header 'audio_file|text' and absolute wav paths.")
    parser.add_argument("out_dir", type=str, help="Output directory to save the prepared data.")
    parser.add_argument("--pretrain", action="store_true", help="Enable for new pretrain, otherwise is a fine-tune")
    parser.add_argument("--workers", type=int, help=f"Number of worker threads (default: {MAX_WORKERS})")
    return parser.parse_args()


def cli():
    try:
        args = get_args()
        prepare_and_save_set(args.inp_dir, args.out_dir, is_finetune=not args.pretrain, num_workers=args.workers)
    except KeyboardInterrupt:
        print("\nOperation cancelled by user. Cleaning up...")
        sys.exit(1)


if __name__ == "__main__":
    cli()
