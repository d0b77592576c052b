"""Moved to :mod:`stylus_ext.sdk.testing`; ``from stylus_ext import testing`` keeps working (it is the
same module object, so patching one patches the other)."""

import sys

from stylus_ext.sdk import testing

sys.modules[__name__] = testing
