"""kolm: take a small language model from a packaged artifact to a verified edge deployment.

Plugin authors need only `hookimpl` from here and the models named in `kolm.hookspecs`.
"""

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("kolm")
