"""Moved to :mod:`stylus_ext.sdk.hooks` (the hook specifications are part of the plugin contract);
``from stylus_ext import hookspecs`` keeps working (it is the same module object)."""

import sys

from stylus_ext.sdk import hooks

sys.modules[__name__] = hooks
