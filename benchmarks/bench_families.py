"""Accuracy of base-model detection from tensor names and shapes (LoRA files without metadata), on
the labelled layouts of tests/lora_headers.py (40 per family, seeded). Prints, per true family, what
was detected, and five rates: exact family, right architecture, tier ≠ incompatible on its own
checkpoint (the filter keeps it), undetected, and passed on checkpoints the true family cannot run on.

    .venv/bin/python benchmarks/bench_families.py
"""

from __future__ import annotations

import sys
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def measure(per_family: int = 40) -> dict[str, float]:
    from lora_headers import labelled

    from stylus_ext.sdk import basemodels
    from stylus_ext.sdk.cards.families import detect

    seen: dict[str, Counter[str]] = defaultdict(Counter)
    n = exact = arch = kept = missing = wrong_keep = wrong_total = 0
    targets = basemodels.known_families(include_generic=False)
    for family, shapes in labelled(per_family):
        found = detect(shapes)
        seen[family][str(found)] += 1
        n += 1
        exact += found == family
        arch += found is not None and basemodels.base_model_group(found) == basemodels.base_model_group(family)
        kept += basemodels.tier(found, family) != basemodels.INCOMPATIBLE
        missing += found is None
        # checkpoints the true family cannot run on: does the detected family still pass the filter?
        for target in targets:
            if basemodels.tier(family, target) == basemodels.INCOMPATIBLE:
                wrong_total += 1
                wrong_keep += basemodels.tier(found, target) != basemodels.INCOMPATIBLE
    for family, counts in seen.items():
        print(f"  {family:24s} → " + ", ".join(f"{k} {v}" for k, v in counts.most_common()))
    return {"files": n, "exact": exact / n, "architecture": arch / n, "kept": kept / n, "undetected": missing / n,
            "wrongly_kept": wrong_keep / max(1, wrong_total)}


def main() -> None:
    figures = measure()
    print(f"{figures['files']} labelled layouts: exact family {figures['exact']:.1%}, architecture "
          f"{figures['architecture']:.1%}, kept on its own checkpoint {figures['kept']:.1%}, "
          f"undetected {figures['undetected']:.1%}; on checkpoints it cannot run on, still passed "
          f"{figures['wrongly_kept']:.1%}")


if __name__ == "__main__":
    main()
