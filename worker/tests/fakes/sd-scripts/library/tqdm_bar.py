"""The bar sd-scripts draws with ``tqdm`` (``from tqdm import tqdm``), in tqdm's own format, for a
Python without tqdm: ``steps:  40%|████      | 4/10 [00:02<00:03,  1.98it/s, avr_loss=0.123]``
on stderr, redrawn with ``\\r`` on each update and each ``set_postfix`` (which refreshes).
"""

from __future__ import annotations

import sys
import time

_PARTS = " ▏▎▍▌▋▊▉"


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h:d}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def format_num(n: float) -> str:
    """tqdm.format_num: 3 significant digits unless the plain form is shorter."""
    f = f"{n:.3g}".replace("+0", "+").replace("-0", "-")
    s = str(n)
    return f if len(f) < len(s) else s


class tqdm:  # noqa: N801 - tqdm's own name
    def __init__(self, iterable=None, total=None, desc=None, smoothing=0.3, disable=False, file=None):
        self.iterable = iterable
        self.total = len(iterable) if total is None and iterable is not None else total
        self.desc = desc
        self.n = 0
        self.postfix = ""
        self.disable = disable
        self.file = file or sys.stderr
        self.start = time.monotonic()
        self.refresh()

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update(1)
        self.close()

    def __len__(self):
        return self.total or 0

    def update(self, n=1):
        self.n += n
        self.refresh()

    def unpause(self):
        pass

    def set_postfix(self, ordered_dict=None, refresh=True, **kwargs):
        values = dict(ordered_dict or {}, **kwargs)
        self.postfix = ", ".join(f"{k}={format_num(v) if isinstance(v, float) else v}" for k, v in values.items())
        if refresh:
            self.refresh()

    def refresh(self):
        if self.disable:
            return
        self.file.write("\r" + self.line())
        self.file.flush()

    def close(self):
        if not self.disable:
            self.file.write("\n")
            self.file.flush()

    def line(self) -> str:
        elapsed = time.monotonic() - self.start
        total = self.total or 0
        frac = min(1.0, self.n / total) if total else 0.0
        rate = self.n / elapsed if elapsed > 0 and self.n else None
        if rate is None:
            rate_fmt, remaining = "?it/s", "?"
        else:
            rate_fmt = f"{rate:5.2f}it/s" if rate >= 1 else f"{1 / rate:5.2f}s/it"
            remaining = _clock((total - self.n) / rate) if total else "?"
        cells = frac * 10
        bar = "█" * int(cells)
        if len(bar) < 10:
            bar += _PARTS[int((cells - int(cells)) * len(_PARTS))]
        bar = bar.ljust(10)
        postfix = f", {self.postfix}" if self.postfix else ""
        prefix = f"{self.desc}: " if self.desc else ""
        return (f"{prefix}{frac * 100:3.0f}%|{bar}| {self.n}/{total} "
                f"[{_clock(elapsed)}<{remaining}, {rate_fmt}{postfix}]")
