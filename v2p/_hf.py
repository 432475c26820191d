"""Quiet Hugging Face loading: per-load progress bars and config chatter are noise on a CLI's stderr."""

from __future__ import annotations

import contextlib


@contextlib.contextmanager
def quiet_transformers():
    """Temporarily hide transformers' progress bars and info/warning logs; restores them after."""
    from transformers.utils import logging as hf_logging

    bars, level = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()
