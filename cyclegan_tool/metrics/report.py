"""One evaluation: translate where asked, extract features, compute FID and KID, report.

`EvalReport.to_dict()` is what `cyclegan-tool evaluate --json` prints: the first result's
`fid`, `kid`, `kid_std`, `n_fake`, `n_real` at the top level (scripts rely on them), every
direction under `results`, and the protocol.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from cyclegan_tool.errors import CycleGANError, DataError
from cyclegan_tool.metrics.features import PROTOCOL, PROTOCOL_ID, FeatureExtractor
from cyclegan_tool.metrics.folders import (FolderFeatures, default_cache_dir, folder_features, image_files,
                                           reference_results)
from cyclegan_tool.metrics.stats import fid_from_features, kid_from_features


@dataclass(frozen=True)
class MetricResult:
    """FID and KID (unscaled, with its std over subsets) of one fake folder against one real folder."""

    label: str
    fid: float
    kid: float
    kid_std: float
    n_fake: int
    n_real: int
    fake: str
    real: str
    source: str | None = None
    skipped: list[str] = field(default_factory=list)
    real_cached: bool = False

    def line(self) -> str:
        return (f"{self.label}: FID {self.fid:.2f}  KID {self.kid:.4f} +- {self.kid_std:.4f}  "
                f"({self.n_fake} fake vs {self.n_real} real images)")


@dataclass(frozen=True)
class EvalReport:
    results: list[MetricResult]
    seconds: float
    network: str

    @property
    def kid(self) -> float:
        """The first (or only) comparison's KID; `results` has every direction's."""
        return self.results[0].kid

    @property
    def fid(self) -> float:
        return self.results[0].fid

    def to_dict(self) -> dict:
        first = self.results[0]
        top = {k: getattr(first, k) for k in ("fid", "kid", "kid_std", "n_fake", "n_real")}
        return {**top, "results": {r.label: asdict(r) for r in self.results},
                "protocol": {"id": PROTOCOL_ID, **PROTOCOL, "feature_network": self.network},
                "seconds": round(self.seconds, 2)}


def compare(fake: FolderFeatures, real: FolderFeatures, label: str, source: str | None = None) -> MetricResult:
    """FID/KID of two folders' features; refuses grayscale against color."""
    if fake.gray != real.gray:
        gray, color = (fake, real) if fake.gray else (real, fake)
        raise DataError(f"{gray.folder} holds only grayscale images and {color.folder} color ones; FID/KID "
                        "compare like with like (convert one side first)")
    fid = fid_from_features(fake.features, real.features)
    kid, kid_std = kid_from_features(fake.features, real.features)
    return MetricResult(label=label, fid=fid, kid=kid, kid_std=kid_std, n_fake=fake.count, n_real=real.count,
                        fake=str(fake.folder), real=str(real.folder), source=source,
                        skipped=fake.skipped + real.skipped, real_cached=real.cached)


def _stage(progress, name: str):
    return (lambda done, total: progress(name, done, total)) if progress else None


def run_evaluation(pairs, *, translate, limit, fake_pattern, cache_dir, device, extractor, progress,
                   spread: bool = False) -> EvalReport:
    """`pairs`: (label, model direction or None, fake-or-source folder, real folder); a model
    pair has `translate(inputs, out_folder, direction)` (a generator of convert events ending
    with the Summary) translate its source into a temporary folder, as PNG."""
    t0 = time.perf_counter()
    cache = default_cache_dir() if cache_dir is True else (Path(cache_dir) if cache_dir else None)
    if extractor is None:
        from cyclegan_tool.devices import resolve_device

        extractor = FeatureExtractor(device=str(resolve_device(device)))
    results = []
    for label, direction, given, real in pairs:
        real_feats = folder_features(real, extractor, cache_dir=cache, progress=_stage(progress, f"{label} real"))
        if label == "folders":
            pattern, note = (fake_pattern, None) if fake_pattern else reference_results(given)
            fake_feats = folder_features(given, extractor, pattern=pattern, limit=limit, spread=spread,
                                         progress=_stage(progress, "fake"))
            result = compare(fake_feats, real_feats, label)
            results.append(replace(result, skipped=[note] + result.skipped) if note else result)
            continue
        files = image_files(given, pattern=fake_pattern, limit=limit, spread=spread)
        with tempfile.TemporaryDirectory(prefix="cyclegan-eval-") as tmp:
            summary, done = None, 0
            for event in translate(files if limit or fake_pattern else [given], tmp, direction):
                summary, done = event, done + 1
                if progress:
                    progress(f"{label} translate", min(done, len(files)), len(files))
            if summary is None or summary.converted == 0:
                why = summary.failed[0][1] if summary and summary.failed else "nothing to translate"
                raise CycleGANError(f"{given}: no image could be translated ({why})")
            fake_feats = folder_features(tmp, extractor, progress=_stage(progress, f"{label} fake"))
            result = compare(fake_feats, real_feats, label, source=str(given))
            failed = [msg for _, msg in summary.failed]
            results.append(replace(result, fake=f"{given} translated", skipped=failed + result.skipped))
    return EvalReport(results, time.perf_counter() - t0, extractor.name)
