"""Image-quality metrics for translated images: FID and KID on the standard FID Inception-v3
features (`pip install "cyclegan-tool[eval]"`).

    features.py   the feature network and the exact input protocol (resize, range, dtype)
    stats.py      FID and KID from two feature matrices (numpy, float64)
    folders.py    features of an image folder, cached by file contents and protocol

`cyclegan_tool.evaluate(...)` (cyclegan_tool/api.py) is the entry point that uses them.
"""

from cyclegan_tool.metrics.stats import fid_from_features, kid_from_features

__all__ = ["fid_from_features", "kid_from_features"]
