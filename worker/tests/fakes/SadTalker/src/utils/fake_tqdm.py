"""What tqdm prints when its stream is not a terminal (a pipe to the worker): the same line
format (``desc: 42%|████▏     | 21/50 [00:00<00:00, 25.00it/s]``, a 10-cell bar since the width
is unknown), redrawn with ``\\r`` at most every 0.1 s and on the last item, ``\\n`` at the end.
SadTalker's environment has tqdm itself; the worker's test environment does not."""

import sys
import time

_BLOCKS = " ▏▎▍▌▋▊▉█"


def _clock(seconds):
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h:d}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def format_meter(n, total, elapsed, desc):
    frac = n / total if total else 0.0
    cells = frac * 10
    full = int(cells)
    bar = "█" * full
    if full < 10:
        bar += _BLOCKS[int((cells - full) * 8)] + " " * (9 - full)
    rate = n / elapsed if elapsed > 0 and n else None
    if rate is None:
        rate_fmt, remaining = "?it/s", "?"
    else:
        rate_fmt = f"{rate:5.2f}it/s" if rate >= 1 else f"{1 / rate:5.2f}s/it"
        remaining = _clock((total - n) / rate)
    head = f"{desc}: " if desc else ""
    return f"{head}{frac * 100:3.0f}%|{bar}| {n}/{total} [{_clock(elapsed)}<{remaining}, {rate_fmt}]"


class tqdm:  # noqa: N801 - tqdm's name
    def __init__(self, iterable, desc=None, total=None, mininterval=0.1):
        self.iterable = iterable
        self.desc = desc or ""
        self.total = len(iterable) if total is None else total
        self.mininterval = mininterval
        self.start = self.last = time.monotonic()
        self.n = 0
        self._show()

    def _show(self):
        sys.stderr.write("\r" + format_meter(self.n, self.total, time.monotonic() - self.start, self.desc))
        sys.stderr.flush()

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.n += 1
            now = time.monotonic()
            if now - self.last >= self.mininterval or self.n == self.total:
                self.last = now
                self._show()
        sys.stderr.write("\n")
        sys.stderr.flush()
