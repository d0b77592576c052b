"""Base-model families and how well a LoRA of one family works on a checkpoint of another.

The tiers are derived from Civitai's public compatibility table (``baseModelConfig`` and
``baseModelGenerationConfig`` in ``src/shared/constants/base-model.constants.ts`` of the
civitai/civitai repository, read at commit 02282ba): for each checkpoint group it lists the
``baseModel`` values whose LoRAs have *full* or *partial* support. Below that table is written
again as data (LoRA rows only), under our family names; nothing is invented beyond two rules:

- a LoRA always has full support on its own family (Civitai lists this for every group it covers);
- a family detected only from tensor shapes (``"Flux.1-type"`` ...: the variant cannot be told
  from the weights) is *partial* on every family of the same architecture.

Unknown on either side passes (tier ``"unknown"``): a wrong "no" loses a good adapter. Video-only
families (Hunyuan Video, LTXV, Mochi, CogVideoX, SVD) and Stable Cascade are families of their own
architecture that no image WebUI checkpoint is detected as, so their LoRAs (Civitai lists them beside
image LoRAs) never reach an image checkpoint's prompt; left unknown they passed every filter. Wan is a
checkpoint family too (Forge Neo loads it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FULL, PARTIAL, INCOMPATIBLE, UNKNOWN = "full", "partial", "incompatible", "unknown"


@dataclass(frozen=True)
class Family:
    """One base-model family: our name, its architecture, and the Civitai ``baseModel`` names."""

    name: str
    arch: str
    civitai: tuple[str, ...] = ()
    generic: bool = False  # an architecture-level family (from tensor shapes), variant unknown


_WAN_21 = ("Wan Video 14B t2v", "Wan Video 14B i2v 480p", "Wan Video 14B i2v 720p")
_WAN_22 = ("Wan Video 2.2 T2V-A14B", "Wan Video 2.2 I2V-A14B", "Wan Video 2.2 TI2V-5B")

FAMILIES: tuple[Family, ...] = (
    Family("SD1", "SD1", ("SD 1.4", "SD 1.5", "SD 1.5 LCM", "SD 1.5 Hyper")),
    Family("SD2", "SD2", ("SD 2.0", "SD 2.0 768", "SD 2.1", "SD 2.1 768", "SD 2.1 Unclip")),
    Family("SDXL", "SDXL", ("SDXL 0.9", "SDXL 1.0", "SDXL 1.0 LCM", "SDXL Lightning", "SDXL Hyper", "SDXL Turbo")),
    Family("SDXL Distilled", "SDXL", ("SDXL Distilled",)),
    Family("Pony", "SDXL", ("Pony",)),
    Family("Illustrious", "SDXL", ("Illustrious",)),
    Family("NoobAI", "SDXL", ("NoobAI",)),
    Family("Kolors", "Kolors", ("Kolors",)),
    Family("SD3", "SD3", ("SD 3", "SD 3.5", "SD 3.5 Large", "SD 3.5 Large Turbo")),
    Family("SD 3.5 Medium", "SD3", ("SD 3.5 Medium",)),
    Family("Flux", "Flux.1", ("Flux.1 S", "Flux.1 D")),
    Family("Flux.1 Krea", "Flux.1", ("Flux.1 Krea",)),
    Family("Flux.1 Kontext", "Flux.1", ("Flux.1 Kontext",)),
    Family("Chroma", "Flux.1", ("Chroma",)),
    Family("Flux.2 D", "Flux.2", ("Flux.2 D",)),
    Family("Flux.2 Klein 9B", "Flux.2 Klein 9B", ("Flux.2 Klein 9B",)),
    Family("Flux.2 Klein 9B-base", "Flux.2 Klein 9B", ("Flux.2 Klein 9B-base",)),
    Family("Flux.2 Klein 4B", "Flux.2 Klein 4B", ("Flux.2 Klein 4B",)),
    Family("Flux.2 Klein 4B-base", "Flux.2 Klein 4B", ("Flux.2 Klein 4B-base",)),
    Family("Pony V7", "AuraFlow", ("Pony V7",)),
    Family("AuraFlow", "AuraFlow", ("AuraFlow",)),
    Family("HiDream", "HiDream", ("HiDream",)),
    Family("Qwen", "Qwen", ("Qwen",)),
    Family("ZImageTurbo", "Z-Image", ("ZImageTurbo",)),
    Family("ZImageBase", "Z-Image", ("ZImageBase",)),
    Family("Lumina", "Lumina", ("Lumina",)),
    Family("Anima", "Anima", ("Anima",)),
    Family("Hunyuan 1", "HunyuanDiT", ("Hunyuan 1",)),
    Family("PixArt a", "PixArt", ("PixArt a",)),
    Family("PixArt E", "PixArt", ("PixArt E",)),
    Family("Wan Video", "Wan", ("Wan Video",)),
    Family("Wan Video 1.3B t2v", "Wan 1.3B", ("Wan Video 1.3B t2v",)),
    *(Family(n, "Wan 14B", (n,)) for n in (*_WAN_21, "Wan Video 2.2 T2V-A14B", "Wan Video 2.2 I2V-A14B")),
    Family("Wan Video 2.2 TI2V-5B", "Wan 5B", ("Wan Video 2.2 TI2V-5B",)),
    # LoRAs of these exist on Civitai; no image WebUI runs their checkpoints
    Family("Hunyuan Video", "HunyuanVideo", ("Hunyuan Video",)),
    Family("LTXV", "LTXV", ("LTXV",)),
    Family("Mochi", "Mochi", ("Mochi",)),
    Family("CogVideoX", "CogVideoX", ("CogVideoX",)),
    Family("SVD", "SVD", ("SVD", "SVD XT")),
    Family("Stable Cascade", "Stable Cascade", ("Stable Cascade",)),
    # architecture-level families: what tensor shapes alone can tell (see stylus_ext.sdk.cards.families)
    Family("Flux.1-type", "Flux.1", generic=True),
    Family("Flux.2 Klein 9B-type", "Flux.2 Klein 9B", generic=True),
    Family("Flux.2 Klein 4B-type", "Flux.2 Klein 4B", generic=True),
    Family("Z-Image-type", "Z-Image", generic=True),
    Family("Wan 14B-type", "Wan 14B", generic=True),
    Family("AuraFlow-type", "AuraFlow", generic=True),
    Family("SD3-type", "SD3", generic=True),
)

#: Checkpoint family → (families with FULL LoRA support, families with PARTIAL support), from
#: Civitai's ``baseModelGenerationConfig`` (LoRA rows). A family not listed supports only itself.
SUPPORT: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "SD1": (("SD1",), ()),
    "SDXL": (("SDXL",), ("Pony", "Illustrious", "NoobAI")),
    "Pony": (("Pony",), ("SDXL", "Illustrious", "NoobAI")),
    "Illustrious": (("Illustrious",), ("SDXL", "Pony", "NoobAI")),
    "NoobAI": (("NoobAI",), ("SDXL", "Pony", "Illustrious")),
    "Pony V7": (("Pony V7",), ()),
    "Chroma": (("Chroma",), ()),
    "Flux": (("Flux", "Flux.1 Krea"), ()),
    "Flux.1 Krea": (("Flux.1 Krea", "Flux"), ()),
    "Flux.2 D": (("Flux.2 D",), ()),
    "Flux.2 Klein 9B": (("Flux.2 Klein 9B",), ()),
    "Flux.2 Klein 9B-base": (("Flux.2 Klein 9B-base",), ()),
    "Flux.2 Klein 4B": (("Flux.2 Klein 4B",), ()),
    "Flux.2 Klein 4B-base": (("Flux.2 Klein 4B-base",), ()),
    "HiDream": (("HiDream",), ()),
    "Qwen": (("Qwen",), ()),
    "ZImageTurbo": (("ZImageTurbo",), ("ZImageBase",)),
    "ZImageBase": (("ZImageBase",), ()),
    "Wan Video": (("Wan Video",), ()),
    "Wan Video 14B t2v": (("Wan Video 14B t2v",), _WAN_22),
    "Wan Video 14B i2v 480p": (("Wan Video 14B i2v 480p", "Wan Video 14B i2v 720p"), _WAN_22),
    "Wan Video 14B i2v 720p": (("Wan Video 14B i2v 720p",), ("Wan Video 14B i2v 480p", *_WAN_22)),
    "Wan Video 2.2 T2V-A14B": (("Wan Video 2.2 T2V-A14B",), _WAN_21),
    "Wan Video 2.2 I2V-A14B": (("Wan Video 2.2 I2V-A14B",), _WAN_21),
    "Wan Video 2.2 TI2V-5B": (("Wan Video 2.2 TI2V-5B",), _WAN_21),
}

BY_NAME: dict[str, Family] = {f.name: f for f in FAMILIES}

#: Family → architecture ("unknown" for unrecognised); the SDK's ``BASE_MODEL_GROUPS``.
BASE_MODEL_GROUPS: dict[str, str] = {**{f.name: f.arch for f in FAMILIES}, "unknown": "unknown"}


def _compact(text: str) -> str:
    return re.sub(r"[\s_.\-/()]+", "", text.strip().lower())


_EXACT: dict[str, str] = {}
for _f in FAMILIES:
    for _n in (_f.name, *_f.civitai):
        _EXACT.setdefault(_compact(_n), _f.name)

#: Spellings of kohya's ``ss_base_model_version`` / ``modelspec.architecture`` and common raw
#: names for the newer architectures, tried in order after the exact names (first match wins).
_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"ponyv7", "Pony V7"), (r"auraflow", "AuraFlow"),
    (r"flux2klein9bbase", "Flux.2 Klein 9B-base"), (r"flux2klein9b", "Flux.2 Klein 9B"),
    (r"flux2klein4bbase", "Flux.2 Klein 4B-base"), (r"flux2klein4b", "Flux.2 Klein 4B"),
    (r"flux2(dev|d)?(lora)?$", "Flux.2 D"), (r"flux1?krea", "Flux.1 Krea"), (r"flux1?kontext", "Flux.1 Kontext"),
    (r"chroma", "Chroma"), (r"hidream", "HiDream"), (r"qwenimage|^qwen", "Qwen"),
    (r"zimagebase|^zimage.*base", "ZImageBase"), (r"zimage", "ZImageTurbo"), (r"lumina", "Lumina"),
    (r"^anima", "Anima"), (r"kolors", "Kolors"), (r"sd35m|sd35medium|stablediffusionv35medium", "SD 3.5 Medium"),
    (r"hunyuandit|hunyuan1$", "Hunyuan 1"), (r"hunyuanvideo", "Hunyuan Video"), (r"^ltx", "LTXV"),
    (r"^mochi", "Mochi"), (r"cogvideo", "CogVideoX"), (r"stablevideodiffusion|^svd(xt)?$", "SVD"),
    (r"stablecascade|wuerstchen|wurstchen", "Stable Cascade"),
    (r"wan(video)?22.*5b", "Wan Video 2.2 TI2V-5B"), (r"wan(video)?22.*i2v", "Wan Video 2.2 I2V-A14B"),
    (r"wan(video)?22", "Wan Video 2.2 T2V-A14B"), (r"wan.*13b", "Wan Video 1.3B t2v"),
    (r"wan.*i2v.*720", "Wan Video 14B i2v 720p"), (r"wan.*i2v", "Wan Video 14B i2v 480p"),
    (r"wan(video)?21.*t2v|wan.*14b.*t2v", "Wan Video 14B t2v"), (r"^wan", "Wan Video"),
)


def _registered_family(raw: object) -> str | None:
    """Our family for a raw base-model name (Civitai ``baseModel``, modelspec, kohya, a family
    name in any case), or None when it is not one of the names in :data:`FAMILIES`."""
    if not isinstance(raw, str) or not raw.strip():
        return None
    compact = _compact(raw)
    if compact in _EXACT:
        return _EXACT[compact]
    for pattern, family in _PATTERNS:
        if re.search(pattern, compact):
            return family
    return None


_UNKNOWN_RAW = {"", "unknown", "other", "none", "null"}


def family_from_raw(raw: object) -> str | None:
    """Map a raw base-model name (Civitai, WebUI, modelspec, kohya) to a family; None if unknown."""
    if not isinstance(raw, str):
        return None
    s = raw.strip().lower()
    if s in _UNKNOWN_RAW:
        return None
    if newer := _registered_family(raw):  # Civitai names and the newer architectures first
        return newer
    compact = re.sub(r"[\s_.\-/]+", "", s)
    if "pony" in compact:
        return "Pony"
    if "illustrious" in compact:
        return "Illustrious"
    if "noob" in compact:
        return "NoobAI"
    if "flux" in compact:
        return "Flux"
    if compact.startswith(("sd3", "stablediffusionv3", "stablediffusion3")):
        return "SD3"
    if "sdxl" in compact or compact.startswith("stablediffusionxl") or compact in ("xl", "sdxlbase"):
        return "SDXL"
    if compact.startswith(("sd2", "sdv2", "stablediffusionv2", "stablediffusion2")):
        return "SD2"
    if compact.startswith(("sd1", "sdv1", "stablediffusionv1", "stablediffusion1")):
        return "SD1"
    return None


def canonical(family: str | None) -> str | None:
    """The registered spelling of ``family`` (case-insensitive), or None when unknown."""
    if not family:
        return None
    if family in BY_NAME:
        return family
    return _EXACT.get(_compact(family))


def base_model_group(family: str | None) -> str:
    """Architecture of a base-model family (``"unknown"`` for anything unrecognised)."""
    name = canonical(family)
    return BY_NAME[name].arch if name else "unknown"


def tier(adapter_family: str | None, target_family: str | None) -> str:
    """How well a LoRA of ``adapter_family`` works on a ``target_family`` checkpoint:
    ``"full"``, ``"partial"``, ``"incompatible"`` or ``"unknown"`` (either side unknown)."""
    a, t = canonical(adapter_family), canonical(target_family)
    if a is None or t is None:
        return UNKNOWN
    if a == t:
        return FULL
    full, partial = SUPPORT.get(t, ((t,), ()))
    if a in full:
        return FULL
    if a in partial:
        return PARTIAL
    if (BY_NAME[a].generic or BY_NAME[t].generic) and BY_NAME[a].arch == BY_NAME[t].arch:
        return PARTIAL
    return INCOMPATIBLE


def compatible(adapter_family: str | None, target_family: str | None) -> bool:
    """True unless the tier is ``"incompatible"`` (unknown on either side passes)."""
    return tier(adapter_family, target_family) != INCOMPATIBLE


def usable_families(target_family: str | None) -> list[str]:
    """Known families whose LoRAs are full or partial on ``target_family`` (all when unknown)."""
    return [f.name for f in FAMILIES if tier(f.name, target_family) != INCOMPATIBLE]


def known_families(include_generic: bool = True) -> list[str]:
    return [f.name for f in FAMILIES if include_generic or not f.generic]
