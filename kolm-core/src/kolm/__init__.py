"""kolm: take a small language model from a packaged artifact to a verified edge deployment.

Plugin authors need `hookimpl` from here, the hooks in `kolm.hookspecs` and the types in `kolm.api`.
"""

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("kolm")
